"""One instrumented call: its handle, its lifecycle and the single place where it is recorded.

``observe()`` goes through :class:`Call`: optionally ``admit``/``admit_async`` (an
AdmissionQueue slot), ``begin`` (in-flight +1), then exactly one ``finish`` or
``end_stream`` (which record everything and are idempotent, so that a stream closed early,
a generator collected, or a double exit can never count twice). Recording is two events
submitted to the registry (started, finished; a stream that ended well submits the means to
build its finished event, which the registry's drain builds: :meth:`Call.finished_event`);
see ``_registry.py``. The google-genai patch uses a Call only when it must (a per-call
log); its lean path submits the same two events directly (``_patch.py``,
``_streams.lean_stream``).

The active call lives in a context variable, so that an SDK call made inside an
``observe`` scope (same thread, same task, or a task created inside it) contributes its
model and usage to that scope instead of recording a call of its own. A step of an
observed sync stream is the exception: it is found on the stack (``_streams.active_call``,
which the patch asks).

Usage precedence, so that nothing is counted twice: usage reported explicitly
(``record_usage``/``record_response``) wins; else the sum of what instrumented SDK calls
inside the scope reported (each its final cumulative usage); else the usage of the value
the function returned (or of the last chunk it yielded).
"""

from __future__ import annotations

import time
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

from gemini_slo.contract import signals as S
from gemini_slo.instrumentation import _state, pricing
from gemini_slo.instrumentation._classify import DeadlineExceeded, classify, final_outcome
from gemini_slo.instrumentation._registry import Finished, Registry
from gemini_slo.instrumentation._usage import (
    is_blocked,
    is_response,
    model_version_of,
    usage_from,
    usage_of,
)
from gemini_slo.instrumentation._values import CallKey, Usage

if TYPE_CHECKING:
    from gemini_slo.instrumentation.admission import AdmissionQueue

CURRENT: ContextVar[Call | None] = ContextVar("gemini_slo_call", default=None)

_perf = time.perf_counter
_DEADLINE_TYPE = "gemini_slo.instrumentation.DeadlineExceeded"  # its public home (see __init__)
_OK, _BLOCKED, _TIMEOUT, _REJECTED = (
    o.value for o in (S.Outcome.OK, S.Outcome.BLOCKED, S.Outcome.TIMEOUT, S.Outcome.REJECTED)
)
_GENERATE, _UNKNOWN_PROVIDER = S.OPERATION_GENERATE, S.PROVIDER_UNKNOWN
_LOGGER: Any = None


def _logger() -> Any:
    global _LOGGER
    if _LOGGER is None:
        import structlog

        _LOGGER = structlog.get_logger("gemini_slo.instrumentation")
    return _LOGGER


class Scope:
    """What a call is attributed to: the settings of an ``observe()`` or ``instrument()``."""

    __slots__ = (
        "concurrency_limit",
        "deadline",
        "mode",
        "model",
        "operation",
        "provider",
        "queue",
        "registry",
        "workload",
    )

    def __init__(
        self,
        workload: str,
        mode: S.Mode,
        *,
        model: str | None = None,
        deadline: float | None = None,
        queue: AdmissionQueue | None = None,
        concurrency_limit: float | None = None,
        registry: Registry | None = None,
        operation: str | None = None,
        provider: str | None = None,
    ) -> None:
        self.workload = workload
        self.mode: str = S.Mode(mode).value  # plain str: it is a label value
        self.model = model
        self.deadline = deadline
        self.queue = queue
        self.registry = registry
        self.operation = operation
        self.provider = provider
        if concurrency_limit is None and queue is not None:
            concurrency_limit = queue.max_concurrency
        self.concurrency_limit = concurrency_limit


