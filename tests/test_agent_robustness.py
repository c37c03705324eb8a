"""Regression tests from the correctness review of the agent's store and windows."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from gemini_slo.agent import server as server_mod
from gemini_slo.agent.store import Store, StoreLimits
from gemini_slo.agent.testing import (
    exponential_metric,
    otlp_request,
    post_otlp,
    running_agent,
    sum_metric,
)
from gemini_slo.agent.windows import Windows
from gemini_slo.contract import signals

ATTRS = {
    signals.ATTR_WORKLOAD: "chat",
    signals.ATTR_MODE: "latency",
    "gen_ai.request.model": "m",
}


class Clock:
    """A manual monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_window_increase_after_an_idle_workload_resumes_is_not_negative() -> None:
    """A workload idle longer than stale_after (the app alive, exporting unchanged
    cumulative values) had its window aggregates expired while older snapshots still held
    the old totals; when traffic resumed, a window's increase was computed as the new
    aggregate minus the old total: negative counters (calls/s, error ratios in /api/slo)
    and clamped, empty percentile histograms, for up to 5 minutes."""
    clock = Clock()
    store = Store(
        StoreLimits(stale_after=300),
        windows=Windows(clock=clock, snapshot_interval=5.0),
        clock=clock,
    )
    calls = signals.CALLS.name
    exp = signals.OPERATION_DURATION_EXPONENTIAL.name
    ok = {**ATTRS, signals.ATTR_OUTCOME: "ok"}
    t = 2

    def export(value: float, durations: list[float]) -> None:
        nonlocal t
        t += 1
        store.ingest(
            otlp_request(
                [
                    sum_metric(calls, [(ok, value)], time_=t),
                    exponential_metric(exp, ATTRS, durations, time_=t),
                ]
            )
        )

    export(100, [0.1] * 100)
    for _ in range(80):  # 400 s idle: the same cumulative values every 5 s
        clock.now += 5
        export(100, [0.1] * 100)
        store.expire()
    clock.now += 5
    export(110, [0.1] * 100 + [2.0] * 10)  # traffic resumes: 10 slow calls
    key = (calls, "chat", "latency", "ok")
    assert store.windows.counter(key, "5m") == 10
    assert store.windows.counter(key, "1m") == 10
    group = (exp, "chat", "latency", "m")
    for window in ("1m", "5m"):
        hist = store.windows.histogram(group, window)
        assert hist.count == 10
        assert abs(hist.quantile(0.5) - 2.0) / 2.0 < 0.03


def _raw_request(url: str, request_line: str, extra: bytes = b"") -> bytes:
    host_port = url.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            request_line.encode()
            + b"\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\nConnection: close\r\n"
            + extra
            + b"\r\n"
        )
        return sock.recv(64)


def test_non_utf8_authorization_header_is_a_401_not_a_500() -> None:
    """A bearer token whose bytes are not UTF-8 made the token comparison raise
    UnicodeEncodeError: a 500 (and a traceback in the log) instead of a counted 401, on
    /metrics and on ingest alike."""
    with running_agent(token="s3cret") as agent:
        assert _raw_request(agent.metrics_url, "GET /metrics HTTP/1.1").startswith(b"HTTP/1.1 401")
        ingest = _raw_request(
            agent.metrics_url,
            "POST /v1/metrics HTTP/1.1",
            b"Content-Type: application/x-protobuf\r\nContent-Length: 0\r\n",
        )
        assert ingest.startswith(b"HTTP/1.1 401")
        assert agent.store.self_metrics.rejected_requests["unauthorized"] == 1


def test_a_malformed_body_is_not_quoted_in_the_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """The JSON parser's error message quotes the offending part of the body, and the agent
    logged that message with the refusal: body content in the log, which the docs promise
    never happens. The client still gets the full message."""
    logged: list[dict[str, Any]] = []

    class Log:
        def warning(self, event: str, **fields: Any) -> None:
            logged.append({"event": event, **fields})

        def info(self, event: str, **fields: Any) -> None:
            logged.append({"event": event, **fields})

    monkeypatch.setattr(server_mod, "log", Log())
    body = b'{"resourceMetrics": "user@example.com password=hunter2"}'
    with running_agent() as agent:
        status, answer, _ = post_otlp(
            agent.otlp_url + "/v1/metrics", body, content_type="application/json"
        )
    assert status == 400
    assert b"hunter2" in answer
    refusals = [e for e in logged if e["event"] == "export rejected"]
    assert refusals and refusals[0]["reason"] == "malformed"
    assert "hunter2" not in repr(logged)
