"""The agent's HTTP side (aiohttp): OTLP receiver, ``/metrics``, health, ``/api/slo``.

Endpoints (every one on both listeners; by default the OTLP one is 127.0.0.1:4318 and the
scrape one 127.0.0.1:9464):

* ``POST /v1/metrics``: OTLP/HTTP, protobuf or JSON, optionally gzip. 200 with an
  ``ExportMetricsServiceResponse`` (``partial_success`` when points were rejected or
  folded into an overflow series), 400 for a body that does not decode or breaks a
  structural limit, 401 without the bearer token (when one is set), 408 for a body that
  does not arrive in time, 413 for a body over ``max_body_bytes`` or over a limit of
  :class:`~gemini_slo.agent.otlp_decode.RequestLimits`, 415 for another content type or
  encoding, 503 while shutting down or too busy (retryable, per the OTLP specification).
* OTLP/gRPC ``MetricsService/Export`` on its own listener when ``grpc_port`` is set
  (:mod:`gemini_slo.agent.grpc_server`: the same decoding, limits, token and answers).
* ``GET /metrics``: the Prometheus exposition, in the format the scraper's Accept header
  asks for (:mod:`gemini_slo.agent.formats`); token required when one is set.
* ``GET /api/slo``: JSON SLO status per workload (token required when one is set).
* ``GET /api/advice?window=1h``: the mode advisor's JSON (``advice.py``; token as above);
  ``pool=NAME:MODEL,MODEL`` (repeatable) names models that share a pool.
* ``GET /``: the SLO page for a person (``page.py``; token as above).
* ``GET /healthz`` (the process is up), ``GET /readyz`` (listening and not shutting down).

The event loop only moves bytes: decoding, merging, rendering and the periodic work run
in bounded worker pools (:mod:`gemini_slo.agent.workers`), so ``/healthz``, ``/readyz``
and ``/metrics`` keep answering while a hostile body is refused. Slow clients are bounded
by time: a connection must send a complete request header within ``header_timeout`` of
opening or of its previous response (aiohttp's keep-alive timer, which is also the idle
keep-alive), and a body must arrive within ``body_timeout`` with no pause longer than
``body_idle_timeout`` (408 otherwise). Each listener caps its open connections below the
descriptor limit (:mod:`gemini_slo.agent.connections`), and log lines are rate-limited
(:mod:`gemini_slo.agent.log_limits`).

Shutdown (SIGTERM) has one deadline, ``shutdown_grace`` seconds: ``/readyz`` turns 503, the
listeners stop accepting, exports already being received are answered (503 for new
requests on open connections), then what is left is closed, the workers finish the job in
hand and the state file is written a last time.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import structlog
from aiohttp import web
from gemini_slo.agent import connections, exposition_proto, grpc_server, page, state_file
from gemini_slo.agent.advisor import Advisor
from gemini_slo.agent.exposition import StoreCollector, make_registry
from gemini_slo.agent.formats import Format, negotiate
from gemini_slo.agent.history import History
from gemini_slo.agent.log_limits import LogLimiter, limit_library_logs
from gemini_slo.agent.otlp_decode import (
    GRPC_CODES,
    RESPONSE_CONTENT_TYPE,
    BodyError,
    Encoding,
    RequestLimits,
    decode_body,
    encode_response,
    encode_status,
    encoding_of,
)
from gemini_slo.agent.self_metrics import SelfMetrics
from gemini_slo.agent.slo_status import CURRENT_WINDOW, SloStatus
from gemini_slo.agent.store import IngestResult, Store, StoreLimits
from gemini_slo.agent.windows import Windows
from gemini_slo.agent.workers import Busy, WorkerPool
from gemini_slo.contract import otlp_limits
from gemini_slo.contract.spec import SloSpec

log = structlog.get_logger("gemini_slo.agent")

#: How long aiohttp keeps reading (and discarding) the rest of a body after an early
#: answer (a 413, a 408), so that the client reads the answer rather than a reset.
_LINGER_SECONDS = 2.0
#: After the drain, how long aiohttp waits for a handler before cancelling it (twice).
_CANCEL_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """Everything the agent needs besides the spec. Port 0 picks a free port.

    Limits and timeouts, and why these defaults, are in docs/agent.md.
    """

    otlp_host: str = "127.0.0.1"
    otlp_port: int = 4318
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9464
    #: The OTLP/gRPC listener (``grpc_server.py``); None: none. The CLI's default is
    #: 127.0.0.1:4317; the library's is none, so that agents in one process never collide.
    grpc_host: str = "127.0.0.1"
    grpc_port: int | None = None
    token: str | None = field(default=None, repr=False)  # a repr lands in logs and tracebacks
    max_body_bytes: int = otlp_limits.MAX_REQUEST_BYTES
    requests: RequestLimits = field(default_factory=RequestLimits)
    limits: StoreLimits = field(default_factory=StoreLimits)
    snapshot_interval: float = 5.0
    maintenance_interval: float = 5.0
    #: SIGTERM to exit, at most (plus the last state-file write).
    shutdown_grace: float = 5.0
    #: A complete request header within this long of connecting or of the last response;
    #: also how long an idle keep-alive connection stays open.
    header_timeout: float = 15.0
    #: A whole body within this long, and no pause longer than ``body_idle_timeout``.
    body_timeout: float = 30.0
    body_idle_timeout: float = 10.0
    #: Open connections on the OTLP listener (None: the descriptor limit minus 192).
    max_connections: int | None = None
    max_scrape_connections: int = connections.SCRAPE_CONNECTIONS
    #: Worker threads for decoding and merging exports, and how many exports may wait.
    workers: int = 2
    max_pending_exports: int = 16
    #: Request bodies held in memory at once (being read, waiting or being decoded).
    max_buffered_bytes: int = 64 * 1024 * 1024
    state_file: Path | None = None
    state_interval: float = 10.0
    #: At most one log line of a kind per this many seconds.
    log_interval: float = 10.0
    current_window: str = CURRENT_WINDOW  # the time frame of current values and met
    prometheus_url: str | None = None  # the page lists this Prometheus' alerts


class _Reservation:
    """Bytes of one request counted against the agent's ``max_buffered_bytes``."""

    __slots__ = ("agent", "held")

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.held = 0

    def add(self, n: int) -> bool:
        self.held += n
        self.agent.buffered_bytes += n
        return self.agent.buffered_bytes <= self.agent.config.max_buffered_bytes

    def release(self) -> None:
        self.agent.buffered_bytes -= self.held
        self.held = 0


