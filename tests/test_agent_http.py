"""The agent's HTTP surface: OTLP/HTTP responses, encodings, limits, auth, health, promtool.

Each test runs a real agent (gemini_slo.agent.testing.running_agent) on free 127.0.0.1
ports and talks to it over HTTP, as exporters and Prometheus do.
"""

from __future__ import annotations

import gzip
import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from gemini_slo.agent.testing import (
    AgentHandle,
    histogram_metric,
    otlp_request,
    post_otlp,
    running_agent,
    sum_metric,
)
from gemini_slo.contract import agent_series, signals
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from prometheus_client.parser import text_string_to_metric_families

ATTRS = {signals.ATTR_WORKLOAD: "chat", signals.ATTR_MODE: "latency"}
CALLS = signals.CALLS.name
CALLS_PROM = signals.CALLS.prometheus


@pytest.fixture(scope="module")
def agent() -> Iterator[AgentHandle]:
    with running_agent(max_body_bytes=64 * 1024, max_decompressed_bytes=256 * 1024) as handle:
        yield handle


def url(agent: AgentHandle) -> str:
    return agent.otlp_url + "/v1/metrics"


def calls_total(agent: AgentHandle, workload: str) -> float | None:
    for family in text_string_to_metric_families(agent.scrape()):
        for sample in family.samples:
            if sample.name == CALLS_PROM and sample.labels.get("gemini_slo_workload") == workload:
                return float(sample.value)
    return None


def test_protobuf_export_is_accepted(agent: AgentHandle) -> None:
    """A protobuf export answers 200 with an empty ExportMetricsServiceResponse."""
    body = otlp_request([sum_metric(CALLS, [({**ATTRS, signals.ATTR_WORKLOAD: "pb"}, 3)])])
    status, payload, headers = post_otlp(url(agent), body.SerializeToString())
    assert status == 200
    assert headers["Content-Type"] == "application/x-protobuf"
    response = ExportMetricsServiceResponse.FromString(payload)
    assert not response.HasField("partial_success")
    assert calls_total(agent, "pb") == 3


def test_json_export_with_otlp_json_specifics(agent: AgentHandle) -> None:
    """OTLP/JSON: camelCase, enums as integers, int64 as strings; answered in JSON."""
    payload = {
        "resourceMetrics": [
            {
                "resource": {
                    "attributes": [{"key": "service.instance.id", "value": {"stringValue": "j1"}}]
                },
                "scopeMetrics": [
                    {
                        "scope": {"name": "json-test"},
                        "metrics": [
                            {
                                "name": CALLS,
                                "unit": "{call}",
                                "sum": {
                                    "aggregationTemporality": 2,
                                    "isMonotonic": True,
                                    "dataPoints": [
                                        {
                                            "attributes": [
                                                {
                                                    "key": signals.ATTR_WORKLOAD,
                                                    "value": {"stringValue": "json"},
                                                }
                                            ],
                                            "startTimeUnixNano": "1700000000000000000",
                                            "timeUnixNano": "1700000001000000000",
                                            "asInt": "42",
                                            "exemplars": [
                                                {
                                                    "timeUnixNano": "1700000001000000000",
                                                    "asDouble": 1.0,
                                                    "spanId": "eee19b7ec3c1b174",
                                                    "traceId": "5b8efff798038103d269b633813fc60c",
                                                }
                                            ],
                                        }
                                    ],
                                },
                            }
                        ],
                    }
                ],
            }
        ]
    }
    status, body, headers = post_otlp(
        url(agent), json.dumps(payload).encode(), content_type="application/json"
    )
    assert status == 200, body
    assert headers["Content-Type"].startswith("application/json")
    json_format.Parse(body, ExportMetricsServiceResponse())
    assert calls_total(agent, "json") == 42


def test_gzip_protobuf_and_json(agent: AgentHandle) -> None:
    """Content-Encoding: gzip works for both encodings."""
    request = otlp_request([sum_metric(CALLS, [({**ATTRS, signals.ATTR_WORKLOAD: "gz"}, 2)])])
    assert post_otlp(url(agent), request.SerializeToString(), gzip_body=True)[0] == 200
    request = otlp_request(
        [sum_metric(CALLS, [({**ATTRS, signals.ATTR_WORKLOAD: "gz"}, 2)])], instance="other"
    )
    text = json_format.MessageToJson(request).encode()
    assert post_otlp(url(agent), text, content_type="application/json", gzip_body=True)[0] == 200
    assert calls_total(agent, "gz") == 4


