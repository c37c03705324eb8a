"""The emulator at the HTTP level: bad input gets the API's 4xx error JSON, the server keeps serving."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gemini_slo.emulator.testing import EmulatorHandle, RemoteEmulator, running_emulator
from google import genai
from google.genai import types

FLASH = "gemini-2.5-flash"
GOOD = json.dumps({"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}).encode()


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorHandle]:
    """A fast emulator with a small body limit, so the size check is cheap to test."""
    with running_emulator(seed=0, time_scale=0.0, max_body_bytes=64 * 1024) as handle:
        yield handle


def call(
    emu: EmulatorHandle,
    path: str,
    body: bytes | None = None,
    *,
    method: str = "POST",
    key: str | None = "test",
) -> tuple[int, dict[str, Any]]:
    """One raw HTTP request; returns (status, JSON body)."""
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["x-goog-api-key"] = key
    request = urllib.request.Request(emu.url + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def assert_error(result: tuple[int, dict[str, Any]], code: int, status: str) -> str:
    """The API's error shape: {"error": {"code", "message", "status"}}; returns the message."""
    got_code, body = result
    assert got_code == code, body
    error = body["error"]
    assert error["code"] == code
    assert error["status"] == status
    assert isinstance(error["message"], str) and error["message"]
    return str(error["message"])


GEN = f"/v1beta/models/{FLASH}:generateContent"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "Invalid JSON payload"),
        (b"[1, 2]", "Expected an object"),
        (b"{}", "contents is not specified"),
        (b'{"contents": []}', "contents is not specified"),
        (b'{"contents": [{"role": "user"}]}', "parts must not be empty"),
        (
            b'{"contents": [{"parts": [{"text": "x"}]}], "temprature": 1}',
            'Unknown name "temprature"',
        ),
        (
            b'{"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"maxTokens": 5}}',
            'Unknown name "maxTokens"',
        ),
        (
            b'{"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"maxOutputTokens": -1}}',
            "max_output_tokens",
        ),
    ],
)
def test_bad_bodies_are_400_invalid_argument(
    emu: EmulatorHandle, body: bytes, fragment: str
) -> None:
    """Malformed JSON, missing contents and unknown fields: 400 INVALID_ARGUMENT, then still serving."""
    message = assert_error(call(emu, GEN, body), 400, "INVALID_ARGUMENT")
    assert fragment in message
    assert call(emu, GEN, GOOD)[0] == 200


def test_unknown_field_has_bad_request_detail(emu: EmulatorHandle) -> None:
    """Unknown names carry a google.rpc.BadRequest field violation, as in the API."""
    _, body = call(emu, GEN, b'{"contents": [{"parts": [{"text": "x"}]}], "foo": 1}')
    detail = body["error"]["details"][0]
    assert detail["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    assert "foo" in detail["fieldViolations"][0]["description"]


def test_snake_case_fields_are_accepted(emu: EmulatorHandle) -> None:
    """proto3 JSON accepts original field names too (the SDK sends thinking_budget)."""
    body = {
        "contents": [{"parts": [{"text": "x"}]}],
        "generation_config": {"max_output_tokens": 50, "thinking_config": {"thinking_budget": 0}},
    }
    status, answer = call(emu, GEN, json.dumps(body).encode())
    assert status == 200
    assert "thoughtsTokenCount" not in answer["usageMetadata"]


def test_oversized_body_is_rejected_and_server_keeps_serving(emu: EmulatorHandle) -> None:
    """A body over the size limit: 400 with the API's payload-size message."""
    big = json.dumps({"contents": [{"parts": [{"text": "word " * 20000}]}]}).encode()
    message = assert_error(call(emu, GEN, big), 400, "INVALID_ARGUMENT")
    assert "payload size exceeds the limit" in message
    assert call(emu, GEN, GOOD)[0] == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", GEN),
        ("PUT", GEN),
        ("POST", f"/v1beta/models/{FLASH}:fooBar"),
        ("POST", f"/v1beta/models/{FLASH}"),
        ("GET", "/v1beta/nothing/here"),
        ("DELETE", "/v1beta/models"),
    ],
)
def test_wrong_methods_and_paths_are_404_json(emu: EmulatorHandle, method: str, path: str) -> None:
    """Wrong HTTP methods and unknown paths: 404 NOT_FOUND error JSON."""
    body = GOOD if method in ("POST", "PUT") else None
    assert_error(call(emu, path, body, method=method), 404, "NOT_FOUND")
    assert call(emu, GEN, GOOD)[0] == 200


