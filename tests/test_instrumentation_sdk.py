"""The real google-genai SDK against the emulator (real HTTP), instrumented.

Every test compares with the emulator's ground truth (``stats()``): calls by status, tokens
written to the client, and the cost the price table gives for those tokens.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from gemini_slo.contract import signals as S
from gemini_slo.emulator.testing import EmulatorHandle, running_emulator
from gemini_slo.instrumentation import (
    AdmissionQueue,
    QueueRejected,
    Registry,
    Usage,
    instrument,
    is_instrumented,
    observe,
    testing,
    uninstrument,
)
from gemini_slo.instrumentation.pricing import default_table
from google import genai
from google.genai import errors as genai_errors
from google.genai import models as genai_models
from google.genai import types

FLASH = "gemini-2.5-flash"
SHAPES = ("sync", "async", "stream", "async_stream")


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorHandle]:
    """One emulator for the module, with no model latency (timing is not the point here)."""
    with running_emulator(seed=3, time_scale=0.0, quotas=False) as emu:
        yield emu


@pytest.fixture
def emu(emulator: EmulatorHandle) -> Iterator[EmulatorHandle]:
    """The emulator with fresh ground truth and no faults (after the last test's requests,
    stalled ones included, have been accounted for)."""
    emulator.clear_faults()
    settled_stats(emulator)
    emulator.reset_stats()
    yield emulator
    emulator.clear_faults()


@pytest.fixture
def rec() -> testing.InMemoryRecorder:
    """A fresh registry and its reader."""
    return testing.InMemoryRecorder(Registry())


def make_client(emu: EmulatorHandle, timeout_ms: int | None = None) -> genai.Client:
    """A real client pointed at the emulator."""
    return genai.Client(
        api_key="test", http_options=types.HttpOptions(base_url=emu.url, timeout=timeout_ms)
    )


@pytest.fixture
def client(emu: EmulatorHandle, rec: testing.InMemoryRecorder) -> Iterator[genai.Client]:
    """A client instrumented for workload 'chat' (latency) into the test's registry."""
    c = make_client(emu)
    instrument(c, workload="chat", mode="latency", registry=rec.registry)
    yield c
    uninstrument(c)


def call(
    client: genai.Client, shape: str, model: str = FLASH, contents: str = "Tell me about SLOs"
) -> Any:
    """One call in the given shape; returns the response or the list of chunks."""
    if shape == "sync":
        return client.models.generate_content(model=model, contents=contents)
    if shape == "stream":
        return list(client.models.generate_content_stream(model=model, contents=contents))

    async def run() -> Any:
        if shape == "async":
            return await client.aio.models.generate_content(model=model, contents=contents)
        return [
            c
            async for c in await client.aio.models.generate_content_stream(
                model=model, contents=contents
            )
        ]

    return asyncio.run(run())


