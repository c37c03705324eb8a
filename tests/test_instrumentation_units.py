"""Unit tests of the instrumentation's parts that need no emulator: aggregation, pricing,
classification, the decorator's semantics on plain functions, the admission queue."""

from __future__ import annotations

import asyncio
import math
import random
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import pytest
from gemini_slo.contract import signals as S
from gemini_slo.instrumentation import (
    AdmissionQueue,
    DeadlineExceeded,
    QueueRejected,
    Registry,
    Usage,
    observe,
    testing,
)
from gemini_slo.instrumentation._classify import classify
from gemini_slo.instrumentation._exponential import ExponentialHistogram, bucket_index
from gemini_slo.instrumentation._thresholds import from_spec, from_yaml, parse_duration
from gemini_slo.instrumentation.pricing import PricingError, default_table, load_table
from google.genai import errors as genai_errors
from google.genai import types

FLASH = "gemini-2.5-flash"


def _response(
    prompt: int = 10, output: int = 20, thoughts: int = 5, cached: int = 0, **extra: Any
) -> types.GenerateContentResponse:
    return types.GenerateContentResponse(
        candidates=extra.get(
            "candidates",
            [
                types.Candidate(
                    content=types.Content(role="model", parts=[types.Part(text="hi")]),
                    finish_reason=extra.get("finish", "STOP"),
                )
            ],
        ),
        usage_metadata=types.GenerateContentResponseUsageMetadata(
            prompt_token_count=prompt,
            candidates_token_count=output,
            thoughts_token_count=thoughts,
            cached_content_token_count=cached or None,
        ),
        model_version=extra.get("model_version", FLASH),
        prompt_feedback=extra.get("prompt_feedback"),
    )


@pytest.fixture
def rec() -> testing.InMemoryRecorder:
    """A fresh registry and its reader."""
    return testing.InMemoryRecorder(Registry())


# ---- exponential histogram -----------------------------------------------------------


def test_exponential_index_is_upper_inclusive_at_powers_of_two() -> None:
    """A power of two closes its bucket (OTLP's (lower, upper] buckets), at every scale."""
    for scale in (-2, 0, 3, 5):
        for exp in (-10, -1, 0, 1, 7):
            value = 2.0**exp
            i = bucket_index(value, scale)
            base = 2.0 ** (2.0**-scale)
            assert base**i < value <= base ** (i + 1) * (1 + 1e-12)
            assert bucket_index(value * 1.0000001, scale) == i + 1 or scale <= 0


def test_exponential_downscales_and_keeps_counts() -> None:
    """Values spanning more than max_buckets lower the scale; no value is lost."""
    hist = ExponentialHistogram(S.EXPONENTIAL_SCALE, S.EXPONENTIAL_MAX_BUCKETS)
    values = [10.0**k for k in range(-6, 7)] + [0.0]
    for v in values:
        hist.record(v)
    snap = hist.snapshot()
    assert snap.scale < S.EXPONENTIAL_SCALE
    assert len(snap.bucket_counts) <= S.EXPONENTIAL_MAX_BUCKETS
    assert sum(snap.bucket_counts) + snap.zero_count == len(values) == snap.count
    for i, n in enumerate(snap.bucket_counts):  # every value sits in its bucket
        lo, hi = snap.bucket_bounds(i)
        inside = [v for v in values if v > 0 and lo < v <= hi * (1 + 1e-9)]
        assert len(inside) == n


def test_exponential_percentiles_within_one_percent() -> None:
    """Lognormal latencies with a heavy tail: p50/p95/p99 within 1% of exact."""
    rng = random.Random(7)
    values = sorted(rng.lognormvariate(math.log(0.3), 0.8) for _ in range(50_000))
    hist = ExponentialHistogram(S.EXPONENTIAL_SCALE, S.EXPONENTIAL_MAX_BUCKETS)
    for v in values:
        hist.record(v)
    snap = hist.snapshot()
    for q in (0.5, 0.95, 0.99):
        exact = values[math.ceil(q * len(values)) - 1]
        assert abs(snap.quantile(q) - exact) / exact < 0.01


