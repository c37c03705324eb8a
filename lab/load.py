"""The two reference workloads, as a load generator: an interactive chat and a batch job.

* **latency mode** (``mode="latency"``): Poisson arrivals at ``rate`` calls/s of short
  streaming chats (``client.aio.models.generate_content_stream``), each through an
  :class:`~gemini_slo.instrumentation.AdmissionQueue` (at most ``concurrency`` in flight,
  shed at once rather than queued past ``max_queue_wait_s``) with a deadline, decorated with
  ``observe(mode="latency")``. Thinking is off and outputs are short: the shape of a chat
  turn whose user is waiting.
* **throughput mode** (``mode="throughput"``): ``concurrency`` workers generate long
  answers back to back (``client.aio.models.generate_content``), decorated with
  ``observe(mode="throughput", concurrency_limit=concurrency)``: a batch pipeline running hot.

Both use the real google-genai SDK, against the emulator (``emulator="http://..."``) or,
when no emulator is named and ``GEMINI_API_KEY`` is set, against real Gemini. The generator
keeps its own record of every call (outcome, duration, time to first chunk, usage, cost)
for the live display and the final :class:`Summary`; the instrumentation independently
exports the signals to the agent, so the two can be compared. The record is counted by the
instrumentation's own rules (:mod:`gemini_slo.instrumentation.outcomes`: outcome and error
type, blocked responses, usage, the price table in use), so a difference between the two
is a lost or extra call, never a different reading of the same one.

From Python::

    summary = run_load(LoadConfig(mode="throughput", workload="batch", emulator=url,
                                  concurrency=32, duration_s=60))
    print(summary.generated_tokens_per_s)

``gemini-slo load`` (:mod:`gemini_slo.cli.load`) is the command-line face of :func:`run_load`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from gemini_slo.contract import signals as S
from gemini_slo.instrumentation import AdmissionQueue, Usage, observe, outcomes, pricing
from google import genai
from google.genai import types

LoadMode = Literal["latency", "throughput"]

#: Defaults per mode: the model, the output length, concurrency and HTTP timeout.
DEFAULT_MODEL: dict[str, str] = {
    "latency": "gemini-2.5-flash",
    "throughput": "gemini-2.5-flash-lite",
}
DEFAULT_WORKLOAD: dict[str, str] = {"latency": "chat", "throughput": "batch"}
DEFAULT_MAX_OUTPUT_TOKENS: dict[str, int] = {"latency": 32, "throughput": 2048}
DEFAULT_CONCURRENCY: dict[str, int] = {"latency": 16, "throughput": 32}
#: The window of the live display's "recent" figures, seconds.
RECENT_WINDOW_S = 10.0

_CHAT_PROMPTS = (
    "What is a good name for a pet lizard?",
    "Summarise the plot of Hamlet in two sentences.",
    "How do I reverse a list in Python?",
    "Give me three ideas for a rainy Sunday.",
    "Explain what an error budget is to a new engineer.",
    "Translate 'good morning' into French and Spanish.",
)
_BATCH_PROMPT = (
    "Write a detailed product description for item {n} of the catalogue, covering its "
    "materials, dimensions, intended use, care instructions and warranty terms."
)


class LoadError(RuntimeError):
    """The load cannot run as configured (no emulator and no API key, bad options)."""


@dataclass(frozen=True, slots=True)
class LoadConfig:
    """What to run. Zero or None means the mode's default (see the module constants)."""

    mode: LoadMode
    workload: str = ""
    model: str = ""
    duration_s: float = 60.0
    rate: float = 5.0
    """latency mode: mean arrivals per second (Poisson)."""
    concurrency: int = 0
    """latency mode: the AdmissionQueue's slots; throughput mode: parallel calls."""
    requests: int | None = None
    """throughput mode: stop after this many calls (a batch), or at ``duration_s``."""
    max_output_tokens: int = 0
    deadline_s: float = 2.0
    """latency mode: the call's deadline (also its HTTP timeout)."""
    max_queue_wait_s: float = 0.25
    """latency mode: shed rather than wait longer than this for a slot."""
    timeout_s: float = 120.0
    """throughput mode: HTTP timeout of one call."""
    emulator: str | None = None
    api_key: str | None = None
    seed: int = 0
    drain_s: float = 180.0
    """At the end, how long in-flight calls may take to finish before they are cancelled."""
    stop_grace_s: float = 5.0
    """After a stop (Ctrl-C, SIGTERM), how long in-flight calls may take instead."""
    instrument: bool = True
    """Decorate the calls with ``observe`` (False: a bare baseline)."""
    stream: bool = False
    """throughput mode: stream each generation (chunks through the instrumentation)."""
    warmup: bool = True
    """Make one countTokens call first (connection pool, lazy imports), outside the figures;
    countTokens adds nothing to the emulator's token ground truth."""

    def resolved(self) -> LoadConfig:
        """A copy with every default filled in; raises LoadError on bad values."""
        if self.mode not in ("latency", "throughput"):
            raise LoadError(f"mode must be latency or throughput, not {self.mode!r}")
        if self.duration_s <= 0 and not self.requests:
            raise LoadError("give a positive duration (or, in throughput mode, --requests)")
        if self.mode == "latency" and self.rate <= 0:
            raise LoadError("latency mode needs a positive --rate")
        return LoadConfig(
            mode=self.mode,
            workload=self.workload or DEFAULT_WORKLOAD[self.mode],
            model=self.model or DEFAULT_MODEL[self.mode],
            duration_s=self.duration_s,
            rate=self.rate,
            concurrency=self.concurrency or DEFAULT_CONCURRENCY[self.mode],
            requests=self.requests,
            max_output_tokens=self.max_output_tokens or DEFAULT_MAX_OUTPUT_TOKENS[self.mode],
            deadline_s=self.deadline_s,
            max_queue_wait_s=self.max_queue_wait_s,
            timeout_s=self.timeout_s,
            emulator=self.emulator,
            api_key=self.api_key,
            seed=self.seed,
            drain_s=self.drain_s,
            stop_grace_s=self.stop_grace_s,
            instrument=self.instrument,
            stream=self.stream,
            warmup=self.warmup,
        )


