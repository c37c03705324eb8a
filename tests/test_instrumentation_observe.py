"""``observe`` (``_observe.py``, ``_call.py``) on plain and coroutine functions and as a context
manager: values and exceptions pass through, usage precedence, deadlines, nesting, in flight."""

from __future__ import annotations

import asyncio
import time
import traceback
from typing import Any

import pytest
from gemini_slo.contract import signals as S
from gemini_slo.instrumentation import (
    DeadlineExceeded,
    Registry,
    observe,
    testing,
)
from google.genai import errors as genai_errors
from google.genai import types

FLASH = "gemini-2.5-flash"


@pytest.fixture
def rec() -> testing.InMemoryRecorder:
    """A fresh registry and its reader."""
    return testing.InMemoryRecorder(Registry())


def test_decorator_returns_the_same_object(rec: testing.InMemoryRecorder) -> None:
    """The decorated function returns exactly what it returned before."""
    response = testing.response(thoughts=5)

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


def test_async_function_and_async_generator(rec: testing.InMemoryRecorder) -> None:
    """Coroutine functions and async generators are observed; values pass through."""
    response = testing.response()

    @observe(workload="chat", registry=rec.registry)
    async def call() -> types.GenerateContentResponse:
        await asyncio.sleep(0)
        return response

    @observe(workload="chat", registry=rec.registry)
    async def stream() -> Any:
        for n in (16, 32):
            await asyncio.sleep(0)
            yield testing.response(output=n)

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


def test_nested_observe_scopes_each_record(rec: testing.InMemoryRecorder) -> None:
    """An observed function calling another observed function: two calls, two workloads."""

    @observe(workload="inner", model=FLASH, registry=rec.registry)
    def inner() -> types.GenerateContentResponse:
        return testing.response(output=7)

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
        call.record_response(testing.response(prompt=5, output=6, thoughts=0))
        call.first_chunk()
    assert rec.value(S.TOKENS, token_type="output") == 6
    assert rec.value(S.CALLS, model=FLASH) == 1  # the model came from model_version
    assert rec.histogram(S.TIME_TO_FIRST_CHUNK).count == 1


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