def settled_stats(emu: EmulatorHandle) -> dict[str, Any]:
    """The ground truth once the emulator has finished its bookkeeping: a stream's client can
    see the last chunk a moment before the server's handler records it."""
    deadline = time.monotonic() + 5
    while emu.stats()["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.01)
    return emu.stats()


def truth_usage(emu: EmulatorHandle, model: str = FLASH) -> Usage:
    """The tokens the emulator wrote to clients, as a Usage."""
    t = settled_stats(emu)["tokens"].get(model, {})
    return Usage(t.get("input", 0), t.get("output", 0), t.get("thoughts", 0), t.get("cached", 0), 0)


def assert_tokens_and_cost_match(
    rec: testing.InMemoryRecorder, emu: EmulatorHandle, model: str = FLASH
) -> None:
    """Recorded token totals equal the ground truth; the cost equals the table applied to it."""
    truth = truth_usage(emu, model)
    for token_type, expected in zip(S.TokenType, truth, strict=True):
        assert rec.value(S.TOKENS, model=model, token_type=token_type) == expected, token_type
    expected_pico = default_table().cost_pico(model, truth)
    assert expected_pico is not None
    assert rec.value(S.COST, model=model) == expected_pico / 1e12


@pytest.mark.parametrize("shape", SHAPES)
def test_four_shapes_exact_tokens_and_cost(
    shape: str, client: genai.Client, emu: EmulatorHandle, rec: testing.InMemoryRecorder
) -> None:
    """Each call shape: one call per request, tokens and cost exactly the ground truth."""
    for _ in range(3):
        call(client, shape)
    assert settled_stats(emu)["requests"][FLASH] == {"200": 3}
    assert (
        rec.value(
            S.CALLS,
            workload="chat",
            mode="latency",
            model=FLASH,
            outcome="ok",
            provider=S.PROVIDER_GEMINI,
        )
        == 3
    )
    assert rec.histogram(S.OPERATION_DURATION).count == 3
    assert_tokens_and_cost_match(rec, emu)
    assert rec.value(S.REQUESTS_IN_FLIGHT) == 0
    streamed = "stream" in shape
    assert bool(rec.series(S.TIME_TO_FIRST_CHUNK)) is streamed
    assert bool(rec.series(S.TIME_PER_OUTPUT_TOKEN)) is streamed


def test_stream_cached_tokens_exact(
    client: genai.Client, emu: EmulatorHandle, rec: testing.InMemoryRecorder
) -> None:
    """Cache hits: cached tokens counted, priced at the cache-read price, exactly."""
    emu.set_fault("cache_hit", fraction=0.5)
    for shape in SHAPES:
        call(client, shape, contents="a long prompt " * 200)
    assert truth_usage(emu).cached > 0
    assert_tokens_and_cost_match(rec, emu)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("status", "outcome"), [(429, "rate_limited"), (503, "error")])
def test_api_errors(
    shape: str,
    status: int,
    outcome: str,
    client: genai.Client,
    emu: EmulatorHandle,
    rec: testing.InMemoryRecorder,
) -> None:
    """429 and 503 from the API: the SDK's exception reaches the caller; outcome and error.type."""
    emu.set_fault("error_rate", status=status)
    with pytest.raises(genai_errors.APIError) as caught:
        call(client, shape)
    assert caught.value.code == status
    assert rec.value(S.CALLS, outcome=outcome, error_type=str(status)) == 1
    assert rec.value(S.OPERATION_DURATION, error_type=str(status)) == 1
    assert rec.value(S.REQUESTS_IN_FLIGHT) == 0


@pytest.mark.parametrize("shape", ["stream", "async_stream"])
def test_stream_error_midway_counts_tokens_sent(
    shape: str, client: genai.Client, emu: EmulatorHandle, rec: testing.InMemoryRecorder
) -> None:
    """An error event inside a stream: outcome error, tokens = those of the chunks received."""
    emu.set_fault("stream_error", status=500, after_chunks=2)
    with pytest.raises(genai_errors.APIError):
        call(client, shape)
    assert rec.value(S.CALLS, outcome="error") == 1
    assert_tokens_and_cost_match(rec, emu)


@pytest.mark.parametrize(
    ("shape", "error_type"),
    [
        ("sync", "httpx2.ReadTimeout"),
        ("stream", "httpx2.ReadTimeout"),
        ("async", "TimeoutError"),
        ("async_stream", "TimeoutError"),
    ],
)
def test_client_timeouts(
    shape: str, error_type: str, emu: EmulatorHandle, rec: testing.InMemoryRecorder
) -> None:
    """A stalled server and HttpOptions(timeout=...): outcome timeout, the SDK's own exception."""
    emu.set_fault("stall")
    c = make_client(emu, timeout_ms=300)
    instrument(c, workload="chat", registry=rec.registry)
    try:
        with pytest.raises((httpx2.TimeoutException, TimeoutError)):
            call(c, shape)
    finally:
        uninstrument(c)
    assert rec.value(S.CALLS, outcome="timeout", error_type=error_type) == 1
    assert rec.histogram(S.OPERATION_DURATION, error_type=error_type).sum >= 0.25


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("fault", ["block", "safety"])
def test_blocked_prompts_and_safety(
    shape: str, fault: str, client: genai.Client, emu: EmulatorHandle, rec: testing.InMemoryRecorder
) -> None:
    """Blocked prompts and SAFETY finishes: no exception, outcome blocked, tokens still exact."""
    emu.set_fault(fault)
    call(client, shape)
    assert rec.value(S.CALLS, outcome="blocked") == 1
    assert rec.value(S.CALLS) == 1
    assert_tokens_and_cost_match(rec, emu)