# ---- pricing ---------------------------------------------------------------------------


def test_price_table_has_source_and_date() -> None:
    """The shipped table names its source and date."""
    table = default_table()
    assert "ai.google.dev" in table.source
    assert table.transcribed == "2026-09-20"


@pytest.mark.parametrize(
    ("model", "usage", "tier", "usd"),
    [
        (FLASH, Usage(1_000_000, 0, 0, 0, 0), None, 0.30),
        (FLASH, Usage(0, 1_000_000, 0, 0, 0), None, 2.50),
        (FLASH, Usage(0, 0, 1_000_000, 0, 0), None, 2.50),  # thoughts billed as output
        (FLASH, Usage(1_000_000, 0, 0, 1_000_000, 0), None, 0.03),  # all cached
        ("gemini-2.5-flash-lite", Usage(1_000_000, 1_000_000, 0, 0, 0), None, 0.50),
        ("gemini-2.5-pro", Usage(200_000, 0, 0, 0, 0), None, 0.25),
        (
            "gemini-2.5-pro",
            Usage(200_001, 1_000_000, 0, 0, 0),
            None,
            200_001 * 2.5e-6 + 15.0,
        ),  # whole request
        (
            "gemini-2.5-pro",
            Usage(300_000, 0, 0, 100_000, 0),
            None,
            200_000 * 2.5e-6 + 100_000 * 0.25e-6,
        ),
        (FLASH, Usage(1_000_000, 1_000_000, 0, 0, 0), "flex", 1.40),
        (FLASH, Usage(1_000_000, 0, 0, 0, 0), "batch", 0.15),
    ],
)
def test_cost_rules(model: str, usage: Usage, tier: str | None, usd: float) -> None:
    """Input, output, thoughts, cache read, the >200k tier for the whole request, flex/batch."""
    pico = default_table().cost_pico(model, usage, tier)
    assert pico is not None
    assert pico / 1e12 == pytest.approx(usd, rel=1e-12)


@pytest.mark.parametrize(
    ("name", "priced_as"),
    [
        ("models/gemini-2.5-flash", FLASH),
        ("publishers/google/models/gemini-2.5-flash", FLASH),
        ("gemini-2.5-flash-001", FLASH),
        ("gemini-2.5-flash-preview-09-2025", FLASH),
        ("gemini-2.5-flash-lite-preview-06-17", "gemini-2.5-flash-lite"),
        ("Gemini-2.5-Pro", "gemini-2.5-pro"),
        ("gemini-2.5-flash-image", None),
        ("gpt-4", None),
        ("unknown", None),
    ],
)
def test_model_name_normalisation(name: str, priced_as: str | None) -> None:
    """Versions and previews map to their base entry; other products stay unpriced."""
    table = default_table()
    expected = None if priced_as is None else table.models[priced_as]
    assert table.lookup(name) is expected


def test_priority_tier_is_unpriced() -> None:
    """A service tier the table does not list is never guessed."""
    assert default_table().cost_pico(FLASH, Usage(10, 10), "priority") is None


def test_pricing_override_file(tmp_path: Path) -> None:
    """An override file replaces or adds models; the others stay."""
    path = tmp_path / "prices.yaml"
    path.write_text(
        "version: gemini-slo/pricing/v1\nmodels:\n  my-model:\n    tiers:\n      - {input: '1', output: '2'}\n  gemini-2.5-flash:\n    tiers:\n      - {input: '9', output: '9'}\n"
    )
    table = load_table(path)
    assert table.cost_pico("my-model", Usage(1_000_000, 1_000_000)) == 3 * 10**12
    assert table.cost_pico(FLASH, Usage(1_000_000)) == 9 * 10**12
    assert table.lookup("gemini-2.5-pro") is not None
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: {}\n")
    with pytest.raises(PricingError):
        load_table(bad)


