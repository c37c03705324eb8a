"""``gemini-slo agent`` and ``gemini-slo status`` as users run them: real processes.

The agent runs as a subprocess of the installed console script; SIGTERM must answer the
export in flight and exit 0; logs are JSON lines that never contain the token.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from gemini_slo.agent.testing import otlp_request, post_otlp, running_agent, sum_metric
from gemini_slo.cli import agent as agent_cli
from gemini_slo.cli import status as status_cli
from gemini_slo.contract import signals

EXE = str(Path(sys.executable).with_name("gemini-slo"))
ATTRS = {signals.ATTR_WORKLOAD: "chat", signals.ATTR_MODE: "latency"}
TOKEN = "tok-5f3a9c"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        try:
            if urllib.request.urlopen(url + "/readyz", timeout=1).status == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("agent did not become ready")


@pytest.fixture
def agent_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, str]]:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    otlp, metrics = free_port(), free_port()
    proc = subprocess.Popen(
        [
            EXE,
            "--log-format",
            "json",
            "agent",
            "--otlp",
            f"127.0.0.1:{otlp}",
            "--metrics",
            f"127.0.0.1:{metrics}",
            "--grpc",
            "127.0.0.1:0",
            "--token-file",
            str(token_file),
            "--stale-after",
            "120",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_ready(f"http://127.0.0.1:{metrics}", proc)
        yield proc, f"http://127.0.0.1:{otlp}", f"http://127.0.0.1:{metrics}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_cli_agent_serves_and_stops_on_sigterm(
    agent_process: tuple[subprocess.Popen[bytes], str, str],
) -> None:
    """Ingest, scrape with the token, SIGTERM: exit 0; the logs never show the token."""
    proc, otlp, metrics = agent_process
    body = otlp_request([sum_metric(signals.CALLS.name, [(ATTRS, 4)])]).SerializeToString()
    assert post_otlp(otlp + "/v1/metrics", body, token=TOKEN)[0] == 200
    assert post_otlp(otlp + "/v1/metrics", body, token="nope")[0] == 401
    request = urllib.request.Request(
        metrics + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    text = urllib.request.urlopen(request, timeout=5).read().decode()
    assert signals.CALLS.prometheus in text
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    assert proc.stderr is not None
    logs = proc.stderr.read().decode()
    assert TOKEN not in logs
    events = [json.loads(line)["event"] for line in logs.splitlines() if line.startswith("{")]
    assert "agent started" in events and "agent stopped" in events


def test_sigterm_answers_the_export_in_flight(
    agent_process: tuple[subprocess.Popen[bytes], str, str],
) -> None:
    """An export whose body is still arriving when SIGTERM comes is answered with 200."""
    proc, otlp, _ = agent_process
    body = otlp_request([sum_metric(signals.CALLS.name, [(ATTRS, 1)])]).SerializeToString()
    host, port = otlp.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/metrics HTTP/1.1\r\nHost: agent\r\nContent-Type: application/x-protobuf\r\n"
            + f"Authorization: Bearer {TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body[:5]
        )
        time.sleep(0.3)  # the handler is now waiting for the rest of the body
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        sock.sendall(body[5:])
        response = sock.recv(4096)
    assert response.startswith(b"HTTP/1.1 200"), response[:200]
    assert proc.wait(20) == 0


def test_cli_agent_refuses_a_bad_spec(tmp_path: Path) -> None:
    """An invalid slo.yaml: exit 2 with the spec error, nothing listening."""
    spec = tmp_path / "slo.yaml"
    spec.write_text("version: nope\nworkloads: []\n")
    result = subprocess.run(
        [
            EXE,
            "agent",
            "--config",
            str(spec),
            "--otlp",
            "127.0.0.1:0",
            "--metrics",
            "127.0.0.1:0",
            "--grpc",
            "off",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "slo.yaml" in result.stderr


def test_status_prints_a_table_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    """``gemini-slo status``: one table per workload; ``--json`` the raw /api/slo."""
    with running_agent() as agent:
        body = otlp_request(
            [sum_metric(signals.CALLS.name, [({**ATTRS, signals.ATTR_OUTCOME: "ok"}, 9)])]
        ).SerializeToString()
        post_otlp(agent.otlp_url + "/v1/metrics", body)
        parser = __import__("argparse").ArgumentParser()
        status_cli.add_arguments(parser)
        env_width = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = "200"
        try:
            assert status_cli.run(parser.parse_args(["--agent", agent.base_url])) == 0
        finally:
            if env_width is None:
                os.environ.pop("COLUMNS", None)
            else:
                os.environ["COLUMNS"] = env_width
        out = capsys.readouterr().out
        assert "chat (latency mode)" in out and "batch (throughput mode)" in out
        assert "availability" in out and "100%" in out
        assert status_cli.run(parser.parse_args(["--agent", agent.base_url, "--json"])) == 0
        data = json.loads(capsys.readouterr().out)
        assert {w["name"] for w in data["workloads"]} == {"chat", "batch"}


def test_status_without_an_agent_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """No agent listening: a message and exit status 2."""
    parser = __import__("argparse").ArgumentParser()
    status_cli.add_arguments(parser)
    args = parser.parse_args(["--agent", f"http://127.0.0.1:{free_port()}", "--timeout", "2"])
    assert status_cli.run(args) == 2
    assert "cannot read" in capsys.readouterr().err


def run_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    """``gemini-slo ARGV`` in a fresh process, listeners (if any) on free ports."""
    return subprocess.run(
        [sys.executable, "-m", "gemini_slo.cli.main", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


LISTEN = ("--otlp", "127.0.0.1:0", "--metrics", "127.0.0.1:0", "--grpc", "off")


@pytest.mark.parametrize(
    "argv",
    [
        ["agent", "--token", TOKEN, *LISTEN],
        ["agent", *LISTEN, f"--token={TOKEN}"],
        ["--token", TOKEN, "agent", *LISTEN],
        ["agent", TOKEN, *LISTEN],
        ["status", "--token", TOKEN],
    ],
)
def test_a_mistyped_token_option_never_prints_the_token(argv: list[str]) -> None:
    """``--token X`` is not ``--token-file X``: an error naming the option, not its value."""
    result = run_cli(*argv)
    assert result.returncode == 2
    assert TOKEN not in result.stdout + result.stderr
    assert "unrecognized arguments" in result.stderr
    assert ("--token" in result.stderr) == ("--token" in " ".join(argv))


@pytest.mark.parametrize("command", [["agent", *LISTEN], ["status"]])
def test_token_file_problems_are_one_line_naming_the_file(
    tmp_path: Path, command: list[str]
) -> None:
    """Missing, empty or not UTF-8: exit 2, one line with the path, never the content."""
    missing = tmp_path / "missing-token"
    empty = tmp_path / "empty-token"
    empty.write_text("\n")
    garbled = tmp_path / "garbled-token"
    garbled.write_bytes(TOKEN.encode() + b"\xff\n")
    name = command[0]
    cases = {
        missing: f"gemini-slo {name}: cannot read token file {missing}: No such file or directory",
        empty: f"gemini-slo {name}: token file {empty} is empty",
        garbled: f"gemini-slo {name}: cannot read token file {garbled}: not UTF-8 text "
        f"(at byte {len(TOKEN)})",
    }
    for path, line in cases.items():
        result = run_cli(*command, "--token-file", str(path))
        assert result.returncode == 2, result.stderr
        assert result.stderr.splitlines() == [line]
        assert TOKEN not in result.stderr


def test_the_agent_config_never_shows_its_token(tmp_path: Path) -> None:
    """The config read from ``--token-file`` holds the token but its repr leaves it out."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    parser = argparse.ArgumentParser()
    agent_cli.add_arguments(parser)
    config = agent_cli.config_from_args(parser.parse_args(["--token-file", str(token_file)]))
    assert config.token == TOKEN
    assert TOKEN not in repr(config)
