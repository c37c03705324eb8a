"""The Prometheus protobuf exposition, with the merged exponential histograms as native ones.

Asked for by ``Accept: application/vnd.google.protobuf; proto=io.prometheus.client.
MetricFamily; encoding=delimited`` (:mod:`gemini_slo.agent.formats`): a stream of
length-prefixed ``io.prometheus.client.MetricFamily`` messages (Prometheus' published
``metrics.proto``, compiled at build time: ``agent/proto/``, ``setup.py``), serialized by
protobuf itself (``serialize_length_prefixed``), never by hand.

What it holds:

* every family of the text exposition (:meth:`StoreCollector.collect`), the same names,
  labels and values: counters, gauges, classic histograms (``bucket`` with cumulative
  counts), and the percentile series, written as gauges here (a protobuf ``summary``
  always yields ``_count`` and ``_sum`` series, which the windowed percentiles do not
  have: they would read as zeros);
* the merged base-2 exponential histograms (the ``gemini_slo.`` twins, which the text
  formats leave out), as Prometheus **native histograms** under their Prometheus names
  (``gemini_slo_client_operation_duration_seconds``): OTLP scale is the native schema
  (OTLP bucket ``i`` covers ``(base**i, base**(i+1)]``, native bucket ``i`` covers
  ``(base**(i-1), base**i]``, so the index moves by one), the zero bucket and its
  threshold as they are, one span per bucket range with count deltas. The classic
  histogram of the same calls (``gen_ai_client_operation_duration_seconds_bucket``) is a
  family of its own and stays classic: a scraper with native histograms on keeps both.

Prometheus accepts schemas -4 to 8: a finer histogram is lowered to 8 (exactly: bucket
unions); a coarser one is left out (the SDK records at scale 5 here, and the agent's
merges lower it only while a range needs more than 320 buckets, 1,024x at scale 5).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence

from gemini_slo.agent import _prometheus_metrics_pb2 as pb
from gemini_slo.agent.exponential import ExpHistogram
from gemini_slo.agent.exposition import StoreCollector
from gemini_slo.agent.store import Family, Store
from gemini_slo.contract.signals import Kind
from google.protobuf import proto
from google.protobuf.internal.containers import RepeatedCompositeFieldContainer
from prometheus_client.metrics_core import Metric

#: Native-histogram schemas Prometheus accepts.
MIN_SCHEMA = -4
MAX_SCHEMA = 8

_TYPES = {
    "counter": pb.COUNTER,
    "gauge": pb.GAUGE,
    "summary": pb.GAUGE,  # see the module docstring
    "histogram": pb.HISTOGRAM,
    "gaugehistogram": pb.GAUGE_HISTOGRAM,
    "untyped": pb.UNTYPED,
    "unknown": pb.UNTYPED,
    "info": pb.GAUGE,
    "stateset": pb.GAUGE,
}


def _labels(target: pb.Metric, labels: Iterable[tuple[str, str]]) -> None:
    for name, value in labels:
        pair = target.label.add()
        pair.name = name
        pair.value = value


def _simple_family(metric: Metric) -> Iterable[pb.MetricFamily]:
    """Counters, gauges, summaries-as-gauges: one family per sample name."""
    by_name: dict[str, pb.MetricFamily] = {}
    kind = _TYPES.get(metric.type, pb.UNTYPED)
    for sample in metric.samples:
        if metric.type == "counter" and not sample.name.endswith("_total"):
            continue  # _created: not part of the 0.0.4 exposition either
        family = by_name.get(sample.name)
        if family is None:
            family = by_name[sample.name] = pb.MetricFamily(
                name=sample.name, help=metric.documentation, type=kind
            )
        point = family.metric.add()
        _labels(point, sorted(sample.labels.items()))
        value = float(sample.value)
        if kind == pb.COUNTER:
            point.counter.value = value
        elif kind == pb.GAUGE:
            point.gauge.value = value
        else:
            point.untyped.value = value
    return by_name.values()


def _histogram_family(metric: Metric) -> pb.MetricFamily:
    """A classic histogram from its ``_bucket``/``_count``/``_sum`` samples."""
    family = pb.MetricFamily(name=metric.name, help=metric.documentation, type=pb.HISTOGRAM)
    points: dict[tuple[tuple[str, str], ...], pb.Metric] = {}
    for sample in metric.samples:
        labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
        point = points.get(labels)
        if point is None:
            point = points[labels] = family.metric.add()
            _labels(point, labels)
        histogram = point.histogram
        if sample.name.endswith("_bucket"):
            bucket = histogram.bucket.add()
            bucket.upper_bound = float(sample.labels["le"])
            bucket.cumulative_count = round(sample.value)
        elif sample.name.endswith("_count"):
            histogram.sample_count = round(sample.value)
        elif sample.name.endswith("_sum"):
            histogram.sample_sum = float(sample.value)
    return family


def _spans_and_deltas(
    offset: int,
    counts: Sequence[int],
    spans: RepeatedCompositeFieldContainer[pb.BucketSpan],
    deltas: list[int],
) -> None:
    """One span from the first to the last non-empty bucket (native index = OTLP + 1)."""
    first = next((i for i, c in enumerate(counts) if c), None)
    if first is None:
        return
    last = max(i for i, c in enumerate(counts) if c)
    span = spans.add()
    span.offset = offset + first + 1
    span.length = last - first + 1
    previous = 0
    for c in counts[first : last + 1]:
        deltas.append(c - previous)
        previous = c


def native_histogram(hist: ExpHistogram, target: pb.Histogram) -> bool:
    """Fill ``target`` with ``hist`` as a native histogram; False if its scale is too coarse."""
    if hist.scale < MIN_SCHEMA:
        return False
    if hist.scale > MAX_SCHEMA:
        hist = hist.copy()
        hist.downscale(hist.scale - MAX_SCHEMA)
    target.schema = hist.scale
    target.sample_count = hist.count
    target.sample_sum = hist.sum if math.isfinite(hist.sum) else math.nan
    target.zero_threshold = hist.zero_threshold
    target.zero_count = hist.zero_count
    positive: list[int] = []
    negative: list[int] = []
    _spans_and_deltas(hist.positive_offset, hist.positive, target.positive_span, positive)
    _spans_and_deltas(hist.negative_offset, hist.negative, target.negative_span, negative)
    target.positive_delta.extend(positive)
    target.negative_delta.extend(negative)
    if not target.positive_span and not target.negative_span and not hist.zero_count:
        # An empty native histogram still has to read as native (not as a classic one
        # without buckets): an empty span marks it, as Prometheus' Go client does.
        target.positive_span.add(offset=0, length=0)
    return True


def _native_family(family: Family) -> tuple[pb.MetricFamily, int]:
    out = pb.MetricFamily(name=family.name, help=family.help, type=pb.HISTOGRAM)
    skipped = 0
    for labels, series in family.series.items():
        hist = series.exp
        if hist is None:
            continue
        point = pb.Metric()
        _labels(point, labels)
        if native_histogram(hist, point.histogram):
            out.metric.append(point)
        else:
            skipped += 1
    return out, skipped


def native_families(store: Store) -> list[pb.MetricFamily]:
    """The store's exponential histograms as native-histogram families (under its lock)."""
    out: list[pb.MetricFamily] = []
    with store.lock:
        for family in store.families.values():
            if family.kind is Kind.EXPONENTIAL_HISTOGRAM and family.series:
                native, _ = _native_family(family)
                if native.metric:
                    out.append(native)
    return out


def families(collector: StoreCollector) -> list[pb.MetricFamily]:
    """Every family of the protobuf scrape, in order: the text exposition's, then natives."""
    out: list[pb.MetricFamily] = []
    for metric in collector.collect():
        if metric.type == "histogram":
            out.append(_histogram_family(metric))
        else:
            out.extend(_simple_family(metric))
    out.extend(native_families(collector.store))
    return out


def render(collector: StoreCollector) -> bytes:
    """The protobuf scrape body: length-prefixed MetricFamily messages."""
    buffer = io.BytesIO()
    for family in families(collector):
        proto.serialize_length_prefixed(family, buffer)
    return buffer.getvalue()
