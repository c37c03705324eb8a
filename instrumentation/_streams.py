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
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator
from typing import Any, TypeVar

from gemini_slo.instrumentation._call import CURRENT, Call
from gemini_slo.instrumentation._classify import DeadlineExceeded, outcome_of
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
    call: Call,
    inner: Iterator[T] | None = None,
    *,
    admit: bool = False,
    make: Callable[[], Iterator[T]] | None = None,
) -> Generator[T, Any, Any]:
    """Iterate ``inner`` as the stream of ``call`` (``admit``: queue + begin at first step).

    ``make`` instead of ``inner``: create the iterator at the first step, as the active call
    (so that a patched method it calls sees this call as its scope).
    """
    if admit:  # the call starts at the first step (a generator runs nothing before it)
        call.started = _perf()
        call.admit()
        call.begin()
    if inner is None:
        assert make is not None
        call.enter()
        try:
            inner = make()
        except BaseException as exc:
            call.exit()
            call.finish(exc)
            raise
        call.exit()
    send = getattr(inner, "send", None)
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
                    chunk = inner.throw(error)  # type: ignore[attr-defined]
                elif send is not None:
                    chunk = send(value)
                else:
                    chunk = next(inner)
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
            except BaseException as exc:  # thrown in by the consumer: forward it
                thrown = exc
    except StopIteration as stop:
        call.stream_ended(first, last)
        call.finish()
        return stop.value
    except GeneratorExit:
        _close(inner)
        call.stream_ended(first, last)
        call.finish()
        raise
    except BaseException as exc:
        _close(inner)
        call.stream_ended(first, last)
        call.finish(exc)
        raise


def _close(inner: Any) -> None:
    close = getattr(inner, "close", None)
    if close is not None:
        close()


async def async_stream(
    call: Call, inner: AsyncIterator[T], *, admit: bool = False
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
        call.stream_ended(first, last)
        call.finish()
    except GeneratorExit:
        await _aclose(inner)
        call.stream_ended(first, last)
        call.finish()
        raise
    except BaseException as exc:
        await _aclose(inner)
        call.stream_ended(first, last)
        call.finish(exc)
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
    outcome, error_type = outcome_of(exc, last, stream=True)
    return (key, outcome, error_type, duration, ttft, usage_of(last), tier, False, key)


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
