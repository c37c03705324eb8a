"""An OTLP/HTTP tee: every export request it receives goes, byte for byte, to several receivers.

For comparing two receivers on the same traffic (the agent and VictoriaMetrics, in the
name-equality test): point the apps at :attr:`OtlpTee.url` (``configure(endpoint=...)``
appends ``/v1/metrics``) and give the tee the receivers' full metrics URLs. Each request is
forwarded to every target in turn with its body and its ``Content-Type`` and
``Content-Encoding``; the app gets the first target's answer (status, body, type), so
retries and partial-success handling stay those of the first receiver. A target that
fails is counted in :attr:`OtlpTee.failures`, never retried.

It runs ``http.server`` in a daemon thread (no event loop), on 127.0.0.1.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: Largest export request forwarded (the agent's own default limit is lower).
MAX_BODY = 64 * 1024 * 1024
#: Forwarded headers: what a receiver needs to decode the body.
_FORWARDED = ("Content-Type", "Content-Encoding")
#: Every target is on 127.0.0.1: never through an HTTP(S)_PROXY of the environment.
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_BODY:
            self.send_error(413)
            return
        body = self.rfile.read(length)
        headers = {h: v for h in _FORWARDED if (v := self.headers.get(h))}
        status, answer, content_type = 502, b"", "text/plain"
        for index, target in enumerate(self.server.targets):
            result = self.server.forward(target, body, headers)
            if index == 0 and result is not None:
                status, answer, content_type = result
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence http.server's per-request stderr lines."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], targets: Sequence[str]) -> None:
        super().__init__(address, _Handler)
        self.targets = list(targets)
        self.lock = threading.Lock()
        self.forwarded: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()

    def forward(
        self, target: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes, str] | None:
        request = urllib.request.Request(target, data=body, headers=headers, method="POST")
        try:
            with _LOCAL.open(request, timeout=30) as response:
                result = (
                    response.status,
                    response.read(),
                    response.headers.get("Content-Type", ""),
                )
        except urllib.error.HTTPError as exc:
            # An answer all the same (400, 413, 429, 503): counted and passed on.
            result = (exc.code, exc.read(), exc.headers.get("Content-Type", ""))
        except (urllib.error.URLError, OSError, ValueError):
            with self.lock:
                self.failures[target] += 1
            return None
        with self.lock:
            self.forwarded[target] += 1
            if not 200 <= result[0] < 300:
                self.failures[target] += 1
        return result


class OtlpTee:
    """Receive OTLP/HTTP on 127.0.0.1 and forward each request to every one of ``targets``."""

    def __init__(self, targets: Sequence[str], host: str = "127.0.0.1", port: int = 0) -> None:
        if not targets:
            raise ValueError("an OTLP tee needs at least one target")
        self._server = _Server((host, port), targets)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL for ``configure(endpoint=...)`` (the exporter appends ``/v1/metrics``)."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def forwarded(self) -> dict[str, int]:
        """Requests each target answered (any status), by target URL."""
        with self._server.lock:
            return dict(self._server.forwarded)

    @property
    def failures(self) -> dict[str, int]:
        """Requests each target did not take (no answer, or not 2xx), by target URL."""
        with self._server.lock:
            return dict(self._server.failures)

    def start(self) -> OtlpTee:
        """Serve in a daemon thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, name="gemini-slo-otlp-tee", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket. Idempotent."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> OtlpTee:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