class Call:
    """The handle of one call, yielded by ``with observe(...) as call``.

    Use it to report what the instrumentation cannot see: ``record_usage(...)``,
    ``record_response(response)``, ``first_chunk()``, ``set_model(name)``.
    """

    __slots__ = (
        "_blocked",
        "_content",
        "_explicit_usage",
        "_finished",
        "_granted",
        "_inflight",
        "_last_chunk",
        "_model",
        "_operation",
        "_provider",
        "_registry",
        "_sdk_usage",
        "_service_tier",
        "_stream",
        "_token",
        "first_chunk_at",
        "scope",
        "started",
        "timeout",
    )

    def __init__(
        self,
        scope: Scope,
        model: str | None = None,
        provider: str | None = None,
        operation: str | None = None,
    ) -> None:
        self.scope = scope
        self.started = _perf()
        self.first_chunk_at: float | None = None
        self._model = scope.model or model
        self._provider = scope.provider or provider
        self._operation = operation or scope.operation
        self._registry = scope.registry or _state.default_registry
        self._explicit_usage: Usage | None = None
        self._sdk_usage: Usage | None = None
        self._last_chunk: Any = None
        self._blocked = False
        self._stream = False
        self._finished = False
        self._granted: float | None = None
        self._inflight: CallKey | None = None
        self._service_tier: str | None = None
        self._token: Token[Call | None] | None = None
        self._content: Any = None
        self.timeout: Any = None  # an asyncio.Timeout enforcing the deadline of `async with`

    # ---- public handle ---------------------------------------------------------------

    def record_usage(
        self,
        *,
        prompt_tokens: int = 0,
        output_tokens: int = 0,
        thoughts_tokens: int = 0,
        cached_tokens: int = 0,
        tool_use_tokens: int = 0,
        model: str | None = None,
    ) -> None:
        """Report this call's token usage (replaces anything reported before).

        ``prompt_tokens`` includes ``cached_tokens`` (as Gemini counts them);
        ``output_tokens`` excludes thoughts.
        """
        self._explicit_usage = Usage(
            prompt_tokens, output_tokens, thoughts_tokens, cached_tokens, tool_use_tokens
        )
        if model:
            self.set_model(model)

    def record_response(self, response: Any) -> None:
        """Report a google-genai response (or a stream's final chunk): usage, model, blocked."""
        usage = usage_of(response)
        if usage is not None:
            self._explicit_usage = usage
        self._note_response(response)

    def first_chunk(self) -> None:
        """Mark the arrival of the first chunk now (later calls are ignored)."""
        if self.first_chunk_at is None:
            self.first_chunk_at = _perf()

    def set_model(self, model: str) -> None:
        """Set the request model, unless ``observe(model=...)`` fixed it."""
        if not self.scope.model:
            self._model = model

    @property
    def elapsed(self) -> float:
        """Seconds since the call started."""
        return _perf() - self.started

    @property
    def remaining(self) -> float | None:
        """Seconds left before the deadline (None: no deadline)."""
        deadline = self.scope.deadline
        return None if deadline is None else deadline - (_perf() - self.started)

    # ---- contributions from the patch and the wrappers --------------------------------

    def note_request(
        self, model: str | None, provider: str, operation: str, config: Any, contents: Any
    ) -> None:
        """An instrumented SDK call inside this scope: its model, provider, operation, tier."""
        if model and not self.scope.model and self._model is None:
            self._model = model
        if not self.scope.provider:
            self._provider = provider
        self._operation = operation
        tier = service_tier(config)
        if tier is not None:
            self._service_tier = tier
        if _state.capture_content:
            self._content = contents

    def add_sdk_usage(self, response: Any, stream: bool = False) -> None:
        """An instrumented SDK call inside this scope finished with ``response`` (for a
        stream: its last chunk)."""
        usage = usage_of(response)
        if usage is not None:
            self._sdk_usage = usage if self._sdk_usage is None else self._sdk_usage.plus(usage)
        if is_response(response):
            if self._stream is False:
                self._stream = stream
            self._note_response(response)

    def _note_response(self, response: Any) -> None:
        if not self._model:
            self._model = model_version_of(response)
        if is_response(response) and is_blocked(response, stream=self._stream):
            self._blocked = True

    def stream_ended(self, first_chunk_at: float | None, last_chunk: Any) -> None:
        """A stream of this call ended (or stopped): when its first chunk came, its last one."""
        if self.first_chunk_at is None:
            self.first_chunk_at = first_chunk_at
        if last_chunk is not None:
            self._stream = True
            self._last_chunk = last_chunk

    def end_stream(
        self, first_chunk_at: float | None, last_chunk: Any, exc: BaseException | None = None
    ) -> None:
        """The stream that is this call ended: :meth:`stream_ended`, then :meth:`finish`,
        deferred when the stream ended well and holds no queue slot (see :meth:`finish`;
        this is its short path, on the consumer's loop exit)."""
        if self.first_chunk_at is None:
            self.first_chunk_at = first_chunk_at
        if last_chunk is not None:
            self._stream = True
            self._last_chunk = last_chunk
        if exc is not None or self._granted is not None or _state.log_calls:
            self.finish(exc)
        elif not self._finished:
            self._finished = True
            self._registry.submit((self.finished_event, _perf()))

    # ---- lifecycle -------------------------------------------------------------------

    def begin(self) -> Call:
        """Count the call in flight (after any queue); returns self."""
        scope = self.scope
        key = (
            scope.workload,
            scope.mode,
            self._operation or _GENERATE,
            self._provider or _UNKNOWN_PROVIDER,
            self._model or "unknown",
        )
        self._registry.submit((key,))
        self._inflight = key
        if scope.concurrency_limit is not None:
            self._registry.set_concurrency_limit(
                scope.workload, scope.mode, scope.concurrency_limit
            )
        return self

    def admit(self) -> None:
        """Take a queue slot (sync); on QueueRejected, record the rejection and re-raise."""
        queue = self.scope.queue
        if queue is None:
            return
        try:
            self._granted = queue.acquire(
                self.remaining, queue.series(self.scope.workload, self.scope.mode)
            )
        except BaseException as exc:
            self.finish(exc)
            raise

    async def admit_async(self) -> None:
        """Take a queue slot (asyncio); on QueueRejected, record the rejection and re-raise."""
        queue = self.scope.queue
        if queue is None:
            return
        try:
            self._granted = await queue.acquire_async(
                self.remaining, queue.series(self.scope.workload, self.scope.mode)
            )
        except BaseException as exc:
            self.finish(exc)
            raise

    def enter(self) -> None:
        """Make this the active call of the current context."""
        self._token = CURRENT.set(self)

    def exit(self) -> None:
        """Undo :meth:`enter` (in the same context)."""
        token = self._token
        if token is not None:
            self._token = None
            try:  # noqa: SIM105 - the stream hot path: cheaper than contextlib.suppress
                CURRENT.reset(token)
            except ValueError:  # pragma: no cover - exited from another context: leave it
                pass

    def finish(self, exc: BaseException | None = None, result: Any = None) -> None:
        """Record the call, once. Never raises (a bug here must not hurt the app)."""
        if self._finished:
            return
        self._finished = True
        ended = _perf()
        try:
            self._record(ended, exc, result)
        except Exception:  # pragma: no cover - defensive: never break the caller
            _logger().debug("gemini_slo.record_failed", exc_info=True)
        finally:
            granted = self._granted
            if granted is not None and self.scope.queue is not None:
                self._granted = None
                self.scope.queue.release(granted)

    def _record(self, ended: float, exc: BaseException | None, result: Any) -> None:
        event = self.finished_event(ended, exc, result)
        self._registry.submit(event)
        if _state.log_calls:
            key, outcome, error_type, _, ttft, usage = event[:6]
            if usage is not None and type(usage) is not Usage:
                usage = usage_from(usage)
            model = key[4]
            cost = (
                None
                if usage is None
                else pricing.active_table().cost_pico(model, usage, self._service_tier)
            )
            response = result if is_response(result) else self._last_chunk
            duration = ended - self.started
            self._log(model, outcome, error_type, duration, ttft, usage, cost, response)

    def finished_event(
        self, ended: float, exc: BaseException | None = None, result: Any = None
    ) -> Finished:
        """The registry's event for this call, ended at ``ended`` with ``exc`` raised or
        ``result`` returned (the usage precedence of the module docstring).

        A stream that ended well leaves it to the registry, which builds it when it
        aggregates the batch (:meth:`end_stream`): the end of a stream runs in the
        consumer's loop with the caches cold from the last HTTP read, where reading the last
        chunk, resolving the model and building the series key cost about 6 us
        (bench/overhead.py); in the batch they run warm. A stream's handle is internal, so
        nothing changes the call meanwhile, and the last chunk it keeps is small.
        """
        scope = self.scope
        duration = ended - self.started
        deadline = scope.deadline
        deadline_exceeded = deadline is not None and duration > deadline
        response = result if is_response(result) else self._last_chunk
        # Usage left unread (a response's usage_metadata) is read by the registry's drain.
        usage: Any = self._explicit_usage or self._sdk_usage
        if exc is not None:
            kind, error_type = classify(exc)
            outcome = kind.value
            if isinstance(exc, DeadlineExceeded):
                deadline_exceeded = True
            if usage is None and response is not None:
                usage = getattr(response, "usage_metadata", None)
        else:
            outcome, metadata = final_outcome(response, stream=self._stream)
            if usage is None:
                usage = metadata
            if not self._model and is_response(response):
                self._model = model_version_of(response)
            error_type = None
            if deadline_exceeded:
                outcome, error_type = _TIMEOUT, _DEADLINE_TYPE
            elif self._blocked:
                outcome = _BLOCKED
        ttft = None if self.first_chunk_at is None else self.first_chunk_at - self.started
        key = (
            scope.workload,
            scope.mode,
            self._operation or _GENERATE,
            self._provider or _UNKNOWN_PROVIDER,
            self._model or "unknown",
        )
        return (
            key,
            outcome,
            error_type,
            None if outcome == _REJECTED else duration,  # a shed call never ran
            ttft,
            usage,
            self._service_tier,
            deadline_exceeded,
            self._inflight,
        )

    def _log(  # noqa: PLR0917 - private, called once
        self,
        model: str,
        outcome: str,
        error_type: str | None,
        duration: float,
        ttft: float | None,
        usage: Usage | None,
        cost: int | None,
        response: Any,
    ) -> None:
        fields: dict[str, Any] = {
            "workload": self.scope.workload,
            "mode": str(self.scope.mode),
            "model": model,
            "operation": self._operation or S.OPERATION_GENERATE,
            "outcome": str(outcome),
            "duration_s": round(duration, 6),
        }
        if ttft is not None:
            fields["ttft_s"] = round(ttft, 6)
        if error_type is not None:
            fields["error_type"] = error_type
        if usage is not None:
            fields["tokens"] = usage._asdict()
            fields["cost_usd"] = None if cost is None else pricing.cost_usd(cost)
        if _state.capture_content:
            if self._content is not None:
                fields["prompt"] = _text_of_contents(self._content)
            if response is not None and is_response(response):
                fields["response"] = _text_of_response(response)
        _logger().info("gemini_slo.call", **fields)


def service_tier(config: Any) -> str | None:
    """The request's service tier (``flex``, ``priority``...) from its config, if any."""
    if config is None:
        return None
    tier = (
        config.get("service_tier")
        if isinstance(config, dict)
        else getattr(config, "service_tier", None)
    )
    if tier is None:
        return None
    return str(getattr(tier, "value", tier)).lower()


def _text_of_response(response: Any) -> str | None:
    parts = []
    for candidate in response.candidates or ():
        content = candidate.content
        for part in (content.parts if content is not None else None) or ():
            if part.text and not part.thought:
                parts.append(part.text)
    return "".join(parts) if parts else None


def _text_of_contents(contents: Any) -> str:
    if isinstance(contents, str):
        return contents
    return repr(contents)[:10_000]
