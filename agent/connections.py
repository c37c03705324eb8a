"""Listeners with a cap on open connections, below the file-descriptor limit.

aiohttp's server has a keep-alive timeout (which also bounds how long a connection may take
to send a complete request header: its timer only stops while a request is handled),
a lingering time, header size limits, and a body size limit for ``request.read()``; it has
no cap on connections. Each one costs a descriptor, and once they run out ``accept()``
fails in a loop that logs a traceback each time, while ``/metrics`` cannot be reached.

Here each listener is a plain asyncio server whose protocol factory counts the connections
it holds. Past the cap a new connection gets a fixed ``503`` with ``Retry-After`` and is
closed at once: it holds a descriptor for a moment, never for long. The scrape listener
has its own cap, so a flood on the OTLP port cannot keep Prometheus out.
"""

from __future__ import annotations

import asyncio
import resource
from collections.abc import Callable
from typing import Any

#: Descriptors left for everything but client connections: listeners, the event loop,
#: the worker threads, the state file, logs, and headroom.
FD_RESERVE = 128
#: The scrape listener's own cap (Prometheus, a status command, a few health probes).
SCRAPE_CONNECTIONS = 64

_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Retry-After: 1\r\n"
    b"Connection: close\r\n"
    b"Content-Length: 30\r\n"
    b"\r\n"
    b"too many connections to agent\n"
)


def default_max_connections(scrape_connections: int = SCRAPE_CONNECTIONS) -> int:
    """The OTLP listener's cap: the soft descriptor limit minus the scrape cap and a reserve.

    With the usual soft limit of 1,024 descriptors: 832 connections.
    """
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        soft = 65_536
    return max(16, soft - scrape_connections - FD_RESERVE)


class Gate:
    """The connections one listener holds, its cap, and how many it refused."""

    __slots__ = ("limit", "name", "open", "refused")

    def __init__(self, name: str, limit: int) -> None:
        self.name = name
        self.limit = limit
        self.open = 0
        self.refused = 0


class _Counted(asyncio.Protocol):
    """Passes every event to aiohttp's protocol; gives the connection's slot back at the end."""

    __slots__ = ("_gate", "_inner", "_released")

    def __init__(self, inner: asyncio.Protocol, gate: Gate) -> None:
        self._inner = inner
        self._gate = gate
        self._released = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._released:
            self._released = True
            self._gate.open -= 1
        self._inner.connection_lost(exc)


class _Refused(asyncio.Protocol):
    """Answers 503 and closes: the listener holds its cap."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(_BUSY)
        transport.close()


async def listen(
    make_protocol: Callable[[], Any], gate: Gate, host: str, port: int
) -> asyncio.Server:
    """An asyncio server on ``host:port`` whose connections are counted by ``gate``.

    The count is taken when the connection is accepted (before its ``connection_made``),
    so a burst accepted in one go cannot overshoot the cap.
    """

    def factory() -> asyncio.Protocol:
        if gate.open >= gate.limit:
            gate.refused += 1
            return _Refused()
        gate.open += 1
        return _Counted(make_protocol(), gate)

    loop = asyncio.get_running_loop()
    return await loop.create_server(factory, host, port, reuse_address=True)


def bound_port(server: asyncio.Server) -> int:
    """The port a server listens on (the one the OS picked for port 0)."""
    return int(server.sockets[0].getsockname()[1])
