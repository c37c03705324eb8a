"""Outcome and ``error.type`` of a call: from the exception google-genai (or the app) raised,
else from the response (blocked or ok).

What google-genai 3.x really raises: ``errors.ClientError``/``ServerError``
(both ``errors.APIError``) with the HTTP status in ``.code``; ``httpx2.ReadTimeout`` on a
sync timeout; the builtin ``TimeoutError`` (aiohttp) on an async one; connection errors.
Timeouts are recognised by walking the class hierarchy for a timeout class (builtin
``TimeoutError``, or any class whose name contains ``Timeout`` such as
``httpx2.TimeoutException``, ``httpx.TimeoutException`` or ``aiohttp.ServerTimeoutError``),
so that neither httpx2 nor aiohttp is imported here.

``error.type`` follows the official OpenTelemetry instrumentation: the HTTP status code as a
string for API errors (``'429'``), else the fully qualified class name, builtins bare
(``'httpx2.ReadTimeout'``, ``'TimeoutError'``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from gemini_slo.contract.signals import Outcome
from gemini_slo.instrumentation._usage import is_blocked, is_response
from google.genai import errors as genai_errors

_cache: dict[type[BaseException], tuple[Outcome, str]] = {}


class DeadlineExceeded(TimeoutError):
    """A call ran past the ``deadline`` given to ``observe()`` (outcome ``timeout``)."""


def qualified_name(cls: type) -> str:
    """``module.QualName``, or the bare name for builtins (as OTel's ``error.type``)."""
    module = cls.__module__
    if module and module != "builtins":
        return f"{module}.{cls.__qualname__}"
    return cls.__qualname__


def _is_timeout(cls: type[BaseException]) -> bool:
    if issubclass(cls, (TimeoutError, asyncio.CancelledError)):
        # asyncio.TimeoutError is TimeoutError since 3.11; a cancelled call is a caller
        # that gave up (asyncio.wait_for, a disconnected client): the client timed out.
        return True
    return any("Timeout" in base.__name__ for base in cls.__mro__)


def classify(exc: BaseException) -> tuple[Outcome, str]:
    """``(outcome, error.type)`` of a call that raised ``exc``."""
    if isinstance(exc, genai_errors.APIError):
        code = exc.code
        if code == 429:
            return Outcome.RATE_LIMITED, "429"
        # Server-side 408/504 stay errors: the client did not give up, the server failed.
        return Outcome.ERROR, str(code)
    cls = type(exc)
    hit = _cache.get(cls)
    if hit is None:
        from gemini_slo.instrumentation.admission import QueueRejected

        if issubclass(cls, QueueRejected):
            outcome = Outcome.REJECTED
        elif _is_timeout(cls):
            outcome = Outcome.TIMEOUT
        else:
            outcome = Outcome.ERROR
        hit = _cache[cls] = (outcome, qualified_name(cls))
    return hit


_OK, _BLOCKED = Outcome.OK.value, Outcome.BLOCKED.value


def outcome_of(
    exc: BaseException | None, response: Any = None, *, stream: bool = False
) -> tuple[str, str | None]:
    """``(outcome, error.type)`` of a finished call, as label values.

    A call that raised is classified by its exception (:func:`classify`); else it is
    ``blocked`` when its response (for a stream, its last chunk: ``stream=True``) was
    filtered (:func:`~gemini_slo.instrumentation._usage.is_blocked`), ``ok`` otherwise.
    (``observe`` adds one rule of its own: a call past its deadline is a ``timeout``.)
    """
    if exc is not None:
        outcome, error_type = classify(exc)
        return outcome.value, error_type
    return final_outcome(response, stream=stream)[0], None


def final_outcome(response: Any, *, stream: bool = False) -> tuple[str, Any]:
    """``(outcome, usage_metadata)`` of a call that returned ``response`` (a stream: its
    last chunk): ``blocked`` or ``ok``, and the usage metadata it carries, unread.

    The hot paths hand the metadata to the registry as it is: the drain reads its counts
    (``_usage.usage_from``) in its warm loop. At the end of a call the caches are cold from
    the HTTP read, and reading the five counts there cost about 3 us (bench/overhead.py).
    """
    if not is_response(response):
        return _OK, getattr(response, "usage_metadata", None)
    return (_BLOCKED if is_blocked(response, stream=stream) else _OK), response.usage_metadata
