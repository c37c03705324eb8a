"""OTLP/gRPC into the agent: the real gRPC exporter, the HTTP path's limits and answers.

The agent runs in the test process with a gRPC listener on a free port; apps are the
instrumentation (``OTEL_EXPORTER_OTLP_PROTOCOL=grpc``, the SDK's real gRPC exporter) or a
raw gRPC channel sending bytes, for what no exporter sends (garbage, oversized messages).
"""

from __future__ import annotations

import gzip
import logging
import math
import sys
import urllib.request
from collections.abc import Iterator

import grpc
import pytest
from gemini_slo.agent.grpc_server import SERVICE
from gemini_slo.agent.testing import (
    AgentHandle,
    otlp_request,
    running_agent,
    sum_metric,
)
from gemini_slo.cli.agent import parse_optional_address
from gemini_slo.contract import agent_series
from gemini_slo.contract import signals as S
from gemini_slo.instrumentation import _export_protocol, configure, flush, observe, testing
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2_grpc import MetricsServiceStub
from prometheus_client.parser import text_string_to_metric_families

TOKEN = "grpc-secret-token"
CHAT = {S.ATTR_WORKLOAD: "chat", S.ATTR_MODE: "latency", S.ATTR_REQUEST_MODEL: "m"}


def _total(agent: AgentHandle, name: str, **labels: str) -> float:
    out = 0.0
    for family in text_string_to_metric_families(agent.scrape()):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                out += sample.value
    return out


@pytest.fixture
def channel_and_agent() -> Iterator[tuple[grpc.Channel, AgentHandle]]:
    """An agent with a token, small limits and a gRPC listener, and a channel to it."""
    with running_agent(token=TOKEN, grpc_port=0, max_body_bytes=20_000, max_points=50) as agent:
        with grpc.insecure_channel(f"127.0.0.1:{agent.agent.grpc_port}") as channel:
            yield channel, agent


def _raw(channel: grpc.Channel, body: bytes, token: str | None = TOKEN) -> bytes:
    export = channel.unary_unary(f"/{SERVICE}/Export")
    metadata = (("authorization", f"Bearer {token}"),) if token else None
    answer: bytes = export(body, metadata=metadata, timeout=10)
    return answer


def _code(channel: grpc.Channel, body: bytes, token: str | None = TOKEN) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        _raw(channel, body, token)
    code: grpc.StatusCode = info.value.code()
    return code


def _calls(n: float, instance: str = "i1") -> bytes:
    request = otlp_request([sum_metric(S.CALLS.name, [(CHAT, n)])], instance=instance)
    body: bytes = request.SerializeToString()
    return body


