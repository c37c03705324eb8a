"""The Batch API row of the throughput dashboard (for workloads with a ``batch:`` block).

Jobs now by state and the oldest pending job against the queue limit (what the stuck
ticket reads), jobs finished per hour by state, the failure ratio and the completion SLI
(the recorded series the alerts read), completion and queue-time percentiles, and the
batch spend. Expressions come from :mod:`gemini_slo.contract.batch_promql`.
"""

from __future__ import annotations

from gemini_slo.contract import agent_series
from gemini_slo.contract import alert_names as n
from gemini_slo.contract import batch_promql as b
from gemini_slo.contract import signals as s
from gemini_slo.contract.batch_spec import COMPLETION, FAILURE_RATIO, QUEUE_TIME
from gemini_slo.contract.signals import Mode
from gemini_slo.contract.spec import SloSpec
from gemini_slo.dashboards import panels as p
from gemini_slo.dashboards.common import (
    MODEL,
    RATE,
    WORKLOAD,
    Grid,
    Query,
    ceiling,
    legend,
    stat_panel,
    timeseries_panel,
)

WHERE = f"{WORKLOAD},{MODEL}"


def _common(spec: SloSpec, attr: str) -> float | None:
    values = {
        getattr(w.batch, attr)
        for w in spec.by_mode(Mode.THROUGHPUT)
        if w.batch is not None and getattr(w.batch, attr) is not None
    }
    return values.pop() if len(values) == 1 else None


def has_batch(spec: SloSpec) -> bool:
    """Whether a throughput workload of the spec has Batch API objectives."""
    return any(w.batch is not None for w in spec.by_mode(Mode.THROUGHPUT))


def add_batch_row(g: Grid, spec: SloSpec) -> None:
    """Append the row (nothing when no throughput workload has a ``batch:`` block)."""
    if not has_batch(spec):
        return
    queue_limit = _common(spec, "max_queue_time")
    failure = _common(spec, "failure_ratio")
    g.row("Batch API jobs")
    g.add(
        timeseries_panel(
            "Batch jobs now, by state",
            [Query(b.jobs_active(WHERE), legend(s.LABEL_BATCH_STATE))],
            "short",
            "Jobs last seen pending (queued) or running, as the app polls them.",
            minimum=0,
        ),
        w=8,
    )
    g.add(
        stat_panel(
            "Oldest pending batch job",
            [Query(p.recorded(n.BATCH_OLDEST_PENDING), legend(s.LABEL_WORKLOAD))],
            "s",
            "Age of the oldest job still pending; the stuck-in-queue ticket fires past "
            "batch.max_queue_time.",
            ceiling(queue_limit),
        ),
        w=4,
    )
    g.add(
        timeseries_panel(
            "Oldest pending job against the queue limit",
            [
                Query(p.recorded(n.BATCH_OLDEST_PENDING), "oldest pending"),
                Query(p.objective_line(QUEUE_TIME), "limit"),
            ],
            "s",
            "A stuck job never reaches the queue-time histogram: this gauge is what the "
            "ticket reads.",
            ceiling(queue_limit),
            minimum=0,
        ),
        w=12,
    )
    g.add(
        timeseries_panel(
            "Batch jobs finished per hour, by state",
            [Query(b.jobs_finished_rate(WHERE, RATE), legend(s.LABEL_BATCH_STATE))],
            "short",
            "Jobs seen ending, counted once per job: succeeded, failed, cancelled, expired.",
            minimum=0,
        ),
        w=8,
    )
    g.add(
        timeseries_panel(
            "Batch failure ratio and completion SLI",
            [
                Query(
                    p.recorded(
                        n.SLI_ERROR, "1h", f'{agent_series.LABEL_OBJECTIVE}="{FAILURE_RATIO}"'
                    ),
                    "failed or expired (1h)",
                ),
                Query(p.objective_line(FAILURE_RATIO), "failure budget"),
                Query(
                    p.recorded(
                        n.SLI_ERROR, "1d", f'{agent_series.LABEL_OBJECTIVE}=~"{COMPLETION}.*"'
                    ),
                    "late (1d)",
                ),
            ],
            "percentunit",
            "Share of finished jobs (cancelled left out) that failed or expired, and that "
            "took longer than the completion threshold.",
            ceiling(failure),
            minimum=0,
        ),
        w=8,
    )
    g.add(
        timeseries_panel(
            "Batch cost per hour",
            [Query(b.cost_per_hour(WHERE, RATE), "batch (USD/h)")],
            "currencyUSD",
            "Spend of finished jobs' results at the batch price (counted when a job ends).",
            minimum=0,
        ),
        w=8,
    )
    g.add(
        timeseries_panel(
            "Time to completion and in queue (p50, p95)",
            [
                Query(b.completion_quantile(WHERE, 0.5, RATE), "completion p50"),
                Query(b.completion_quantile(WHERE, 0.95, RATE), "completion p95"),
                Query(b.queue_time_quantile(WHERE, 0.5, RATE), "queue p50"),
                Query(b.queue_time_quantile(WHERE, 0.95, RATE), "queue p95"),
            ],
            "s",
            "Create time to end time of the jobs that ended, and to leaving the queue.",
            minimum=0,
        ),
        w=24,
    )
