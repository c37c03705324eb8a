"""PromQL over the batch-job signals, shared by the batch rules and the Batch dashboard row.

Same conventions as :mod:`gemini_slo.contract.promql` (``where`` is a matcher list without
braces; every aggregation is ``sum by (gemini_slo_workload)``). A finished job counts in a
ratio when it ended succeeded, failed or expired: a cancelled job is the user's decision.
"""

from __future__ import annotations

from gemini_slo.contract import signals as s
from gemini_slo.contract.promql import by, le_matcher, one_of, sel

FINISHED = s.BATCH_JOBS_FINISHED.prometheus
SUBMITTED = s.BATCH_JOBS_SUBMITTED.prometheus
ACTIVE = s.BATCH_JOBS_ACTIVE.prometheus
OLDEST_PENDING = s.BATCH_QUEUE_OLDEST.prometheus
DURATION = s.BATCH_JOB_DURATION.prometheus
QUEUE_TIME = s.BATCH_QUEUE_TIME.prometheus
REQUESTS = s.BATCH_REQUESTS.prometheus
TOKENS = s.BATCH_TOKENS.prometheus
COST = s.BATCH_COST.prometheus

JUDGED_STATES = one_of(
    s.LABEL_BATCH_STATE,
    tuple(x.value for x in s.BATCH_TERMINAL_STATES if x is not s.BatchState.CANCELLED),
)
FAILED_STATES = one_of(s.LABEL_BATCH_STATE, tuple(x.value for x in s.BATCH_FAILED_STATES))


def _increase(metric: str, where: str, window: str, *matchers: str) -> str:
    return f"{by()} (increase({sel(metric, where, *matchers)}[{window}]))"


def failure_bad_events(where: str, window: str) -> str:
    """Jobs that ended failed or expired in the window."""
    return _increase(FINISHED, where, window, FAILED_STATES)


def failure_ratio(where: str, window: str) -> str:
    """Share of the jobs that ended in the window (cancelled left out) that failed or expired."""
    bad = failure_bad_events(where, window)
    total = _increase(FINISHED, where, window, JUDGED_STATES)
    # No failed series yet is a ratio of 0, not no data.
    return f"(\n  ({bad}\n  or on ({s.LABEL_WORKLOAD}) 0 * {total})\n/\n  {total}\n)"


def completion_error(where: str, threshold: float, window: str) -> str:
    """Share of the jobs that ended in the window (cancelled left out) that took longer than
    ``threshold`` seconds from creation to end (counted at the bucket boundary)."""
    bucket = sel(DURATION + "_bucket", where, JUDGED_STATES, le_matcher(threshold))
    count = sel(DURATION + "_count", where, JUDGED_STATES)
    within = f"{by()} (increase({bucket}[{window}]))"
    total = f"{by()} (increase({count}[{window}]))"
    return f"(\n  1 - {within}\n/\n  {total}\n)"


def completion_bad_events(where: str, threshold: float, window: str) -> str:
    """Jobs that ended in the window (cancelled left out) later than ``threshold`` seconds."""
    bucket = sel(DURATION + "_bucket", where, JUDGED_STATES, le_matcher(threshold))
    count = sel(DURATION + "_count", where, JUDGED_STATES)
    within = f"{by()} (increase({bucket}[{window}]))"
    total = f"{by()} (increase({count}[{window}]))"
    return f"(\n  {total}\n-\n  {within}\n)"


def oldest_pending(where: str) -> str:
    """Age in seconds of the oldest job last seen pending (0 when none is)."""
    return f"max by ({s.LABEL_WORKLOAD}) ({sel(OLDEST_PENDING, where)})"


def jobs_active(where: str) -> str:
    """Jobs pending and running now, by state."""
    return f"{by(s.LABEL_BATCH_STATE)} ({sel(ACTIVE, where)})"


def jobs_finished_rate(where: str, window: str) -> str:
    """Jobs ending per hour, by terminal state."""
    return f"3600 * {by(s.LABEL_BATCH_STATE)} (rate({sel(FINISHED, where)}[{window}]))"


def completion_quantile(where: str, quantile: float, window: str) -> str:
    """A percentile of time to completion (seconds) of the jobs that ended in the window."""
    bucket = sel(DURATION + "_bucket", where, JUDGED_STATES)
    return f"histogram_quantile({quantile:g}, {by('le')} (rate({bucket}[{window}])))"


def queue_time_quantile(where: str, quantile: float, window: str) -> str:
    """A percentile of time in the queue (seconds) of the jobs that left it in the window."""
    bucket = sel(QUEUE_TIME + "_bucket", where)
    return f"histogram_quantile({quantile:g}, {by('le')} (rate({bucket}[{window}])))"


def cost_per_hour(where: str, window: str) -> str:
    """USD per hour spent on batch jobs (at the batch price)."""
    return f"3600 * {by()} (rate({sel(COST, where)}[{window}]))"


def tokens_rate(where: str, window: str) -> str:
    """Batch tokens per second by type."""
    return f"{by(s.LABEL_TOKEN_TYPE)} (rate({sel(TOKENS, where)}[{window}]))"
