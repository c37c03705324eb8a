"""A workload's Batch API objectives, measured from the batch series the agent has merged.

The ``batch`` list of a workload in ``GET /api/slo`` (docs/agent.md). Batch jobs take
minutes to hours, so the agent's 5-minute window would hold almost none: every batch value
is over the **agent's lifetime** (the merged cumulative series), and the oldest pending
job's age is the instrumentation's gauge as last exported.

* completion (``batch_completion_p95``): the share of finished jobs (cancelled left out)
  that ended within the threshold, read from the job-duration histogram's buckets; the
  spec requires the threshold to be a bucket boundary, so the share is exact. Met when it
  is at least the percentile;
* failure ratio (``batch_failure_ratio``): failed and expired jobs over finished ones
  (cancelled left out). Met when it is at most the budget;
* queue time (``batch_queue_time``): the oldest pending job's age. Met when it is at most
  ``max_queue_time`` (0 when no job is pending).

A workload whose instrumentation never reported a batch job is in the **no batch jobs**
state (``met`` None), like the calls' "no traffic": an unused Batch API is neither met nor
failed. Jobs that have not finished yet leave the completion and failure objectives at
"no data".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from gemini_slo.agent.store import Store
from gemini_slo.contract import signals
from gemini_slo.contract.batch_spec import FAILURE_RATIO, QUEUE_TIME, BatchObjectives
from gemini_slo.contract.signals import Kind

#: The ``state`` of every batch objective of a workload that never reported a job.
STATE_NO_BATCH_JOBS = "no batch jobs"

#: The ``kind`` values of the batch objectives in /api/slo.
KIND_COMPLETION = "batch_completion"
KIND_FAILURE_RATIO = "batch_failure_ratio"
KIND_QUEUE_TIME = "batch_queue_time"

#: Terminal states a ratio counts: a cancelled job is the user's decision.
_JUDGED = frozenset(s.value for s in signals.BATCH_TERMINAL_STATES) - {
    signals.BatchState.CANCELLED.value
}
_FAILED = frozenset(s.value for s in signals.BATCH_FAILED_STATES)
_STATE_LABEL = signals.LABEL_BATCH_STATE
#: Any of these with a series means the workload's instrumentation has seen a job.
_JOB_SIGNALS = frozenset(
    s.name
    for s in (
        signals.BATCH_JOBS_SUBMITTED,
        signals.BATCH_JOBS_FINISHED,
        signals.BATCH_JOBS_ACTIVE,
        signals.BATCH_QUEUE_OLDEST,
    )
)


@dataclass(frozen=True, slots=True)
class BatchCounts:
    """What the merged batch series of one workload say (agent lifetime)."""

    seen: bool
    """The instrumentation reported at least one batch job (or a batch gauge)."""
    finished: dict[str, float]
    """Finished jobs by terminal state."""
    within: dict[float, float]
    """Judged (not cancelled) finished jobs at or below each duration bucket bound."""
    judged: float
    """Judged finished jobs (the duration histogram's count)."""
    oldest_pending: float | None
    """Age in seconds of the oldest job last seen pending (0: none), None when unreported."""

    @property
    def judged_finished(self) -> float:
        """Finished jobs that count in the failure ratio (cancelled left out)."""
        return sum(n for state, n in self.finished.items() if state in _JUDGED)

    @property
    def failed(self) -> float:
        """Jobs that ended failed or expired."""
        return sum(n for state, n in self.finished.items() if state in _FAILED)

    def share_within(self, threshold: float) -> float:
        """Share of judged jobs that ended within ``threshold`` seconds (a bucket bound); NaN without jobs."""
        if self.judged <= 0:
            return math.nan
        for bound, n in self.within.items():
            if math.isclose(bound, threshold):
                return n / self.judged
        return math.nan


def batch_counts(store: Store, workload: str) -> BatchCounts:
    """Read the merged batch series of ``workload`` from ``store``."""
    seen = False
    finished: dict[str, float] = {}
    within: dict[float, float] = {}
    judged = 0.0
    oldest: float | None = None
    with store.lock:
        for family in store.families.values():
            name = family.otel_name
            for labels, series in family.series.items():
                values = dict(labels)
                if values.get(signals.LABEL_WORKLOAD) != workload:
                    continue
                if name in _JOB_SIGNALS:
                    seen = True
                if name == signals.BATCH_JOBS_FINISHED.name:
                    state = values.get(_STATE_LABEL, "")
                    finished[state] = finished.get(state, 0.0) + series.value
                elif name == signals.BATCH_QUEUE_OLDEST.name:
                    # The oldest over models and instances: the maximum, not a sum.
                    age = max(
                        (i.value for i in series.instances.values()),
                        default=series.gauge_value(),
                    )
                    oldest = age if oldest is None else max(oldest, age)
                elif (
                    name == signals.BATCH_JOB_DURATION.name
                    and family.kind is Kind.HISTOGRAM
                    and series.bounds
                    and values.get(_STATE_LABEL) in _JUDGED
                ):
                    cumulative = 0.0
                    for bound, c in zip(series.bounds, series.buckets, strict=False):
                        cumulative += c
                        within[bound] = within.get(bound, 0.0) + cumulative
                    judged += series.count
    return BatchCounts(seen, finished, dict(sorted(within.items())), judged, oldest)


def _objective(
    *,
    name: str,
    kind: str,
    summary: str,
    target: float,
    threshold: float,
    unit: str,
    comparison: str,
    value: float,
    met: bool | None,
    state: str,
    jobs: float,
    budget_remaining: float | None,
) -> dict[str, Any]:
    finite = None if math.isnan(value) else value
    return {
        "name": name,
        "kind": kind,
        "summary": summary,
        "target": target,
        "threshold": threshold,
        "unit": unit,
        "comparison": comparison,
        "value": finite,
        "met": met,
        "state": state,
        "jobs": jobs,
        "error_budget_remaining": budget_remaining,
        "window": "agent lifetime",
    }


def batch_objectives(
    batch: BatchObjectives,
    counts: BatchCounts,
    *,
    met_state: str,
    not_met_state: str,
    no_data_state: str,
) -> list[dict[str, Any]]:
    """The JSON of a workload's batch objectives (docs/agent.md has the fields)."""

    def state_of(value: float, met: bool) -> tuple[bool | None, str]:
        if not counts.seen:
            return None, STATE_NO_BATCH_JOBS
        if math.isnan(value):
            return None, no_data_state
        return met, met_state if met else not_met_state

    out: list[dict[str, Any]] = []
    if batch.completion_percentile is not None and batch.completion_threshold is not None:
        p, t = batch.completion_percentile, batch.completion_threshold
        share = counts.share_within(t) if counts.seen else math.nan
        met, state = state_of(share, share >= p)
        budget = 1.0 - p
        remaining = None if math.isnan(share) or budget <= 0 else 1.0 - (1.0 - share) / budget
        out.append(
            _objective(
                name=batch.completion_name,
                kind=KIND_COMPLETION,
                summary=batch.completion_summary,
                target=p,
                threshold=t,
                unit="ratio",
                comparison=">=",
                value=share,
                met=met,
                state=state,
                jobs=counts.judged,
                budget_remaining=remaining,
            )
        )
    if batch.failure_ratio is not None:
        budget = batch.failure_ratio
        total = counts.judged_finished
        ratio = counts.failed / total if counts.seen and total > 0 else math.nan
        met, state = state_of(ratio, ratio <= budget)
        remaining = None if math.isnan(ratio) or budget <= 0 else 1.0 - ratio / budget
        out.append(
            _objective(
                name=FAILURE_RATIO,
                kind=KIND_FAILURE_RATIO,
                summary=batch.failure_summary,
                target=1.0 - budget,
                threshold=budget,
                unit="ratio",
                comparison="<=",
                value=ratio,
                met=met,
                state=state,
                jobs=total,
                budget_remaining=remaining,
            )
        )
    if batch.max_queue_time is not None:
        limit = batch.max_queue_time
        age = math.nan if counts.oldest_pending is None else counts.oldest_pending
        met, state = state_of(age, age <= limit)
        out.append(
            _objective(
                name=QUEUE_TIME,
                kind=KIND_QUEUE_TIME,
                summary=batch.queue_summary,
                target=1.0,
                threshold=limit,
                unit="seconds",
                comparison="<=",
                value=age,
                met=met,
                state=state,
                jobs=sum(counts.finished.values()),
                budget_remaining=None,
            )
        )
    return out
