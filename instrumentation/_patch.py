"""``instrument()``/``uninstrument()``: a reversible patch of google-genai's model calls.

Patched: ``Models`` and ``AsyncModels`` ``generate_content``, ``generate_content_stream``
and ``embed_content``; either on the classes (every client, present and future) or on one
client's ``client.models`` and ``client.aio.models`` instances (instance attributes that
shadow the class methods). ``uninstrument`` puts the exact original function objects back
(class level) or deletes the instance attributes (client level). Instrumenting twice is a
no-op. ``client.batches`` is patched alongside (``_batch_patch.py``): batch jobs are
recorded under the same workload, in throughput mode.

A patched call made inside an active call (an ``observe`` scope, or another patched call)
does not record a call of its own: it gives that call its model, provider, operation and
service tier, and its final usage, so that the call is counted once, under the scope's
workload and mode. Otherwise it records its own call under the workload and mode given to
``instrument``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from gemini_slo.contract import signals as S
from gemini_slo.instrumentation import _state
from gemini_slo.instrumentation._batch_patch import instrument_batches, uninstrument_batches
from gemini_slo.instrumentation._call import Call, Scope, service_tier
from gemini_slo.instrumentation._classify import final_outcome, outcome_of
from gemini_slo.instrumentation._patching import MARK, MethodPatch
from gemini_slo.instrumentation._registry import Registry
from gemini_slo.instrumentation._streams import (
    active_call,
    lean_async_stream,
    lean_stream,
    sdk_async_stream,
    sdk_stream,
)
from google.genai import models as genai_models

_perf = time.perf_counter

# (method name, operation, kind): kind is "call", "stream" (sync generator) or
# "astream" (a coroutine returning an async iterator).
_METHODS: tuple[tuple[str, str, str], ...] = (
    ("generate_content", S.OPERATION_GENERATE, "call"),
    ("generate_content_stream", S.OPERATION_GENERATE, "stream"),
    ("embed_content", S.OPERATION_EMBED, "call"),
)


def _provider(models: Any) -> str:
    api_client = getattr(models, "_api_client", None)
    return S.PROVIDER_VERTEX if getattr(api_client, "vertexai", False) else S.PROVIDER_GEMINI


def _contribute_stream(outer: Call, inner: Iterator[Any]) -> Iterator[Any]:
    """A patched stream inside an active call: report its first chunk and final usage."""
    last = None
    try:
        for chunk in inner:
            if last is None:
                outer.first_chunk()
            last = chunk
            yield chunk
    finally:
        if last is not None:
            outer.add_sdk_usage(last, stream=True)


async def _acontribute_stream(outer: Call, inner: AsyncIterator[Any]) -> AsyncIterator[Any]:
    last = None
    try:
        async for chunk in inner:
            if last is None:
                outer.first_chunk()
            last = chunk
            yield chunk
    finally:
        if last is not None:
            outer.add_sdk_usage(last, stream=True)
        aclose = getattr(inner, "aclose", None)
        if aclose is not None:
            await aclose()


def _sync_wrapper(
    original: Callable[..., Any], operation: str, kind: str, scope: Scope
) -> Callable[..., Any]:
    if kind == "stream":

        def stream(self: Any, *args: Any, **kwargs: Any) -> Any:
            if not _state.enabled:
                return original(self, *args, **kwargs)
            outer = active_call()
            model, provider = kwargs.get("model"), _provider(self)
            if outer is not None:
                outer.note_request(
                    model, provider, operation, kwargs.get("config"), kwargs.get("contents")
                )
                return _contribute_stream(outer, original(self, *args, **kwargs))
            make = lambda: original(self, *args, **kwargs)  # noqa: E731 - lazy, like the SDK
            if not _state.log_calls:
                registry = scope.registry or _state.default_registry
                key = (scope.workload, scope.mode, operation, provider, model or "unknown")
                return lean_stream(registry, key, service_tier(kwargs.get("config")), make)
            call = Call(scope, model, provider, operation)
            call.note_request(
                model, provider, operation, kwargs.get("config"), kwargs.get("contents")
            )
            return sdk_stream(call, make)

        return stream

    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not _state.enabled:
            return original(self, *args, **kwargs)
        outer = active_call()
        model, provider = kwargs.get("model"), _provider(self)
        if outer is not None:
            outer.note_request(
                model, provider, operation, kwargs.get("config"), kwargs.get("contents")
            )
            result = original(self, *args, **kwargs)
            outer.add_sdk_usage(result)
            return result
        if _state.log_calls:
            call = Call(scope, model, provider, operation)
            call.note_request(
                model, provider, operation, kwargs.get("config"), kwargs.get("contents")
            )
            call.begin()
            try:
                result = original(self, *args, **kwargs)
            except BaseException as exc:
                call.finish(exc)
                raise
            call.finish(None, result)
            return result
        # The lean path (no log, no enclosing call): two events, no call object. This is
        # the path whose cost bench/overhead.py measures.
        submit = (scope.registry or _state.default_registry).submit
        key = (scope.workload, scope.mode, operation, provider, model or "unknown")
        tier = service_tier(kwargs.get("config"))
        submit((key,))
        started = _perf()
        try:
            result = original(self, *args, **kwargs)
        except BaseException as exc:
            duration = _perf() - started
            outcome, error_type = outcome_of(exc)
            submit((key, outcome, error_type, duration, None, None, tier, False, key))
            raise
        duration = _perf() - started
        outcome, usage = final_outcome(result)
        submit((key, outcome, None, duration, None, usage, tier, False, key))
        return result

    return method


def _async_wrapper(
    original: Callable[..., Any], operation: str, kind: str, scope: Scope
) -> Callable[..., Any]:
    # A stream is in flight from its first step (as the sync twin): the SDK sends nothing
    # before, and a stream awaited but never iterated must not stay in flight forever.
    is_stream = kind == "stream"

    async def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not _state.enabled:
            return await original(self, *args, **kwargs)
        outer = active_call()
        model, provider = kwargs.get("model"), _provider(self)
        if outer is not None:
            outer.note_request(
                model, provider, operation, kwargs.get("config"), kwargs.get("contents")
            )
            result = await original(self, *args, **kwargs)
            if kind == "stream":
                return _acontribute_stream(outer, result)
            outer.add_sdk_usage(result)
            return result
        if _state.log_calls:
            call = Call(scope, model, provider, operation)
            call.note_request(
                model, provider, operation, kwargs.get("config"), kwargs.get("contents")
            )
            if not is_stream:
                call.begin()
            try:
                result = await original(self, *args, **kwargs)
            except BaseException as exc:
                call.finish(exc)
                raise
            if is_stream:
                return sdk_async_stream(call, result)
            call.finish(None, result)
            return result
        registry = scope.registry or _state.default_registry
        submit = registry.submit
        key = (scope.workload, scope.mode, operation, provider, model or "unknown")
        tier = service_tier(kwargs.get("config"))
        if not is_stream:
            submit((key,))
        started = _perf()
        try:
            result = await original(self, *args, **kwargs)
        except BaseException as exc:
            duration = _perf() - started
            outcome, error_type = outcome_of(exc)
            counted = None if is_stream else key
            submit((key, outcome, error_type, duration, None, None, tier, False, counted))
            raise
        if is_stream:
            return lean_async_stream(registry, key, tier, started, result)
        duration = _perf() - started
        outcome, usage = final_outcome(result)
        submit((key, outcome, None, duration, None, usage, tier, False, key))
        return result

    return method


def _wrap(cls: type, name: str, original: Callable[..., Any], scope: Scope) -> Callable[..., Any]:
    operation, kind = next((op, k) for n, op, k in _METHODS if n == name)
    factory = _async_wrapper if cls is genai_models.AsyncModels else _sync_wrapper
    wrapper = factory(original, operation, kind, scope)
    wrapper.__name__ = name
    wrapper.__qualname__ = f"{cls.__qualname__}.{name}"
    wrapper.__doc__ = original.__doc__
    wrapper.__wrapped__ = original  # type: ignore[attr-defined]
    setattr(wrapper, MARK, original)
    return wrapper


_PATCH = MethodPatch(
    (genai_models.Models, genai_models.AsyncModels), tuple(n for n, _, _ in _METHODS), _wrap
)


def instrument(
    client: Any = None,
    workload: str = "default",
    mode: S.Mode | str = S.Mode.LATENCY,
    registry: Registry | None = None,
) -> None:
    """Patch google-genai so that every model call is recorded (see the module docstring).

    ``client``: a ``genai.Client`` to patch only its ``models`` and ``aio.models``; None
    patches the classes, for every client. ``workload``/``mode``: what calls made outside an
    ``observe`` scope are attributed to.
    """
    scope = Scope(workload, S.Mode(mode), registry=registry)
    instrument_batches(client, scope)
    _PATCH.install(None if client is None else (client.models, client.aio.models), scope)


def uninstrument(client: Any = None) -> None:
    """Undo :func:`instrument` for ``client`` (or for the classes when None)."""
    uninstrument_batches(client)
    _PATCH.remove(None if client is None else (client.models, client.aio.models))


def is_instrumented(client: Any = None) -> bool:
    """Whether the classes (``client`` None) or that client's models are patched."""
    if client is None:
        return _PATCH.classes_patched
    return all(name in vars(client.models) for name, _, _ in _METHODS)
