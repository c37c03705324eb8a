"""Observed streams (``_streams.py``): last-chunk usage and TTFT, early close, send/throw and
return values, deadlines between chunks, functions that return a generator, and which call
an SDK call made during a step belongs to."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from gemini_slo.contract import signals as S
from gemini_slo.instrumentation import (
    DeadlineExceeded,
    Registry,
    _streams,
    instrument,
    observe,
    testing,
    uninstrument,
)
from google import genai
from google.genai import models as genai_models

FLASH = "gemini-2.5-flash"


@pytest.fixture
def rec() -> testing.InMemoryRecorder:
    """A fresh registry and its reader."""
    return testing.InMemoryRecorder(Registry())


def test_generator_stream_last_chunk_usage_and_ttft(rec: testing.InMemoryRecorder) -> None:
    """A stream counts its LAST chunk's cumulative usage once, never the sum of chunks."""
    chunks = [testing.response(prompt=10, output=n, thoughts=7) for n in (16, 32, 40)]

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
                yield testing.response(output=n)
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
        yield testing.response(output=5)
        time.sleep(0.02)
        yield testing.response(output=9)

    @observe(workload="chat", registry=rec.registry)
    def call() -> Any:
        return produce()

    assert len(list(call())) == 2
    assert rec.histogram(S.OPERATION_DURATION).sum >= 0.02
    assert rec.value(S.TOKENS, token_type="output") == 9


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


@pytest.fixture
def patched_client(
    monkeypatch: pytest.MonkeyPatch, rec: testing.InMemoryRecorder
) -> Iterator[genai.Client]:
    """A client whose models are patched by instrument() (workload 'default') over a stub of
    the SDK's generate_content answering 10 input and 7 output tokens."""
    answer = testing.response(prompt=10, output=7)
    monkeypatch.setattr(genai_models.Models, "generate_content", lambda self, **kw: answer)
    client = genai.Client(api_key="test-key")
    instrument(client, workload="default", registry=rec.registry)
    yield client
    uninstrument(client)


def test_sdk_calls_in_any_step_of_a_sync_stream_count_for_it(
    rec: testing.InMemoryRecorder, patched_client: genai.Client
) -> None:
    """An observed generator's SDK calls, before its first yield or after a later one, are
    part of its call; an SDK call the consumer makes between chunks is a call of its own."""

    @observe(workload="chat", registry=rec.registry)
    def stream() -> Any:
        yield patched_client.models.generate_content(model=FLASH, contents="a")
        yield "thinking"
        yield patched_client.models.generate_content(model=FLASH, contents="b")

    for _ in stream():
        patched_client.models.generate_content(model=FLASH, contents="consumer")
    assert rec.value(S.CALLS, workload="chat") == 1
    assert rec.value(S.TOKENS, workload="chat", token_type="output") == 14
    assert rec.value(S.CALLS, workload="default") == 3


def test_innermost_scope_wins_inside_a_sync_stream_step(
    rec: testing.InMemoryRecorder, patched_client: genai.Client
) -> None:
    """Inside a step, a ``with observe()`` block and a nested observed stream take the SDK
    calls made within them; once they end the outer stream's step takes them again."""

    @observe(workload="inner-stream", registry=rec.registry)
    def inner() -> Any:
        yield patched_client.models.generate_content(model=FLASH, contents="i")

    @observe(workload="outer", registry=rec.registry)
    def outer() -> Any:
        with observe(workload="block", registry=rec.registry):
            patched_client.models.generate_content(model=FLASH, contents="b")
            for _ in inner():  # the inner stream's step is innermost, then the block again
                patched_client.models.generate_content(model=FLASH, contents="b2")
        yield patched_client.models.generate_content(model=FLASH, contents="o")
        for _ in inner():
            patched_client.models.generate_content(model=FLASH, contents="o2")

    assert len(list(outer())) == 1
    calls = {w: rec.value(S.CALLS, workload=w) for w in ("outer", "block", "inner-stream")}
    assert calls == {"outer": 1, "block": 1, "inner-stream": 2}
    tokens = {w: rec.value(S.TOKENS, workload=w, token_type="output") for w in calls}
    assert tokens == {"outer": 14, "block": 14, "inner-stream": 14}
    assert rec.value(S.CALLS, workload="default") == 0


def test_a_stream_open_in_another_thread_takes_no_calls_of_this_one(
    rec: testing.InMemoryRecorder, patched_client: genai.Client
) -> None:
    """While an observed stream is suspended in one thread, SDK calls elsewhere (another
    thread, or this thread between chunks) are calls of their own."""

    @observe(workload="chat", registry=rec.registry)
    def stream() -> Any:
        yield 1
        yield 2

    gen = stream()
    next(gen)
    worker = threading.Thread(
        target=lambda: patched_client.models.generate_content(model=FLASH, contents="t")
    )
    worker.start()
    worker.join()
    patched_client.models.generate_content(model=FLASH, contents="here")
    assert list(gen) == [2]
    assert rec.value(S.CALLS, workload="default") == 2
    assert rec.value(S.CALLS, workload="chat") == 1
    assert not _streams.OPEN_STREAMS