def test_embeddings(
    client: genai.Client, emu: EmulatorHandle, rec: testing.InMemoryRecorder
) -> None:
    """embed_content is recorded as operation 'embeddings' (and not as blocked)."""
    client.models.embed_content(model="gemini-embedding-001", contents="hello")
    assert (
        rec.value(S.CALLS, operation=S.OPERATION_EMBED, model="gemini-embedding-001", outcome="ok")
        == 1
    )


def test_observe_scope_counts_sdk_calls_once(
    emu: EmulatorHandle, rec: testing.InMemoryRecorder
) -> None:
    """With the classes patched, an SDK call inside @observe is one call of the scope's
    workload and mode, with the SDK call's model, usage and provider."""
    c = make_client(emu)
    instrument(workload="default", registry=rec.registry)
    try:

        @observe(workload="batch", mode="throughput", registry=rec.registry)
        def summarize() -> str:
            return c.models.generate_content(model=FLASH, contents="x").text or ""

        @observe(workload="chat", registry=rec.registry)
        def chat() -> list[Any]:
            return list(c.models.generate_content_stream(model=FLASH, contents="x"))

        @observe(workload="chat", registry=rec.registry)
        async def achat() -> list[Any]:
            return [
                x
                async for x in await c.aio.models.generate_content_stream(model=FLASH, contents="x")
            ]

        summarize()
        chat()
        asyncio.run(achat())
        c.models.generate_content(model=FLASH, contents="outside any scope")
    finally:
        uninstrument()
    assert rec.value(S.CALLS) == 4 == sum(settled_stats(emu)["requests"][FLASH].values())
    assert (
        rec.value(
            S.CALLS, workload="batch", mode="throughput", model=FLASH, provider=S.PROVIDER_GEMINI
        )
        == 1
    )
    assert rec.value(S.CALLS, workload="chat", mode="latency", model=FLASH) == 2
    assert rec.value(S.CALLS, workload="default") == 1
    assert rec.histogram(S.TIME_TO_FIRST_CHUNK, workload="chat").count == 2
    assert_tokens_and_cost_match(rec, emu)


def test_client_and_class_patch_together_count_once(
    emu: EmulatorHandle, rec: testing.InMemoryRecorder
) -> None:
    """A client instrumented on top of the class patch: still one call per request."""
    c = make_client(emu)
    instrument(registry=rec.registry)
    instrument(c, workload="chat", registry=rec.registry)
    try:
        call(c, "sync")
        call(c, "stream")
    finally:
        uninstrument(c)
        uninstrument()
    assert rec.value(S.CALLS) == 2
    assert rec.value(S.CALLS, workload="chat") == 2
    assert_tokens_and_cost_match(rec, emu)


def test_uninstrument_restores_the_exact_functions(emu: EmulatorHandle) -> None:
    """instrument/uninstrument (twice each) leave the SDK's own function objects in place."""
    originals = {
        (cls, name): cls.__dict__[name]
        for cls in (genai_models.Models, genai_models.AsyncModels)
        for name in ("generate_content", "generate_content_stream", "embed_content")
    }
    instrument()
    patched = {key: key[0].__dict__[key[1]] for key in originals}
    instrument()  # a no-op
    assert all(key[0].__dict__[key[1]] is patched[key] is not originals[key] for key in originals)
    assert is_instrumented()
    uninstrument()
    uninstrument()
    assert all(key[0].__dict__[key[1]] is fn for key, fn in originals.items())
    assert not is_instrumented()
    c = make_client(emu)
    instrument(c)
    instrument(c)
    assert is_instrumented(c)
    uninstrument(c)
    assert "generate_content" not in vars(c.models) and "generate_content" not in vars(c.aio.models)
    assert call(c, "sync").text


