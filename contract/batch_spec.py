"""The ``batch:`` block of a throughput workload: objectives for its Batch API jobs.

::

    - name: batch
      mode: throughput
      batch:                                           # Batch API jobs of this workload
        completion: {percentile: 95, threshold: 24h}   # a batch duration bucket boundary
        failure_ratio: 1%                              # jobs failed or expired, at most
        max_queue_time: 6h                             # a ticket past this wait in the queue

Every key is optional, the block too. A batch job is not a call, so these are not
``objectives:`` entries: the agent's call-level SLO status does not read them; the
generated rules and the throughput dashboard do (docs/slo-spec.md).

* ``completion``: that share of finished jobs (succeeded, failed or expired; a cancelled
  job is the user's decision) ends within ``threshold`` of its creation. The threshold must
  be a boundary of ``signals.BATCH_DURATION_BUCKETS`` (counted, never interpolated).
* ``failure_ratio``: at most this share of finished jobs (cancelled ones left out) failed
  or expired; an error budget with the burn-rate windows of every other ratio objective.
* ``max_queue_time``: a job still pending this long after its creation is stuck: a ticket.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gemini_slo.contract import signals
from gemini_slo.contract._spec_yaml import Field
from gemini_slo.contract.durations import format_duration

#: Values of the ``objective`` label of the batch series the rules record.
COMPLETION = "batch_completion"
FAILURE_RATIO = "batch_failure_ratio"
QUEUE_TIME = "batch_queue_time"


@dataclass(frozen=True, slots=True)
class BatchObjectives:
    """A throughput workload's Batch API objectives (None: not set)."""

    completion_percentile: float | None = None
    """0.95 for ``p95``: the share of finished jobs that must end within the threshold."""
    completion_threshold: float | None = None
    """Seconds from creation to the end of a job."""
    failure_ratio: float | None = None
    """The most finished jobs that may fail or expire (a ratio), the error budget."""
    max_queue_time: float | None = None
    """Seconds a job may wait in the queue before it is a ticket."""

    @property
    def completion_name(self) -> str:
        """``batch_completion_p95``: the objective label of the completion SLI."""
        percentile = self.completion_percentile or 0.0
        return f"{COMPLETION}_p{percentile * 100:g}".replace(".", "_")

    @property
    def completion_summary(self) -> str:
        """'95% of jobs done within 1d' ('' without a completion objective)."""
        if self.completion_threshold is None or self.completion_percentile is None:
            return ""
        return (
            f"{self.completion_percentile * 100:g}% of jobs done within "
            f"{format_duration(self.completion_threshold)}"
        )

    @property
    def failure_summary(self) -> str:
        """'at most 1% of jobs failed or expired' ('' without a failure objective)."""
        if self.failure_ratio is None:
            return ""
        return f"at most {self.failure_ratio * 100:g}% of jobs failed or expired"

    @property
    def queue_summary(self) -> str:
        """'no job pending longer than 6h' ('' without a queue limit)."""
        if self.max_queue_time is None:
            return ""
        return f"no job pending longer than {format_duration(self.max_queue_time)}"

    @property
    def summary(self) -> str:
        """One line for the runbook and the dashboard descriptions."""
        parts = (self.completion_summary, self.failure_summary, self.queue_summary)
        return "; ".join(p for p in parts if p)


def parse_batch(f: Field) -> BatchObjectives:
    """Read a workload's ``batch:`` block (errors name the file, line and field)."""
    fields = f.mapping(("completion", "failure_ratio", "max_queue_time"))
    percentile = threshold = None
    if "completion" in fields:
        completion = fields["completion"].mapping(
            ("percentile", "threshold"), ("percentile", "threshold")
        )
        percentile = completion["percentile"].percentile()
        threshold = completion["threshold"].duration()
        if not any(math.isclose(threshold, b) for b in signals.BATCH_DURATION_BUCKETS):
            allowed = ", ".join(format_duration(b) for b in signals.BATCH_DURATION_BUCKETS)
            completion["threshold"].fail(
                f"must be a batch duration bucket boundary: one of {allowed}"
            )
    failure = fields["failure_ratio"].ratio() if "failure_ratio" in fields else None
    queue = fields["max_queue_time"].duration() if "max_queue_time" in fields else None
    return BatchObjectives(percentile, threshold, failure, queue)
