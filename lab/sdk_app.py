"""A small app on the real OpenTelemetry SDK, for the agent's tests and benchmarks.

Run as ``python -m gemini_slo.lab.sdk_app '<json config>'``. It records GenAI-call
signals under the names of :mod:`gemini_slo.contract.signals` (explicit histograms
under the semconv names, base-2 exponential histograms under the ``gemini_slo.`` twins,
as the instrumentation does) and exports them with the real ``OTLPMetricExporter``
(OTLP/HTTP protobuf). It exists so that tests can check the agent against exactly what
the OpenTelemetry SDK sends, in separate processes, without depending on the
instrumentation package.

Config keys (all optional): ``endpoint`` (full URL of /v1/metrics), ``instance``
(service.instance.id), ``service``, ``delta`` (delta temporality), ``calls``,
``seed``, ``distribution`` (``lognormal`` or ``heavy``: lognormal with a Pareto tail),
``workload``, ``mode``, ``models`` (how many distinct model names: multiplies series),
``rounds`` (record+export this many times), ``export_interval`` (seconds, background
exports while lingering), ``linger`` (seconds to keep running after recording),
``durations_file`` (write the recorded durations there, one per line), ``warmup`` (calls
recorded and exported first, left out of ``durations_file``) and ``warmup_pause`` (seconds
to wait after them: a scraper sees every series before the rest arrives, so that a rate
over the run counts all of it), ``protocol`` (``grpc``: the SDK's OTLP/gRPC exporter to
``endpoint``, e.g. ``http://127.0.0.1:4317``; default OTLP/HTTP),
``prometheus`` (also print a PrometheusMetricReader exposition of the same data, without
the exponential histograms it cannot expose), ``token`` (bearer token), ``bench``
(print export timings as JSON), ``every_signal`` (also record each signal of the contract
once, with all its attributes).
"""

from __future__ import annotations

import json
import random
import sys
import time
from typing import Any

from gemini_slo.contract import signals as s
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.view import (
    DropAggregation,
    ExplicitBucketHistogramAggregation,
    ExponentialBucketHistogramAggregation,
    View,
)
from opentelemetry.sdk.resources import Resource

_EXPONENTIAL = (s.OPERATION_DURATION_EXPONENTIAL, s.TIME_TO_FIRST_CHUNK_EXPONENTIAL)
_EXPLICIT = (s.OPERATION_DURATION, s.TIME_TO_FIRST_CHUNK, s.TOKEN_USAGE)


def _views(exponential: bool) -> list[View]:
    views = [
        View(
            instrument_name=sig.name,
            aggregation=ExplicitBucketHistogramAggregation(list(sig.buckets)),
        )
        for sig in _EXPLICIT
    ]
    for sig in _EXPONENTIAL:
        aggregation = (
            ExponentialBucketHistogramAggregation(
                max_size=s.EXPONENTIAL_MAX_BUCKETS, max_scale=s.EXPONENTIAL_SCALE
            )
            if exponential
            else DropAggregation()
        )
        views.append(View(instrument_name=sig.name, aggregation=aggregation))
    return views


def _duration(rng: random.Random, distribution: str) -> float:
    if distribution == "heavy" and rng.random() < 0.03:
        return 0.8 * rng.paretovariate(1.5)  # the tail: long generations, retries
    return rng.lognormvariate(-1.2, 0.45)