def test_cost_is_exact_integer_arithmetic() -> None:
    """Sum of per-call costs equals the table applied to the totals, exactly."""
    table = default_table()
    rng = random.Random(3)
    usages = [
        Usage(rng.randint(1, 5000), rng.randint(0, 900), rng.randint(0, 300), 0, 0)
        for _ in range(500)
    ]
    per_call = sum(table.cost_pico(FLASH, u) or 0 for u in usages)
    total = Usage(*(sum(col) for col in zip(*usages, strict=True)))
    assert per_call == table.cost_pico(FLASH, total)


# ---- classification --------------------------------------------------------------------


def test_classification_of_what_google_genai_raises() -> None:
    """429 -> rate_limited; other API errors -> error with the code; timeouts by class."""
    import httpx2

    assert classify(genai_errors.ClientError(429, {"error": {"code": 429}})) == (
        S.Outcome.RATE_LIMITED,
        "429",
    )
    assert classify(genai_errors.ServerError(503, {"error": {"code": 503}})) == (
        S.Outcome.ERROR,
        "503",
    )
    assert classify(genai_errors.ClientError(400, {"error": {"code": 400}})) == (
        S.Outcome.ERROR,
        "400",
    )
    assert classify(httpx2.ReadTimeout("slow")) == (S.Outcome.TIMEOUT, "httpx2.ReadTimeout")
    assert classify(TimeoutError()) == (S.Outcome.TIMEOUT, "TimeoutError")
    assert classify(httpx2.ConnectError("refused")) == (S.Outcome.ERROR, "httpx2.ConnectError")
    assert classify(ConnectionRefusedError()) == (S.Outcome.ERROR, "ConnectionRefusedError")
    assert classify(QueueRejected("q", "hopeless", 0.0)) == (
        S.Outcome.REJECTED,
        "gemini_slo.instrumentation.QueueRejected",
    )
    assert classify(DeadlineExceeded()) == (
        S.Outcome.TIMEOUT,
        "gemini_slo.instrumentation.DeadlineExceeded",
    )
    import aiohttp

    assert classify(aiohttp.ServerTimeoutError())[0] is S.Outcome.TIMEOUT


def test_thresholds_from_spec() -> None:
    """The example spec's latency and TTFT thresholds become bucket boundaries."""
    spec = Path(__file__).resolve().parent.parent / "contract" / "slo.yaml"
    thresholds = from_spec(spec)
    assert thresholds == from_yaml(spec)  # the spec model and the plain reader agree
    assert thresholds.duration["chat"] == (0.5, 0.8)
    assert thresholds.ttft["chat"] == (0.3,)
    assert (
        parse_duration("1.5s") == 1.5
        and parse_duration("250ms") == 0.25
        and parse_duration(2) == 2.0
    )
    # Exact decimals, as the spec model gives: the rules match these boundaries literally.
    assert [parse_duration(v) for v in ("700ms", "350ms", "1100ms")] == [0.7, 0.35, 1.1]
    registry = Registry(thresholds)
    series = registry.call_series(("chat", "latency", "generate_content", "gcp.gemini", FLASH))
    assert 0.5 in series.duration_bounds and 0.8 in series.duration_bounds


def test_threshold_not_in_default_layout_becomes_a_boundary() -> None:
    """A threshold like 0.45 s is added to the layout, so compliance is counted exactly."""
    registry = Registry(from_spec_mapping({"chat": [0.45]}))

    @observe(workload="chat", model=FLASH, registry=registry)
    def call() -> None:
        pass

    call()
    hist = testing.InMemoryRecorder(registry).histogram(S.OPERATION_DURATION, workload="chat")
    assert 0.45 in hist.bounds


def from_spec_mapping(mapping: dict[str, list[float]]) -> Any:
    """Thresholds from a plain mapping (helper)."""
    from gemini_slo.instrumentation._thresholds import from_mapping

    return from_mapping(mapping)


# ---- observe on plain functions ---------------------------------------------------------


def test_decorator_returns_the_same_object(rec: testing.InMemoryRecorder) -> None:
    """The decorated function returns exactly what it returned before."""
    response = _response()

    @observe(workload="chat", registry=rec.registry)
    def call() -> types.GenerateContentResponse:
        return response

    assert call() is response
    assert call.__name__ == "call"
    assert rec.value(S.CALLS, outcome="ok", model=FLASH) == 1
    assert rec.value(S.TOKENS, token_type="output") == 20
    assert rec.value(S.TOKENS, token_type="thoughts") == 5
    usage = {p["gen_ai.token.type"]: p for p in rec.series(S.TOKEN_USAGE)}
    assert set(usage) == {"input", "output"}
    assert rec.histogram(S.TOKEN_USAGE, token_type="output").sum == 25  # candidates + thoughts


def test_decorator_reraises_the_same_exception_and_traceback(rec: testing.InMemoryRecorder) -> None:
    """Same exception object, same type, the original frames in its traceback."""
    error = genai_errors.ServerError(503, {"error": {"code": 503, "message": "overloaded"}})

    def inner() -> None:
        raise error

    @observe(workload="chat", model=FLASH, registry=rec.registry)
    def call() -> None:
        inner()

    with pytest.raises(genai_errors.ServerError) as caught:
        call()
    assert caught.value is error
    frames = [f.name for f in traceback.extract_tb(caught.value.__traceback__)]
    assert frames[-1] == "inner" and "call" in frames
    assert rec.value(S.CALLS, outcome="error", error_type="503") == 1
    assert rec.value(S.OPERATION_DURATION, error_type="503") == 1


@pytest.mark.parametrize(
    ("response", "outcome"),
    [
        (
            _response(
                prompt_feedback=types.GenerateContentResponsePromptFeedback(block_reason="SAFETY"),
                candidates=[],
            ),
            "blocked",
        ),
        (_response(candidates=[]), "blocked"),
        (_response(finish="SAFETY"), "blocked"),
        (_response(finish="MAX_TOKENS"), "ok"),
    ],
)
def test_blocked_responses(
    rec: testing.InMemoryRecorder, response: types.GenerateContentResponse, outcome: str
) -> None:
    """Blocked prompts, no candidates, SAFETY finishes: outcome blocked, nothing raised."""

    @observe(workload="chat", registry=rec.registry)
    def call() -> types.GenerateContentResponse:
        return response

    assert call() is response
    assert rec.value(S.CALLS, outcome=outcome) == 1


def test_context_manager_explicit_usage(rec: testing.InMemoryRecorder) -> None:
    """Inside ``with observe() as call`` usage and model are reported explicitly."""
    with observe(workload="batch", mode="throughput", registry=rec.registry) as call:
        call.record_usage(prompt_tokens=1000, output_tokens=400, thoughts_tokens=100, model=FLASH)
        time.sleep(0.01)
    assert rec.value(S.CALLS, workload="batch", mode="throughput", model=FLASH, outcome="ok") == 1
    assert rec.value(S.TOKENS, token_type="input") == 1000
    assert rec.value(S.COST) == pytest.approx((1000 * 0.30 + 500 * 2.50) / 1e6)
    tps = rec.histogram(S.CALL_TOKENS_PER_SECOND)
    assert tps.count == 1 and 0 < tps.sum < 500 / 0.01
    assert rec.histogram(S.CALL_COST_PER_MILLION_TOKENS).count == 1
    assert not rec.series(S.TIME_TO_FIRST_CHUNK)  # latency-only signal
    assert rec.histogram(S.OPERATION_DURATION).bounds == S.THROUGHPUT_DURATION_BUCKETS


def test_context_manager_records_exception(rec: testing.InMemoryRecorder) -> None:
    """An exception leaving the block is recorded and propagates unchanged."""
    with (
        pytest.raises(ValueError, match="boom"),
        observe(workload="chat", model=FLASH, registry=rec.registry),
    ):
        raise ValueError("boom")
    assert rec.value(S.CALLS, outcome="error", error_type="ValueError") == 1


def test_unknown_model_is_unpriced(rec: testing.InMemoryRecorder) -> None:
    """No model anywhere: 'unknown', cost 0, counted as unpriced."""
    with observe(workload="chat", registry=rec.registry) as call:
        call.record_usage(prompt_tokens=10, output_tokens=10)
    assert rec.value(S.UNPRICED_CALLS, model="unknown") == 1
    assert rec.value(S.COST) == 0


