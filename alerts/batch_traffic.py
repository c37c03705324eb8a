"""Healthy Batch API series for a workload with a ``batch:`` block, for the dashboard
test's reference traffic (the promtool scenarios leave them out: they test call alerts, and
18 more series per scenario would only slow them down): one job finishing per nominal minute, every one
succeeded within the completion threshold after a short queue, one job pending and one
running at any time, the oldest pending one step old."""

from __future__ import annotations

from gemini_slo.alerts.traffic import Series
from gemini_slo.contract import signals as s
from gemini_slo.contract.spec import Workload

JOBS_PER_S = 1 / 60
REQUESTS_PER_JOB = 100
TOKENS_PER_JOB = 50_000
COST_PER_JOB_USD = 0.01


def healthy_series(workload: Workload, samples: int, step: float) -> list[Series]:
    """``samples`` + 1 values per series, one per ``step`` seconds (counters cumulative)."""
    batch = workload.batch
    if batch is None:
        return []
    model = workload.models[0] if workload.models else "gemini-2.5-flash"
    base = (
        (s.LABEL_WORKLOAD, workload.name),
        (s.LABEL_MODE, workload.mode.value),
        (s.LABEL_PROVIDER, s.PROVIDER_GEMINI),
        (s.LABEL_MODEL, model),
    )
    jobs = JOBS_PER_S * step

    def counter(metric: str, per_step: float, *extra: tuple[str, str]) -> Series:
        values = tuple(i * per_step for i in range(samples + 1))
        return Series(metric, (*base, *extra), values, True)

    def gauge(metric: str, value: float, *extra: tuple[str, str]) -> Series:
        return Series(metric, (*base, *extra), (value,) * (samples + 1), False)

    state = s.LABEL_BATCH_STATE
    succeeded = (state, s.BatchState.SUCCEEDED.value)
    threshold = batch.completion_threshold or s.BATCH_DURATION_BUCKETS[-1]
    duration = s.BATCH_JOB_DURATION.prometheus
    queue = s.BATCH_QUEUE_TIME.prometheus
    out = [
        counter(s.BATCH_JOBS_SUBMITTED.prometheus, jobs),
        counter(s.BATCH_JOBS_FINISHED.prometheus, jobs, succeeded),
        gauge(s.BATCH_JOBS_ACTIVE.prometheus, 1, (state, s.BatchState.PENDING.value)),
        gauge(s.BATCH_JOBS_ACTIVE.prometheus, 1, (state, s.BatchState.RUNNING.value)),
        gauge(s.BATCH_QUEUE_OLDEST.prometheus, step),
        counter(s.BATCH_REQUESTS.prometheus, jobs * REQUESTS_PER_JOB, (s.LABEL_OUTCOME, "ok")),
        counter(s.BATCH_TOKENS.prometheus, jobs * TOKENS_PER_JOB, (s.LABEL_TOKEN_TYPE, "output")),
        counter(s.BATCH_COST.prometheus, jobs * COST_PER_JOB_USD),
        counter(f"{duration}_count", jobs, succeeded),
        counter(f"{queue}_count", jobs),
    ]
    # Half the jobs end within a tenth of the threshold, all within it; queue half a minute.
    for le, share in ((threshold / 10, 0.5), (threshold, 1.0), (float("inf"), 1.0)):
        out.append(counter(f"{duration}_bucket", jobs * share, succeeded, ("le", s.format_le(le))))
    for le, share in ((30.0, 0.5), (60.0, 1.0), (float("inf"), 1.0)):
        out.append(counter(f"{queue}_bucket", jobs * share, ("le", s.format_le(le))))
    return out
