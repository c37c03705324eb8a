"""Issue #16, agent side: one request cannot stall the agent; slow and lying clients.

Each test is one row of the issue's tables, bounded in time and load, against a real agent
on 127.0.0.1: in-process (``running_agent``) where only the HTTP surface matters, as the
installed command where the process' memory, descriptor limit or log is what is measured.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import resource
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gemini_slo.agent import server as server_mod
from gemini_slo.agent.testing import otlp_request, post_otlp, running_agent, sum_metric
from gemini_slo.contract import agent_series, signals
from google.protobuf import json_format
from google.protobuf.internal.encoder import _VarintBytes
from opentelemetry.proto.metrics.v1 import metrics_pb2
from prometheus_client.parser import text_string_to_metric_families

EXE = str(Path(sys.executable).with_name("gemini-slo"))
ATTRS = {signals.ATTR_WORKLOAD: "chat", signals.ATTR_MODE: "latency"}
#: What "keeps answering" means: a health probe's slowest answer is a small share of the
#: export it overlapped (a blocked loop answers only after the export: a share near 1).
#: A share, not seconds: on a loaded 2-core box the decoding thread and the probe share
#: the GIL, and a fixed half second was missed by a few hundredths with nothing wrong.
ANSWER_SHARE_OF_EXPORT = 0.25


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class Prober:
    """Polls URLs from a thread and keeps the slowest answer of each (a failure: inf)."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.slowest = dict.fromkeys(urls, 0.0)
        self.answers = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for url in self.urls:
                started = time.perf_counter()
                try:
                    status, _ = get(url, timeout=5)
                    took = time.perf_counter() - started if status == 200 else float("inf")
                except OSError:
                    took = float("inf")
                self.slowest[url] = max(self.slowest[url], took)
                self.answers += 1
            self._stop.wait(0.02)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def _wrap_points(data_points: bytes, name: str = "x") -> bytes:
    """A request with one Sum metric whose data_points field holds ``data_points``."""
    sum_body = data_points + b"\x10\x02\x18\x01"  # cumulative, monotonic
    metric = metrics_pb2.Metric(name=name, unit="{call}").SerializeToString()
    metric += b"\x3a" + _VarintBytes(len(sum_body)) + sum_body
    scope = b"\x12" + _VarintBytes(len(metric)) + metric
    resource_metrics = b"\x12" + _VarintBytes(len(scope)) + scope
    return b"\x0a" + _VarintBytes(len(resource_metrics)) + resource_metrics


def _gzip_stream(chunk: bytes, total: int) -> bytes:
    """``chunk`` repeated to ``total`` bytes, gzipped without ever holding ``total`` bytes."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [compressor.compress(chunk) for _ in range(total // len(chunk))]
    return b"".join([*parts, compressor.flush()])


def _hostile_bodies() -> dict[str, tuple[bytes, str, bool]]:
    """The issue's table, row by row: (body, content type, gzipped)."""
    point = metrics_pb2.NumberDataPoint(as_int=1, start_time_unix_nano=1, time_unix_nano=2)
    one_point = point.SerializeToString()
    one_series = (b"\x0a" + _VarintBytes(len(one_point)) + one_point) * 1_700_000
    json_points = {
        "resourceMetrics": [
            {
                "scopeMetrics": [
                    {
                        "metrics": [
                            {
                                "name": "x",
                                "sum": {
                                    "aggregationTemporality": 2,
                                    "dataPoints": [{"asInt": "1", "timeUnixNano": "2"}] * 150_000,
                                },
                            }
                        ]
                    }
                ]
            }
        ]
    }
    return {
        "64 MiB of JSON in 160 KiB of gzip": (
            _gzip_stream(b'{"a":[1,2,3,4,5,6,7,8,9,0]},' * 1000, 64 << 20),
            "application/json",
            True,
        ),
        "64 MiB of empty protobuf messages in 64 KiB of gzip": (
            _gzip_stream(b"\x0a\x00" * 4096, 64 << 20),
            "application/x-protobuf",
            True,
        ),
        "7 MiB of JSON, no gzip": (json.dumps(json_points).encode(), "application/json", False),
        "1.7 million valid points of one series in gzip": (
            gzip.compress(_wrap_points(one_series, "gemini_slo.client.calls"), 9),
            "application/x-protobuf",
            True,
        ),
        "8 MiB of empty data points (the body limit), no gzip": (
            _wrap_points(b"\x0a\x00" * (4 * 1024 * 1024 - 32)),
            "application/x-protobuf",
            False,
        ),
    }