class _Recorder:
    """The instruments of one MeterProvider."""

    def __init__(self, provider: MeterProvider, limit: float) -> None:
        meter = provider.get_meter("gemini_slo.lab.sdk_app")
        self.calls = meter.create_counter(s.CALLS.name, unit=s.CALLS.unit)
        self.tokens = meter.create_counter(s.TOKENS.name, unit=s.TOKENS.unit)
        self.cost = meter.create_counter(s.COST.name, unit=s.COST.unit)
        self.in_flight = meter.create_up_down_counter(
            s.REQUESTS_IN_FLIGHT.name, unit=s.REQUESTS_IN_FLIGHT.unit
        )
        self.hist = {
            sig.name: meter.create_histogram(sig.name, unit=sig.unit)
            for sig in (*_EXPLICIT, *_EXPONENTIAL)
        }
        self.limits: dict[tuple[str, str], float] = {}
        self._limit = limit

        def observe(_: CallbackOptions) -> list[Observation]:
            return [
                Observation(value, {s.ATTR_WORKLOAD: w, s.ATTR_MODE: m})
                for (w, m), value in self.limits.items()
            ]

        meter.create_observable_gauge(
            s.CONCURRENCY_LIMIT.name, callbacks=[observe], unit=s.CONCURRENCY_LIMIT.unit
        )

    def every_signal(self, provider: MeterProvider) -> None:
        """Record each signal of the contract once, with every attribute it declares."""
        meter = provider.get_meter("gemini_slo.lab.sdk_app.contract")
        for sig in s.INSTRUMENTATION_SIGNALS:
            attrs = {a: "x" for a in sig.attributes}
            attrs[s.ATTR_WORKLOAD] = "contract"
            if s.ATTR_MODE in attrs:
                attrs[s.ATTR_MODE] = next(iter(sorted(m.value for m in sig.modes)))
            name = sig.name
            if sig.kind is s.Kind.COUNTER:
                counter = meter.create_counter(name, unit=sig.unit)
                counter.add(1, attrs)
                if sig.optional_attributes:
                    counter.add(1, {**attrs, **{a: "x" for a in sig.optional_attributes}})
            elif sig.kind is s.Kind.UP_DOWN_COUNTER:
                meter.create_up_down_counter(name, unit=sig.unit).add(1, attrs)
            elif sig.kind is s.Kind.GAUGE:
                gauge_attrs = dict(attrs)

                def observe(
                    _: CallbackOptions, a: dict[str, str] = gauge_attrs
                ) -> list[Observation]:
                    return [Observation(4.0, a)]

                meter.create_observable_gauge(name, callbacks=[observe], unit=sig.unit)
            else:
                histogram = meter.create_histogram(name, unit=sig.unit)
                histogram.record(0.5, attrs)
                if sig.optional_attributes:
                    histogram.record(0.5, {**attrs, **{a: "x" for a in sig.optional_attributes}})

    def call(self, attrs: dict[str, str], duration: float, outcome: str) -> None:
        key = (attrs[s.ATTR_WORKLOAD], attrs[s.ATTR_MODE])
        self.limits[key] = self._limit
        self.in_flight.add(1, attrs)
        self.calls.add(1, {**attrs, s.ATTR_OUTCOME: outcome})
        if outcome == "timeout":
            failed = {**attrs, s.ATTR_ERROR_TYPE: "TimeoutError"}
            self.hist[s.OPERATION_DURATION.name].record(duration, failed)
            self.hist[s.OPERATION_DURATION_EXPONENTIAL.name].record(duration, failed)
        else:
            self.hist[s.OPERATION_DURATION.name].record(duration, attrs)
            self.hist[s.OPERATION_DURATION_EXPONENTIAL.name].record(duration, attrs)
            ttft = duration * 0.3
            self.hist[s.TIME_TO_FIRST_CHUNK.name].record(ttft, attrs)
            self.hist[s.TIME_TO_FIRST_CHUNK_EXPONENTIAL.name].record(ttft, attrs)
            for token_type, n in (("input", 200), ("output", 100)):
                self.tokens.add(n, {**attrs, s.ATTR_TOKEN_TYPE: token_type})
                self.hist[s.TOKEN_USAGE.name].record(n, {**attrs, s.ATTR_TOKEN_TYPE: token_type})
            self.cost.add(0.0003, attrs)
        self.in_flight.add(-1, attrs)


