"""Export path 1: the registry as OTLP metrics (HTTP, or gRPC on request), with the SDK's own exporter.

Every ``interval`` seconds a daemon thread turns :meth:`Registry.collect` into the SDK's
``MetricsData`` (cumulative temporality, start time = the registry's) and hands it to the
real ``OTLPMetricExporter``. The state is cumulative, so nothing queues up while the agent
is down: memory stays bounded and the next successful export carries everything.

A collection is sent as as many bodies as the agent's per-request limits need
(:mod:`gemini_slo.contract.otlp_limits`: data points, and an upper bound of the encoded
size), each a complete export of its own series, so that no series is refused because the
collection as a whole is too large.

An agent that is down never reaches the app: the export fails in the background thread, the
failure is counted (``Registry.export_failures``) and logged at debug; the exporter's own
warnings for *our* exports are dropped (a filter keyed on a thread-local flag, so the app's
other exporters keep theirs). At exit (:meth:`OtlpExporter.shutdown`) the last export is
retried with backoff for at most ``exit_timeout`` seconds; if the agent never takes it, one
warning says how many calls were not delivered, and the interpreter goes on. That number is
exact per request: each request the agent accepted credits the calls of its own series
(their cumulative values), so a split export that was partly delivered counts only the
series of the refused requests.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from itertools import groupby
from operator import attrgetter
from typing import Any

from gemini_slo.contract import signals as S
from gemini_slo.contract.otlp_limits import MAX_REQUEST_BYTES, MAX_REQUEST_POINTS
from gemini_slo.instrumentation._export_protocol import make_exporter
from gemini_slo.instrumentation._registry import Registry
from gemini_slo.instrumentation._values import ExponentialPoint, HistogramPoint, Point
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Buckets,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.metrics.export import ExponentialHistogram as OtelExponentialHistogram
from opentelemetry.sdk.metrics.export import ExponentialHistogramDataPoint as OtelExponentialPoint
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

_log = logging.getLogger("gemini_slo.instrumentation.export")
_SCOPE = InstrumentationScope("gemini_slo.instrumentation", "0.1.0")
_CUMULATIVE = AggregationTemporality.CUMULATIVE
_QUIET = threading.local()
_NOISY_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.common.http",
    "opentelemetry.exporter.http.transport",
    "urllib3.connectionpool",
)


class _DropOwnExports(logging.Filter):
    """Drop records logged while this thread runs one of our exports."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_QUIET, "active", False)


_FILTER = _DropOwnExports()
for _name in _NOISY_LOGGERS:
    logging.getLogger(_name).addFilter(_FILTER)


_NO_BUCKETS = Buckets(offset=0, bucket_counts=())
_NO_EXEMPLARS: tuple[()] = ()


def _data_point(point: Point, start_ns: int, now_ns: int) -> Any:
    """The SDK data point of one snapshot. The snapshot's tuples are handed over as they
    are (they are frozen): no copy between the registry and the encoder."""
    attrs = dict(point.attributes)
    value = point.value
    if isinstance(value, HistogramPoint):
        return HistogramDataPoint(
            attributes=attrs,
            start_time_unix_nano=start_ns,
            time_unix_nano=now_ns,
            count=value.count,
            sum=value.sum,
            bucket_counts=value.bucket_counts,
            explicit_bounds=value.bounds,
            min=value.min,
            max=value.max,
            exemplars=_NO_EXEMPLARS,
        )
    if isinstance(value, ExponentialPoint):
        return OtelExponentialPoint(
            attributes=attrs,
            start_time_unix_nano=start_ns,
            time_unix_nano=now_ns,
            count=value.count,
            sum=value.sum,
            scale=value.scale,
            zero_count=value.zero_count,
            positive=Buckets(offset=value.offset, bucket_counts=value.bucket_counts),
            negative=_NO_BUCKETS,
            flags=0,
            min=value.min,
            max=value.max,
            exemplars=_NO_EXEMPLARS,
        )
    return NumberDataPoint(
        attributes=attrs,
        start_time_unix_nano=start_ns,
        time_unix_nano=now_ns,
        value=value,
        exemplars=_NO_EXEMPLARS,
    )


