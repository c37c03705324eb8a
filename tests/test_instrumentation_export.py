"""Export paths and configuration: OTLP/HTTP with the real exporter to a tiny local receiver
that decodes the protobuf, an unreachable agent, the app's own /metrics, configure() and the
per-call log."""

from __future__ import annotations

import gzip
import os
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import structlog
from gemini_slo.contract import signals as S
from gemini_slo.instrumentation import (
    _state,
    configure,
    flush,
    observe,
    pricing,
    shutdown,
    testing,
)
from gemini_slo.instrumentation.config import active_settings, prometheus_port, resolve
from google.genai import types
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from prometheus_client.parser import text_string_to_metric_families

FLASH = "gemini-2.5-flash"


def _response(output: int = 20) -> types.GenerateContentResponse:
    return testing.response(prompt=10, output=output, thoughts=4, text="secret answer")


class _Receiver:
    """A minimal OTLP/HTTP metrics receiver: keeps every decoded request."""

    def __init__(self) -> None:
        self.requests: list[ExportMetricsServiceRequest] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                message = ExportMetricsServiceRequest()
                message.ParseFromString(body)
                receiver.requests.append(message)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def metrics(self) -> dict[str, Any]:
        """name -> Metric of the last request."""
        last = self.requests[-1]
        return {
            m.name: m for rm in last.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
        }

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    """A local OTLP receiver."""
    r = _Receiver()
    yield r
    r.close()


