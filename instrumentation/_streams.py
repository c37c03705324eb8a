"""Wrappers that time a stream (sync or async iterator) owned by one :class:`Call`.

A stream's call ends at its last chunk (exhaustion), at the exception it raises, or when
the consumer closes it early (``close()``/``aclose()``, ``break`` and garbage collection):
in every case it is recorded exactly once (``Call.finish`` is idempotent). ``send`` and
``throw`` are passed through, so a decorated generator behaves as the original.

The active call is set only around each step of the inner iterator, never across a
``yield``: code that consumes the chunks runs in its own context, not in the call's.

Deadline: checked after every chunk; a stream past its deadline is closed and the consumer
gets ``DeadlineExceeded`` (outcome ``timeout``). In an async stream each step is also
awaited under ``asyncio.timeout(remaining)``, so a stalled stream is interrupted on time.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator
from types import FrameType
from typing import Any, TypeVar

from gemini_slo.instrumentation._call import CURRENT, Call
from gemini_slo.instrumentation._classify import DeadlineExceeded, final_outcome, outcome_of
from gemini_slo.instrumentation._registry import Finished, Registry
from gemini_slo.instrumentation._usage import usage_of
from gemini_slo.instrumentation._values import CallKey

T = TypeVar("T")
_perf = time.perf_counter


def _deadline_error(call: Call) -> DeadlineExceeded:
    return DeadlineExceeded(
        f"deadline of {call.scope.deadline}s exceeded after {call.elapsed:.3f}s"
    )


def sync_stream(
    call: Call, inner: Generator[T, Any, Any], admit: bool = False
) -> Generator[T, Any, Any]:
    """Iterate the generator ``inner`` as the stream of ``call`` (``admit``: queue + begin
    at the first step).

    The call is active during each step of ``inner`` (an SDK call made there contributes to
    it), found by :func:`active_call` from this frame: ``under`` is what CURRENT held when
    the step began (:data:`_NO_STEP` once the stream is ending; while suspended at the
    ``yield`` the frame is on no thread's stack).
    """
    if admit:  # the call starts at the first step (a generator runs nothing before it)
        call.started = _perf()
        if call.scope.queue is not None:
            call.admit()
        call.begin()
    send, throw = inner.send, inner.throw
    step: Callable[[Any], T] = send  # what resumes inner: send(value), or throw(exc)
    arg: Any = None
    current = CURRENT.get
    deadline = call.scope.deadline
    started = call.started
    first: float | None = None
    last: Any = None
    under: Any = _NO_STEP
    OPEN_STREAMS.add(call)
    try:
        while True:
            under = current()  # a step of inner runs as `call` (see active_call)
            chunk = step(arg)
            if first is None:
                first = _perf()
            last = chunk
            if deadline is not None and _perf() - started > deadline:
                raise _deadline_error(call)
            try:
                arg = yield chunk
                step = send
            except GeneratorExit:
                raise
            except BaseException as exc:  # thrown in by the consumer: forward it
                step, arg = throw, exc
    except StopIteration as stop:
        OPEN_STREAMS.discard(call)
        call.end_stream(first, last)
        return stop.value
    except GeneratorExit:
        under = _NO_STEP  # read from this frame by active_call
        OPEN_STREAMS.discard(call)
        _close(inner)
        call.end_stream(first, last)
        raise
    except BaseException as exc:
        under = _NO_STEP  # noqa: F841 - read from this frame by active_call
        OPEN_STREAMS.discard(call)
        _close(inner)
        call.end_stream(first, last, exc)
        raise


_SYNC_STEP = sync_stream.__code__
_NO_STEP: Any = object()

OPEN_STREAMS: set[Call] = set()
"""Observed sync streams between their first step and their end, in every thread: while
there is none, :func:`active_call` is one context-variable read."""


def active_call() -> Call | None:
    """The call an SDK call made from here contributes to; None: it is a call of its own.

    The innermost active call: CURRENT's (an ``observe`` function or ``with`` block, an
    async stream's step), unless a step of an observed sync stream runs below on this
    thread's stack and nothing set CURRENT since the step began. A sync stream does not set
    CURRENT around each step as the async one must (a task created in a step inherits it):
    the two context-variable writes per chunk were most of the stream wrapper's cost with
    network, 0.65 us per chunk once the HTTP read has left the caches cold
    (bench/overhead.py prints the breakdown). Its frame is on the stack exactly while one
    of its steps runs, which is what "active" means; code the consumer runs between chunks
    does not see it.
    """
    current = CURRENT.get()
    if not OPEN_STREAMS:
        return current
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code is _SYNC_STEP:
            local = frame.f_locals
            under = local.get("under", _NO_STEP)
            if under is not _NO_STEP:  # in a step (else: closing, finishing: look further up)
                return local["call"] if under is current else current
        frame = frame.f_back
    return current


def _close(inner: Any) -> None:
    close = getattr(inner, "close", None)
    if close is not None:
        close()


async def async_stream(
    call: Call, inner: AsyncIterator[T], admit: bool = False
) -> AsyncGenerator[T, Any]:
    """Iterate ``inner`` as the stream of ``call`` (``admit``: queue + begin at first step)."""
    if admit:
        call.started = _perf()
        await call.admit_async()
        call.begin()
    asend = getattr(inner, "asend", None)
    value: Any = None
    thrown: BaseException | None = None
    deadline = call.scope.deadline
    started = call.started
    first: float | None = None
    last: Any = None
    try:
        while True:
            token = CURRENT.set(call)  # around the step only: never across the yield
            try:
                if thrown is not None:
                    error, thrown = thrown, None
                    step = inner.athrow(error)  # type: ignore[attr-defined]
                elif asend is not None:
                    step = asend(value)
                else:
                    step = inner.__anext__()
                if deadline is None:
                    chunk = await step
                else:
                    chunk = await _with_deadline(call, step)
            finally:
                CURRENT.reset(token)
            if first is None:
                first = _perf()
            last = chunk
            if deadline is not None and _perf() - started > deadline:
                raise _deadline_error(call)
            try:
                value = yield chunk
            except GeneratorExit:
                raise
            except BaseException as exc:
                thrown = exc
    except StopAsyncIteration:
        call.end_stream(first, last)
    except GeneratorExit:
        await _aclose(inner)
        call.end_stream(first, last)
        raise
    except BaseException as exc:
        await _aclose(inner)
        call.end_stream(first, last, exc)
        raise


async def _with_deadline(call: Call, step: Any) -> Any:
    remaining = call.remaining
    if remaining is not None and remaining <= 0:
        step.close()
        raise _deadline_error(call)
    timeout = asyncio.timeout(remaining)
    try:
        async with timeout:
            return await step
    except TimeoutError as exc:
        if timeout.expired():
            raise _deadline_error(call) from exc
        raise


async def _aclose(inner: Any) -> None:
    aclose = getattr(inner, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):  # a broken inner close must not mask the error
            await aclose()


def sdk_stream(call: Call, make: Callable[[], Iterator[T]]) -> Generator[T, None, None]:
    """The lean path for a patched SDK stream that is its own call (no user code inside, no
    deadline): per chunk only a first-chunk check and a reference to the last chunk."""
    call.started = _perf()
    call.begin()
    call.enter()  # only while the SDK builds its stream: a nested patch sees this call
    try:
        inner = make()
    except BaseException as exc:
        call.exit()
        call.finish(exc)
        raise
    call.exit()
    first: float | None = None
    last: Any = None
    try:
        for chunk in inner:
            if first is None:
                first = _perf()
            last = chunk
            yield chunk
    except GeneratorExit:
        _close(inner)
        call.stream_ended(first, last)
        call.finish()
        raise
    except BaseException as exc:
        call.stream_ended(first, last)
        call.finish(exc)
        raise
    call.stream_ended(first, last)
    call.finish()


async def sdk_async_stream(call: Call, inner: AsyncIterator[T]) -> AsyncGenerator[T, None]:
    """The lean path for a patched async SDK stream that is its own call (in flight from
    its first step)."""
    call.begin()
    first: float | None = None
    last: Any = None
    try:
        async for chunk in inner:
            if first is None:
                first = _perf()
            last = chunk
            yield chunk
    except GeneratorExit:
        await _aclose(inner)
        call.stream_ended(first, last)
        call.finish()
        raise
    except BaseException as exc:
        call.stream_ended(first, last)
        call.finish(exc)
        raise
    call.stream_ended(first, last)
    call.finish()


def _finished_event(  # noqa: PLR0917 - private, hot path
    key: CallKey,
    tier: str | None,
    started: float,
    first: float | None,
    last: Any,
    exc: BaseException | None,
) -> Finished:
    duration = _perf() - started
    ttft = None if first is None else first - started
    if exc is None:
        outcome, usage = final_outcome(last, stream=True)
        return (key, outcome, None, duration, ttft, usage, tier, False, key)
    failed, error_type = outcome_of(exc)
    return (key, failed, error_type, duration, ttft, usage_of(last), tier, False, key)


def lean_stream(
    registry: Registry, key: CallKey, tier: str | None, make: Callable[[], Iterator[T]]
) -> Generator[T, None, None]:
    """A patched SDK stream with no enclosing call and no per-call log: events only, and per
    chunk nothing but a first-chunk check and a reference to the last chunk."""
    submit = registry.submit
    submit((key,))
    started = _perf()
    first: float | None = None
    last: Any = None
    inner: Iterator[T] | None = None
    try:
        inner = make()
        for chunk in inner:
            if first is None:
                first = _perf()
            last = chunk
            yield chunk
    except GeneratorExit:
        _close(inner)
        submit(_finished_event(key, tier, started, first, last, None))
        raise
    except BaseException as exc:
        submit(_finished_event(key, tier, started, first, last, exc))
        raise
    submit(_finished_event(key, tier, started, first, last, None))


async def lean_async_stream(
    registry: Registry, key: CallKey, tier: str | None, started: float, inner: AsyncIterator[T]
) -> AsyncGenerator[T, None]:
    """The async twin of :func:`lean_stream` (the call started when it was awaited; it is
    in flight from its first step)."""
    submit = registry.submit
    submit((key,))
    first: float | None = None
    last: Any = None
    try:
        async for chunk in inner:
            if first is None:
                first = _perf()
            last = chunk
            yield chunk
    except GeneratorExit:
        await _aclose(inner)
        submit(_finished_event(key, tier, started, first, last, None))
        raise
    except BaseException as exc:
        submit(_finished_event(key, tier, started, first, last, exc))
        raise
    submit(_finished_event(key, tier, started, first, last, None))