def _metric(signal: S.Signal, points: Sequence[Any]) -> Metric:
    kind = signal.kind
    data: Any
    if kind is S.Kind.COUNTER:
        data = Sum(data_points=points, aggregation_temporality=_CUMULATIVE, is_monotonic=True)
    elif kind is S.Kind.UP_DOWN_COUNTER:
        data = Sum(data_points=points, aggregation_temporality=_CUMULATIVE, is_monotonic=False)
    elif kind is S.Kind.GAUGE:
        data = Gauge(data_points=points)
    elif kind is S.Kind.HISTOGRAM:
        data = Histogram(data_points=points, aggregation_temporality=_CUMULATIVE)
    else:
        data = OtelExponentialHistogram(data_points=points, aggregation_temporality=_CUMULATIVE)
    return Metric(name=signal.name, description=signal.description, unit=signal.unit, data=data)


# Upper bounds of the protobuf encoding, in bytes (tag + length prefixes included): a point's
# fixed fields (times, count, sum, min, max, scale, offsets, flags, its own header), one
# attribute's KeyValue/AnyValue wrapping, a metric's header beyond its strings, and what a
# request holds besides its metrics (resource, scope). Over-estimating costs an extra body
# now and then; under-estimating would cost a 413, so these are generous.
_POINT_OVERHEAD = 96
_ATTRIBUTE_OVERHEAD = 16
_METRIC_OVERHEAD = 32
_REQUEST_OVERHEAD = 4096