def test_generator_stream_last_chunk_usage_and_ttft(rec: testing.InMemoryRecorder) -> None:
    """A stream counts its LAST chunk's cumulative usage once, never the sum of chunks."""
    chunks = [_response(prompt=10, output=n, thoughts=7) for n in (16, 32, 40)]

    @observe(workload="chat", registry=rec.registry)
    def stream() -> Any:
        for chunk in chunks:
            time.sleep(0.002)
            yield chunk

    assert list(stream()) == chunks
    assert rec.value(S.TOKENS, token_type="output") == 40
    assert rec.value(S.TOKENS, token_type="input") == 10
    assert rec.histogram(S.TIME_TO_FIRST_CHUNK).count == 1
    tpot = rec.histogram(S.TIME_PER_OUTPUT_TOKEN)
    assert tpot.count == 1
    duration = rec.histogram(S.OPERATION_DURATION).sum
    ttft = rec.histogram(S.TIME_TO_FIRST_CHUNK).sum
    assert tpot.sum == pytest.approx((duration - ttft) / (40 + 7 - 1))


def test_generator_closed_early_records_once(rec: testing.InMemoryRecorder) -> None:
    """A stream abandoned after one chunk records one call, with the usage seen so far."""
    closed = []

    @observe(workload="chat", registry=rec.registry)
    def stream() -> Any:
        try:
            for n in (16, 32, 48):
                yield _response(output=n)
        finally:
            closed.append(True)

    gen = stream()
    next(gen)
    gen.close()
    gen.close()
    assert closed == [True]
    assert rec.value(S.CALLS) == 1
    assert rec.value(S.TOKENS, token_type="output") == 16
    assert rec.value(S.REQUESTS_IN_FLIGHT) == 0
    for _ in stream():  # break out of a for loop: same thing
        break
    assert rec.value(S.CALLS) == 2


def test_generator_send_and_return_value_pass_through(rec: testing.InMemoryRecorder) -> None:
    """send() and the generator's return value behave as without the decorator."""

    @observe(workload="chat", model=FLASH, registry=rec.registry)
    def echo() -> Any:
        received = yield "ready"
        yield received
        return "done"

    gen = echo()
    assert next(gen) == "ready"
    assert gen.send("ping") == "ping"
    with pytest.raises(StopIteration) as stop:
        next(gen)
    assert stop.value.value == "done"
    assert rec.value(S.CALLS, outcome="ok") == 1


def test_async_function_and_async_generator(rec: testing.InMemoryRecorder) -> None:
    """Coroutine functions and async generators are observed; values pass through."""
    response = _response()

    @observe(workload="chat", registry=rec.registry)
    async def call() -> types.GenerateContentResponse:
        await asyncio.sleep(0)
        return response

    @observe(workload="chat", registry=rec.registry)
    async def stream() -> Any:
        for n in (16, 32):
            await asyncio.sleep(0)
            yield _response(output=n)

    async def main() -> None:
        assert await call() is response
        assert [c.usage_metadata.candidates_token_count async for c in stream()] == [16, 32]
        agen = stream()
        await agen.__anext__()
        await agen.aclose()

    asyncio.run(main())
    assert rec.value(S.CALLS, outcome="ok") == 3
    assert rec.value(S.TOKENS, token_type="output") == 20 + 32 + 16
    assert rec.value(S.REQUESTS_IN_FLIGHT) == 0


def test_async_deadline_is_enforced(rec: testing.InMemoryRecorder) -> None:
    """An async call past its deadline is cancelled and raises DeadlineExceeded (a TimeoutError)."""

    @observe(workload="chat", model=FLASH, deadline=0.05, registry=rec.registry)
    async def slow() -> None:
        await asyncio.sleep(5)

    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as caught:
        asyncio.run(slow())
    assert isinstance(caught.value, TimeoutError)
    assert time.monotonic() - started < 1.0
    assert (
        rec.value(
            S.CALLS, outcome="timeout", error_type="gemini_slo.instrumentation.DeadlineExceeded"
        )
        == 1
    )
    assert rec.value(S.DEADLINE_EXCEEDED) == 1


