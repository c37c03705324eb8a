"""Public helpers to assert on what the instrumentation recorded (an in-memory reader).

>>> from gemini_slo.instrumentation import observe, signals, testing
>>> with testing.capture() as rec:
...     @observe(workload="chat", model="gemini-2.5-flash")
...     def answer() -> str:
...         return "hi"
...     _ = answer()
>>> rec.value(signals.CALLS, workload="chat", outcome="ok")
1

``capture()`` swaps in a fresh process-wide default registry for the duration of the
block (so code that does not pass ``registry=`` records into it) and restores the previous
one afterwards. ``InMemoryRecorder(registry)`` reads any registry, e.g. the one a test
passes explicitly to ``observe(registry=...)``.

Attribute filters take short names (``workload``, ``mode``, ``operation``, ``provider``,
``model``, ``token_type``, ``outcome``, ``error_type``, ``queue``) or, through
``attributes={...}``, the full attribute keys of signals.py.

:func:`response` builds a google-genai response with a given usage and finish reason, to
feed an observed function in a test without calling Gemini.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from gemini_slo.contract import signals as S
from gemini_slo.instrumentation import _state
from gemini_slo.instrumentation._registry import Registry
from gemini_slo.instrumentation._values import ExponentialPoint, HistogramPoint, Point
from google.genai import types

SHORT_NAMES: Mapping[str, str] = {
    "workload": S.ATTR_WORKLOAD,
    "mode": S.ATTR_MODE,
    "operation": S.ATTR_OPERATION,
    "provider": S.ATTR_PROVIDER,
    "model": S.ATTR_REQUEST_MODEL,
    "token_type": S.ATTR_TOKEN_TYPE,
    "outcome": S.ATTR_OUTCOME,
    "error_type": S.ATTR_ERROR_TYPE,
    "queue": S.ATTR_QUEUE,
}

__all__ = [
    "SHORT_NAMES",
    "ExponentialPoint",
    "HistogramPoint",
    "InMemoryRecorder",
    "Point",
    "capture",
    "response",
]


class InMemoryRecorder:
    """Read the series of one registry."""

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry if registry is not None else Registry()

    def points(self, signal: S.Signal | None = None) -> list[Point]:
        """Every point (of ``signal``), as collected now."""
        points = self.registry.collect()
        return points if signal is None else [p for p in points if p.signal == signal]

    def _match(
        self, signal: S.Signal, attributes: Mapping[str, str] | None, attrs: Mapping[str, Any]
    ) -> list[Point]:
        wanted = {SHORT_NAMES.get(k, k): str(v) for k, v in attrs.items()}
        wanted.update({k: str(v) for k, v in (attributes or {}).items()})
        return [
            p for p in self.points(signal) if all(p.attrs.get(k) == v for k, v in wanted.items())
        ]

    def series(
        self, signal: S.Signal, attributes: Mapping[str, str] | None = None, **attrs: Any
    ) -> list[dict[str, str]]:
        """The attribute sets of the series of ``signal`` (matching the filters)."""
        return [p.attrs for p in self._match(signal, attributes, attrs)]

    def value(
        self, signal: S.Signal, attributes: Mapping[str, str] | None = None, **attrs: Any
    ) -> float:
        """Sum of the values of the matching counter/gauge series (0 when none match); for
        histograms, the sum of their counts."""
        total: float = 0
        for p in self._match(signal, attributes, attrs):
            v = p.value
            total += v.count if isinstance(v, HistogramPoint | ExponentialPoint) else v
        return total

    def histogram(
        self, signal: S.Signal, attributes: Mapping[str, str] | None = None, **attrs: Any
    ) -> HistogramPoint:
        """The matching explicit histograms merged into one (they must share their bounds)."""
        matched = [p.value for p in self._match(signal, attributes, attrs)]
        hists = [v for v in matched if isinstance(v, HistogramPoint)]
        if not hists:
            raise LookupError(f"no {signal.name} histogram matches {attrs or attributes}")
        bounds = hists[0].bounds
        if any(h.bounds != bounds for h in hists):
            raise ValueError("the matching histograms have different bounds")
        return HistogramPoint(
            bounds=bounds,
            bucket_counts=tuple(
                sum(c) for c in zip(*(h.bucket_counts for h in hists), strict=True)
            ),
            count=sum(h.count for h in hists),
            sum=sum(h.sum for h in hists),
            min=min(h.min for h in hists),
            max=max(h.max for h in hists),
        )

    def exponential(
        self, signal: S.Signal, attributes: Mapping[str, str] | None = None, **attrs: Any
    ) -> ExponentialPoint:
        """The one exponential histogram matching the filters."""
        matched = [
            p.value
            for p in self._match(signal, attributes, attrs)
            if isinstance(p.value, ExponentialPoint)
        ]
        if len(matched) != 1:
            raise LookupError(
                f"{len(matched)} {signal.name} exponential histograms match {attrs or attributes}"
            )
        return matched[0]


@contextmanager
def capture() -> Iterator[InMemoryRecorder]:
    """A fresh default registry for the block; yields a recorder reading it."""
    previous = _state.default_registry
    registry = Registry(thresholds=previous.thresholds, max_series=previous.max_series)
    _state.default_registry = registry
    try:
        yield InMemoryRecorder(registry)
    finally:
        _state.default_registry = previous


def response(
    prompt: int = 10,
    output: int = 20,
    thoughts: int = 0,
    cached: int = 0,
    tool_use: int = 0,
    *,
    text: str = "hi",
    finish: str = "STOP",
    model: str = "gemini-2.5-flash",
    candidates: Sequence[types.Candidate] | None = None,
    block_reason: str | None = None,
) -> types.GenerateContentResponse:
    """A google-genai response (or stream chunk) as Gemini shapes it: one candidate with
    ``text`` ending with ``finish``, usage ``prompt``/``output``/``thoughts``/``cached``/
    ``tool_use`` tokens (``usage_metadata``), answered by ``model``. ``candidates`` replaces
    the candidate (``[]``: none); ``block_reason`` sets ``prompt_feedback.block_reason``."""
    if candidates is None:
        candidates = [
            types.Candidate(
                content=types.Content(role="model", parts=[types.Part(text=text)]),
                finish_reason=types.FinishReason(finish),
            )
        ]
    return types.GenerateContentResponse(
        candidates=list(candidates),
        usage_metadata=types.GenerateContentResponseUsageMetadata(
            prompt_token_count=prompt,
            candidates_token_count=output,
            thoughts_token_count=thoughts or None,
            cached_content_token_count=cached or None,
            tool_use_prompt_token_count=tool_use or None,
        ),
        model_version=model,
        prompt_feedback=None
        if block_reason is None
        else types.GenerateContentResponsePromptFeedback(
            block_reason=types.BlockedReason(block_reason)
        ),
    )