@dataclass(frozen=True, slots=True)
class CallResult:
    """What the load generator saw of one call."""

    finished: float
    """``time.monotonic()`` at the end."""
    outcome: str
    duration_s: float
    ttft_s: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    thoughts_tokens: int = 0
    cached_tokens: int = 0
    tool_use_tokens: int = 0
    cost_usd: float = 0.0
    error_type: str = ""

    @property
    def generated_tokens(self) -> int:
        """Decode-side tokens: output plus thoughts."""
        return self.output_tokens + self.thoughts_tokens

    @property
    def usage(self) -> Usage:
        """The token usage, as the instrumentation's value type."""
        return Usage(
            input=self.input_tokens,
            output=self.output_tokens,
            thoughts=self.thoughts_tokens,
            cached=self.cached_tokens,
            tool_use=self.tool_use_tokens,
        )


def percentile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of ``values`` by linear interpolation; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True, slots=True)
class Summary:
    """Figures over a set of calls (the whole run, or the live display's recent window)."""

    mode: str
    workload: str
    model: str
    elapsed_s: float
    calls: int
    outcomes: dict[str, int]
    latency_p50_s: float | None
    latency_p95_s: float | None
    latency_p99_s: float | None
    ttft_p50_s: float | None
    ttft_p95_s: float | None
    ttft_p99_s: float | None
    tokens: dict[str, int]
    cost_usd: float
    in_flight: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    """Failed calls by error type, spelled as the ``error.type`` attribute ('503',
    'TimeoutError', 'gemini_slo.instrumentation.QueueRejected', ...)."""

    @property
    def generated_tokens(self) -> int:
        """Output plus thoughts tokens."""
        return self.tokens.get("output", 0) + self.tokens.get("thoughts", 0)

    @property
    def generated_tokens_per_s(self) -> float:
        """Generated tokens per second of elapsed time."""
        return self.generated_tokens / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def billable_tokens(self) -> int:
        """Input + output + thoughts + tool-use prompt tokens (``Usage.billable``)."""
        return self.tokens.get("input", 0) + self.generated_tokens + self.tokens.get("tool_use", 0)

    @property
    def calls_per_s(self) -> float:
        """Finished calls per second."""
        return self.calls / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def cost_per_million_tokens(self) -> float | None:
        """USD per 1M billable tokens, None before any token."""
        billable = self.billable_tokens
        return self.cost_usd / billable * 1e6 if billable else None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the properties included)."""
        return {
            "mode": self.mode,
            "workload": self.workload,
            "model": self.model,
            "elapsed_s": round(self.elapsed_s, 3),
            "calls": self.calls,
            "calls_per_s": round(self.calls_per_s, 3),
            "outcomes": dict(self.outcomes),
            "errors": dict(self.errors),
            "latency_s": {
                "p50": self.latency_p50_s,
                "p95": self.latency_p95_s,
                "p99": self.latency_p99_s,
            },
            "ttft_s": {"p50": self.ttft_p50_s, "p95": self.ttft_p95_s, "p99": self.ttft_p99_s},
            "tokens": dict(self.tokens),
            "generated_tokens_per_s": round(self.generated_tokens_per_s, 1),
            "cost_usd": self.cost_usd,
            "cost_per_million_tokens": self.cost_per_million_tokens,
        }


def summarize(
    config: LoadConfig, results: list[CallResult], elapsed_s: float, in_flight: int = 0
) -> Summary:
    """Reduce call results to a :class:`Summary`. Latency percentiles are over ok calls."""
    ok = [r for r in results if r.outcome == S.Outcome.OK]
    durations = [r.duration_s for r in ok]
    ttfts = [r.ttft_s for r in ok if r.ttft_s is not None]
    tokens = {
        "input": sum(r.input_tokens for r in results),
        "output": sum(r.output_tokens for r in results),
        "thoughts": sum(r.thoughts_tokens for r in results),
        "cached": sum(r.cached_tokens for r in results),
        "tool_use": sum(r.tool_use_tokens for r in results),
    }
    return Summary(
        mode=config.mode,
        workload=config.workload,
        model=config.model,
        elapsed_s=elapsed_s,
        calls=len(results),
        outcomes=dict(Counter(r.outcome for r in results)),
        latency_p50_s=percentile(durations, 0.5),
        latency_p95_s=percentile(durations, 0.95),
        latency_p99_s=percentile(durations, 0.99),
        ttft_p50_s=percentile(ttfts, 0.5),
        ttft_p95_s=percentile(ttfts, 0.95),
        ttft_p99_s=percentile(ttfts, 0.99),
        tokens=tokens,
        cost_usd=sum(r.cost_usd for r in results),
        in_flight=in_flight,
        errors=dict(Counter(r.error_type for r in results if r.error_type)),
    )


# --------------------------------------------------------------------------------------
# Recording.
# --------------------------------------------------------------------------------------


@dataclass
class LoadRecorder:
    """Every call's result, plus what is in flight; read by the progress display."""

    config: LoadConfig
    started: float = field(default_factory=time.monotonic)
    results: list[CallResult] = field(default_factory=list)
    recent: deque[CallResult] = field(default_factory=deque)
    in_flight: int = 0

    def add(self, result: CallResult) -> None:
        """Record one finished call."""
        self.results.append(result)
        self.recent.append(result)

    def elapsed(self) -> float:
        """Seconds since the start."""
        return time.monotonic() - self.started

    def total(self) -> Summary:
        """The whole run so far."""
        return summarize(self.config, self.results, self.elapsed(), self.in_flight)

    def window(self, seconds: float = RECENT_WINDOW_S) -> Summary:
        """The calls that finished in the last ``seconds`` (rates over that window)."""
        now = time.monotonic()
        while self.recent and self.recent[0].finished < now - seconds:
            self.recent.popleft()
        span = min(seconds, max(now - self.started, 1e-9))
        return summarize(self.config, list(self.recent), span, self.in_flight)


