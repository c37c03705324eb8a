"""Run a real agent inside a test, a benchmark or the demo.

::

    from gemini_slo.agent.testing import running_agent

    with running_agent() as agent:                  # free 127.0.0.1 ports, example spec
        exporter = OTLPMetricExporter(endpoint=f"{agent.otlp_url}/v1/metrics")
        ...
        text = agent.scrape()                       # GET /metrics as text
        status = agent.slo()                        # GET /api/slo as a dict

``running_agent(spec=None, token=None, **options)`` starts the agent in a background thread
with its own event loop and stops it (answering what is in flight) when the block ends.
``spec`` is an :class:`~gemini_slo.contract.spec.SloSpec`, a path to a slo.yaml, or None for
the packaged example. ``options`` are :class:`~gemini_slo.agent.server.AgentConfig`
fields (``max_body_bytes``, ``snapshot_interval``, ``header_timeout``, ``state_file``, ...),
the :class:`~gemini_slo.agent.otlp_decode.RequestLimits` fields (``max_decompressed_bytes``,
``max_points``, ...) and the :class:`~gemini_slo.agent.store.StoreLimits` fields
(``stale_after``, ``max_series_per_metric``, ...). The handle also exposes the in-process ``store`` for
assertions that the HTTP surface cannot make.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gzip
import json
import math
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gemini_slo.agent.otlp_decode import RequestLimits
from gemini_slo.agent.server import Agent, AgentConfig
from gemini_slo.agent.store import Store, StoreLimits
from gemini_slo.contract import signals
from gemini_slo.contract.spec import SloSpec, default_spec_path, load_spec
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1 import resource_pb2

_LIMIT_FIELDS = {f.name for f in dataclasses.fields(StoreLimits)}
_REQUEST_FIELDS = {f.name for f in dataclasses.fields(RequestLimits)}
_CONFIG_FIELDS = {f.name for f in dataclasses.fields(AgentConfig)}


class AgentHandle:
    """A running agent: its URLs, a few helpers, and :meth:`stop`."""

    def __init__(self, agent: Agent, loop: asyncio.AbstractEventLoop, thread: threading.Thread):
        self.agent = agent
        self._loop = loop
        self._thread = thread
        self.otlp_url = f"http://{agent.config.otlp_host}:{agent.otlp_port}"
        """Base URL of the OTLP receiver; the exporter's endpoint is ``otlp_url + "/v1/metrics"``."""
        self.metrics_url = f"http://{agent.config.metrics_host}:{agent.metrics_port}/metrics"
        self.api_url = f"http://{agent.config.metrics_host}:{agent.metrics_port}/api/slo"
        self.base_url = f"http://{agent.config.metrics_host}:{agent.metrics_port}"
        self.token = agent.config.token
        self._stopped = False

    @property
    def store(self) -> Store:
        """The agent's series store (read it under ``store.lock``)."""
        return self.agent.store

    def _get(self, url: str, timeout: float) -> bytes:
        request = urllib.request.Request(url)
        if self.token is not None:
            request.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body: bytes = response.read()
            return body

    def scrape(self, timeout: float = 10.0) -> str:
        """GET /metrics (with the token when one is set) and return the text."""
        return self._get(self.metrics_url, timeout).decode()

    def slo(self, timeout: float = 10.0) -> dict[str, Any]:
        """GET /api/slo as a dict."""
        result: dict[str, Any] = json.loads(self._get(self.api_url, timeout))
        return result

    def tick(self) -> None:
        """Take a window snapshot now if one is due (tests with short intervals)."""
        with self.agent.store.lock:
            self.agent.windows.tick()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the agent (idempotent): answer in-flight requests, close, join the thread."""
        if self._stopped:
            return
        self._stopped = True
        future = asyncio.run_coroutine_threadsafe(self.agent.stop(), self._loop)
        try:
            future.result(timeout)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)


def _resolve_spec(spec: SloSpec | str | Path | None) -> SloSpec:
    if isinstance(spec, SloSpec):
        return spec
    return load_spec(spec if spec is not None else default_spec_path())


def start_agent(
    spec: SloSpec | str | Path | None = None, token: str | None = None, **options: Any
) -> AgentHandle:
    """Start an agent in a background thread and return its handle (call ``stop()``)."""
    unknown = set(options) - _LIMIT_FIELDS - _REQUEST_FIELDS - _CONFIG_FIELDS
    if unknown:
        raise TypeError(f"unknown agent options: {', '.join(sorted(unknown))}")
    limits = StoreLimits(**{k: v for k, v in options.items() if k in _LIMIT_FIELDS})
    requests = RequestLimits(**{k: v for k, v in options.items() if k in _REQUEST_FIELDS})
    config_options = {k: v for k, v in options.items() if k in _CONFIG_FIELDS}
    config_options.setdefault("otlp_port", 0)
    config_options.setdefault("metrics_port", 0)
    config = AgentConfig(token=token, limits=limits, requests=requests, **config_options)
    agent = Agent(config, _resolve_spec(spec))
    loop = asyncio.new_event_loop()
    started = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(agent.start())
        except BaseException as exc:  # reported to the caller below
            failure.append(exc)
            started.set()
            loop.close()
            return
        started.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=run, name="gemini-slo-agent", daemon=True)
    thread.start()
    started.wait(30)
    if failure:
        raise failure[0]
    return AgentHandle(agent, loop, thread)


@contextlib.contextmanager
def running_agent(
    spec: SloSpec | str | Path | None = None, token: str | None = None, **options: Any
) -> Iterator[AgentHandle]:
    """Context manager: an agent on free 127.0.0.1 ports for the duration of the block."""
    handle = start_agent(spec, token, **options)
    try:
        yield handle
    finally:
        handle.stop()


# ---- OTLP request builders (hand-built payloads for tests of the store and the server) ----


def _attributes(attributes: dict[str, str] | None) -> list[common_pb2.KeyValue]:
    return [
        common_pb2.KeyValue(key=k, value=common_pb2.AnyValue(string_value=v))
        for k, v in (attributes or {}).items()
    ]


def _temporality(delta: bool) -> metrics_pb2.AggregationTemporality.ValueType:
    return (
        metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
        if delta
        else metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
    )


def sum_metric(
    name: str,
    points: list[tuple[dict[str, str], float]],
    *,
    unit: str = "{call}",
    monotonic: bool = True,
    delta: bool = False,
    start: int = 1,
    time_: int = 2,
) -> metrics_pb2.Metric:
    """A Sum metric with one NumberDataPoint per ``(attributes, value)``."""
    temporality = _temporality(delta)
    return metrics_pb2.Metric(
        name=name,
        unit=unit,
        sum=metrics_pb2.Sum(
            aggregation_temporality=temporality,
            is_monotonic=monotonic,
            data_points=[
                metrics_pb2.NumberDataPoint(
                    attributes=_attributes(attrs),
                    start_time_unix_nano=start,
                    time_unix_nano=time_,
                    as_double=value,
                )
                for attrs, value in points
            ],
        ),
    )


def gauge_metric(
    name: str,
    points: list[tuple[dict[str, str], float]],
    *,
    unit: str = "{request}",
    time_: int = 2,
) -> metrics_pb2.Metric:
    """A Gauge metric with one NumberDataPoint per ``(attributes, value)``."""
    return metrics_pb2.Metric(
        name=name,
        unit=unit,
        gauge=metrics_pb2.Gauge(
            data_points=[
                metrics_pb2.NumberDataPoint(
                    attributes=_attributes(attrs), time_unix_nano=time_, as_double=value
                )
                for attrs, value in points
            ]
        ),
    )


def histogram_metric(
    name: str,
    attributes: dict[str, str],
    bounds: list[float],
    counts: list[int],
    total: float,
    *,
    unit: str = "s",
    delta: bool = False,
    start: int = 1,
    time_: int = 2,
    count: int | None = None,
) -> metrics_pb2.Metric:
    """A Histogram metric with one point (``count`` defaults to ``sum(counts)``)."""
    temporality = _temporality(delta)
    return metrics_pb2.Metric(
        name=name,
        unit=unit,
        histogram=metrics_pb2.Histogram(
            aggregation_temporality=temporality,
            data_points=[
                metrics_pb2.HistogramDataPoint(
                    attributes=_attributes(attributes),
                    start_time_unix_nano=start,
                    time_unix_nano=time_,
                    count=sum(counts) if count is None else count,
                    sum=total,
                    bucket_counts=counts,
                    explicit_bounds=bounds,
                )
            ],
        ),
    )


def exponential_metric(
    name: str,
    attributes: dict[str, str],
    values: list[float],
    *,
    scale: int = 5,
    unit: str = "s",
    delta: bool = False,
    start: int = 1,
    time_: int = 2,
) -> metrics_pb2.Metric:
    """An ExponentialHistogram metric with one point holding ``values`` (all > 0)."""
    indexes = [math.ceil(math.log2(v) * 2**scale) - 1 for v in values]
    offset = min(indexes) if indexes else 0
    counts = [0] * ((max(indexes) - offset + 1) if indexes else 0)
    for i in indexes:
        counts[i - offset] += 1
    temporality = _temporality(delta)
    return metrics_pb2.Metric(
        name=name,
        unit=unit,
        exponential_histogram=metrics_pb2.ExponentialHistogram(
            aggregation_temporality=temporality,
            data_points=[
                metrics_pb2.ExponentialHistogramDataPoint(
                    attributes=_attributes(attributes),
                    start_time_unix_nano=start,
                    time_unix_nano=time_,
                    count=len(values),
                    sum=sum(values),
                    scale=scale,
                    positive=metrics_pb2.ExponentialHistogramDataPoint.Buckets(
                        offset=offset, bucket_counts=counts
                    ),
                )
            ],
        ),
    )


def otlp_request(
    metrics: list[metrics_pb2.Metric], *, instance: str = "instance-1", service: str = "app"
) -> ExportMetricsServiceRequest:
    """An ExportMetricsServiceRequest from one instance (resource service.instance.id)."""
    resource = resource_pb2.Resource(
        attributes=_attributes(
            {
                signals.RESOURCE_SERVICE_NAME: service,
                signals.RESOURCE_SERVICE_INSTANCE: instance,
            }
        )
    )
    return ExportMetricsServiceRequest(
        resource_metrics=[
            metrics_pb2.ResourceMetrics(
                resource=resource,
                scope_metrics=[
                    metrics_pb2.ScopeMetrics(
                        scope=common_pb2.InstrumentationScope(name="gemini_slo.test"),
                        metrics=metrics,
                    )
                ],
            )
        ]
    )


def post_otlp(
    url: str,
    body: bytes,
    *,
    content_type: str = "application/x-protobuf",
    gzip_body: bool = False,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, bytes, dict[str, str]]:
    """POST a body to ``url`` (an agent's ``otlp_url + "/v1/metrics"``); never raises on 4xx/5xx.

    Returns ``(status, body, headers)``.
    """
    all_headers = {"Content-Type": content_type, **(headers or {})}
    if gzip_body:
        body = gzip.compress(body)
        all_headers["Content-Encoding"] = "gzip"
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, headers=all_headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)