def test_async_with_deadline_is_enforced(rec: testing.InMemoryRecorder) -> None:
    """``async with observe(deadline=...)`` cancels its block at the deadline."""

    async def main() -> None:
        async with observe(workload="chat", model=FLASH, deadline=0.05, registry=rec.registry):
            await asyncio.sleep(5)

    with pytest.raises(DeadlineExceeded):
        asyncio.run(main())
    assert rec.value(S.DEADLINE_EXCEEDED) == 1


def test_sync_deadline_counts_but_returns(rec: testing.InMemoryRecorder) -> None:
    """A sync call past its deadline still returns its value; it counts as a timeout."""

    @observe(workload="chat", model=FLASH, deadline=0.01, registry=rec.registry)
    def slow() -> int:
        time.sleep(0.03)
        return 42

    assert slow() == 42
    assert rec.value(S.CALLS, outcome="timeout") == 1
    assert rec.value(S.DEADLINE_EXCEEDED) == 1


def test_sync_stream_deadline_raises_between_chunks(rec: testing.InMemoryRecorder) -> None:
    """A sync stream past its deadline is closed and raises DeadlineExceeded at the next chunk."""

    @observe(workload="chat", model=FLASH, deadline=0.02, registry=rec.registry)
    def stream() -> Any:
        for n in range(10):
            time.sleep(0.01)
            yield n

    got = []
    with pytest.raises(DeadlineExceeded):
        got.extend(stream())
    assert 0 < len(got) < 10
    assert rec.value(S.CALLS, outcome="timeout") == 1


def test_function_returning_a_generator_is_timed_to_its_end(rec: testing.InMemoryRecorder) -> None:
    """A plain function returning a generator: the call ends with the generator."""

    def produce() -> Any:
        yield _response(output=5)
        time.sleep(0.02)
        yield _response(output=9)

    @observe(workload="chat", registry=rec.registry)
    def call() -> Any:
        return produce()

    assert len(list(call())) == 2
    assert rec.histogram(S.OPERATION_DURATION).sum >= 0.02
    assert rec.value(S.TOKENS, token_type="output") == 9


def test_capture_swaps_the_default_registry() -> None:
    """testing.capture() records calls made without registry= and restores afterwards."""

    @observe(workload="cap", model=FLASH)
    def call() -> None:
        pass

    with testing.capture() as first:
        call()
    with testing.capture() as second:
        call()
        call()
    assert first.value(S.CALLS, workload="cap") == 1
    assert second.value(S.CALLS, workload="cap") == 2


def test_concurrency_limit_and_in_flight(rec: testing.InMemoryRecorder) -> None:
    """The concurrency limit gauge and in-flight: +1 during the call, 0 after."""
    seen = []

    @observe(workload="chat", model=FLASH, concurrency_limit=8, registry=rec.registry)
    def call() -> None:
        seen.append(rec.value(S.REQUESTS_IN_FLIGHT))

    call()
    assert seen == [1]
    assert rec.value(S.REQUESTS_IN_FLIGHT) == 0
    assert rec.value(S.CONCURRENCY_LIMIT, workload="chat") == 8


def test_threads_give_exact_counts(rec: testing.InMemoryRecorder) -> None:
    """64 threads recording at once: every call and token is counted exactly."""

    @observe(workload="chat", registry=rec.registry)
    def call() -> types.GenerateContentResponse:
        return _response(prompt=3, output=5, thoughts=1)

    barrier = threading.Barrier(64)

    def worker() -> None:
        barrier.wait()
        for _ in range(200):
            call()

    threads = [threading.Thread(target=worker) for _ in range(64)]
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert rec.value(S.CALLS) == 64 * 200
    assert rec.value(S.TOKENS, token_type="output") == 64 * 200 * 5
    assert rec.histogram(S.OPERATION_DURATION).count == 64 * 200
    assert rec.value(S.REQUESTS_IN_FLIGHT) == 0


# ---- admission queue ------------------------------------------------------------------


