"""Whether the incoming histograms have a bucket boundary at each latency threshold.

The SLO rules count compliance from the bucket *at* a threshold
(:func:`gemini_slo.contract.promql.sli_error`). The project's instrumentation puts every
threshold into its layout; a foreign emitter (the official
``opentelemetry-instrumentation-google-genai``: 0.01, 0.02, 0.04 ... 81.92 s) does not,
unless the app uses :func:`gemini_slo.instrumentation.otel_views`. Then the SLI has no
bucket to read and would be empty: the agent says so per objective instead
(``/api/slo``, ``gemini_slo_objective_threshold_unbucketed``, the SLO page,
``gemini-slo status``), never a silent zero.
"""

from __future__ import annotations

import math

from gemini_slo.agent.store import Store
from gemini_slo.contract import signals
from gemini_slo.contract.signals import Kind
from gemini_slo.contract.spec import Objective, ObjectiveKind

#: The explicit histogram each percentile objective's SLI reads.
HISTOGRAMS: dict[ObjectiveKind, str] = {
    ObjectiveKind.LATENCY: signals.OPERATION_DURATION.name,
    ObjectiveKind.TTFT: signals.TIME_TO_FIRST_CHUNK.name,
}


def _has_bound(bounds: tuple[float, ...], threshold: float) -> bool:
    return any(math.isclose(b, threshold, rel_tol=1e-9) for b in bounds)


def threshold_bucketed(store: Store, workload: str, objective: Objective) -> bool | None:
    """True when every series of the workload's histogram has a boundary at the threshold,
    False when one has not, None when nothing to judge (not a latency/TTFT objective, or
    no histogram of the workload has arrived)."""
    otel_name = HISTOGRAMS.get(objective.kind)
    if otel_name is None:
        return None
    seen = False
    with store.lock:
        for family in store.families.values():
            if family.otel_name != otel_name or family.kind is not Kind.HISTOGRAM:
                continue
            for labels, series in family.series.items():
                if series.bounds is None or dict(labels).get(signals.LABEL_WORKLOAD) != workload:
                    continue
                if not _has_bound(series.bounds, objective.threshold):
                    return False
                seen = True
    return True if seen else None
