"""A webhook receiver for Alertmanager: records every notification it is sent.

Alertmanager's ``webhook_configs`` POST a JSON body per notification (a group of alerts,
``status`` firing or resolved, each alert with ``labels``, ``annotations``, ``startsAt``,
``endsAt``). The demo prints each page as it arrives; the full-stack test waits on them.
It runs ``http.server`` in a daemon thread, so it needs no event loop and costs nothing
while idle.

>>> with WebhookReceiver() as hook:               # doctest: +SKIP
...     alertmanager_url = hook.url               # put it into alertmanager.yaml
...     alert = hook.wait_for(lambda a: a.firing and a.severity == "critical", timeout=120)
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: Largest notification body accepted; Alertmanager groups are small.
MAX_BODY = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ReceivedAlert:
    """One alert of one notification, with the time (``time.time()``) it arrived here."""

    received_at: float
    receiver: str
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: str
    ends_at: str

    @property
    def name(self) -> str:
        """The ``alertname`` label."""
        return self.labels.get("alertname", "")

    @property
    def severity(self) -> str:
        """The ``severity`` label ("critical" pages, "warning" tickets)."""
        return self.labels.get("severity", "")

    @property
    def firing(self) -> bool:
        """True for a firing alert, False for a resolved one."""
        return self.status == "firing"

    def describe(self) -> str:
        """One line for a terminal: status, name, severity, a few labels, the summary."""
        skip = {"alertname", "severity"}
        labels = ", ".join(f"{k}={v}" for k, v in sorted(self.labels.items()) if k not in skip)
        summary = self.annotations.get("summary", "")
        return f"[{self.status.upper()}] {self.name} ({self.severity}) {{{labels}}} {summary}"


Listener = Callable[[ReceivedAlert], None]


@dataclass
class _State:
    lock: threading.Condition = field(default_factory=threading.Condition)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[ReceivedAlert] = field(default_factory=list)
    listeners: list[Listener] = field(default_factory=list)


def _parse(body: dict[str, Any], received_at: float) -> list[ReceivedAlert]:
    receiver = str(body.get("receiver", ""))
    out: list[ReceivedAlert] = []
    for alert in body.get("alerts") or []:
        if not isinstance(alert, dict):
            continue
        out.append(
            ReceivedAlert(
                received_at=received_at,
                receiver=receiver,
                status=str(alert.get("status", body.get("status", ""))),
                labels={str(k): str(v) for k, v in (alert.get("labels") or {}).items()},
                annotations={str(k): str(v) for k, v in (alert.get("annotations") or {}).items()},
                starts_at=str(alert.get("startsAt", "")),
                ends_at=str(alert.get("endsAt", "")),
            )
        )
    return out


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0 or length > MAX_BODY:
            self.send_error(400 if length <= 0 else 413)
            return
        try:
            body = json.loads(self.rfile.read(length))
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError:
            self.send_error(400, "body is not a JSON object")
            return
        self.server.record(body)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        # A health check, handy when wiring Alertmanager by hand.
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"gemini-slo webhook receiver\n")

    def log_message(self, format: str, *args: Any) -> None:
        """Silence http.server's per-request stderr lines."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: _State) -> None:
        super().__init__(address, _Handler)
        self.state = state

    def record(self, body: dict[str, Any]) -> None:
        alerts = _parse(body, time.time())
        with self.state.lock:
            self.state.notifications.append(body)
            self.state.alerts.extend(alerts)
            listeners = list(self.state.listeners)
            self.state.lock.notify_all()
        # Listeners run outside the lock: a slow print must not block Alertmanager's POST.
        for alert in alerts:
            for listener in listeners:
                listener(alert)


class WebhookReceiver:
    """An Alertmanager webhook endpoint on 127.0.0.1 that records what it receives."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, path: str = "/alerts") -> None:
        self._state = _State()
        self._server = _Server((host, port), self._state)
        self._thread: threading.Thread | None = None
        self.path = path

    @property
    def url(self) -> str:
        """The URL to put into Alertmanager's ``webhook_configs``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{self.path}"

    def start(self) -> WebhookReceiver:
        """Serve in a daemon thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, name="gemini-slo-webhook", daemon=True
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

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(alert)`` for every alert received from now on (in the server thread)."""
        with self._state.lock:
            self._state.listeners.append(listener)

    @property
    def alerts(self) -> list[ReceivedAlert]:
        """Every alert received so far, in arrival order (a copy)."""
        with self._state.lock:
            return list(self._state.alerts)

    @property
    def notifications(self) -> list[dict[str, Any]]:
        """Every notification body received so far (a copy of the list)."""
        with self._state.lock:
            return list(self._state.notifications)

    def wait_for(
        self, predicate: Callable[[ReceivedAlert], bool], timeout: float, since: float = 0.0
    ) -> ReceivedAlert | None:
        """The first alert received at or after ``since`` that matches, waiting up to ``timeout``.

        Returns None on timeout. ``since`` is a ``time.time()`` value.
        """
        deadline = time.monotonic() + timeout
        with self._state.lock:
            while True:
                for alert in self._state.alerts:
                    if alert.received_at >= since and predicate(alert):
                        return alert
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._state.lock.wait(timeout=min(left, 1.0))