def main(argv: list[str]) -> int:
    """Record, export, optionally linger; see the module docstring."""
    cfg: dict[str, Any] = json.loads(argv[0]) if argv else {}
    rng = random.Random(cfg.get("seed", 1))
    resource = Resource.create(
        {
            s.RESOURCE_SERVICE_NAME: cfg.get("service", "sdk-app"),
            s.RESOURCE_SERVICE_INSTANCE: cfg.get("instance", "instance-1"),
        }
    )
    temporality: dict[type, AggregationTemporality] = {}
    if cfg.get("delta"):
        temporality = {
            kind: AggregationTemporality.DELTA for kind in (Counter, Histogram, ObservableCounter)
        }
        temporality[UpDownCounter] = AggregationTemporality.CUMULATIVE
        temporality[ObservableUpDownCounter] = AggregationTemporality.CUMULATIVE
        temporality[ObservableGauge] = AggregationTemporality.CUMULATIVE
    headers = {"Authorization": f"Bearer {cfg['token']}"} if cfg.get("token") else None
    exporter_class: Any = OTLPMetricExporter
    if cfg.get("protocol") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter as GrpcExporter,
        )

        exporter_class = GrpcExporter
    exporter = exporter_class(
        endpoint=cfg.get("endpoint", "http://127.0.0.1:4318/v1/metrics"),
        preferred_temporality=temporality or None,
        headers=headers,
    )
    interval_ms = float(cfg.get("export_interval", 3600)) * 1000
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=interval_ms)
    provider = MeterProvider(resource=resource, metric_readers=[reader], views=_views(True))
    recorders = [_Recorder(provider, float(cfg.get("limit", 16)))]
    prom_provider = None
    prom_reader: MetricReader | None = None
    if cfg.get("prometheus"):
        from opentelemetry.exporter.prometheus import PrometheusMetricReader

        prom_reader = PrometheusMetricReader()
        prom_provider = MeterProvider(
            resource=resource, metric_readers=[prom_reader], views=_views(False)
        )
        recorders.append(_Recorder(prom_provider, float(cfg.get("limit", 16))))
    if cfg.get("every_signal"):
        recorders[0].every_signal(provider)
        if prom_provider is not None:
            recorders[-1].every_signal(prom_provider)
    models = [
        f"gemini-2.5-flash-{i}" if i else "gemini-2.5-flash" for i in range(cfg.get("models", 1))
    ]
    base = {
        s.ATTR_WORKLOAD: cfg.get("workload", "chat"),
        s.ATTR_MODE: cfg.get("mode", "latency"),
        s.ATTR_OPERATION: s.OPERATION_GENERATE,
        s.ATTR_PROVIDER: s.PROVIDER_GEMINI,
    }
    attrs = [{**base, s.ATTR_REQUEST_MODEL: m} for m in models]
    durations: list[float] = []
    timeout_every = int(cfg.get("timeout_every", 0))
    timings: list[float] = []
    if cfg.get("warmup"):
        for i in range(int(cfg["warmup"])):
            for recorder in recorders:
                recorder.call(attrs[i % len(attrs)], _duration(rng, "lognormal"), "ok")
        reader.force_flush()
        time.sleep(float(cfg.get("warmup_pause", 0)))
    for _ in range(int(cfg.get("rounds", 1))):
        for i in range(int(cfg.get("calls", 10))):
            d = _duration(rng, cfg.get("distribution", "lognormal"))
            outcome = "timeout" if timeout_every and i % timeout_every == 0 else "ok"
            if outcome == "ok":
                durations.append(d)
            for recorder in recorders:
                recorder.call(attrs[i % len(attrs)], d, outcome)
        started = time.perf_counter()
        reader.force_flush()
        timings.append(time.perf_counter() - started)
    if cfg.get("durations_file"):
        with open(cfg["durations_file"], "w", encoding="utf-8") as f:
            f.write("\n".join(repr(d) for d in durations))
    if cfg.get("linger"):
        time.sleep(float(cfg["linger"]))
    if prom_reader is not None:
        from prometheus_client import REGISTRY, generate_latest

        sys.stdout.write(generate_latest(REGISTRY).decode())
    if cfg.get("bench"):
        sys.stdout.write(json.dumps({"export_seconds": timings}) + "\n")
    provider.shutdown()
    if prom_provider is not None:
        prom_provider.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