@contextlib.contextmanager
def agent_process(
    tmp_path: Path, *args: str, fd_limit: int | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], str, str, Path]]:
    """``gemini-slo agent`` on free ports; yields (process, OTLP URL, scrape URL, log path)."""
    otlp, metrics = free_port(), free_port()
    log_path = tmp_path / "agent.log"
    argv = [EXE, "--log-format", "json", "agent", "--otlp", f"127.0.0.1:{otlp}",
            "--metrics", f"127.0.0.1:{metrics}", *args]  # fmt: skip
    if fd_limit is not None:  # the agent's own descriptor limit, as a service manager sets it
        argv = ["bash", "-c", f'ulimit -n {fd_limit} && exec "$@"', "bash", *argv]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{metrics}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert proc.poll() is None, log_path.read_text()
            with contextlib.suppress(OSError):
                if get(base + "/readyz", timeout=1)[0] == 200:
                    break
            time.sleep(0.1)
        yield proc, f"http://127.0.0.1:{otlp}", base, log_path
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def test_hostile_bodies_are_refused_quickly_while_health_answers(tmp_path: Path) -> None:
    """Each row of the issue's table (agent blocked 105 s, 44 s, 15 s, 3.7 s; peak RSS up
    to 3.2 GB) is now a 413 with a message, within a second, with /healthz and /metrics
    answering meanwhile and the agent's peak RSS under 600 MB (the worst, 8 MiB of empty
    messages, parses to about 350 MB)."""
    bodies = _hostile_bodies()
    with agent_process(tmp_path) as (proc, otlp, base, _log):
        with Prober([base + "/healthz", base + "/metrics"]) as probe:
            for name, (body, content_type, gzipped) in bodies.items():
                headers = {"Content-Encoding": "gzip"} if gzipped else {}
                started = time.perf_counter()
                status, answer, _ = post_otlp(
                    otlp + "/v1/metrics", body, content_type=content_type, headers=headers,
                    timeout=30,
                )  # fmt: skip
                took = time.perf_counter() - started
                assert status == 413, (name, status, answer[:200])
                assert b"limit" in answer or b"more than" in answer, (name, answer[:200])
                assert took < 2.0, f"{name}: answered in {took:.2f} s"
            time.sleep(0.2)
        assert probe.answers >= 10
        for url, slowest in probe.slowest.items():
            assert slowest < 1.0, f"{url} took {slowest:.2f} s while hostile bodies were refused"
        peak = _peak_rss_mb(proc.pid)
        assert peak < 600, f"peak RSS {peak:.0f} MB"
        status, text = get(base + "/metrics")
        assert status == 200
        refused = {
            s.labels["reason"]: s.value
            for f in text_string_to_metric_families(text.decode())
            for s in f.samples
            if s.name == agent_series.REJECTED_REQUESTS
        }
        assert refused.get("decompressed_too_large") == 3
        assert refused.get("too_many_values") == 1
        assert refused.get("too_many_points") == 1


#: Attributes a data point of the instrumentation carries besides workload and mode.
LIKE_AN_APP = {
    signals.ATTR_OPERATION: "generate_content",
    signals.ATTR_PROVIDER: "gcp.gemini",
    signals.ATTR_REQUEST_MODEL: "gemini-2.5-flash",
    signals.ATTR_OUTCOME: "ok",
}


def _json_export(points: int, workload: str) -> bytes:
    """OTLP/JSON of ``points`` points, 32 JSON values each (like the instrumentation's)."""
    request = otlp_request(
        [
            sum_metric(
                signals.CALLS.name,
                [
                    ({**ATTRS, **LIKE_AN_APP, signals.ATTR_WORKLOAD: workload, "i": str(i)}, 1.0)
                    for i in range(points)
                ],
            )
        ]
    )
    return json_format.MessageToJson(request, indent=None).encode()


