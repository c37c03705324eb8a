"""The final export at exit: retried with backoff within ``exit_timeout``, then one warning
with the number of calls not delivered. An app whose agent is down, silent or failing
exits on time; an agent that comes back within the deadline gets the calls."""

from __future__ import annotations

import gzip
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from gemini_slo.agent.testing import AgentHandle, start_agent
from gemini_slo.contract import signals as S
from gemini_slo.instrumentation import Registry, configure, flush, observe, shutdown, testing
from gemini_slo.instrumentation._export_otlp import OtlpExporter
from gemini_slo.instrumentation.config import DEFAULT_EXIT_TIMEOUT, resolve
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.sdk.resources import Resource

#: What a deadline may be overrun by on a loaded machine (thread wake-ups, a socket close).
SLACK = 0.75


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _calls(n: int) -> None:
    for _ in range(n):
        with observe(workload="chat", mode="latency", model="gemini-2.5-flash"):
            pass


def _agent_calls(agent: AgentHandle) -> float:
    prefix = S.CALLS.prometheus + "{"
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in agent.scrape().splitlines()
        if line.startswith(prefix)
    )


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.fixture(autouse=True)
def _warnings_captured(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    with caplog.at_level(logging.WARNING, logger="gemini_slo.instrumentation"):
        yield


def _timed_shutdown() -> float:
    started = time.monotonic()
    shutdown()
    return time.monotonic() - started


def test_the_default_deadline_and_its_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """5 s by default; GEMINI_SLO_EXIT_TIMEOUT and exit_timeout= set it; a negative or
    non-numeric value is a clear error."""
    assert resolve().exit_timeout == DEFAULT_EXIT_TIMEOUT == 5.0
    monkeypatch.setenv("GEMINI_SLO_EXIT_TIMEOUT", "2.5")
    assert resolve().exit_timeout == 2.5
    assert resolve(exit_timeout=0).exit_timeout == 0.0
    monkeypatch.setenv("GEMINI_SLO_EXIT_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="GEMINI_SLO_EXIT_TIMEOUT='soon' is not a number"):
        resolve()
    with pytest.raises(ValueError, match="exit_timeout"):
        resolve(exit_timeout=-1)


def test_agent_down_retries_until_the_deadline_then_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A closed port: the final export is retried for the whole deadline (not given up at
    the first refusal), shutdown returns on time, and one warning counts the 7 calls."""
    with testing.capture():
        configure(endpoint=f"http://127.0.0.1:{_free_port()}", export_interval=60, exit_timeout=1.0)
        _calls(7)
        elapsed = _timed_shutdown()
    assert 0.9 <= elapsed <= 1.0 + SLACK
    warnings = _warnings(caplog)
    assert len(warnings) == 1, warnings
    assert "7 call(s) were not delivered" in warnings[0]
    assert "within 1.0 s" in warnings[0]


def test_an_agent_back_within_the_deadline_gets_the_calls(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The agent is down when the app shuts down and starts 1 s later on its port: the
    retried final export delivers all 9 calls, well before the deadline, and nothing is
    warned."""
    port = _free_port()
    agents: list[AgentHandle] = []

    def come_back() -> None:
        time.sleep(1.0)
        agents.append(start_agent(otlp_port=port))

    with testing.capture():
        configure(endpoint=f"http://127.0.0.1:{port}", export_interval=60, exit_timeout=5.0)
        _calls(9)
        thread = threading.Thread(target=come_back)
        thread.start()
        try:
            elapsed = _timed_shutdown()
        finally:
            thread.join()
    try:
        assert 1.0 <= elapsed < 5.0
        assert _agent_calls(agents[0]) == 9
        assert _warnings(caplog) == []
    finally:
        agents[0].stop()


def test_the_warning_counts_only_what_was_not_delivered(caplog: pytest.LogCaptureFixture) -> None:
    """5 calls delivered by a flush, the agent stops, 3 more calls: the warning says 3."""
    agent = start_agent()
    try:
        with testing.capture():
            configure(endpoint=agent.otlp_url, export_interval=60, exit_timeout=0.5)
            _calls(5)
            assert flush() is True
            agent.stop()
            _calls(3)
            elapsed = _timed_shutdown()
    finally:
        agent.stop()
    assert elapsed <= 0.5 + SLACK
    warnings = _warnings(caplog)
    assert len(warnings) == 1 and "3 call(s) were not delivered" in warnings[0], warnings


def test_a_socket_that_never_reads_cannot_hold_the_exit(caplog: pytest.LogCaptureFixture) -> None:
    """A listener that accepts connections into its backlog and never reads, with a
    background export stuck on it when shutdown starts: shutdown still returns by the
    deadline (it waits for the stuck export within the deadline, not after it)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        port = listener.getsockname()[1]
        with testing.capture():
            configure(endpoint=f"http://127.0.0.1:{port}", export_interval=0.05, exit_timeout=1.0)
            _calls(4)
            time.sleep(0.2)  # a background export is now waiting for an answer
            elapsed = _timed_shutdown()
    assert elapsed <= 1.0 + SLACK
    warnings = _warnings(caplog)
    assert len(warnings) == 1 and "4 call(s) were not delivered" in warnings[0], warnings


class _ScriptedEndpoint:
    """An OTLP endpoint answering its n-th request (from 0) with ``status_for(n)``, keeping
    the bodies it accepted (200), decompressed."""

    def __init__(self, status_for: Callable[[int], int]) -> None:
        self.answers: list[int] = []
        self.delivered: list[bytes] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = status_for(len(outer.answers))
                outer.answers.append(status)
                if status == 200:
                    if self.headers.get("Content-Encoding") == "gzip":
                        body = gzip.decompress(body)
                    outer.delivered.append(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_503s_are_retried_within_the_deadline(caplog: pytest.LogCaptureFixture) -> None:
    """An endpoint that answers 503 twice and then 200: the final export is retried and
    delivered before the deadline, without a warning."""
    endpoint = _ScriptedEndpoint(lambda n: 503 if n < 2 else 200)
    try:
        with testing.capture():
            configure(endpoint=endpoint.url, export_interval=60, exit_timeout=5.0)
            _calls(2)
            elapsed = _timed_shutdown()
    finally:
        endpoint.close()
    assert endpoint.answers[:3] == [503, 503, 200]
    assert endpoint.delivered
    assert elapsed < 5.0
    assert _warnings(caplog) == []


def test_reconfiguring_does_not_wait_for_the_exit_deadline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """configure() with new settings while the agent is down replaces the exporter within
    about a second, not the 5 s exit deadline, and warns of nothing: the new exporter sends
    the same cumulative state."""
    with testing.capture():
        configure(endpoint=f"http://127.0.0.1:{_free_port()}", export_interval=60, exit_timeout=5.0)
        _calls(2)
        started = time.monotonic()
        configure(endpoint=f"http://127.0.0.1:{_free_port()}", export_interval=60, exit_timeout=0)
        elapsed = time.monotonic() - started
        shutdown()
    assert elapsed <= 1.0 + SLACK
    warnings = _warnings(caplog)
    assert len(warnings) == 1 and "2 call(s)" in warnings[0], warnings  # the last shutdown's


@pytest.mark.slow
def test_an_app_process_exiting_while_the_agent_restarts_loses_nothing() -> None:
    """The issue's case (432 of 432 calls lost): a real app process makes its calls and
    exits while its agent is down; the agent is back 1.5 s later. The process's atexit
    flush delivers every call, the process exits before its deadline, and says nothing."""
    import subprocess
    import sys

    port = _free_port()
    code = (
        "from gemini_slo.instrumentation import configure, observe\n"
        f"configure(endpoint='http://127.0.0.1:{port}', export_interval=60, exit_timeout=8)\n"
        "for _ in range(432):\n"
        "    with observe(workload='chat', model='gemini-2.5-flash'):\n"
        "        pass\n"
        "print('exiting', flush=True)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    agent: AgentHandle | None = None
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "exiting"
        exiting = time.monotonic()
        time.sleep(1.5)
        agent = start_agent(otlp_port=port)
        _, stderr = process.communicate(timeout=30)
        elapsed = time.monotonic() - exiting
        assert process.returncode == 0, stderr
        assert stderr == "", stderr
        assert elapsed < 8.0
        assert _agent_calls(agent) == 432
    finally:
        process.kill()
        if agent is not None:
            agent.stop()


def _calls_in_request(body: bytes) -> int:
    """The calls counted by one OTLP/protobuf request body (its gemini_slo.client.calls)."""
    request = ExportMetricsServiceRequest.FromString(body)
    return sum(
        int(point.as_int)
        for resource in request.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == S.CALLS.name
        for point in metric.sum.data_points
    )


def test_a_partly_delivered_split_export_credits_each_accepted_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A collection split into several requests, of which the agent accepts only the first
    (then refuses everything, the final export's retries included): the exit warning counts
    exactly the calls the accepted request did not carry, as the endpoint decoded them (it
    used to count them all, since no export was taken whole)."""
    registry = Registry()
    for i in range(30):  # model i: i + 1 calls, so every request carries a different count
        for _ in range(i + 1):
            with observe(workload="chat", mode="latency", model=f"m-{i}", registry=registry):
                pass
    total = 30 * 31 // 2
    # Accepts the very first request and refuses (400, not retried) every later one.
    endpoint = _ScriptedEndpoint(lambda n: 200 if n == 0 else 400)
    resource = Resource.create({S.RESOURCE_SERVICE_NAME: "split-exit"})
    # Requests small enough that the first one ends a third of the way into the call series
    # (the points come ordered by signal, and other signals may come first).
    points = registry.collect()
    first_call = next(i for i, p in enumerate(points) if p.signal is S.CALLS)
    exporter = OtlpExporter(
        registry,
        endpoint.url + "/v1/metrics",
        resource,
        interval=3600,
        exit_timeout=0.3,
        max_points=first_call + 10,
    )
    try:
        assert exporter.shutdown() is False
    finally:
        endpoint.close()
    assert endpoint.answers[:2] == [200, 400]
    accepted_calls = _calls_in_request(endpoint.delivered[0])
    assert 0 < accepted_calls < total  # a split export, partly delivered
    assert exporter.delivered_calls == accepted_calls
    undelivered = total - accepted_calls
    assert exporter.undelivered_calls == undelivered
    warnings = _warnings(caplog)
    assert len(warnings) == 1, warnings
    assert f"{undelivered} call(s) were not delivered" in warnings[0], warnings