def test_queue_threads_bound_concurrency_and_shed_after_max_wait(
    rec: testing.InMemoryRecorder,
) -> None:
    """max_concurrency holds; a call that cannot get a slot within max_wait is shed."""
    queue = AdmissionQueue(max_concurrency=2, max_wait=0.05, name="q", registry=rec.registry)
    active, peak, lock = [0], [0], threading.Lock()

    @observe(workload="chat", model=FLASH, queue=queue, registry=rec.registry)
    def call() -> None:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.5)
        with lock:
            active[0] -= 1

    errors: list[BaseException] = []
    barrier = threading.Barrier(5)

    def run() -> None:
        barrier.wait()
        try:
            call()
        except QueueRejected as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == 2
    assert len(errors) == 3
    assert rec.value(S.CALLS, outcome="rejected") == 3
    assert rec.value(S.CALLS, outcome="ok") == 2
    assert rec.value(S.QUEUE_SHED, queue="q") == 3
    assert rec.value(S.QUEUE_DEPTH, queue="q") == 0
    assert rec.histogram(S.QUEUE_WAIT, queue="q").count == 5
    assert rec.value(S.CONCURRENCY_LIMIT) == 2
    # A shed call never ran: no duration for it.
    assert rec.histogram(S.OPERATION_DURATION).count == 2


def test_queue_sheds_at_once_when_waiting_is_hopeless(rec: testing.InMemoryRecorder) -> None:
    """Once the service time is known, a call whose expected wait exceeds max_wait is shed
    without waiting; so is one whose deadline leaves no time to wait."""
    queue = AdmissionQueue(max_concurrency=1, max_wait=0.2, name="q", registry=rec.registry)
    with queue.slot():
        time.sleep(0.3)  # teaches the queue a 0.3 s service time
    with queue.slot():
        started = time.monotonic()
        with pytest.raises(QueueRejected) as caught:
            queue.acquire(series=queue.series("chat", "latency"))
        assert caught.value.reason == "hopeless"
        assert time.monotonic() - started < 0.1  # not the 0.2 s max_wait
        with pytest.raises(QueueRejected):
            queue.acquire(remaining=0.0)
    assert rec.value(S.QUEUE_SHED, queue="q") == 1


def test_queue_hands_slots_over_fifo_to_asyncio_tasks(rec: testing.InMemoryRecorder) -> None:
    """asyncio: at most max_concurrency at once, waiters served in arrival order."""
    queue = AdmissionQueue(max_concurrency=2, max_wait=5.0, name="aq", registry=rec.registry)
    order: list[int] = []
    active, peak = [0], [0]

    @observe(workload="chat", model=FLASH, queue=queue, registry=rec.registry)
    async def call(i: int) -> None:
        order.append(i)
        active[0] += 1
        peak[0] = max(peak[0], active[0])
        await asyncio.sleep(0.01)
        active[0] -= 1

    async def main() -> None:
        tasks = []
        for i in range(10):
            tasks.append(asyncio.create_task(call(i)))
            await asyncio.sleep(0)
        await asyncio.gather(*tasks)

    asyncio.run(main())
    assert peak[0] == 2
    assert order == list(range(10))
    assert rec.value(S.CALLS, outcome="ok") == 10
    assert rec.histogram(S.QUEUE_WAIT, queue="aq").count == 10


def test_queue_async_timeout_shed(rec: testing.InMemoryRecorder) -> None:
    """asyncio: a task that waits past max_wait gets QueueRejected (reason timeout)."""
    queue = AdmissionQueue(max_concurrency=1, max_wait=0.03, name="aq", registry=rec.registry)

    async def main() -> None:
        async with queue.slot(workload="chat"):
            with pytest.raises(QueueRejected) as caught:
                async with queue.slot(workload="chat"):
                    pass
            assert caught.value.reason == "timeout"
        async with queue.slot(workload="chat"):  # the slot is free again
            pass

    asyncio.run(main())
    assert rec.value(S.QUEUE_SHED, workload="chat") == 1
    assert queue.active == 0 and queue.waiting == 0