def test_a_request_that_takes_seconds_leaves_health_and_metrics_answering() -> None:
    """With the JSON limits raised, an export whose decoding takes seconds is in flight;
    /healthz, /readyz and /metrics answer in a quarter of its time at most meanwhile (they used to
    wait for it: decoding ran on the event loop), and the export then succeeds."""
    body = _json_export(12_000, "slow")  # 384,000 JSON values
    with running_agent(max_json_values=10_000_000, max_series_per_metric=20_000) as agent:
        urls = [agent.base_url + "/healthz", agent.base_url + "/readyz", agent.metrics_url]
        result: list[int] = []
        export = threading.Thread(
            target=lambda: result.append(
                post_otlp(
                    agent.otlp_url + "/v1/metrics", body, content_type="application/json",
                    timeout=120,
                )[0]
            )
        )  # fmt: skip
        started = time.perf_counter()
        with Prober(urls) as probe:
            export.start()
            export.join(120)
        took = time.perf_counter() - started
        assert result == [200]
        assert took > 1.0, (
            f"the export took {took:.2f} s: not a slow request, the test proves nothing"
        )
        assert probe.answers >= 3 * len(urls)
        for url, slowest in probe.slowest.items():
            assert slowest < ANSWER_SHARE_OF_EXPORT * took, (
                f"{url}: {slowest:.2f} s during a {took:.1f} s export"
            )
    with running_agent() as agent:
        started = time.perf_counter()
        status, answer, _ = post_otlp(
            agent.otlp_url + "/v1/metrics", body, content_type="application/json"
        )
        assert status == 413 and b"more than 300000 values" in answer
        assert time.perf_counter() - started < 2.0


def test_json_nesting_and_attribute_limits() -> None:
    """Deep JSON and a resource with too many attributes: a 400 saying which limit. A
    point keeps its first 128 attributes (as the OpenTelemetry SDK's attribute limit
    does), the rest dropped and counted."""
    with running_agent() as agent:
        url = agent.otlp_url + "/v1/metrics"
        deep = b'{"resourceMetrics": ' + b"[" * 40 + b"]" * 40 + b"}"
        status, answer, _ = post_otlp(url, deep, content_type="application/json")
        assert status == 400 and b"nested deeper than 32 levels" in answer
        wide = {f"a{i:03d}": "v" for i in range(200)}
        request = otlp_request([sum_metric(signals.CALLS.name, [(ATTRS, 1.0)])])
        for key, value in wide.items():
            request.resource_metrics[0].resource.attributes.add(key=key).value.string_value = value
        status, answer, _ = post_otlp(url, request.SerializeToString())
        assert status == 400 and b"a resource has 202 attributes (limit 128)" in answer
        rejected = agent.store.self_metrics.rejected_requests
        assert rejected["too_deep"] == 1 and rejected["too_many_attributes"] == 1
        point = {**ATTRS, **wide}
        body = otlp_request([sum_metric(signals.CALLS.name, [(point, 1.0)])]).SerializeToString()
        assert post_otlp(url, body)[0] == 200
        with agent.store.lock:
            family = agent.store.families[signals.CALLS.prometheus]
            (labels,) = family.series
        assert len(labels) == 128 and agent.store.labels.truncated == 1


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split("/")[0].split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _closed_by_server(sock: socket.socket) -> bool:
    """True when the server has closed the connection (a read returns EOF or a reset)."""
    sock.setblocking(False)
    try:
        return sock.recv(4096) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)


def test_slow_header_drips_are_closed_within_the_header_timeout() -> None:
    """200 connections dripping a request header a byte at a time were never closed
    (keep-alive 3,630 s, no header timeout); now each is closed once header_timeout has
    passed without a complete header, and the agent answers meanwhile."""
    with running_agent(header_timeout=1.0) as agent:
        socks = [_connect(agent.otlp_url) for _ in range(200)]
        started = time.monotonic()
        request = b"POST /v1/metrics HTTP/1.1\r\nHost: agent\r\nContent-Type: application/x-"
        open_ = list(socks)
        i = 0
        while open_ and time.monotonic() - started < 5.0:
            for sock in open_:
                with contextlib.suppress(OSError):
                    sock.send(request[i % len(request) : i % len(request) + 1])
            i += 1
            time.sleep(0.1)
            open_ = [s for s in open_ if not _closed_by_server(s)]
            assert get(agent.base_url + "/healthz", timeout=2)[0] == 200
        took = time.monotonic() - started
        for sock in socks:
            sock.close()
        assert not open_, f"{len(open_)} dripping connections still open after {took:.1f} s"
        assert took < 3.0