def test_partial_success_reports_rejected_points(agent: AgentHandle) -> None:
    """Invalid points are rejected with partial_success; the valid ones are kept."""
    attrs = {**ATTRS, signals.ATTR_WORKLOAD: "partial"}
    request = otlp_request(
        [
            sum_metric(CALLS, [(attrs, 7)]),
            sum_metric(CALLS, [({**attrs, "x": "1"}, float("nan"))]),
            histogram_metric(signals.OPERATION_DURATION.name, attrs, [1.0], [1], 1.0),
        ]
    )
    status, payload, _ = post_otlp(url(agent), request.SerializeToString())
    assert status == 200
    response = ExportMetricsServiceResponse.FromString(payload)
    assert response.partial_success.rejected_data_points == 2
    assert "non-finite" in response.partial_success.error_message
    assert "bucket counts" in response.partial_success.error_message
    assert calls_total(agent, "partial") == 7


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"\x0a\xff\xff\xff\xff\x0f", "application/x-protobuf", 400),  # truncated
        (b"{not json", "application/json", 400),
        (b'{"resourceMetrics": 5}', "application/json", 400),
        (b"x", "text/plain", 415),
        (b"x", "", 415),
    ],
)
def test_bad_bodies_get_4xx_and_are_counted(
    agent: AgentHandle, body: bytes, content_type: str, status: int
) -> None:
    """Undecodable bodies: 400 with a google.rpc.Status; wrong content type: 415."""
    before = dict(agent.store.self_metrics.rejected_requests)
    got, payload, _ = post_otlp(url(agent), body, content_type=content_type)
    assert got == status
    if status == 400 and content_type == "application/x-protobuf":
        assert "invalid protobuf" in status_pb2.Status.FromString(payload).message
    if status == 400 and content_type == "application/json":
        assert "invalid JSON" in json.loads(payload)["message"]
    after = agent.store.self_metrics.rejected_requests
    assert sum(after.values()) == sum(before.values()) + 1


def test_oversized_body_is_413(agent: AgentHandle) -> None:
    """A body over max_body_bytes is refused before it is decoded."""
    status, _, _ = post_otlp(url(agent), b"\x00" * (65 * 1024))
    assert status == 413
    assert agent.store.self_metrics.rejected_requests["too_large"] >= 1


def test_gzip_bomb_is_413(agent: AgentHandle) -> None:
    """A small gzip body that inflates past max_decompressed_bytes is refused."""
    bomb = gzip.compress(b"\x00" * (10 * 1024 * 1024))
    assert len(bomb) < 64 * 1024
    status, _, _ = post_otlp(
        url(agent),
        bomb,
        headers={"Content-Encoding": "gzip"},
        content_type="application/x-protobuf",
    )
    assert status == 413
    assert agent.store.self_metrics.rejected_requests["decompressed_too_large"] >= 1


def test_truncated_gzip_and_unknown_encoding(agent: AgentHandle) -> None:
    """A cut gzip stream is a 400; an unknown Content-Encoding a 415."""
    body = gzip.compress(otlp_request([sum_metric(CALLS, [(ATTRS, 1)])]).SerializeToString())
    status, _, _ = post_otlp(
        url(agent), body[: len(body) // 2], headers={"Content-Encoding": "gzip"}
    )
    assert status == 400
    status, _, _ = post_otlp(url(agent), b"x", headers={"Content-Encoding": "br"})
    assert status == 415


def test_body_cut_off_mid_request_does_not_hurt(agent: AgentHandle) -> None:
    """A client that announces more than it sends and hangs up leaves the agent serving."""
    host, port = agent.otlp_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/metrics HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
            b"Content-Length: 1000\r\n\r\n" + b"\x0a\x05abc"
        )
    assert urllib.request.urlopen(agent.base_url + "/healthz", timeout=5).status == 200
    request = otlp_request([sum_metric(CALLS, [({**ATTRS, signals.ATTR_WORKLOAD: "after"}, 1)])])
    assert post_otlp(url(agent), request.SerializeToString())[0] == 200


def test_health_endpoints(agent: AgentHandle) -> None:
    """/healthz and /readyz answer 200 while running."""
    for path in ("/healthz", "/readyz"):
        assert urllib.request.urlopen(agent.base_url + path, timeout=5).status == 200
        assert urllib.request.urlopen(agent.otlp_url + path, timeout=5).status == 200


def test_self_metrics_are_exposed(agent: AgentHandle) -> None:
    """The agent's own health is on /metrics under gemini_slo_agent_*."""
    post_otlp(url(agent), otlp_request([sum_metric(CALLS, [(ATTRS, 1)])]).SerializeToString())
    agent.scrape()
    names = {s.name for f in text_string_to_metric_families(agent.scrape()) for s in f.samples}
    for name in (
        "gemini_slo_agent_received_requests_total",
        "gemini_slo_agent_received_points_total",
        "gemini_slo_agent_rejected_requests_total",
        "gemini_slo_agent_series",
        "gemini_slo_agent_scrape_duration_seconds_count",
    ):
        assert name in names