def test_thousand_tasks_exact_counts(rec: testing.InMemoryRecorder) -> None:
    """1,000 asyncio tasks through a queue: every call counted, none lost, none twice."""
    queue = AdmissionQueue(max_concurrency=50, max_wait=30.0, name="big", registry=rec.registry)

    @observe(workload="chat", queue=queue, registry=rec.registry)
    async def call() -> types.GenerateContentResponse:
        await asyncio.sleep(0.001)
        return _response(prompt=2, output=3, thoughts=0)

    async def main() -> None:
        await asyncio.gather(*(call() for _ in range(1000)))

    asyncio.run(main())
    assert rec.value(S.CALLS, outcome="ok") == 1000
    assert rec.value(S.TOKENS, token_type="output") == 3000
    assert rec.value(S.REQUESTS_IN_FLIGHT) == 0
    assert rec.value(S.QUEUE_DEPTH) == 0
    assert queue.active == 0


def test_docs_signals_table_is_current() -> None:
    """docs/instrumentation.md carries the table generated from signals.py, verbatim."""
    from gemini_slo.instrumentation._doc import signals_table

    doc = (Path(__file__).resolve().parent.parent / "docs" / "instrumentation.md").read_text()
    assert signals_table() in doc


def test_provider_from_the_client() -> None:
    """gcp.vertex_ai for a Vertex AI client, gcp.gemini otherwise."""
    from types import SimpleNamespace

    from gemini_slo.instrumentation._patch import _provider

    assert (
        _provider(SimpleNamespace(_api_client=SimpleNamespace(vertexai=True))) == S.PROVIDER_VERTEX
    )
    assert (
        _provider(SimpleNamespace(_api_client=SimpleNamespace(vertexai=False))) == S.PROVIDER_GEMINI
    )


def test_nested_observe_scopes_each_record(rec: testing.InMemoryRecorder) -> None:
    """An observed function calling another observed function: two calls, two workloads."""

    @observe(workload="inner", model=FLASH, registry=rec.registry)
    def inner() -> types.GenerateContentResponse:
        return _response(output=7)

    @observe(workload="outer", model=FLASH, registry=rec.registry)
    def outer() -> str:
        inner()
        return "done"

    assert outer() == "done"
    assert rec.value(S.CALLS, workload="inner") == 1
    assert rec.value(S.CALLS, workload="outer") == 1
    assert rec.value(S.TOKENS, workload="inner", token_type="output") == 7


def test_explicit_usage_wins_over_the_returned_response(rec: testing.InMemoryRecorder) -> None:
    """Usage reported through the handle replaces what the returned value says."""
    with observe(workload="chat", registry=rec.registry) as call:
        call.record_response(_response(prompt=5, output=6, thoughts=0))
        call.first_chunk()
    assert rec.value(S.TOKENS, token_type="output") == 6
    assert rec.value(S.CALLS, model=FLASH) == 1  # the model came from model_version
    assert rec.histogram(S.TIME_TO_FIRST_CHUNK).count == 1


def test_exception_thrown_into_a_stream_is_forwarded(rec: testing.InMemoryRecorder) -> None:
    """gen.throw() reaches the decorated generator, which may handle it and go on."""

    @observe(workload="chat", model=FLASH, registry=rec.registry)
    def stream() -> Any:
        try:
            yield 1
        except KeyError:
            yield "handled"

    gen = stream()
    assert next(gen) == 1
    assert gen.throw(KeyError("x")) == "handled"
    gen.close()
    assert rec.value(S.CALLS, outcome="ok") == 1


def test_in_flight_survives_a_threshold_change() -> None:
    """Changing thresholds mid-call restarts the series but keeps in-flight balanced."""
    registry = Registry()
    rec = testing.InMemoryRecorder(registry)
    with observe(workload="chat", model=FLASH, registry=registry):
        assert rec.value(S.REQUESTS_IN_FLIGHT) == 1
        registry.set_thresholds(from_spec_mapping({"chat": [0.33]}))
        assert rec.value(S.REQUESTS_IN_FLIGHT) == 1
    assert rec.value(S.REQUESTS_IN_FLIGHT) == 0
    assert 0.33 in rec.histogram(S.OPERATION_DURATION).bounds