def test_a_body_shorter_than_its_content_length_is_a_408() -> None:
    """A Content-Length longer than the body held the connection open for ever; now the
    agent answers 408 once the body stops arriving, and closes the connection."""
    with running_agent(body_idle_timeout=0.5) as agent:
        with _connect(agent.otlp_url) as sock:
            started = time.monotonic()
            sock.sendall(
                b"POST /v1/metrics HTTP/1.1\r\nHost: agent\r\n"
                b"Content-Type: application/x-protobuf\r\nContent-Length: 1000\r\n\r\n"
                + b"\x0a"
                * 10
            )
            answer = sock.recv(4096)
            took = time.monotonic() - started
            assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
            assert b"10 of 1000 bytes received" in answer
            assert 0.4 < took < 4.0
            deadline = time.monotonic() + 5
            while not _closed_by_server(sock) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert time.monotonic() < deadline, "the connection stayed open after the 408"
        assert agent.store.self_metrics.rejected_requests["body_timeout"] == 1
        assert get(agent.base_url + "/healthz")[0] == 200


def _samples(agent_text: str, name: str) -> dict[str, float]:
    return {
        next(iter(s.labels.values()), ""): s.value
        for f in text_string_to_metric_families(agent_text)
        for s in f.samples
        if s.name == name
    }


def test_connections_past_the_cap_get_503_and_scrapes_still_answer() -> None:
    """The OTLP listener holds at most max_connections; the next ones get a 503 and are
    closed at once, counted, and the scrape listener (its own cap) answers meanwhile."""
    with running_agent(max_connections=40) as agent:
        held = [_connect(agent.otlp_url) for _ in range(40)]
        try:
            for sock in held:
                sock.sendall(b"POST /v1/metrics HTTP/1.1\r\nHost: a\r\n")  # half-sent
            time.sleep(0.2)
            for _ in range(5):
                with _connect(agent.otlp_url) as extra:
                    extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
                    assert extra.recv(4096).startswith(b"HTTP/1.1 503"), "over the cap"
            status, text = get(agent.metrics_url, timeout=2)
            assert status == 200
            open_now = _samples(text.decode(), agent_series.CONNECTIONS)
            assert open_now["otlp"] == 40
            refused = _samples(text.decode(), agent_series.REFUSED_CONNECTIONS)
            assert refused["otlp"] == 5
        finally:
            for sock in held:
                sock.close()
        deadline = time.monotonic() + 5
        while agent.agent.otlp_gate.open and time.monotonic() < deadline:
            time.sleep(0.05)
        assert agent.agent.otlp_gate.open == 0  # every slot given back
        body = otlp_request([sum_metric(signals.CALLS.name, [(ATTRS, 1.0)])]).SerializeToString()
        assert post_otlp(agent.otlp_url + "/v1/metrics", body)[0] == 200