def _varint_size(n: int) -> int:
    return max(1, (n.bit_length() + 6) // 7)


def encoded_size_bound(point: Point) -> int:
    """An upper bound of the bytes ``point`` takes in an OTLP protobuf request."""
    size = _POINT_OVERHEAD
    for key, value in point.attributes:
        size += _ATTRIBUTE_OVERHEAD + len(key.encode()) + len(value.encode())
    v = point.value
    if isinstance(v, HistogramPoint):
        size += 8 * (len(v.bounds) + len(v.bucket_counts)) + 8  # fixed64 counts, doubles
    elif isinstance(v, ExponentialPoint):
        size += _varint_size(v.count) * len(v.bucket_counts) + 8  # no bucket exceeds count
    return size


def resource_size_bound(resource: Resource) -> int:
    """An upper bound of the bytes ``resource``'s attributes take in a request."""
    return sum(
        _ATTRIBUTE_OVERHEAD + len(str(k).encode()) + len(str(v).encode()) + 8
        for k, v in resource.attributes.items()
    )


def _metric_header_size(signal: S.Signal) -> int:
    return _METRIC_OVERHEAD + len(signal.name) + len(signal.description.encode()) + len(signal.unit)


def split_points(
    points: Sequence[Point],
    max_points: int = MAX_REQUEST_POINTS,
    max_bytes: int = MAX_REQUEST_BYTES,
    reserved: int = 0,
) -> list[list[Point]]:
    """``points`` (ordered by signal, as ``Registry.collect`` returns them) cut into runs of
    at most ``max_points`` points whose encoded size is bounded below ``max_bytes``, of
    which ``reserved`` bytes go to the resource (:func:`resource_size_bound`).

    Every point is in exactly one run, in its order. A single point larger than the budget
    (it would take a histogram of about a million buckets) still gets a run of its own.
    """
    budget = max_bytes - _REQUEST_OVERHEAD - reserved
    if budget <= 0 or max_points < 1:
        raise ValueError(f"limits too small for a request: {max_points} points, {max_bytes} B")
    batches: list[list[Point]] = []
    batch: list[Point] = []
    size = 0
    signal: S.Signal | None = None
    for point in points:
        cost = encoded_size_bound(point)
        if point.signal is not signal:
            cost += _metric_header_size(point.signal)
        if batch and (len(batch) >= max_points or size + cost > budget):
            batches.append(batch)
            batch, size = [], 0
            cost += 0 if point.signal is not signal else _metric_header_size(point.signal)
        batch.append(point)
        size += cost
        signal = point.signal
    if batch:
        batches.append(batch)
    return batches


def calls_in(points: Iterable[Point]) -> int:
    """The calls counted in ``points`` (what an export that fails leaves undelivered)."""
    return sum(p.value for p in points if p.signal is S.CALLS and isinstance(p.value, int))


def to_metrics_data(
    points: Sequence[Point], resource: Resource, start_ns: int, now_ns: int
) -> MetricsData:
    """The SDK data classes for ``points`` (what OTLPMetricExporter.export takes), in one
    pass: ``Registry.collect`` returns the points ordered by signal, so each run of one
    signal is one metric."""
    metrics = [
        _metric(signal, [_data_point(p, start_ns, now_ns) for p in run])
        for signal, run in groupby(points, key=attrgetter("signal"))
    ]
    scope_metrics = ScopeMetrics(scope=_SCOPE, metrics=metrics, schema_url="")
    return MetricsData(
        resource_metrics=[
            ResourceMetrics(resource=resource, scope_metrics=[scope_metrics], schema_url="")
        ]
    )


class OtlpExporter:
    """The background export loop of one registry to one endpoint."""

    def __init__(
        self,
        registry: Registry,
        endpoint: str,
        resource: Resource,
        *,
        interval: float = 5.0,
        timeout: float | None = None,
        exit_timeout: float = 5.0,
        max_points: int = MAX_REQUEST_POINTS,
        max_bytes: int = MAX_REQUEST_BYTES,
    ) -> None:
        self.registry = registry
        self.endpoint = endpoint
        self.resource = resource
        self.interval = interval
        self.exit_timeout = exit_timeout
        """At exit, how long the final export may be retried (seconds) before giving up."""
        self.max_points = max_points
        self.max_bytes = max_bytes
        self._reserved = resource_size_bound(resource)
        # One export may take at most this long, retries included (the exporter's own
        # deadline): short, so that a dead agent costs the thread little.
        self.export_timeout = timeout if timeout is not None else min(max(interval, 0.5), 3.0)
        self._exporter = self._new_exporter(self.export_timeout)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.exports = 0
        self.requests = 0
        """Request bodies sent (an export of a large collection sends several)."""
        self.delivered_calls = 0
        """Calls the agent holds: per call series, the cumulative count of the last request
        it accepted that carried the series, summed."""
        # Call series -> its count in the last accepted request that carried it (bounded by
        # the registry's cardinality limit), and the registry start time those counts are of.
        self._delivered: dict[tuple[tuple[str, str], ...], int] = {}
        self._delivered_start = registry.start_time_ns
        self.undelivered_calls = 0
        """Calls the final export at shutdown could not deliver (0 once it succeeded)."""
        self._thread = threading.Thread(
            target=self._run, name="gemini-slo-otlp-export", daemon=True
        )
        self._thread.start()

    def _new_exporter(self, timeout: float) -> MetricExporter:
        """The SDK exporter to the endpoint, with its own deadline of ``timeout`` seconds:
        OTLP/HTTP unless OTEL_EXPORTER_OTLP_(METRICS_)PROTOCOL=grpc (_export_protocol.py)."""
        exporter: MetricExporter = make_exporter(self.endpoint, timeout, _FILTER)
        return exporter

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.export_once()
        # The last values are exported by shutdown(), in its own thread, with retries.

    def export_once(self) -> bool:
        """Export the registry now (in this thread); True on success. Never raises."""
        with self._lock:
            return self._export_locked(self._exporter)

    def _export_locked(self, exporter: MetricExporter) -> bool:
        """One export of every series, split below the agent's limits (under ``_lock``)."""
        _QUIET.active = True
        try:
            points = self.registry.collect()
            now = time.time_ns()
            start = self.registry.start_time_ns
            if start != self._delivered_start:  # the registry started over (new thresholds)
                self._delivered, self._delivered_start = {}, start
            ok = True
            # An empty collection is still sent: the agent learns the app is alive.
            batches = split_points(points, self.max_points, self.max_bytes, self._reserved)
            for batch in batches or [[]]:
                data = to_metrics_data(batch, self.resource, start, now)
                self.requests += 1
                if exporter.export(data) is not MetricExportResult.SUCCESS:
                    ok = False  # the agent is down or refusing: the next export carries all
                    break
                self._credit(batch)
        except Exception:
            _log.debug("gemini-slo: OTLP export to %s raised", self.endpoint, exc_info=True)
            ok = False
        finally:
            _QUIET.active = False
        self.exports += 1
        self.delivered_calls = sum(self._delivered.values())
        if not ok:
            self.registry.export_failures += 1
            _log.debug("gemini-slo: OTLP export to %s failed", self.endpoint)
        return ok

    def _credit(self, batch: Iterable[Point]) -> None:
        """The agent accepted ``batch``: it now holds these series' cumulative calls."""
        delivered = self._delivered
        for p in batch:
            if p.signal is S.CALLS and isinstance(p.value, int):
                delivered[p.attributes] = p.value

    def flush(self) -> bool:
        """Export now, from the calling thread (blocks up to the export timeout)."""
        return self.export_once()

    def shutdown(self, timeout: float | None = None, *, warn: bool = True) -> bool:
        """Stop the loop and export the last values, retrying with backoff for at most
        ``timeout`` seconds (``exit_timeout`` by default); True if they were delivered. On
        failure, one warning (unless ``warn`` is False) with the number of calls the agent
        does not hold: recorded since the last accepted request that carried their series.
        Never raises."""
        if self._stop.is_set():
            return self.undelivered_calls == 0
        self._stop.set()
        deadline = time.monotonic() + (self.exit_timeout if timeout is None else timeout)
        ok = False
        backoff = 0.05
        try:
            while True:
                remaining = deadline - time.monotonic()
                # A background export in progress (a slow agent) holds the lock: wait for
                # it, within the deadline, rather than send a second export beside it.
                if remaining <= 0 or not self._lock.acquire(timeout=remaining):
                    break
                try:
                    remaining = deadline - time.monotonic()
                    exporter = self._new_exporter(max(remaining, 0.01))
                    try:
                        ok = self._export_locked(exporter)
                    finally:
                        exporter.shutdown()
                finally:
                    self._lock.release()
                remaining = deadline - time.monotonic()
                if ok or remaining <= 0:
                    break
                time.sleep(min(backoff, remaining))
                backoff = min(backoff * 2, 1.0)
            self._exporter.shutdown()
        except Exception:  # pragma: no cover - exit must go on whatever happens here
            _log.debug("gemini-slo: final OTLP export failed", exc_info=True)
        if not ok and warn:
            self._warn_undelivered()
        return ok

    def _warn_undelivered(self) -> None:
        try:
            points = self.registry.collect()
            held = self.delivered_calls
            if self.registry.start_time_ns != self._delivered_start:
                held = 0  # the registry started over since: the agent holds none of these
            undelivered = max(calls_in(points) - held, 0)
        except Exception:  # pragma: no cover - a count for the message only
            undelivered = 0
        self.undelivered_calls = undelivered
        if undelivered:
            _log.warning(
                "gemini-slo: %d call(s) were not delivered to %s: the agent did not take the "
                "final export within %.1f s (GEMINI_SLO_EXIT_TIMEOUT)",
                undelivered,
                self.endpoint,
                self.exit_timeout,
            )