@pytest.fixture(autouse=True)
def _clean_configuration() -> Iterator[None]:
    """Every test starts and ends unconfigured, with the default switches."""
    shutdown()
    yield
    shutdown()
    _state.log_calls = False
    _state.capture_content = False
    _state.enabled = True
    pricing.set_active_table(None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _attrs(point: Any) -> dict[str, str]:
    return {kv.key: kv.value.string_value for kv in point.attributes}


def test_otlp_export_with_the_real_exporter(receiver: _Receiver) -> None:
    """Names, attributes, data types and temporality as the agent will receive them."""
    with testing.capture():
        configure(
            service_name="svc",
            endpoint=receiver.url,
            export_interval=60,
            thresholds={"chat": [0.45]},
        )

        @observe(workload="chat", registry=None)
        def ask() -> types.GenerateContentResponse:
            return _response()

        @observe(workload="chat")
        def stream() -> Any:
            yield _response(8)
            yield _response(16)

        ask()
        list(stream())
        with observe(workload="batch", mode="throughput") as call:
            call.record_usage(prompt_tokens=100, output_tokens=50, model=FLASH)
        assert flush()
    assert receiver.requests
    request = receiver.requests[-1]
    resource = {
        kv.key: kv.value.string_value for kv in request.resource_metrics[0].resource.attributes
    }
    assert resource[S.RESOURCE_SERVICE_NAME] == "svc"
    assert resource[S.RESOURCE_SERVICE_INSTANCE]
    metrics = receiver.metrics()
    duration = metrics[S.OPERATION_DURATION.name]
    assert duration.WhichOneof("data") == "histogram"
    assert duration.histogram.aggregation_temporality == 2  # CUMULATIVE
    chat = [p for p in duration.histogram.data_points if _attrs(p)[S.ATTR_WORKLOAD] == "chat"]
    assert sum(p.count for p in chat) == 2
    assert 0.45 in chat[0].explicit_bounds
    assert set(_attrs(chat[0])) == set(S.CALL_ATTRIBUTES)
    batch = [p for p in duration.histogram.data_points if _attrs(p)[S.ATTR_WORKLOAD] == "batch"]
    assert list(batch[0].explicit_bounds) == list(S.THROUGHPUT_DURATION_BUCKETS)
    expo = metrics[S.OPERATION_DURATION_EXPONENTIAL.name]
    assert expo.WhichOneof("data") == "exponential_histogram"
    assert expo.exponential_histogram.data_points[0].scale == S.EXPONENTIAL_SCALE
    calls = metrics[S.CALLS.name]
    assert calls.sum.is_monotonic and calls.sum.aggregation_temporality == 2
    assert sum(p.as_int for p in calls.sum.data_points) == 3
    assert not metrics[S.REQUESTS_IN_FLIGHT.name].sum.is_monotonic
    tokens = {
        (_attrs(p)[S.ATTR_WORKLOAD], _attrs(p)[S.ATTR_TOKEN_TYPE]): p.as_int
        for p in metrics[S.TOKENS.name].sum.data_points
    }
    assert tokens[("chat", "output")] == 20 + 16 and tokens[("batch", "input")] == 100
    assert metrics[S.COST.name].sum.data_points[0].as_double > 0
    assert S.TIME_TO_FIRST_CHUNK_EXPONENTIAL.name in metrics
    assert S.CALL_TOKENS_PER_SECOND.name in metrics
    for metric in metrics.values():  # every name comes from the contract
        assert metric.name in {s.name for s in S.INSTRUMENTATION_SIGNALS}
        assert metric.unit == next(
            s.unit for s in S.INSTRUMENTATION_SIGNALS if s.name == metric.name
        )


def test_background_export_and_shutdown_flush(receiver: _Receiver) -> None:
    """The daemon thread exports every interval; shutdown sends the last values."""
    with testing.capture():
        configure(endpoint=receiver.url, export_interval=0.05)
        deadline = time.monotonic() + 5
        while len(receiver.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(receiver.requests) >= 2

        @observe(workload="late", model=FLASH)
        def ask() -> None:
            pass

        ask()
        shutdown()
    names = {
        _attrs(p).get(S.ATTR_WORKLOAD) for p in receiver.metrics()[S.CALLS.name].sum.data_points
    }
    assert "late" in names


def test_unreachable_agent_costs_the_app_nothing() -> None:
    """An agent on a closed port: calls neither fail nor slow down, failures are counted,
    and shutdown returns within its exit deadline (tests/test_instrumentation_exit.py has
    the deadline's own tests)."""
    with testing.capture() as rec:
        configure(
            endpoint=f"http://127.0.0.1:{_free_port()}", export_interval=0.02, exit_timeout=1.0
        )

        @observe(workload="chat", model=FLASH)
        def ask() -> types.GenerateContentResponse:
            return _response()

        started = time.perf_counter()
        for _ in range(2000):
            ask()
        elapsed = time.perf_counter() - started
        deadline = time.monotonic() + 5
        while rec.registry.export_failures == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert rec.registry.export_failures > 0
        assert rec.value(S.CALLS) == 2000
        started = time.monotonic()
        shutdown()
        assert time.monotonic() - started < 2.0
    assert elapsed < 2.0  # 2,000 calls: about 1 ms each would already be a regression


def test_prometheus_endpoint_scraped_and_parsed() -> None:
    """configure(prometheus_port=...) serves classic histograms under the contract's names."""
    with testing.capture():
        settings = configure(prometheus_port=0, thresholds={"chat": [0.45]})
        assert settings.endpoint is None  # no agent: no OTLP export

        @observe(workload="chat")
        def ask() -> types.GenerateContentResponse:
            return _response()

        ask()
        ask()
        port = prometheus_port()
        assert port
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    duration = families[S.OPERATION_DURATION.prometheus]
    assert duration.type == "histogram"
    count = next(s for s in duration.samples if s.name.endswith("_count"))
    assert count.value == 2
    assert set(count.labels) == set(S.OPERATION_DURATION.labels)
    assert any(s.labels.get("le") == "0.45" for s in duration.samples)
    calls = families[S.CALLS.prometheus.removesuffix("_total")]
    assert calls.type == "counter"
    assert (
        next(s for s in calls.samples if s.name == S.CALLS.prometheus).labels[S.LABEL_OUTCOME]
        == "ok"
    )
    assert S.OPERATION_DURATION_EXPONENTIAL.prometheus not in families
    assert families[S.REQUESTS_IN_FLIGHT.prometheus].type == "gauge"
    tokens = families[S.TOKENS.prometheus.removesuffix("_total")]
    assert {s.labels[S.LABEL_TOKEN_TYPE] for s in tokens.samples if s.name.endswith("_total")} == {
        t.value for t in S.TokenType
    }


def test_configure_is_idempotent_and_reconfigures(receiver: _Receiver) -> None:
    """Same settings: the same exporter; different settings: a new one."""
    first = configure(endpoint=receiver.url, export_interval=60)
    from gemini_slo.instrumentation import config

    runtime = config._runtime
    assert configure(endpoint=receiver.url, export_interval=60) == first
    assert config._runtime is runtime
    second = configure(endpoint=receiver.url, export_interval=30)
    assert second != first and config._runtime is not runtime
    assert active_settings() == second


def test_environment_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The environment fills in what the arguments leave out."""
    spec = Path(__file__).resolve().parent.parent / "contract" / "slo.yaml"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://agent:4318/")
    monkeypatch.setenv("GEMINI_SLO_EXPORT_INTERVAL", "2.5")
    monkeypatch.setenv("GEMINI_SLO_SPEC", str(spec))
    monkeypatch.setenv("GEMINI_SLO_LOG_CALLS", "true")
    monkeypatch.setenv("GEMINI_SLO_PROMETHEUS_PORT", "9464")
    settings = resolve()
    assert settings.service_name == "from-env"
    assert settings.endpoint == "http://agent:4318/v1/metrics"
    assert settings.export_interval == 2.5 and settings.spec == str(spec)
    assert settings.log_calls and not settings.capture_content
    assert settings.prometheus_port == 9464
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://other:1234/custom")
    assert resolve().endpoint == "http://other:1234/custom"
    assert resolve(endpoint="http://x:1").endpoint == "http://x:1/v1/metrics"
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT")
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
    assert resolve().endpoint is None  # prometheus port, no endpoint: no agent
    monkeypatch.delenv("GEMINI_SLO_PROMETHEUS_PORT")
    assert resolve().endpoint == "http://127.0.0.1:4318/v1/metrics"


def test_disabled_kill_switch() -> None:
    """GEMINI_SLO_DISABLED: decorators and patches pass straight through."""
    _state.enabled = False

    def plain() -> int:
        return 1

    assert observe()(plain) is plain


def test_per_call_log_off_by_default_and_without_content() -> None:
    """One structlog event per call when enabled; no text unless capture_content."""

    @observe(workload="chat")
    def ask() -> types.GenerateContentResponse:
        return _response()

    with testing.capture(), structlog.testing.capture_logs() as logs:
        ask()
        assert logs == []
        configure(otlp=False, log_calls=True)
        ask()
        configure(otlp=False, log_calls=True, capture_content=True)
        ask()
    assert len(logs) == 2
    event = logs[0]
    assert event["event"] == "gemini_slo.call"
    assert {"workload", "mode", "model", "outcome", "duration_s", "tokens", "cost_usd"} <= set(
        event
    )
    assert event["tokens"]["output"] == 20
    assert "secret answer" not in repr(event)
    assert logs[1]["response"] == "secret answer"
    assert not any("api_key" in repr(e).lower() for e in logs)


def test_pricing_override_via_configure(tmp_path: Path) -> None:
    """configure(pricing=FILE) changes the cost of later calls."""
    path = tmp_path / "p.yaml"
    path.write_text(
        "version: gemini-slo/pricing/v1\nmodels:\n  gemini-2.5-flash:\n    tiers:\n      - {input: '1', output: '1'}\n"
    )
    with testing.capture() as rec:
        configure(otlp=False, pricing=path)
        with observe(workload="chat") as call:
            call.record_usage(prompt_tokens=500_000, output_tokens=500_000, model=FLASH)
    assert rec.value(S.COST) == 1.0


def test_atexit_does_not_hang_on_a_dead_agent() -> None:
    """A process configured for a dead agent exits within its exit deadline, saying once
    that its call was not delivered."""
    import subprocess
    import sys

    code = (
        "from gemini_slo.instrumentation import configure, observe\n"
        f"configure(endpoint='http://127.0.0.1:{_free_port()}', export_interval=60)\n"
        "with observe(workload='chat', model='gemini-2.5-flash'):\n    pass\n"
    )
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "GEMINI_SLO_EXIT_TIMEOUT": "1"},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "1 call(s) were not delivered" in lines[0], result.stderr
    assert time.monotonic() - started < 10