def test_instrumentation_exports_over_grpc(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_EXPORTER_OTLP_PROTOCOL=grpc: the instrumentation's export reaches the agent's
    gRPC listener through the real gRPC exporter; counts arrive exactly, labelled grpc."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    with running_agent(grpc_port=0) as agent, testing.capture():
        configure(endpoint=f"http://127.0.0.1:{agent.agent.grpc_port}", export_interval=60)

        @observe(workload="chat", model="gemini-2.5-flash")
        def ask() -> None:
            pass

        for _ in range(7):
            ask()
        assert flush()
        assert _total(agent, S.CALLS.prometheus, gemini_slo_workload="chat") == 7
        assert _total(agent, agent_series.RECEIVED_REQUESTS, encoding="grpc", outcome="ok") >= 1


def test_metrics_protocol_variable_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    """The metrics-specific variable overrides the general one; the default endpoint moves
    to gRPC's port 4317, an explicit one loses its /v1/metrics path."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "GRPC")
    assert _export_protocol.requested_protocol() == "grpc"
    assert _export_protocol.grpc_endpoint("http://127.0.0.1:4318/v1/metrics") == (
        "http://127.0.0.1:4317"
    )
    assert _export_protocol.grpc_endpoint("http://agent:9999/v1/metrics") == "http://agent:9999"
    exporter = _export_protocol.make_exporter("http://127.0.0.1:4318/v1/metrics", 1.0)
    assert type(exporter).__module__.startswith("opentelemetry.exporter.otlp.proto.grpc")
    exporter.shutdown()


def test_missing_grpc_extra_warns_once_and_uses_http(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Without opentelemetry-exporter-otlp-proto-grpc: one warning naming the extra, and the
    export stays on OTLP/HTTP (the app keeps its metrics)."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.grpc.metric_exporter", None)
    monkeypatch.setattr(_export_protocol, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="gemini_slo.instrumentation.export"):
        first = _export_protocol.make_exporter("http://127.0.0.1:4318/v1/metrics", 1.0)
        second = _export_protocol.make_exporter("http://127.0.0.1:4318/v1/metrics", 1.0)
    for exporter in (first, second):
        assert type(exporter).__module__.startswith("opentelemetry.exporter.otlp.proto.http")
    warnings = [r.getMessage() for r in caplog.records if "gemini-slo[grpc]" in r.getMessage()]
    assert len(warnings) == 1


def test_refusals_carry_the_http_paths_codes(
    channel_and_agent: tuple[grpc.Channel, AgentHandle],
) -> None:
    """No token: UNAUTHENTICATED; garbage: INVALID_ARGUMENT; over max_body_bytes or over
    max_points: RESOURCE_EXHAUSTED; and the agent keeps serving, counting each refusal."""
    channel, agent = channel_and_agent
    assert _code(channel, _calls(1), token=None) is grpc.StatusCode.UNAUTHENTICATED
    assert _code(channel, _calls(1), token="wrong") is grpc.StatusCode.UNAUTHENTICATED
    assert _code(channel, b"\xff\xff\xff\xff garbage") is grpc.StatusCode.INVALID_ARGUMENT
    huge = otlp_request([sum_metric(S.CALLS.name, [({**CHAT, "pad": "x" * 30_000}, 1)])])
    assert _code(channel, huge.SerializeToString()) is grpc.StatusCode.RESOURCE_EXHAUSTED
    many = otlp_request(
        [sum_metric(S.CALLS.name, [({**CHAT, S.ATTR_REQUEST_MODEL: str(i)}, 1) for i in range(60)])]
    )
    assert _code(channel, many.SerializeToString()) is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert _total(agent, S.CALLS.prometheus) == 0
    answer = ExportMetricsServiceResponse.FromString(_raw(channel, _calls(5)))
    assert not answer.HasField("partial_success")
    assert _total(agent, S.CALLS.prometheus) == 5
    for reason in ("unauthorized", "malformed", "too_many_points"):
        assert _total(agent, agent_series.REJECTED_REQUESTS, reason=reason) >= 1, reason
    with urllib.request.urlopen(agent.base_url + "/healthz", timeout=5) as response:
        assert response.status == 200


def test_partial_success_as_over_http(channel_and_agent: tuple[grpc.Channel, AgentHandle]) -> None:
    """A request with a bad point among good ones: accepted, and the answer's partial
    success counts the rejected point with the store's message, as OTLP/HTTP answers."""
    channel, agent = channel_and_agent
    request = otlp_request(
        [sum_metric(S.CALLS.name, [(CHAT, 3), ({**CHAT, S.ATTR_REQUEST_MODEL: "n"}, math.nan)])]
    )
    stub = MetricsServiceStub(channel)
    answer = stub.Export(request, metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=10)
    assert answer.partial_success.rejected_data_points == 1
    assert "non-finite" in answer.partial_success.error_message
    assert _total(agent, S.CALLS.prometheus) == 3


def test_cli_grpc_flag() -> None:
    """``--grpc off`` turns the listener off; HOST:PORT as for the other listeners."""
    assert parse_optional_address("off") is None
    assert parse_optional_address("0.0.0.0:4317") == ("0.0.0.0", 4317)
    assert parse_optional_address(":4317") == ("127.0.0.1", 4317)


def test_gzip_is_grpcs_own_and_the_limit_is_on_the_inflated_size(
    channel_and_agent: tuple[grpc.Channel, AgentHandle],
) -> None:
    """A gzip-compressed export is accepted; one that is small on the wire but inflates
    past max_body_bytes is RESOURCE_EXHAUSTED (a gzip bomb costs no more than the limit)."""
    channel, agent = channel_and_agent
    export = channel.unary_unary(f"/{SERVICE}/Export")
    metadata = (("authorization", f"Bearer {TOKEN}"),)
    export(_calls(4), metadata=metadata, timeout=10, compression=grpc.Compression.Gzip)
    assert _total(agent, S.CALLS.prometheus) == 4
    bomb = otlp_request([sum_metric(S.CALLS.name, [({**CHAT, "pad": "0" * 200_000}, 1)])])
    body = bomb.SerializeToString()
    assert len(gzip.compress(body)) < 20_000 < len(body)
    with pytest.raises(grpc.RpcError) as info:
        export(body, metadata=metadata, timeout=10, compression=grpc.Compression.Gzip)
    assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert _total(agent, S.CALLS.prometheus) == 4
