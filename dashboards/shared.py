"""Spec lookups the dashboards share."""

from __future__ import annotations

from gemini_slo.contract.signals import Mode
from gemini_slo.contract.spec import ObjectiveKind, SloSpec


def common_threshold(spec: SloSpec, mode: Mode, kind: ObjectiveKind) -> float | None:
    """The threshold of ``kind`` when every workload of ``mode`` that has it agrees on one.

    A panel's static threshold colour can only show one value; with several workloads
    and different thresholds, the objective-line query (one series per workload) shows
    the right one and the static colour is left out.
    """
    values = {o.threshold for w in spec.by_mode(mode) for o in w.of_kind(kind)}
    # Several latency objectives of one workload (p95 500ms, p99 800ms): colour from the
    # lowest, the strictest line.
    per_workload = {
        min(o.threshold for o in w.of_kind(kind)) for w in spec.by_mode(mode) if w.of_kind(kind)
    }
    if not values or len(per_workload) != 1:
        return None
    return per_workload.pop()