def test_objective_series_from_the_spec(agent: AgentHandle) -> None:
    """Every objective of the spec is exposed as target and threshold series."""
    samples = [s for f in text_string_to_metric_families(agent.scrape()) for s in f.samples]
    targets = {
        (s.labels["gemini_slo_workload"], s.labels["objective"]): s.value
        for s in samples
        if s.name == agent_series.AGENT_OBJECTIVE_TARGET
    }
    assert targets[("chat", "latency_p95")] == 0.95
    thresholds = {
        (s.labels["gemini_slo_workload"], s.labels["objective"]): s.value
        for s in samples
        if s.name == agent_series.AGENT_OBJECTIVE_THRESHOLD
    }
    assert thresholds[("chat", "latency_p95")] == 0.5
    assert thresholds[("batch", "tokens_per_second")] == 10000


def test_api_slo_lists_every_workload(agent: AgentHandle) -> None:
    """GET /api/slo: one entry per workload with its mode and objectives."""
    status = agent.slo()
    by_name = {w["name"]: w for w in status["workloads"]}
    assert by_name["chat"]["mode"] == "latency"
    assert by_name["batch"]["mode"] == "throughput"
    assert "latency_seconds" in by_name["chat"]
    assert "tokens_per_second" in by_name["batch"]
    assert {o["name"] for o in by_name["chat"]["objectives"]} >= {"latency_p95", "availability"}


def test_promtool_check_metrics_on_a_real_scrape(agent: AgentHandle, require_binary) -> None:  # type: ignore[no-untyped-def]
    """`promtool check metrics` finds nothing to complain about in a scrape with every kind."""
    promtool = require_binary("promtool")
    cfg = {"endpoint": url(agent), "calls": 40, "timeout_every": 10, "instance": "promtool"}
    subprocess.run(
        [sys.executable, "-m", "gemini_slo.lab.sdk_app", json.dumps(cfg)],
        check=True,
        timeout=60,
        capture_output=True,
    )
    text = agent.scrape()
    assert agent_series.AGENT_DURATION_PERCENTILE in text
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == "", result.stderr


def test_auth_on() -> None:
    """With a token: ingest, /metrics and /api/slo need it; health checks do not."""
    with running_agent(token="s3cret") as agent:
        body = otlp_request([sum_metric(CALLS, [(ATTRS, 1)])]).SerializeToString()
        assert post_otlp(url(agent), body)[0] == 401
        assert post_otlp(url(agent), body, token="wrong")[0] == 401
        assert post_otlp(url(agent), body, content_type="text/plain")[0] == 401
        assert post_otlp(url(agent), body, token="s3cret")[0] == 200
        for endpoint in (agent.metrics_url, agent.api_url):
            with pytest.raises(urllib.error.HTTPError) as info:
                urllib.request.urlopen(endpoint, timeout=5)
            assert info.value.code == 401
        assert CALLS_PROM in agent.scrape()  # the handle sends the token
        assert urllib.request.urlopen(agent.base_url + "/healthz", timeout=5).status == 200
        assert agent.store.self_metrics.rejected_requests["unauthorized"] == 3


def test_auth_off_accepts_anyone(agent: AgentHandle) -> None:
    """Without a token file, no Authorization header is needed (bind 127.0.0.1 then)."""
    assert agent.token is None
    assert urllib.request.urlopen(agent.metrics_url, timeout=5).status == 200


def test_a_burst_of_label_values_over_http() -> None:
    """10,000 new label values in one export: partial success saying so, memory bounded.

    The workload (chat) is in the spec: its label sets fill its reserve, then the shared
    pool; the rest fold into chat's overflow series, whose table holds 50 label sets."""
    with running_agent(max_series_per_metric=50) as agent:
        budget = agent.store.cardinality
        room = budget.reserve + budget.pool
        assert 0 < budget.reserve < room < 50  # two spec workloads reserve, the rest share
        points = [({**ATTRS, "request_id": f"r{i}"}, 1.0) for i in range(10_000)]
        body = otlp_request([sum_metric(CALLS, points)]).SerializeToString()
        status, payload, _ = post_otlp(url(agent), body)
        assert status == 200
        partial = ExportMetricsServiceResponse.FromString(payload).partial_success
        assert partial.rejected_data_points == 10_000 - room - 50
        assert "cardinality limit" in partial.error_message
        assert "50 series per metric" in partial.error_message
        assert "overflow" in partial.error_message
        assert agent.store.series_count() == room + 1
        text = agent.scrape()
        assert 'otel_metric_overflow="true"' in text
        assert "gemini_slo_agent_overflow_points_total" in text