def test_descriptor_exhaustion_neither_blocks_metrics_nor_floods_the_log(tmp_path: Path) -> None:
    """1,044 idle half-sent requests against a 1,024-descriptor limit made /metrics time out
    and the agent wrote 22.9 MB of log in 12 s (asyncio's accept() error, with a traceback,
    in a loop). Now the OTLP listener stops at its cap below the limit, /metrics answers,
    and the log stays small; a flood of 401s never shows the token."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2200:
        pytest.skip(f"the test needs 2,200 descriptors (hard limit {hard})")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2200), hard))
    token = "tok-9d1e77"
    (tmp_path / "token").write_text(token + "\n")
    socks: list[socket.socket] = []
    try:
        with agent_process(tmp_path, "--token-file", str(tmp_path / "token"), fd_limit=1024) as (
            _proc,
            otlp,
            base,
            log_path,
        ):
            cap = 1024 - 64 - 128  # connections.default_max_connections at this limit
            for i in range(1044):
                with contextlib.suppress(OSError):
                    sock = _connect(otlp)
                    sock.sendall(b"POST /v1/metrics HTTP/1.1\r\nHost: a\r\n")  # half-sent
                    socks.append(sock)
                if i % 50 == 49:
                    time.sleep(0.05)  # within the listen backlog: the agent sees all of them
            deadline = time.monotonic() + 15
            refused: dict[str, float] = {}
            while time.monotonic() < deadline:
                started = time.monotonic()
                request = urllib.request.Request(
                    base + "/metrics", headers={"Authorization": f"Bearer {token}"}
                )
                with urllib.request.urlopen(request, timeout=5) as response:
                    text = response.read().decode()
                assert time.monotonic() - started < 2.0, "/metrics was slow to answer"
                refused = _samples(text, agent_series.REFUSED_CONNECTIONS)
                if refused.get("otlp", 0) >= len(socks) - cap:
                    break
                time.sleep(0.2)
            assert refused.get("otlp", 0) >= len(socks) - cap, refused
            assert _samples(text, agent_series.CONNECTIONS)["otlp"] == cap
            body = otlp_request(
                [sum_metric(signals.CALLS.name, [(ATTRS, 1.0)])]
            ).SerializeToString()
            for sock in socks:
                sock.close()
            socks.clear()
            for _ in range(300):  # a storm of refusals, each a would-be log line
                post_otlp(otlp + "/v1/metrics", body, token="wrong")
                post_otlp(otlp + "/v1/metrics", body, token=token + "x")
            time.sleep(1.0)
        size = log_path.stat().st_size
        logs = log_path.read_text()
        assert size < 20_000, f"{size} bytes of log:\n{logs[:2000]}"
        assert token not in logs
        assert "Too many open files" not in logs
    finally:
        for sock in socks:
            sock.close()


def test_sigterm_with_a_stalled_export_exits_within_the_grace(tmp_path: Path) -> None:
    """SIGTERM with one stalled export took 21 s (the drain waited, then aiohttp's cleanup
    waited again). Now one deadline: --shutdown-grace (here 2 s), plus a little to close."""
    with agent_process(tmp_path, "--shutdown-grace", "2") as (proc, otlp, _base, log_path):
        with _connect(otlp) as sock:
            sock.sendall(
                b"POST /v1/metrics HTTP/1.1\r\nHost: agent\r\n"
                b"Content-Type: application/x-protobuf\r\nContent-Length: 100\r\n\r\n\x0a"
            )
            time.sleep(0.3)
            started = time.monotonic()
            proc.send_signal(15)
            assert proc.wait(20) == 0, log_path.read_text()
            took = time.monotonic() - started
    assert took < 2.0 + 1.5, f"exit took {took:.1f} s"
    assert took > 1.5, "the stalled export was not given its grace"
    events = [
        json.loads(line)["event"]
        for line in log_path.read_text().splitlines()
        if line.startswith("{")
    ]
    assert "agent stopped" in events


def test_a_storm_of_bad_requests_writes_a_few_log_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refusals are logged at most once per kind per interval, the next line saying how
    many were left out; the count is a self-metric."""
    logged: list[dict[str, Any]] = []

    class Log:
        def warning(self, event: str, **fields: Any) -> None:
            logged.append({"event": event, **fields})

        info = debug = warning

    monkeypatch.setattr(server_mod, "log", Log())
    with running_agent(log_interval=60.0) as agent:
        url = agent.otlp_url + "/v1/metrics"
        for _ in range(200):
            post_otlp(url, b"\xff\xff", content_type="application/x-protobuf")
            post_otlp(url, b"{", content_type="application/json")
        text = agent.scrape()
        assert _samples(text, agent_series.SUPPRESSED_LOG_LINES)[""] == 399
        agent.agent.log_limiter.interval = 0.0  # the interval is over: the next line says so
        post_otlp(url, b"{", content_type="application/json")
    refusals = [e for e in logged if e["event"] == "export rejected"]
    assert len(refusals) == 2
    assert refusals[1]["left_out"] == 399