def test_missing_key_is_403_and_any_key_works(emu: EmulatorHandle) -> None:
    """No API key: 403 PERMISSION_DENIED; any non-empty key (header or ?key=) is accepted."""
    assert_error(call(emu, GEN, GOOD, key=None), 403, "PERMISSION_DENIED")
    assert call(emu, GEN + "?key=anything", GOOD, key=None)[0] == 200


def test_embedding_model_does_not_generate(emu: EmulatorHandle) -> None:
    """Calling generateContent on an embedding model is the API's 404."""
    path = "/v1beta/models/gemini-embedding-001:generateContent"
    assert_error(call(emu, path, GOOD), 404, "NOT_FOUND")


def test_embed_content_single(emu: EmulatorHandle) -> None:
    """:embedContent answers one embedding of the model's default size."""
    body = json.dumps({"content": {"parts": [{"text": "a b"}]}}).encode()
    status, answer = call(emu, "/v1beta/models/gemini-embedding-001:embedContent", body)
    assert status == 200
    assert len(answer["embedding"]["values"]) == 3072


def test_sse_wire_format(emu: EmulatorHandle) -> None:
    """Streams are `data: {json}\\r\\n\\r\\n` events with cumulative usage, last with finishReason."""
    body = json.dumps({"contents": [{"parts": [{"text": "[[emulator:output_tokens=40]]"}]}]})
    request = urllib.request.Request(
        emu.url + f"/v1beta/models/{FLASH}:streamGenerateContent?alt=sse",
        data=body.encode(),
        headers={"x-goog-api-key": "k"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        raw = response.read().decode()
    events = [e for e in raw.split("\r\n\r\n") if e]
    assert all(e.startswith("data: ") for e in events)
    chunks = [json.loads(e[len("data: ") :]) for e in events]
    assert [c["usageMetadata"]["candidatesTokenCount"] for c in chunks] == [16, 32, 40]
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert len({c["responseId"] for c in chunks}) == 1


def test_admin_stats_shape_and_reset(emu: EmulatorHandle) -> None:
    """GET /_emulator/stats has the documented shape; POST /_emulator/reset zeroes it."""
    call(emu, "/_emulator/reset", b"{}")
    call(emu, GEN, GOOD)
    status, stats = call(emu, "/_emulator/stats", method="GET")
    assert status == 200
    assert stats["requests"] == {FLASH: {"200": 1}}
    assert set(stats["tokens"][FLASH]) == {"input", "output", "thoughts", "cached"}
    assert stats["tokens"][FLASH]["input"] == 1
    call(emu, "/_emulator/reset", b"{}")
    assert call(emu, "/_emulator/stats", method="GET")[1]["requests"] == {}
    status, health = call(emu, "/_emulator/health", method="GET")
    assert status == 200
    assert FLASH in health["models"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_cli_serves_the_sdk_and_stops_on_sigterm() -> None:
    """`gemini-slo emulate` in its own process serves the SDK and exits 0 on SIGTERM."""
    port = _free_port()
    exe = Path(sys.executable).with_name("gemini-slo")
    proc = subprocess.Popen(
        [
            str(exe),
            "--log-format",
            "json",
            "emulate",
            "--port",
            str(port),
            "--seed",
            "4",
            "--time-scale",
            "0",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        RemoteEmulator(url).wait_ready(timeout_s=20)
        client = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=url))
        assert client.models.generate_content(model=FLASH, contents="hi").text
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    events = [json.loads(line)["event"] for line in stderr.splitlines() if line.startswith("{")]
    assert events[0] == "emulator_started"
    assert "emulator_stopped" in events


def test_cli_bad_profile_exits_2(tmp_path: Path) -> None:
    """A broken profile file is reported and the command exits 2."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: {x: {ttft_median_s: fast}}\n", encoding="utf-8")
    exe = Path(sys.executable).with_name("gemini-slo")
    done = subprocess.run(
        [str(exe), "emulate", "--profile", str(bad), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "ttft_median_s" in done.stderr


def test_sigint_also_stops() -> None:
    """SIGINT (Ctrl-C) stops the server cleanly too."""
    port = _free_port()
    exe = Path(sys.executable).with_name("gemini-slo")
    proc = subprocess.Popen([str(exe), "emulate", "--port", str(port)], stderr=subprocess.DEVNULL)
    try:
        RemoteEmulator(f"http://127.0.0.1:{port}").wait_ready(timeout_s=20)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
