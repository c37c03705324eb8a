"""Export path 1: the registry as OTLP/HTTP metrics, with the OpenTelemetry SDK's own exporter.

Every ``interval`` seconds a daemon thread turns :meth:`Registry.collect` into the SDK's
``MetricsData`` (cumulative temporality, start time = the registry's) and hands it to the
real ``OTLPMetricExporter``. The state is cumulative, so nothing queues up while the agent
is down: memory stays bounded and the next successful export carries everything.

An agent that is down never reaches the app: the export fails in the background thread, the
failure is counted (``Registry.export_failures``) and logged at debug; the exporter's own
warnings for *our* exports are dropped (a filter keyed on a thread-local flag, so the app's
other exporters keep theirs). At exit the last export gets ``exit_timeout`` seconds, then
the interpreter goes on (the thread is a daemon).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from itertools import groupby
from operator import attrgetter
from typing import Any

from gemini_slo.contract import signals as S
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
        exit_timeout: float = 1.0,
    ) -> None:
        self.registry = registry
        self.endpoint = endpoint
        self.resource = resource
        self.interval = interval
        self.exit_timeout = exit_timeout
        # One export may take at most this long, retries included (the exporter's own
        # deadline): short, so that a dead agent costs the thread little and exit nothing.
        export_timeout = timeout if timeout is not None else min(max(interval, 0.5), 3.0)
        # OTLP/HTTP unless OTEL_EXPORTER_OTLP_(METRICS_)PROTOCOL=grpc (_export_protocol.py).
        self._exporter = make_exporter(endpoint, export_timeout, _FILTER)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._done = threading.Event()
        self.exports = 0
        self._thread = threading.Thread(
            target=self._run, name="gemini-slo-otlp-export", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                self.export_once()
            self.export_once()  # the last values, at shutdown
        finally:
            self._done.set()

    def export_once(self) -> bool:
        """Export the registry now (in this thread); True on success. Never raises."""
        with self._lock:
            _QUIET.active = True
            try:
                points = self.registry.collect()
                now = time.time_ns()
                data = to_metrics_data(points, self.resource, self.registry.start_time_ns, now)
                ok = self._exporter.export(data) is MetricExportResult.SUCCESS
            except Exception:
                _log.debug("gemini-slo: OTLP export to %s raised", self.endpoint, exc_info=True)
                ok = False
            finally:
                _QUIET.active = False
            self.exports += 1
            if not ok:
                self.registry.export_failures += 1
                _log.debug("gemini-slo: OTLP export to %s failed", self.endpoint)
            return ok

    def flush(self) -> bool:
        """Export now, from the calling thread (blocks up to the export timeout)."""
        return self.export_once()

    def shutdown(self) -> None:
        """Stop the loop after one last export, waiting at most ``exit_timeout`` seconds."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread.is_alive() and self._done.wait(self.exit_timeout):
            try:
                self._exporter.shutdown()
            except Exception:  # pragma: no cover - best effort
                _log.debug("gemini-slo: exporter shutdown failed", exc_info=True)
