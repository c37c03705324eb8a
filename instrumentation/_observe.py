"""``observe``: one object that is both a decorator and a (sync or async) context manager.

One invocation of the decorated function, or one ``with`` block, is one call:

* plain functions: from the call to the return (or the raise);
* coroutine functions: from the call to the awaited result;
* generator and async-generator functions (streams): from the first step to the last
  chunk; a stream closed early (``break``, ``close()``, garbage collection) still records
  once; a plain function that *returns* a generator (or a coroutine function that returns
  an async generator) is timed to the end of that generator too;
* ``with observe(...) as call:`` / ``async with``: the block; ``call`` is the handle
  (``record_usage``, ``record_response``, ``first_chunk``, ``set_model``).

Deadline semantics (``deadline=`` seconds, measured from the start of the call, queue wait
included):

* coroutine functions and ``async with``: enforced. The call is cancelled at the deadline
  (``asyncio.timeout``) and ``DeadlineExceeded`` (a ``TimeoutError``) is raised.
* streams (sync and async): checked after each chunk; a stream past its deadline is closed
  and raises ``DeadlineExceeded``. Async streams also await each chunk under the remaining
  time, so a stalled async stream is interrupted on time; a stalled sync stream is noticed
  at its next chunk (threads cannot be interrupted).
* plain functions and ``with``: checked at the end only; the value is still returned, but
  the call counts as outcome ``timeout``.
In every case the call counts in ``gemini_slo.client.deadline.exceeded`` (latency mode).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator
from types import AsyncGeneratorType, GeneratorType, TracebackType
from typing import Any, ParamSpec, TypeVar, cast

from gemini_slo.contract import signals as S
from gemini_slo.instrumentation import _state
from gemini_slo.instrumentation._call import CURRENT, Call, Scope
from gemini_slo.instrumentation._classify import DeadlineExceeded
from gemini_slo.instrumentation._registry import Registry
from gemini_slo.instrumentation._streams import async_stream, sync_stream
from gemini_slo.instrumentation.admission import AdmissionQueue

P = ParamSpec("P")
R = TypeVar("R")


class observe:
    """Observe calls of a workload: ``@observe(...)`` or ``with observe(...) as call:``.

    ``workload`` names the traffic (a label on every series); ``mode`` is ``"latency"`` or
    ``"throughput"`` and decides the signals; ``model`` fixes the request model (else it
    comes from instrumented SDK calls inside, or from the response's ``model_version``,
    else ``"unknown"``); ``deadline`` (seconds) see the module docstring; ``queue`` an
    :class:`AdmissionQueue` whose slot the call must hold; ``concurrency_limit`` the
    workload's limit when there is no queue; ``registry`` where to record (default: the
    process-wide one).
    """

    __slots__ = ("_scope",)

    def __init__(
        self,
        workload: str = "chat",
        mode: S.Mode | str = S.Mode.LATENCY,
        *,
        model: str | None = None,
        deadline: float | None = None,
        queue: AdmissionQueue | None = None,
        concurrency_limit: float | None = None,
        registry: Registry | None = None,
    ) -> None:
        if deadline is not None and deadline <= 0:
            raise ValueError("deadline must be > 0 seconds")
        self._scope = Scope(
            workload,
            S.Mode(mode),
            model=model,
            deadline=deadline,
            queue=queue,
            concurrency_limit=concurrency_limit,
            registry=registry,
        )

    # ---- decorator -------------------------------------------------------------------

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        if not _state.enabled:
            return fn
        scope = self._scope
        wrapper: Callable[..., Any]
        if inspect.isasyncgenfunction(fn):
            agen_fn = cast(Callable[..., Any], fn)

            def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
                return async_stream(Call(scope), agen_fn(*args, **kwargs), True)

        elif inspect.isgeneratorfunction(fn):
            gen_fn = cast(Callable[..., Any], fn)

            def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
                return sync_stream(Call(scope), gen_fn(*args, **kwargs), True)

        elif inspect.iscoroutinefunction(fn):
            wrapper = _async_function(scope, fn)
        else:
            wrapper = _sync_function(scope, fn)
        return cast(Callable[P, R], functools.wraps(fn)(wrapper))

    # ---- context manager -------------------------------------------------------------

    def __enter__(self) -> Call:
        call = Call(self._scope)
        call.admit()
        call.begin()
        call.enter()
        return call

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        call = CURRENT.get()
        if call is None or call.scope is not self._scope:  # pragma: no cover - misuse
            return
        call.exit()
        call.finish(ev)

    async def __aenter__(self) -> Call:
        call = Call(self._scope)
        await call.admit_async()
        call.begin()
        call.enter()
        remaining = call.remaining
        if remaining is not None:
            call.timeout = asyncio.timeout(remaining)
            await call.timeout.__aenter__()
        return call

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        call = CURRENT.get()
        if call is None or call.scope is not self._scope:  # pragma: no cover - misuse
            return
        timeout = call.timeout
        call.exit()
        if timeout is not None:
            call.timeout = None
            try:
                await timeout.__aexit__(et, ev, tb)
            except TimeoutError as exc:
                error = DeadlineExceeded(f"deadline of {self._scope.deadline}s exceeded")
                call.finish(error)
                raise error from exc
        call.finish(ev)


def _sync_function(scope: Scope, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        call = Call(scope)
        call.admit()
        call.begin()
        token = CURRENT.set(call)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            CURRENT.reset(token)
            call.finish(exc)
            raise
        CURRENT.reset(token)
        if type(result) is GeneratorType:  # a function that returns a stream: time it to its end
            return sync_stream(call, result)
        call.finish(None, result)
        return result

    return wrapper


def _async_function(scope: Scope, fn: Callable[..., Any]) -> Callable[..., Any]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        call = Call(scope)
        await call.admit_async()
        call.begin()
        token = CURRENT.set(call)
        remaining = call.remaining
        try:
            if remaining is None:
                result = await fn(*args, **kwargs)
            else:
                timeout = asyncio.timeout(remaining)
                try:
                    async with timeout:
                        result = await fn(*args, **kwargs)
                except TimeoutError as exc:
                    if not timeout.expired():
                        raise
                    error = DeadlineExceeded(f"deadline of {scope.deadline}s exceeded")
                    call.finish(error)
                    raise error from exc
        except BaseException as exc:
            CURRENT.reset(token)
            call.finish(exc)
            raise
        CURRENT.reset(token)
        if type(result) is AsyncGeneratorType:
            return async_stream(call, result)
        call.finish(None, result)
        return result

    return wrapper
