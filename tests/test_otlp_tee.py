"""gemini_slo.lab.otlp_tee: the same bytes to every receiver, the first receiver's answer back."""

from __future__ import annotations

import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from gemini_slo.lab.otlp_tee import OtlpTee
from gemini_slo.lab.stack import free_port


class _Receiver:
    """A stand-in receiver that records bodies and headers and answers with a fixed status."""

    def __init__(self, status: int, answer: bytes) -> None:
        self.requests: list[tuple[str, bytes, dict[str, str]]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                owner.requests.append((self.path, body, dict(self.headers)))
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/metrics"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Any:
    """An accepting receiver and one answering 503, stopped after the test."""
    made = [_Receiver(200, b"ok-first"), _Receiver(503, b"busy")]
    yield made
    for r in made:
        r.close()


def _post(url: str, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_every_target_gets_the_same_bytes_and_the_app_the_first_answer(receivers: Any) -> None:
    """Body and decoding headers reach both; status and body come from the first target."""
    first, second = receivers
    body = bytes(range(256)) * 10
    with OtlpTee([first.url, second.url]) as tee:
        status, answer = _post(f"{tee.url}/v1/metrics", body)
        assert (status, answer) == (200, b"ok-first")
        assert tee.forwarded == {first.url: 1, second.url: 1}
        assert tee.failures == {second.url: 1}  # the 503
    for receiver in receivers:
        [(path, got, headers)] = receiver.requests
        assert (path, got) == ("/v1/metrics", body)
        assert headers["Content-Type"] == "application/x-protobuf"
        assert headers["Content-Encoding"] == "gzip"


def test_an_unreachable_target_is_counted_and_the_others_still_served(receivers: Any) -> None:
    """A target that is down fails on its own; the app still gets the first target's answer."""
    first, _ = receivers
    down = f"http://127.0.0.1:{free_port()}/v1/metrics"
    with OtlpTee([first.url, down]) as tee:
        assert _post(f"{tee.url}/v1/metrics", b"x")[0] == 200
        assert tee.failures == {down: 1}
    with OtlpTee([down, first.url]) as tee:
        assert _post(f"{tee.url}/v1/metrics", b"x")[0] == 502
        assert len(first.requests) == 2