# --------------------------------------------------------------------------------------
# The client and the two workloads.
# --------------------------------------------------------------------------------------


def make_client(config: LoadConfig) -> genai.Client:
    """A google-genai client for the emulator, or for real Gemini with GEMINI_API_KEY."""
    if config.emulator:
        return genai.Client(
            api_key=config.api_key or "emulator",
            http_options=types.HttpOptions(base_url=config.emulator),
        )
    key = config.api_key or os.environ.get("GEMINI_API_KEY")
    if not key:
        raise LoadError("name an emulator (--emulator URL) or set GEMINI_API_KEY for real Gemini")
    return genai.Client(api_key=key)


class _Workload:
    """One run: the client, the recorder, and the instrumented call of the mode."""

    def __init__(
        self, config: LoadConfig, recorder: LoadRecorder, client: genai.Client | None = None
    ) -> None:
        self.config = config
        self.recorder = recorder
        self.client = client if client is not None else make_client(config)
        self.rng = random.Random(config.seed)
        self.stream_chat = self._make_chat()
        self.generate = self._make_generate()

    # ---- latency mode: a short streaming chat ----------------------------------------

    def _make_chat(self) -> Callable[[str], AsyncIterator[types.GenerateContentResponse]]:
        config = self.config
        client = self.client
        request = types.GenerateContentConfig(
            max_output_tokens=config.max_output_tokens,
            # A chat turn with a user waiting: no thinking (it is all time to first token).
            thinking_config=types.ThinkingConfig(thinking_budget=0),
            http_options=types.HttpOptions(timeout=int(config.deadline_s * 1000)),
        )

        async def chat(prompt: str) -> AsyncIterator[types.GenerateContentResponse]:
            stream = await client.aio.models.generate_content_stream(
                model=config.model, contents=prompt, config=request
            )
            async for chunk in stream:
                yield chunk

        if not config.instrument:
            return chat
        queue = AdmissionQueue(
            max_concurrency=config.concurrency,
            max_wait=config.max_queue_wait_s,
            name=config.workload,
            workload=config.workload,
        )
        decorated: Callable[[str], AsyncIterator[types.GenerateContentResponse]] = observe(
            workload=config.workload,
            mode="latency",
            model=config.model,
            deadline=config.deadline_s,
            queue=queue,
        )(chat)
        return decorated

    async def one_chat(self) -> None:
        """One chat turn, recorded."""
        prompt = self.rng.choice(_CHAT_PROMPTS)
        start = time.monotonic()
        ttft: float | None = None
        last: types.GenerateContentResponse | None = None
        self.recorder.in_flight += 1
        try:
            async for chunk in self.stream_chat(prompt):
                if ttft is None:
                    ttft = time.monotonic() - start
                last = chunk
        except asyncio.CancelledError as exc:  # cancelled at the end of the run: a timeout
            self._record(start, ttft, last, exc, stream=True)
            raise
        except Exception as exc:
            self._record(start, ttft, last, exc, stream=True)
        else:
            self._record(start, ttft, last, None, stream=True)
        finally:
            self.recorder.in_flight -= 1

    # ---- throughput mode: a long generation ------------------------------------------

    def _make_generate(self) -> Callable[[str], Any]:
        config = self.config
        client = self.client
        request = types.GenerateContentConfig(
            max_output_tokens=config.max_output_tokens,
            http_options=types.HttpOptions(timeout=int(config.timeout_s * 1000)),
        )

        async def generate(prompt: str) -> types.GenerateContentResponse:
            return await client.aio.models.generate_content(
                model=config.model, contents=prompt, config=request
            )

        async def generate_stream(prompt: str) -> AsyncIterator[types.GenerateContentResponse]:
            stream = await client.aio.models.generate_content_stream(
                model=config.model, contents=prompt, config=request
            )
            async for chunk in stream:
                yield chunk

        if config.stream:
            return self._instrument_throughput(generate_stream)
        return self._instrument_throughput(generate)

    def _instrument_throughput(self, fn: Callable[[str], Any]) -> Callable[[str], Any]:
        config = self.config

        if not config.instrument:
            return fn
        decorated: Callable[[str], Any] = observe(
            workload=config.workload,
            mode="throughput",
            model=config.model,
            concurrency_limit=config.concurrency,
        )(fn)
        return decorated

    def batch_prompt(self, n: int) -> str:
        """The prompt of batch item ``n``.

        Against the emulator it carries the emulator's length marker: real batch items ask
        for long documents, and the emulator's default length distribution (a chat-like
        median of ~200 tokens) would turn "long generations" into many short calls. The
        lengths are drawn between 1/4 and the whole of max_output_tokens so that calls end
        at different times, as real ones do.
        """
        prompt = _BATCH_PROMPT.format(n=n)
        if self.config.emulator:
            limit = self.config.max_output_tokens
            length = self.rng.randint(max(1, limit // 4), limit)
            prompt += f" [[emulator:output_tokens={length}]]"
        return prompt

    async def warm_up(self) -> None:
        """One countTokens call: opens a connection and imports the SDK's lazy modules."""
        with contextlib.suppress(Exception):
            await self.client.aio.models.count_tokens(model=self.config.model, contents="warm up")

    async def one_generation(self, n: int) -> str:
        """One batch item, recorded; returns its outcome."""
        prompt = self.batch_prompt(n)
        start = time.monotonic()
        stream = self.config.stream
        response: Any = None
        self.recorder.in_flight += 1
        try:
            if stream:
                # The final chunk carries the cumulative usage (and the finish reason).
                async for chunk in self.generate(prompt):
                    response = chunk
            else:
                response = await self.generate(prompt)
        except asyncio.CancelledError as exc:
            self._record(start, None, response, exc, stream=stream)
            raise
        except Exception as exc:
            return self._record(start, None, response, exc, stream=stream)
        finally:
            self.recorder.in_flight -= 1
        return self._record(start, None, response, None, stream=stream)

    def _record(
        self,
        start: float,
        ttft: float | None,
        response: Any,
        exc: BaseException | None,
        *,
        stream: bool,
    ) -> str:
        """Record one call as the instrumentation counts it; returns its outcome.

        ``response``: what the call returned, or a stream's last chunk (also when it
        failed midway: the instrumentation counts the usage seen so far).
        """
        now = time.monotonic()
        outcome, error_type = outcomes.outcome_of(exc, response, stream=stream)
        usage = outcomes.usage_of(response) if response is not None else None
        pico = None if usage is None else outcomes.cost_pico(self.config.model, usage)
        usage = usage or Usage()
        self.recorder.add(
            CallResult(
                finished=now,
                outcome=outcome,
                duration_s=now - start,
                ttft_s=ttft,
                input_tokens=usage.input,
                output_tokens=usage.output,
                thoughts_tokens=usage.thoughts,
                cached_tokens=usage.cached,
                tool_use_tokens=usage.tool_use,
                cost_usd=0.0 if pico is None else pricing.cost_usd(pico),
                error_type=error_type or "",
            )
        )
        return outcome


def _grace(config: LoadConfig, stop: asyncio.Event) -> float:
    """How long calls in flight at the end may still take: short after a stop request."""
    return config.stop_grace_s if stop.is_set() else config.drain_s


async def _run_latency(work: _Workload, stop: asyncio.Event, end: float) -> None:
    tasks: set[asyncio.Task[None]] = set()
    rng = random.Random(f"{work.config.seed}:arrivals")
    next_at = time.monotonic()
    while not stop.is_set():
        next_at += rng.expovariate(work.config.rate)
        if next_at >= end:
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=max(0.0, next_at - time.monotonic()))
            break
        task = asyncio.create_task(work.one_chat())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        # Calls end by their deadline; the drain bound only guards against a hung SDK.
        _done, pending = await asyncio.wait(tasks, timeout=_grace(work.config, stop))
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


async def _run_throughput(work: _Workload, stop: asyncio.Event, end: float) -> None:
    config = work.config
    counter = iter(range(config.requests if config.requests else 1 << 62))

    async def worker() -> None:
        while not stop.is_set() and time.monotonic() < end:
            n = next(counter, None)
            if n is None:
                return
            outcome = await work.one_generation(n)
            if outcome != S.Outcome.OK:
                # No hot loop on errors (a 429 storm, a dead server): back off a little.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=0.5)

    workers = [asyncio.create_task(worker()) for _ in range(config.concurrency)]
    stopped = asyncio.create_task(stop.wait())
    # At the end (or on stop) no new call starts; calls in flight finish, bounded by drain_s.
    remaining = end - time.monotonic()
    await asyncio.wait(
        [stopped, *workers], timeout=max(0.0, remaining), return_when="FIRST_COMPLETED"
    )
    if not all(w.done() for w in workers):
        _done, pending = await asyncio.wait(workers, timeout=_grace(config, stop))
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    stopped.cancel()
    await asyncio.gather(stopped, return_exceptions=True)


ProgressCallback = Callable[[LoadRecorder], None]


async def run_load_async(
    config: LoadConfig,
    *,
    stop: asyncio.Event | None = None,
    on_progress: ProgressCallback | None = None,
    progress_interval_s: float = 1.0,
) -> Summary:
    """Run the workload in the current event loop until its duration (or ``stop``) ends.

    ``on_progress(recorder)`` is called every ``progress_interval_s`` while it runs. The
    instrumentation must already be configured (``configure(...)``) for the signals to
    go anywhere; this function does not configure exporters.
    """
    config = config.resolved()
    stop = stop or asyncio.Event()
    recorder = LoadRecorder(config)
    work = _Workload(config, recorder)
    if config.warmup:
        await work.warm_up()
        recorder.started = time.monotonic()
    duration = config.duration_s if config.duration_s > 0 else float("inf")
    end = recorder.started + duration
    runner = _run_latency if config.mode == "latency" else _run_throughput
    main = asyncio.create_task(runner(work, stop, end))
    try:
        while not main.done():
            await asyncio.wait([main], timeout=progress_interval_s)
            if on_progress is not None:
                on_progress(recorder)
        await main
    finally:
        if not main.done():
            main.cancel()
            await asyncio.gather(main, return_exceptions=True)
        await work.client.aio.aclose()
    return recorder.total()


def run_load(
    config: LoadConfig,
    *,
    on_progress: ProgressCallback | None = None,
    progress_interval_s: float = 1.0,
) -> Summary:
    """:func:`run_load_async` in a fresh event loop (blocking)."""
    return asyncio.run(
        run_load_async(config, on_progress=on_progress, progress_interval_s=progress_interval_s)
    )
