"""``/metrics``: a prometheus_client collector that reads the store at scrape time.

Nothing is copied into prometheus_client metric objects on ingest; each scrape walks the
store under its lock and yields metric families:

* counters (monotonic sums) as Prometheus counters (``..._total``), up-down counters and
  gauges as gauges, explicit-bucket histograms as classic histograms (``_bucket{le}``,
  ``_sum``, ``_count``), with the names of the standard OTLP translation
  (:func:`signals.prometheus_name`) whether or not the metric is in the contract;
* the percentile series :data:`agent_series.AGENT_DURATION_PERCENTILE` and
  :data:`agent_series.AGENT_TTFT_PERCENTILE` per workload, mode and model, per quantile and
  window (typed ``summary`` with quantile samples only), from the merged exponential histograms (which the text formats leave out:
  a protobuf scrape carries them as native histograms, :mod:`gemini_slo.agent.exposition_proto`);
* the SLO series (from :mod:`gemini_slo.agent.slo_status`) and the agent's own health.

Each agent registers one collector in its own ``CollectorRegistry``: no global state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from gemini_slo.agent.store import Family, LabelKey, Series, Store
from gemini_slo.agent.windows import format_quantile, percentile_or_nan
from gemini_slo.contract import agent_series, signals
from gemini_slo.contract.agent_series import PERCENTILE_METRICS
from gemini_slo.contract.signals import Kind
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.exposition import generate_latest as om_generate_latest
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.samples import Sample


class StoreCollector(Collector):
    """Yields the store's merged series, percentile gauges, extras and self-metrics."""

    def __init__(
        self,
        store: Store,
        *,
        extra: Callable[[], Iterable[Metric]] | None = None,
        quantiles: tuple[float, ...] = agent_series.AGENT_QUANTILES,
    ) -> None:
        self.store = store
        self.extra = extra
        self.quantiles = quantiles
        self._le_cache: dict[tuple[float, ...], list[str]] = {}

    def collect(self) -> Iterable[Metric]:
        """Build every family (called by prometheus_client at scrape time)."""
        with self.store.lock:
            families = list(self._families())
        families.extend(self._derived())
        return families

    def _derived(self) -> list[Metric]:
        """Percentiles, SLO series and self-metrics: few series, computed per scrape."""
        with self.store.lock:
            families = list(self._percentiles())
        if self.extra is not None:
            families.extend(self.extra())
        families.extend(self._self_metrics())
        return families

    def render(self, openmetrics: bool = False) -> bytes:
        """The text exposition of :meth:`collect`, fast (OpenMetrics 1.0.0 with ``openmetrics``).

        ``generate_latest`` formats every label of every sample again on every scrape
        (about 17 us a line; 1.2 s for 10,000 series of which 4,000 histograms). Here the
        label text of each merged series is formatted once, when first scraped, and kept
        on the series; the few derived families still go through prometheus_client. The
        result parses to exactly what ``generate_latest(registry)`` gives (tested), and with
        ``openmetrics`` what prometheus_client's OpenMetrics writer gives (``formats.py``).
        """
        out: list[str] = []
        with self.store.lock:
            for family in self.store.families.values():
                if family.kind is not Kind.EXPONENTIAL_HISTOGRAM and family.series:
                    self._render_family(family, out, openmetrics)
        derived = CollectorRegistry(auto_describe=False)
        derived.register(_Fixed(self._derived()))
        writer = om_generate_latest if openmetrics else generate_latest
        return "".join(out).encode() + writer(derived)

    def _render_family(self, family: Family, out: list[str], openmetrics: bool = False) -> None:
        name = family.name
        kind = family.kind
        help_text = family.help.replace("\\", "\\\\").replace("\n", "\\n")
        if openmetrics:
            help_text = help_text.replace('"', '\\"')  # OpenMetrics escapes quotes too
        if kind is Kind.COUNTER:
            base = name[: -len("_total")] if name.endswith("_total") else name
            # As prometheus_client writes counters: in text 0.0.4 the family is announced
            # under its _total name, in OpenMetrics under the name without it.
            announced = base if openmetrics else f"{base}_total"
            out.append(f"# HELP {announced} {help_text}\n# TYPE {announced} counter\n")
            for labels, series in family.series.items():
                out.append(
                    f"{base}_total{_braces(series, labels)} {signals.format_le(series.value)}\n"
                )
        elif kind is Kind.HISTOGRAM:
            out.append(f"# HELP {name} {help_text}\n# TYPE {name} histogram\n")
            for labels, series in family.series.items():
                if series.bounds is None:
                    continue
                text = _label_text(series, labels)
                prefix = f"{name}_bucket{{{text}," if text else f"{name}_bucket{{"
                cumulative = 0
                for le, c in zip(self._les(series.bounds), series.buckets, strict=True):
                    cumulative += c
                    out.append(f'{prefix}le="{le}"}} {cumulative}.0\n')
                braces = f"{{{text}}}" if text else ""
                out.append(f"{name}_count{braces} {series.count}.0\n")
                out.append(f"{name}_sum{braces} {signals.format_le(series.sum)}\n")
        else:
            out.append(f"# HELP {name} {help_text}\n# TYPE {name} gauge\n")
            for labels, series in family.series.items():
                out.append(
                    f"{name}{_braces(series, labels)} {signals.format_le(series.gauge_value())}\n"
                )

    def _les(self, bounds: tuple[float, ...]) -> list[str]:
        les = self._le_cache.get(bounds)
        if les is None:
            les = [signals.format_le(b) for b in bounds] + ["+Inf"]
            if len(self._le_cache) < 1000:
                self._le_cache[bounds] = les
        return les

    def _families(self) -> Iterable[Metric]:
        for family in self.store.families.values():
            kind = family.kind
            if kind is Kind.EXPONENTIAL_HISTOGRAM or not family.series:
                continue
            name = family.name
            if kind is Kind.COUNTER:
                base = name[: -len("_total")] if name.endswith("_total") else name
                metric = Metric(base, family.help, "counter")
                samples = metric.samples
                sample_name = base + "_total"
                for labels, series in family.series.items():
                    samples.append(Sample(sample_name, dict(labels), series.value))
            elif kind is Kind.HISTOGRAM:
                metric = Metric(name, family.help, "histogram")
                samples = metric.samples
                bucket, count_name, sum_name = name + "_bucket", name + "_count", name + "_sum"
                for labels, series in family.series.items():
                    if series.bounds is None:
                        continue
                    base_labels = dict(labels)
                    cumulative = 0
                    for le, c in zip(self._les(series.bounds), series.buckets, strict=True):
                        cumulative += c
                        samples.append(Sample(bucket, {**base_labels, "le": le}, cumulative))
                    samples.append(Sample(count_name, base_labels, series.count))
                    samples.append(Sample(sum_name, base_labels, series.sum))
            else:
                metric = Metric(name, family.help, "gauge")
                samples = metric.samples
                for labels, series in family.series.items():
                    samples.append(Sample(name, dict(labels), series.gauge_value()))
            yield metric

    def _percentiles(self) -> Iterable[Metric]:
        windows = self.store.windows
        now = windows.clock()
        by_name: dict[str, Metric] = {}
        quantile_labels = [(q, format_quantile(q)) for q in self.quantiles]
        for key in windows.groups():
            otel_name, workload, mode, model = key
            gauge = PERCENTILE_METRICS[otel_name]
            metric = by_name.get(gauge)
            if metric is None:
                # TYPE summary: the Prometheus type for precomputed quantiles (promtool refuses
                # a `quantile` label on a gauge). No _sum/_count: the values are windowed,
                # and a summary's _count would have to be a counter. Queries read them
                # exactly like gauges.
                metric = by_name[gauge] = Metric(
                    gauge, agent_series.PERCENTILE_HELP[gauge], "summary"
                )
            for window in windows.windows:
                hist = windows.histogram(key, window, now)
                if hist.count <= 0:
                    continue  # no calls in the window: no value rather than a made-up one
                for q, q_label in quantile_labels:
                    metric.samples.append(
                        Sample(
                            gauge,
                            {
                                signals.LABEL_WORKLOAD: workload,
                                signals.LABEL_MODE: mode,
                                signals.LABEL_MODEL: model,
                                agent_series.LABEL_QUANTILE: q_label,
                                agent_series.LABEL_WINDOW: window,
                            },
                            percentile_or_nan(hist, q),
                        )
                    )
        return [m for m in by_name.values() if m.samples]

    def _self_metrics(self) -> Iterable[Metric]:
        stats = self.store.self_metrics
        out: list[Metric] = []

        def counter(name: str, help_text: str, label: str | None, values: dict[str, float]) -> None:
            base = name[: -len("_total")]
            metric = Metric(base, help_text, "counter")
            for key, value in sorted(values.items()):
                metric.add_sample(name, {label: key} if label else {}, value)
            out.append(metric)

        requests = Metric(
            agent_series.RECEIVED_REQUESTS[: -len("_total")],
            "OTLP export requests received, by body encoding and outcome.",
            "counter",
        )
        for (encoding, outcome), value in sorted(stats.requests.items()):
            requests.add_sample(
                agent_series.RECEIVED_REQUESTS, {"encoding": encoding, "outcome": outcome}, value
            )
        out.append(requests)
        counter(
            agent_series.RECEIVED_POINTS,
            "OTLP data points received, by body encoding.",
            "encoding",
            dict(stats.points),
        )
        counter(
            agent_series.REJECTED_REQUESTS,
            "OTLP export requests refused as a whole, by reason.",
            "reason",
            dict(stats.rejected_requests),
        )
        counter(
            agent_series.REJECTED_POINTS,
            "OTLP data points refused (partial success), by reason.",
            "reason",
            dict(stats.rejected_points),
        )
        counter(
            agent_series.OVERFLOW_POINTS,
            "Points folded into an overflow series (cardinality limit), by metric.",
            "metric",
            dict(stats.overflow_points),
        )
        counter(
            agent_series.EXPIRED_SERIES,
            "Merged series dropped after stale_after without updates.",
            None,
            {"": float(stats.expired_series)},
        )
        windows = self.store.windows
        counter(
            agent_series.WINDOW_UNTRACKED,
            "Increments the 1m/5m windows could not track (their group limit reached), by kind.",
            "kind",
            {kind: float(n) for kind, n in windows.untracked.items()},
        )
        counter(
            agent_series.TRUNCATED_LABELS,
            "Label sets cut to the limits (names, values, a point's attributes beyond 128).",
            None,
            {"": float(self.store.labels.truncated)},
        )
        counter(
            agent_series.REFUSED_CONNECTIONS,
            "Connections answered 503 and closed at once (the listener's cap), by listener.",
            "listener",
            {k: float(v) for k, v in stats.refused_connections.items()},
        )
        counter(
            agent_series.STATE_WRITES,
            "Writes of the state file, by outcome.",
            "outcome",
            dict(stats.state_writes),
        )
        counter(
            agent_series.SUPPRESSED_LOG_LINES,
            "Log lines left out by the rate limit (at most one of a kind per interval).",
            None,
            {"": float(stats.suppressed_log_lines)},
        )
        for name, help_text, label, values in (
            (
                agent_series.CONNECTIONS,
                "Open client connections, by listener.",
                "listener",
                stats.connections,
            ),
            (
                agent_series.WINDOW_GROUPS,
                "Aggregates the 1m/5m windows track, by kind.",
                "kind",
                {"histogram": len(windows.histograms), "counter": len(windows.counters)},
            ),
        ):
            gauge = Metric(name, help_text, "gauge")
            for key, value in sorted(values.items()):
                gauge.add_sample(name, {label: key}, float(value))
            out.append(gauge)
        for name, help_text, value in (
            (agent_series.SERIES, "Active merged series.", self.store.series_count()),
            (
                agent_series.INSTANCES,
                "Active per-instance states behind the merged series.",
                self.store.instance_count(),
            ),
            (
                agent_series.OVERFLOW_SERIES,
                "Label sets currently folded into overflow series.",
                self.store.overflow_series_count(),
            ),
        ):
            metric = Metric(name, help_text, "gauge")
            metric.add_sample(name, {}, float(value))
            out.append(metric)
        scrape = Metric(agent_series.SCRAPE_DURATION, "Time spent building /metrics.", "histogram")
        cumulative = 0
        for bound, c in zip(
            (*agent_series.SCRAPE_BUCKETS, float("inf")), stats.scrape_buckets, strict=True
        ):
            cumulative += c
            scrape.add_sample(
                agent_series.SCRAPE_DURATION + "_bucket",
                {"le": signals.format_le(bound)},
                cumulative,
            )
        scrape.add_sample(agent_series.SCRAPE_DURATION + "_count", {}, cumulative)
        scrape.add_sample(agent_series.SCRAPE_DURATION + "_sum", {}, stats.scrape_sum)
        out.append(scrape)
        return out


class _Fixed(Collector):
    """A collector that yields families computed beforehand."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _label_text(series: Series, labels: LabelKey) -> str:
    """``k="v",...`` for a series, formatted once and kept on it."""
    text = series.text
    if text is None:
        text = series.text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return text


def _braces(series: Series, labels: LabelKey) -> str:
    text = _label_text(series, labels)
    return f"{{{text}}}" if text else ""


def make_registry(collector: StoreCollector) -> CollectorRegistry:
    """A fresh registry holding only ``collector`` (no process/platform collectors)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry
