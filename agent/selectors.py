"""The spec's workload selectors applied at ingest: foreign series get a workload.

A point whose attributes carry no ``gemini_slo.workload`` (another OpenTelemetry GenAI
emitter, such as the official ``opentelemetry-instrumentation-google-genai``) gets the
``gemini_slo_workload`` and ``gemini_slo_mode`` labels of the first workload of the spec
one of whose selectors matches its resource and its data-point attributes
(:mod:`gemini_slo.contract.selectors`). A point that carries a workload is never
relabelled. A foreign point that no selector matches keeps flowing as it is, without a
workload label: it is exposed, but no rule or dashboard of a workload counts it.

Cost: the resource is matched once per resource (cached by its attributes), so that only
the selectors that can still match are tried per point; a point's translated label set is
relabelled from a small per-resource cache, one dict lookup for a series seen before.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

from gemini_slo.agent import labels as labels_mod
from gemini_slo.contract import signals
from gemini_slo.contract.spec import SloSpec

LabelKey = tuple[tuple[str, str], ...]
#: Relabels one translated label set (sorted ``(label, value)`` pairs).
Relabel = Callable[[LabelKey], LabelKey]

_MAX_RESOURCES = 1000  # resources whose match is cached (one per app instance, typically)
_MAX_LABEL_SETS = 4096  # relabelled label sets cached per resource
_MAX_VALUE = labels_mod.MAX_VALUE_LENGTH


class _Rule:
    """One selector of one workload, its data-point part in translated label names."""

    __slots__ = ("labels", "mode", "resource", "workload")

    def __init__(
        self, workload: str, mode: str, resource: LabelKey, attributes: Iterable[tuple[str, str]]
    ) -> None:
        self.workload = workload
        self.mode = mode
        self.resource = resource
        # Data-point attributes are matched after the label translation (the form the
        # store keeps): ``gen_ai.request.model`` is looked up as ``gen_ai_request_model``.
        self.labels = tuple((labels_mod.label_name(k), v) for k, v in attributes)


class _ResourceRelabel:
    """The relabelling for the points of one resource: the rules its resource matched."""

    __slots__ = ("_cache", "_rules")

    def __init__(self, rules: list[_Rule]) -> None:
        self._rules = rules
        self._cache: dict[LabelKey, LabelKey] = {}

    def __call__(self, labels: LabelKey) -> LabelKey:
        found = self._cache.get(labels)
        if found is not None:
            return found
        values = dict(labels)
        out = labels
        if signals.LABEL_WORKLOAD not in values:
            for rule in self._rules:
                if all(values.get(k) == v for k, v in rule.labels):
                    values[signals.LABEL_WORKLOAD] = rule.workload
                    values[signals.LABEL_MODE] = rule.mode
                    out = tuple(sorted(values.items()))
                    break
        if len(self._cache) >= _MAX_LABEL_SETS:
            self._cache.clear()
        self._cache[labels] = out
        return out


class WorkloadSelectors:
    """The spec's selectors, ready for ingest; ``for_resource`` is None-fast without any."""

    def __init__(self, spec: SloSpec | None) -> None:
        self._rules = [
            _Rule(w.name, w.mode.value, sel.resource, sel.attributes)
            for w in (spec.workloads if spec is not None else ())
            for sel in w.selectors
        ]
        self._keys = frozenset(k for r in self._rules for k, _ in r.resource)
        self._resources: dict[LabelKey, _ResourceRelabel | None] = {}

    def __bool__(self) -> bool:
        return bool(self._rules)

    def for_resource(self, attributes: Iterable[Any]) -> Relabel | None:
        """The relabelling for the points of a resource (OTLP ``KeyValue`` list), or None
        when no selector can match any of them."""
        if not self._rules:
            return None
        keys = self._keys
        resource = tuple(
            sorted(
                (kv.key, labels_mod.bounded(labels_mod.value_string(kv.value), _MAX_VALUE))
                for kv in attributes
                if kv.key in keys
            )
        )
        if resource in self._resources:
            return self._resources[resource]
        values = dict(resource)
        rules = [r for r in self._rules if all(values.get(k) == v for k, v in r.resource)]
        relabel = _ResourceRelabel(rules) if rules else None
        if len(self._resources) >= _MAX_RESOURCES:
            self._resources.clear()
        self._resources[resource] = relabel
        return relabel


# ---- calls of foreign duration histograms ---------------------------------------------

_CALL_LABELS = frozenset(
    [*(signals.prometheus_label(a) for a in signals.CALLS.attributes), signals.LABEL_ERROR_TYPE]
)
_TOKEN_LABELS = frozenset(signals.prometheus_label(a) for a in signals.TOKENS.attributes)


def outcome_of(error_type: str) -> signals.Outcome:
    """The outcome of a foreign call from its ``error.type`` (the only hint it has).

    Empty: ok; ``429``: rate_limited; a timeout class (``httpx.ReadTimeout``,
    ``TimeoutError``, ``...DeadlineExceeded``): timeout; anything else: error. A foreign
    emitter has no admission queue and no blocked-prompt outcome.
    """
    if not error_type:
        return signals.Outcome.OK
    if error_type == "429":
        return signals.Outcome.RATE_LIMITED
    lowered = error_type.lower()
    if "timeout" in lowered or lowered.endswith("deadlineexceeded"):
        return signals.Outcome.TIMEOUT
    return signals.Outcome.ERROR


@functools.lru_cache(maxsize=4096)  # a series seen before: one lookup per point
def calls_labels(labels: LabelKey) -> LabelKey:
    """The calls-counter label set for a relabelled foreign duration-histogram series.

    The foreign emitter sends no ``gemini_slo.client.calls``: the agent counts the calls
    of its duration histogram instead, with the outcome from ``error.type``, so that the
    availability SLI and the outcome panels read the same counter as for the project's
    own instrumentation. Other labels (``server.address``, ``gen_ai.response.model``) are
    dropped, as the project's own counter does not carry them.
    """
    values = {k: v for k, v in labels if k in _CALL_LABELS}
    values[signals.LABEL_OUTCOME] = outcome_of(values.get(signals.LABEL_ERROR_TYPE, "")).value
    return tuple(sorted(values.items()))


@functools.lru_cache(maxsize=4096)
def tokens_labels(labels: LabelKey) -> LabelKey:
    """The tokens-counter label set for a relabelled foreign ``gen_ai.client.token.usage``.

    The foreign emitter sends no ``gemini_slo.client.tokens``: the agent adds the sum of
    its token-usage histogram instead (``gen_ai.token.type`` ``input``/``output``, as the
    sender counts them), so that tokens/s and the stall check read the same counter.
    """
    return tuple((k, v) for k, v in labels if k in _TOKEN_LABELS)