def test_return_values_are_the_sdks_objects(client: genai.Client, emu: EmulatorHandle) -> None:
    """The patched methods return the SDK's own types, unchanged."""
    response = client.models.generate_content(model=FLASH, contents="x")
    assert type(response) is types.GenerateContentResponse
    chunks = list(client.models.generate_content_stream(model=FLASH, contents="x"))
    assert all(type(c) is types.GenerateContentResponse for c in chunks)


def test_queue_sheds_against_the_api(
    emu: EmulatorHandle, client: genai.Client, rec: testing.InMemoryRecorder
) -> None:
    """A slow API and a small queue: extra callers are shed with QueueRejected, never sent."""
    emu.set_fault("extra_delay", seconds=0.5)
    queue = AdmissionQueue(max_concurrency=2, max_wait=0.05, name="chat-q", registry=rec.registry)

    @observe(workload="chat", queue=queue, registry=rec.registry)
    def ask() -> None:
        client.models.generate_content(model=FLASH, contents="x")

    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def run() -> None:
        barrier.wait()
        try:
            ask()
            outcomes.append("ok")
        except QueueRejected:
            outcomes.append("rejected")

    threads = [threading.Thread(target=run) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok"] * 2 + ["rejected"] * 4
    assert sum(settled_stats(emu)["requests"][FLASH].values()) == 2
    assert rec.value(S.CALLS, outcome="rejected") == 4
    assert rec.value(S.QUEUE_SHED, queue="chat-q") == 4


def test_async_deadline_against_a_stalled_api(
    emu: EmulatorHandle, client: genai.Client, rec: testing.InMemoryRecorder
) -> None:
    """observe(deadline=) on a coroutine cancels a stalled SDK call on time."""
    emu.set_fault("stall")

    @observe(workload="chat", deadline=0.2, registry=rec.registry)
    async def ask() -> Any:
        return await client.aio.models.generate_content(model=FLASH, contents="x")

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        asyncio.run(ask())
    assert time.monotonic() - started < 2.0
    assert rec.value(S.CALLS, outcome="timeout", model=FLASH) == 1
    assert rec.value(S.DEADLINE_EXCEEDED) == 1


def test_64_threads_exact_counts(
    client: genai.Client, emu: EmulatorHandle, rec: testing.InMemoryRecorder
) -> None:
    """64 threads calling the instrumented SDK at once: counts and tokens exact."""
    barrier = threading.Barrier(64)

    def worker() -> None:
        barrier.wait()
        for i in range(4):
            call(client, "stream" if i % 2 else "sync")

    threads = [threading.Thread(target=worker) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert settled_stats(emu)["requests"][FLASH] == {"200": 256}
    assert rec.value(S.CALLS, outcome="ok") == 256
    assert_tokens_and_cost_match(rec, emu)
    assert rec.value(S.REQUESTS_IN_FLIGHT) == 0


def test_1000_async_tasks_exact_counts(
    client: genai.Client, emu: EmulatorHandle, rec: testing.InMemoryRecorder
) -> None:
    """1,000 asyncio tasks calling the instrumented async SDK at once: exact counts."""

    async def main() -> None:
        async def one(i: int) -> None:
            if i % 2:
                await client.aio.models.generate_content(model=FLASH, contents="x")
            else:
                async for _ in await client.aio.models.generate_content_stream(
                    model=FLASH, contents="x"
                ):
                    pass

        await asyncio.gather(*(one(i) for i in range(1000)))

    asyncio.run(main())
    assert settled_stats(emu)["requests"][FLASH] == {"200": 1000}
    assert rec.value(S.CALLS, outcome="ok") == 1000
    assert_tokens_and_cost_match(rec, emu)
    assert rec.value(S.REQUESTS_IN_FLIGHT) == 0


def test_throughput_mode_and_flex_tier(emu: EmulatorHandle, rec: testing.InMemoryRecorder) -> None:
    """A throughput workload: tokens/s and cost per 1M tokens per call; service_tier flex
    is priced at 50%, exactly."""
    c = make_client(emu)
    instrument(c, workload="batch", mode="throughput", registry=rec.registry)
    flex = types.GenerateContentConfig(service_tier="flex")
    try:
        for _ in range(3):
            c.models.generate_content(model=FLASH, contents="x", config=flex)
        list(c.models.generate_content_stream(model=FLASH, contents="x", config=flex))
    finally:
        uninstrument(c)
    truth = truth_usage(emu)
    assert rec.value(S.CALLS, workload="batch", mode="throughput") == 4
    assert rec.value(S.COST) == default_table().cost_pico(FLASH, truth, "flex") / 1e12
    assert rec.histogram(S.CALL_TOKENS_PER_SECOND).count == 4
    assert rec.histogram(S.CALL_COST_PER_MILLION_TOKENS).count == 4
    assert not rec.series(S.TIME_TO_FIRST_CHUNK)  # a latency-mode signal
    assert rec.histogram(S.OPERATION_DURATION).bounds == S.THROUGHPUT_DURATION_BUCKETS


@pytest.mark.parametrize("shape", SHAPES)
def test_per_call_log_with_the_sdk(
    shape: str, client: genai.Client, emu: EmulatorHandle, rec: testing.InMemoryRecorder
) -> None:
    """With log_calls on, the patched calls log one event each and record the same signals;
    no prompt or response text, no API key."""
    import structlog
    from gemini_slo.instrumentation import _state

    _state.log_calls = True
    try:
        with structlog.testing.capture_logs() as logs:
            call(client, shape)
    finally:
        _state.log_calls = False
    assert len(logs) == 1
    event = logs[0]
    assert event["outcome"] == "ok" and event["model"] == FLASH and event["workload"] == "chat"
    assert ("ttft_s" in event) is ("stream" in shape)
    assert "test" not in repr(event.get("api_key", "")) and "SLOs" not in repr(event)
    assert rec.value(S.CALLS, outcome="ok") == 1
    assert_tokens_and_cost_match(rec, emu)


def test_observed_async_stream_with_queue_and_deadline(
    client: genai.Client, emu: EmulatorHandle, rec: testing.InMemoryRecorder
) -> None:
    """The load generator's shape: an async-generator chat turn with a queue and a deadline,
    streaming from an instrumented client: one call per turn, with TTFT, tokens exact."""
    queue = AdmissionQueue(max_concurrency=4, max_wait=5.0, name="chat", registry=rec.registry)

    @observe(workload="chat", deadline=10.0, queue=queue, registry=rec.registry)
    async def chat(prompt: str) -> Any:
        stream = await client.aio.models.generate_content_stream(model=FLASH, contents=prompt)
        async for chunk in stream:
            yield chunk

    async def main() -> None:
        async def turn() -> None:
            async for _ in chat("hello"):
                pass

        await asyncio.gather(*(turn() for _ in range(20)))

    asyncio.run(main())
    assert (
        rec.value(S.CALLS) == 20 == rec.value(S.CALLS, workload="chat", model=FLASH, outcome="ok")
    )
    assert rec.histogram(S.TIME_TO_FIRST_CHUNK).count == 20
    assert rec.histogram(S.QUEUE_WAIT, queue="chat").count == 20
    assert rec.value(S.CONCURRENCY_LIMIT, workload="chat") == 4
    assert_tokens_and_cost_match(rec, emu)