class Agent:
    """One agent: store, windows, collector, SLO status, worker pools and listeners."""

    def __init__(self, config: AgentConfig, spec: SloSpec | None = None) -> None:
        self.config = config
        self.self_metrics = SelfMetrics()
        self.windows = Windows(snapshot_interval=config.snapshot_interval)
        self.store = Store(
            config.limits, windows=self.windows, self_metrics=self.self_metrics, spec=spec
        )
        self.slo = SloStatus(spec, self.store, config.current_window)
        self.history = History(self.slo)
        self.advisor = Advisor(self.store, spec)
        self.collector = StoreCollector(
            self.store, extra=lambda: [*self.slo.metrics(), *self.advisor.metrics()]
        )
        self.registry = make_registry(self.collector)
        self.log_limiter = LogLimiter(config.log_interval)
        self.ingest_pool = WorkerPool("ingest", config.workers, config.max_pending_exports)
        # Scrapes, /api/slo and maintenance: one thread, so that they never wait behind
        # exports (only, briefly, for the store's lock).
        self.read_pool = WorkerPool("read", 1, config.max_scrape_connections + 4)
        limit = config.max_connections or connections.default_max_connections(
            config.max_scrape_connections
        )
        self.otlp_gate = connections.Gate("otlp", limit)
        self.metrics_gate = connections.Gate("metrics", config.max_scrape_connections)
        self.ready = False
        self.draining = False
        self.buffered_bytes = 0
        self._runner: web.AppRunner | None = None
        self._servers: list[asyncio.Server] = []
        self._maintenance: asyncio.Task[None] | None = None
        self._next_state_write = 0.0
        self._history_task: asyncio.Task[None] | None = None
        self.otlp_port = config.otlp_port
        self.metrics_port = config.metrics_port
        self.grpc_port: int | None = None  # bound port of the OTLP/gRPC listener, if any
        self._grpc: grpc.aio.Server | None = None
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    # ---- lifecycle --------------------------------------------------------------------

    def make_app(self) -> web.Application:
        """The aiohttp application (routes only; no listener)."""
        # client_max_size only matters for request.read(); bodies are read by hand below.
        app = web.Application(client_max_size=self.config.max_body_bytes + 1)
        app.router.add_post("/v1/metrics", self.handle_export)
        app.router.add_get("/metrics", self.handle_metrics)
        app.router.add_get("/api/slo", self.handle_slo)
        app.router.add_get("/api/advice", self.handle_advice)
        app.router.add_get("/healthz", self.handle_healthz)
        app.router.add_get("/readyz", self.handle_readyz)
        app.router.add_get("/", self.handle_page)
        return app

    async def start(self) -> None:
        """Load the state file, bind the listeners, start maintenance (ports 0 resolved)."""
        limit_library_logs(self.log_limiter)
        if self.config.state_file is not None:
            await asyncio.to_thread(self._load_state, self.config.state_file)
        runner = web.AppRunner(
            self.make_app(),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=_CANCEL_SECONDS,
            # The agent inflates gzip itself, incrementally and with a cap (gzip bombs).
            auto_decompress=False,
            keepalive_timeout=self.config.header_timeout,
            lingering_time=_LINGER_SECONDS,
        )
        await runner.setup()
        self._runner = runner
        assert runner.server is not None
        make_protocol = runner.server
        otlp = await connections.listen(
            make_protocol, self.otlp_gate, self.config.otlp_host, self.config.otlp_port
        )
        self._servers.append(otlp)
        self.otlp_port = connections.bound_port(otlp)
        same = (self.config.metrics_host, self.config.metrics_port) == (
            self.config.otlp_host,
            self.config.otlp_port,
        ) and self.config.otlp_port != 0
        if same:
            self.metrics_port = self.otlp_port
        else:
            scrape = await connections.listen(
                make_protocol,
                self.metrics_gate,
                self.config.metrics_host,
                self.config.metrics_port,
            )
            self._servers.append(scrape)
            self.metrics_port = connections.bound_port(scrape)
        if self.config.grpc_port is not None:
            self._grpc = grpc_server.make_server(self)
            address = f"{self.config.grpc_host}:{self.config.grpc_port}"
            try:
                self.grpc_port = self._grpc.add_insecure_port(address)
            except RuntimeError as exc:  # grpc's "failed to bind"
                raise OSError(f"cannot listen on {address} (OTLP/gRPC): {exc}") from None
            await self._grpc.start()
        self._next_state_write = time.monotonic() + self.config.state_interval
        self._maintenance = asyncio.create_task(self._maintain())
        self._history_task = asyncio.create_task(self._record_history())
        self.ready = True
        log.info(
            "agent started",
            otlp=f"http://{self.config.otlp_host}:{self.otlp_port}/v1/metrics",
            otlp_grpc=f"{self.config.grpc_host}:{self.grpc_port}" if self._grpc else None,
            metrics=f"http://{self.config.metrics_host}:{self.metrics_port}/metrics",
            page=f"http://{self.config.metrics_host}:{self.metrics_port}/",
            auth=self.config.token is not None,
            workloads=[w.name for w in self.slo.spec.workloads] if self.slo.spec else [],
            max_connections=self.otlp_gate.limit,
            state_file=str(self.config.state_file) if self.config.state_file else None,
        )

    async def stop(self) -> None:
        """Stop within ``shutdown_grace``: not ready, drain, close, last state write."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.shutdown_grace
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
        # Stop accepting, but keep reading the connections already open: an export whose
        # body is still arriving is answered. New requests on them get 503 (retryable).
        for server in self._servers:
            server.close()
        grpc_stopped: asyncio.Task[None] | None = None
        if self._grpc is not None:
            # Refuses new RPCs at once; those running are answered within the grace.
            grpc_stopped = asyncio.create_task(self._grpc.stop(max(0.0, deadline - loop.time())))
        if self._in_flight:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), max(0.0, deadline - loop.time()))
        if self._runner is not None:
            # Closes idle connections; handlers still running (a stalled body) are
            # cancelled after _CANCEL_SECONDS.
            await self._runner.cleanup()
            self._runner = None
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        if grpc_stopped is not None:
            await grpc_stopped
            self._grpc = None
        # The job in hand finishes (bounded by the request limits); queued ones are dropped
        # (their clients got no answer and retry).
        await asyncio.to_thread(self.ingest_pool.shutdown)
        await asyncio.to_thread(self.read_pool.shutdown)
        if self.config.state_file is not None:
            await asyncio.to_thread(self._save_state, self.config.state_file)
        log.info("agent stopped", series=self.store.series_count())

    async def _maintain(self) -> None:
        interval = min(self.config.maintenance_interval, self.config.snapshot_interval)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.read_pool.run(self._maintain_once)
            except Busy:
                continue  # scrapes hold the pool: the next round does it

    def _maintain_once(self) -> None:
        """Window snapshot, expiry, and the state file when due (on the read worker)."""
        with self.store.lock:
            self.windows.tick()
        self.advisor.sample()
        dropped = self.store.expire()
        if dropped:
            log.info("series expired", count=dropped)
        if self.config.state_file is not None and time.monotonic() >= self._next_state_write:
            self._next_state_write = time.monotonic() + self.config.state_interval
            self._save_state(self.config.state_file)

    def _save_state(self, path: Path) -> None:
        try:
            size = state_file.save(self.store, path)
        except OSError as exc:
            self.self_metrics.state_writes["error"] += 1
            self.log_limited("state", "state file not written", path=str(path), error=str(exc))
            return
        self.self_metrics.state_writes["ok"] += 1
        log.debug("state file written", path=str(path), bytes=size)

    def _load_state(self, path: Path) -> None:
        try:
            loaded = state_file.load(self.store, path)
        except FileNotFoundError:
            log.info("no state file yet: starting empty", path=str(path))
            return
        except (OSError, state_file.StateError) as exc:
            log.warning("state file unusable: starting empty", path=str(path), error=str(exc))
            return
        log.info(
            "state restored",
            path=str(path),
            series=loaded.series,
            dropped=loaded.dropped,
            age_seconds=round(loaded.age, 1),
        )

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
        return self.authorized(request.headers.get("Authorization", ""))

    def authorized(self, header: str) -> bool:
        """Whether an ``Authorization`` value carries the bearer token (always, if none set)."""
        token = self.config.token
        if token is None:
            return True
        scheme, _, given = header.partition(" ")
        # surrogateescape: aiohttp decodes header bytes that are not UTF-8 that way, and a
        # garbled header is a 401, not a 500.
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode("utf-8", "surrogateescape"), token.encode()
        )

    def log_limited(self, kind: str, event: str, **fields: Any) -> None:
        """Log ``event`` at most once per kind per ``log_interval`` (never a body or a token)."""
        # One line per kind per log_interval, saying how many were left out meanwhile: a
        # flood of bad requests must not become a flood of logs. Never a body or a token.
        left_out = self.log_limiter.allow(kind)
        if left_out is None:
            return
        if left_out:
            fields["left_out"] = left_out
        log.warning(event, **fields)

    def note_refusal(self, reason: str, message: str, transport: str, peer: str | None) -> None:
        """Count and log (rate-limited) an export refused as a whole, on either receiver."""
        self.self_metrics.rejected_requests[reason] += 1
        self.self_metrics.requests[(transport, "rejected")] += 1
        # A parser's message may quote the body ("invalid literal ... 'the value'"): the
        # client gets it, the log only its first part (never the body).
        logged = message.split(":", 1)[0] if reason == "malformed" else message
        self.log_limited(
            f"rejected:{reason}", "export rejected", reason=reason, error=logged, peer=peer
        )

    def _refuse(
        self, status: int, reason: str, message: str, encoding: Encoding | None, peer: str | None
    ) -> web.Response:
        self.note_refusal(reason, message, encoding.value if encoding else "unknown", peer)
        body, content_type = encode_status(GRPC_CODES.get(status, 2), message, encoding)
        headers = {"Content-Type": content_type}
        if status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="gemini-slo"'
        if status == 503:
            headers["Retry-After"] = "1"
        response = web.Response(status=status, body=body, headers=headers)
        if status == 408:
            response.force_close()  # the rest of that body may never come
        return response

    async def _read_body(self, request: web.Request, reservation: _Reservation) -> bytes:
        limit = self.config.max_body_bytes
        length = request.content_length
        if length is not None and length > limit:
            raise BodyError(413, "too_large", f"body exceeds the limit of {limit} bytes")
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + self.config.body_timeout
        chunks = bytearray()
        try:
            while True:
                wait = min(self.config.body_idle_timeout, deadline - loop.time())
                if wait <= 0:
                    raise TimeoutError
                async with asyncio.timeout(wait):
                    chunk = await request.content.readany()
                if not chunk:
                    break
                chunks += chunk
                if len(chunks) > limit:
                    raise BodyError(413, "too_large", f"body exceeds the limit of {limit} bytes")
                if not reservation.add(len(chunk)):
                    raise BodyError(503, "busy", "the agent holds too many request bodies: retry")
        except TimeoutError:
            expected = f" of {length}" if length is not None else ""
            raise BodyError(
                408,
                "body_timeout",
                f"request body incomplete after {loop.time() - started:.1f} s "
                f"({len(chunks)}{expected} bytes received)",
            ) from None
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            raise BodyError(400, "truncated", f"truncated body: {exc}") from None
        except Exception as exc:  # aiohttp's payload errors (ClientPayloadError & co)
            if isinstance(exc, BodyError):
                raise
            raise BodyError(400, "truncated", f"unreadable body: {type(exc).__name__}") from None
        return bytes(chunks)

    def decode_and_ingest(
        self, body: bytes, encoding: Encoding, gzipped: bool, transport: str | None = None
    ) -> IngestResult:
        """On an ingest worker: inflate, parse, check the limits, merge.

        The one path of every export, OTLP/HTTP or OTLP/gRPC (``transport`` labels the
        self-metrics; default the body encoding). A :class:`BodyError` when refused whole.
        """
        message = decode_body(body, encoding, gzipped, self.config.requests)
        del body  # the inflated copy and the parsed message are what remain
        return self.store.ingest(message, transport or encoding.value)

    # ---- handlers ---------------------------------------------------------------------

    async def handle_export(self, request: web.Request) -> web.Response:
        """POST /v1/metrics (counted as in flight until answered, for the shutdown drain)."""
        self.begin_export()
        reservation = _Reservation(self)
        try:
            return await self._export(request, reservation)
        finally:
            reservation.release()
            self.end_export()

    def begin_export(self) -> None:
        """Count an export as in flight (the shutdown drain waits for it)."""
        self._in_flight += 1
        self._idle.clear()

    def end_export(self) -> None:
        """The export begun last has been answered."""
        self._in_flight -= 1
        if not self._in_flight:
            self._idle.set()

    async def _export(self, request: web.Request, reservation: _Reservation) -> web.Response:
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
            body = await self._read_body(request, reservation)
            try:
                result = await self.ingest_pool.run(
                    self.decode_and_ingest, body, encoding, content_encoding == "gzip"
                )
            except Busy:
                raise BodyError(503, "busy", "the agent is busy: retry") from None
        except BodyError as exc:
            if exc.status == 415 and encoding is None and not self._authorized(request):
                return self._refuse(
                    401, "unauthorized", "missing or invalid bearer token", None, peer
                )
            return self._refuse(exc.status, exc.reason, exc.message, encoding, peer)
        note = self.answer_note(result, encoding.value, peer)
        return web.Response(
            status=200,
            body=encode_response(result.rejected, note, encoding),
            content_type=RESPONSE_CONTENT_TYPE[encoding],
        )

    def answer_note(self, result: IngestResult, transport: str, peer: str | None) -> str:
        """Count an accepted export and say what its partial success carries ("" if none).

        ``transport``: the self-metrics' encoding label (``protobuf``, ``json``, ``grpc``).
        Shared by the OTLP/HTTP and OTLP/gRPC receivers, so both answer alike.
        """
        outcome = "partial" if result.rejected else "ok"
        self.self_metrics.requests[(transport, outcome)] += 1
        note = result.error_message()
        if result.overflowed:
            overflow_note = (
                f"{result.overflowed} points folded into overflow series "
                f'(otel_metric_overflow="true"): a cardinality limit was reached '
                f"({self.store.cardinality.describe()})"
            )
            note = f"{note}; {overflow_note}" if note else overflow_note
        if result.rejected:
            self.log_limited("points", "export rejected", reason="points", error=note, peer=peer)
        return note

    def _render(self, fmt: Format = Format.TEXT) -> bytes:
        """On the read worker: the exposition in ``fmt``, the server's own figures refreshed."""
        started = time.perf_counter()
        stats = self.self_metrics
        stats.connections = {g.name: g.open for g in (self.otlp_gate, self.metrics_gate)}
        stats.refused_connections = {g.name: g.refused for g in (self.otlp_gate, self.metrics_gate)}
        stats.suppressed_log_lines = self.log_limiter.suppressed_total
        if fmt is Format.PROTOBUF:
            body = exposition_proto.render(self.collector)
        elif fmt is Format.OPENMETRICS:
            body = self.collector.render(openmetrics=True)
        else:
            body = self.collector.render()
        stats.observe_scrape(time.perf_counter() - started)
        return body

    async def handle_metrics(self, request: web.Request) -> web.Response:
        """GET /metrics."""
        if not self._authorized(request):
            return web.Response(
                status=401,
                text="missing or invalid bearer token\n",
                headers={"WWW-Authenticate": 'Bearer realm="gemini-slo"'},
            )
        fmt = negotiate(request.headers.get("Accept"))
        try:
            body = await self.read_pool.run(self._render, fmt)
        except Busy:
            return web.Response(status=503, text="busy\n", headers={"Retry-After": "1"})
        return web.Response(body=body, headers={"Content-Type": fmt.content_type})

    def _status_json(self) -> str:
        status: dict[str, Any] = self.slo.status()
        return json.dumps(status, allow_nan=False, default=str)

    async def handle_slo(self, request: web.Request) -> web.Response:
        """GET /api/slo."""
        if not self._authorized(request):
            return web.json_response(
                {"error": "missing or invalid bearer token"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="gemini-slo"'},
            )
        try:
            text = await self.read_pool.run(self._status_json)
        except Busy:
            return web.json_response({"error": "busy"}, status=503, headers={"Retry-After": "1"})
        return web.Response(text=text, content_type="application/json")

    async def handle_advice(self, request: web.Request) -> web.Response:
        """GET /api/advice."""
        if not self._authorized(request):
            return web.json_response(
                {"error": "missing or invalid bearer token"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="gemini-slo"'},
            )
        window = request.query.get("window", "1h")
        pools = {}
        for item in request.query.getall("pool", []):
            name, _, models = item.partition(":")
            pools[name] = tuple(m for m in models.split(",") if m)
        try:
            advice = self.advisor.advice(window, pools)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.Response(
            text=json.dumps(advice, allow_nan=False, default=str), content_type="application/json"
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
