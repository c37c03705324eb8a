"""The agent's HTTP side (aiohttp): OTLP receiver, ``/metrics``, health, ``/api/slo``.

Endpoints (every one on both listeners; by default the OTLP one is 127.0.0.1:4318 and the
scrape one 127.0.0.1:9464):

* ``POST /v1/metrics``: OTLP/HTTP, protobuf or JSON, optionally gzip. 200 with an
  ``ExportMetricsServiceResponse`` (``partial_success`` when points were rejected or
  folded into an overflow series), 400 for a body that does not decode, 401 without the
  bearer token (when one is set), 413 for a body over ``max_body_bytes`` or one that
  decompresses to more than ``max_decompressed_bytes``, 415 for another content type or
  encoding, 503 while shutting down (retryable, per the OTLP specification).
* ``GET /metrics``: the Prometheus text exposition (token required when one is set).
* ``GET /api/slo``: JSON SLO status per workload (token required when one is set).
* ``GET /``: the SLO page for a person (``page.py``; token as above).
* ``GET /healthz`` (the process is up), ``GET /readyz`` (listening and not shutting down).

Ingest and scrapes run on the event loop thread: decoding and merging are CPU-bound
and short, and a single thread needs no coordination with the store beyond its lock.
Shutdown (SIGTERM) first turns ``/readyz`` to 503 and refuses new exports with 503, then
stops listening and waits for the requests in flight to be answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiohttp import web
from gemini_slo.agent import page
from gemini_slo.agent.exposition import StoreCollector, make_registry
from gemini_slo.agent.history import History
from gemini_slo.agent.otlp_decode import (
    GRPC_CODES,
    RESPONSE_CONTENT_TYPE,
    BodyError,
    Encoding,
    decode_request,
    encode_response,
    encode_status,
    encoding_of,
    gunzip,
)
from gemini_slo.agent.self_metrics import SelfMetrics
from gemini_slo.agent.slo_status import CURRENT_WINDOW, SloStatus
from gemini_slo.agent.store import Store, StoreLimits
from gemini_slo.agent.windows import Windows
from gemini_slo.contract.spec import SloSpec
from prometheus_client.exposition import CONTENT_TYPE_LATEST

log = structlog.get_logger("gemini_slo.agent")

_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """Everything the agent needs besides the spec. Port 0 picks a free port."""

    otlp_host: str = "127.0.0.1"
    otlp_port: int = 4318
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9464
    token: str | None = field(default=None, repr=False)  # a repr lands in logs and tracebacks
    max_body_bytes: int = 8 * 1024 * 1024
    max_decompressed_bytes: int = 64 * 1024 * 1024
    limits: StoreLimits = field(default_factory=StoreLimits)
    snapshot_interval: float = 5.0
    maintenance_interval: float = 5.0
    shutdown_timeout: float = 10.0
    current_window: str = CURRENT_WINDOW  # the time frame of current values and met
    prometheus_url: str | None = None  # the page lists this Prometheus' alerts


class Agent:
    """One agent: store, windows, collector, SLO status and the aiohttp server."""

    def __init__(self, config: AgentConfig, spec: SloSpec | None = None) -> None:
        self.config = config
        self.self_metrics = SelfMetrics()
        self.windows = Windows(snapshot_interval=config.snapshot_interval)
        self.store = Store(config.limits, windows=self.windows, self_metrics=self.self_metrics)
        self.slo = SloStatus(spec, self.store, config.current_window)
        self.history = History(self.slo)
        self.collector = StoreCollector(self.store, extra=self.slo.metrics)
        self.registry = make_registry(self.collector)
        self.ready = False
        self.draining = False
        self._runner: web.AppRunner | None = None
        self._maintenance: asyncio.Task[None] | None = None
        self._history_task: asyncio.Task[None] | None = None
        self.otlp_port = config.otlp_port
        self.metrics_port = config.metrics_port
        self._log_times: dict[str, float] = {}
        self._in_flight = 0
        self._idle = asyncio.Event()

    # ---- lifecycle --------------------------------------------------------------------

    def make_app(self) -> web.Application:
        """The aiohttp application (routes only; no listener)."""
        # client_max_size only matters for request.read(); bodies are read by hand below.
        app = web.Application(client_max_size=self.config.max_body_bytes + 1)
        app.router.add_post("/v1/metrics", self.handle_export)
        app.router.add_get("/metrics", self.handle_metrics)
        app.router.add_get("/api/slo", self.handle_slo)
        app.router.add_get("/healthz", self.handle_healthz)
        app.router.add_get("/readyz", self.handle_readyz)
        app.router.add_get("/", self.handle_page)
        return app

    async def start(self) -> None:
        """Bind the listeners and start maintenance. Ports 0 are resolved to real ports."""
        runner = web.AppRunner(
            self.make_app(),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=self.config.shutdown_timeout,
            # The agent inflates gzip itself, incrementally and with a cap (gzip bombs).
            auto_decompress=False,
        )
        await runner.setup()
        self._runner = runner
        otlp = web.TCPSite(runner, self.config.otlp_host, self.config.otlp_port)
        await otlp.start()
        self.otlp_port = _bound_port(otlp)
        same = (self.config.metrics_host, self.config.metrics_port) == (
            self.config.otlp_host,
            self.config.otlp_port,
        ) and self.config.otlp_port != 0
        if same:
            self.metrics_port = self.otlp_port
        else:
            site = web.TCPSite(runner, self.config.metrics_host, self.config.metrics_port)
            await site.start()
            self.metrics_port = _bound_port(site)
        self._maintenance = asyncio.create_task(self._maintain())
        self._history_task = asyncio.create_task(self._record_history())
        self.ready = True
        log.info(
            "agent started",
            otlp=f"http://{self.config.otlp_host}:{self.otlp_port}/v1/metrics",
            metrics=f"http://{self.config.metrics_host}:{self.metrics_port}/metrics",
            page=f"http://{self.config.metrics_host}:{self.metrics_port}/",
            auth=self.config.token is not None,
            workloads=[w.name for w in self.slo.spec.workloads] if self.slo.spec else [],
        )

    async def stop(self) -> None:
        """Stop: not ready, refuse new exports, answer those in flight, close listeners."""
        self.ready = False
        self.draining = True
        if self._maintenance is not None:
            self._maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._maintenance
        if self._history_task is not None:
            self._history_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._history_task
        # Drain first, while still listening: aiohttp's own graceful shutdown stops reading
        # from connections, so an export whose body is still arriving would never finish.
        # New exports get 503 (retryable) meanwhile.
        if self._in_flight:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), self.config.shutdown_timeout)
        if self._runner is not None:
            await self._runner.cleanup()  # stops listening, then waits for handlers left
            self._runner = None
        log.info("agent stopped", series=self.store.series_count())

    async def _maintain(self) -> None:
        interval = self.config.maintenance_interval
        while True:
            await asyncio.sleep(min(interval, self.config.snapshot_interval))
            with self.store.lock:
                self.windows.tick()
            dropped = self.store.expire()
            if dropped:
                log.info("series expired", count=dropped)

    async def _record_history(self) -> None:
        # A snapshot at once (the base of every window), then one per interval.
        while True:
            try:
                self.history.sample()
            except Exception:  # a bug here must not end the loop, nor the agent
                log.warning("history sample failed", exc_info=True)
            await asyncio.sleep(self.history.settings.interval)

    # ---- helpers ----------------------------------------------------------------------

    def _authorized(self, request: web.Request) -> bool:
        token = self.config.token
        if token is None:
            return True
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        # surrogateescape: aiohttp decodes header bytes that are not UTF-8 that way, and a
        # garbled header is a 401, not a 500.
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode("utf-8", "surrogateescape"), token.encode()
        )

    def _log_rejection(self, reason: str, message: str, peer: str | None) -> None:
        # At most one line per reason per second: a flood of bad requests must not
        # become a flood of logs. Never the body, never the token.
        now = time.monotonic()
        if now - self._log_times.get(reason, 0.0) >= 1.0:
            self._log_times[reason] = now
            log.warning("export rejected", reason=reason, error=message, peer=peer)

    def _refuse(
        self, status: int, reason: str, message: str, encoding: Encoding | None, peer: str | None
    ) -> web.Response:
        self.self_metrics.rejected_requests[reason] += 1
        self.self_metrics.requests[(encoding.value if encoding else "unknown", "rejected")] += 1
        # A parser's message may quote the body ("invalid literal ... 'the value'"): the
        # client gets it, the log only its first part (never the body).
        logged = message.split(":", 1)[0] if reason == "malformed" else message
        self._log_rejection(reason, logged, peer)
        body, content_type = encode_status(GRPC_CODES.get(status, 2), message, encoding)
        headers = {"Content-Type": content_type}
        if status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="gemini-slo"'
        if status == 503:
            headers["Retry-After"] = "1"
        return web.Response(status=status, body=body, headers=headers)

    async def _read_body(self, request: web.Request) -> bytes:
        limit = self.config.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise BodyError(413, "too_large", f"body exceeds the limit of {limit} bytes")
        chunks = bytearray()
        try:
            async for chunk in request.content.iter_chunked(_CHUNK):
                chunks += chunk
                if len(chunks) > limit:
                    raise BodyError(413, "too_large", f"body exceeds the limit of {limit} bytes")
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            raise BodyError(400, "truncated", f"truncated body: {exc}") from None
        except Exception as exc:  # aiohttp's payload errors (ClientPayloadError & co)
            if isinstance(exc, BodyError):
                raise
            raise BodyError(400, "truncated", f"unreadable body: {type(exc).__name__}") from None
        return bytes(chunks)

    # ---- handlers ---------------------------------------------------------------------

    async def handle_export(self, request: web.Request) -> web.Response:
        """POST /v1/metrics (counted as in flight until answered, for the shutdown drain)."""
        self._in_flight += 1
        self._idle.clear()
        try:
            return await self._export(request)
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    async def _export(self, request: web.Request) -> web.Response:
        peer = request.remote
        encoding: Encoding | None = None
        try:
            encoding = encoding_of(request.headers.get("Content-Type"))
            if not self._authorized(request):
                return self._refuse(
                    401, "unauthorized", "missing or invalid bearer token", encoding, peer
                )
            if self.draining:
                return self._refuse(
                    503, "shutting_down", "the agent is shutting down", encoding, peer
                )
            content_encoding = request.headers.get("Content-Encoding", "").strip().lower()
            if content_encoding not in ("", "identity", "gzip"):
                raise BodyError(
                    415,
                    "content_encoding",
                    f"unsupported Content-Encoding {content_encoding!r}: use gzip",
                )
            body = await self._read_body(request)
            if content_encoding == "gzip":
                body = gunzip(body, self.config.max_decompressed_bytes)
            message = decode_request(body, encoding)
        except BodyError as exc:
            if exc.status == 415 and encoding is None and not self._authorized(request):
                return self._refuse(
                    401, "unauthorized", "missing or invalid bearer token", None, peer
                )
            return self._refuse(exc.status, exc.reason, exc.message, encoding, peer)
        result = self.store.ingest(message, encoding.value)
        outcome = "partial" if result.rejected else "ok"
        self.self_metrics.requests[(encoding.value, outcome)] += 1
        note = result.error_message()
        if result.overflowed:
            overflow_note = (
                f"{result.overflowed} points folded into overflow series "
                f'(otel_metric_overflow="true"): cardinality limit of '
                f"{self.config.limits.max_series_per_metric} series per metric reached"
            )
            note = f"{note}; {overflow_note}" if note else overflow_note
        if result.rejected:
            self._log_rejection("points", note, peer)
        return web.Response(
            status=200,
            body=encode_response(result.rejected, note, encoding),
            content_type=RESPONSE_CONTENT_TYPE[encoding],
        )

    async def handle_metrics(self, request: web.Request) -> web.Response:
        """GET /metrics."""
        if not self._authorized(request):
            return web.Response(
                status=401,
                text="missing or invalid bearer token\n",
                headers={"WWW-Authenticate": 'Bearer realm="gemini-slo"'},
            )
        started = time.perf_counter()
        body = self.collector.render()
        self.self_metrics.observe_scrape(time.perf_counter() - started)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def handle_slo(self, request: web.Request) -> web.Response:
        """GET /api/slo."""
        if not self._authorized(request):
            return web.json_response(
                {"error": "missing or invalid bearer token"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="gemini-slo"'},
            )
        status: dict[str, Any] = self.slo.status()
        return web.Response(
            text=json.dumps(status, allow_nan=False, default=str), content_type="application/json"
        )

    async def handle_page(self, request: web.Request) -> web.Response:
        """GET /: the SLO page."""
        if not self._authorized(request):
            return web.Response(
                status=401,
                text="missing or invalid bearer token\n",
                headers={"WWW-Authenticate": 'Bearer realm="gemini-slo"'},
            )
        html = await page.gather(
            self.slo,
            self.history,
            prometheus_url=self.config.prometheus_url,
            advisor=getattr(self, "advisor", None),  # the mode advisor, where the agent has it
        )
        return web.Response(text=html, content_type="text/html", headers=page.HEADERS)

    async def handle_healthz(self, request: web.Request) -> web.Response:
        """GET /healthz: the process answers."""
        return web.Response(text="ok\n")

    async def handle_readyz(self, request: web.Request) -> web.Response:
        """GET /readyz: listening and not shutting down."""
        if self.ready and not self.draining:
            return web.Response(text="ready\n")
        return web.Response(status=503, text="not ready\n")


def _bound_port(site: web.TCPSite) -> int:
    server = site._server  # aiohttp keeps the asyncio server here; the public name is absent
    sockets = getattr(server, "sockets", None) or []
    if sockets:
        return int(sockets[0].getsockname()[1])
    return int(site._port)
