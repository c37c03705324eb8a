"""The latency dashboard: interactive workloads (latency mode).

Tail latency from the agent's exact percentiles with ``histogram_quantile`` beside them,
time to first token, SLO compliance, error budget and burn rates, queueing and load
shedding, errors by type, per model.
"""

from __future__ import annotations

from gemini_slo.contract import agent_series
from gemini_slo.contract import alert_names as n
from gemini_slo.contract import promql as q
from gemini_slo.contract import signals as s
from gemini_slo.contract.burn_windows import Policy, windows_for
from gemini_slo.contract.burn_windows import conditions as burn_conditions
from gemini_slo.contract.signals import Mode, Outcome
from gemini_slo.contract.spec import ObjectiveKind, SloSpec
from gemini_slo.dashboards import panels as p
from gemini_slo.dashboards.common import (
    GREEN,
    MODEL,
    RAW,
    RED,
    YELLOW,
    Grid,
    Query,
    ceiling,
    datasource_variable,
    job_variable,
    legend,
    model_variable,
    new_dashboard,
    stat_panel,
    steps,
    timeseries_panel,
    window_label,
    workload_variable,
)
from gemini_slo.dashboards.shared import common_threshold
from grafana_foundation_sdk.models.dashboard import Dashboard

NAME = "latency"
TITLE = "Gemini SLO / Latency"


def build(spec: SloSpec) -> Dashboard:
    """The latency-mode dashboard for every latency workload of the spec."""
    d = new_dashboard(
        spec,
        NAME,
        TITLE,
        "Interactive (latency-mode) Gemini workloads: tail latency, time to first token, "
        "SLO compliance and burn rates, queueing and shedding.",
    )
    d.with_variable(datasource_variable()).with_variable(job_variable()).with_variable(
        workload_variable(spec, Mode.LATENCY)
    ).with_variable(model_variable())
    g = Grid(d)
    mode = Mode.LATENCY
    page = windows_for(Policy.PAGE)
    fast, slow = page[0].burn_rate(spec.period), page[-1].burn_rate(spec.period)
    # Capped for large budgets, the page pairs fire at a lower burn rate than the Workbook's:
    # the panel turns red at the lowest one among this dashboard's objectives.
    budgets = {
        o.budget for w in spec.by_mode(Mode.LATENCY) for o in w.objectives if o.budget is not None
    }
    lowest = min(
        (
            c.burn_factor
            for b in budgets
            for c in burn_conditions(b, spec.period, spec.alerting.min_bad_events)
            if c.policy is Policy.PAGE
        ),
        default=fast,
    )
    w5m, w1h = window_label(spec, 300), window_label(spec, 3600)

    g.row("Service level objectives")
    g.add(
        stat_panel(
            f"Error budget remaining ({spec.period_days}d)",
            [Query(p.recorded(n.ERROR_BUDGET_REMAINING), legend(agent_series.LABEL_OBJECTIVE))],
            "percentunit",
            "Share of the SLO period's error budget left per objective (negative: overspent).",
            steps((None, RED), (0.0, YELLOW), (0.25, GREEN)),
        ),
        w=10,
        h=7,
    )
    g.add(
        timeseries_panel(
            f"Burn rate ({w1h} and {w5m})",
            [
                Query(p.burn_rate("1h"), f"{legend(agent_series.LABEL_OBJECTIVE)} 1h"),
                Query(p.burn_rate("5m"), f"{legend(agent_series.LABEL_OBJECTIVE)} 5m"),
            ],
            "none",
            f"Error-budget burn rate: 1 spends the budget exactly over the period. Tickets "
            f"open above 1 (6h and 30m, 3d and 6h). Pages fire above {fast:g} (1h and 5m) or "
            f"{slow:g} (6h and 30m), capped for large budgets so that a total regression "
            f"still pages within minutes (here from {lowest:.3g}).",
            steps((None, GREEN), (1.0, YELLOW), (lowest, RED)),
            minimum=0,
        ),
        w=14,
        h=7,
    )
    g.add(
        timeseries_panel(
            f"SLO compliance ({w5m}) against target",
            [
                Query(f"1 - {p.recorded(n.SLI_ERROR, '5m')}", legend(agent_series.LABEL_OBJECTIVE)),
                Query(
                    p.recorded(n.OBJECTIVE_TARGET), f"{legend(agent_series.LABEL_OBJECTIVE)} target"
                ),
            ],
            "percentunit",
            "Share of good events per objective (calls under the threshold, calls that did "
            "not fail) and its target.",
        ),
        w=24,
    )
    g.add(p.unbucketed_panel(), w=24, h=4)

    g.row("Latency")
    latency_line = common_threshold(spec, mode, ObjectiveKind.LATENCY)
    g.add(
        timeseries_panel(
            "End-to-end latency p50/p95/p99 (agent, exact)",
            [
                Query(
                    p.agent_percentile(agent_series.AGENT_DURATION_PERCENTILE),
                    f"p{legend(agent_series.LABEL_QUANTILE)} {legend(s.LABEL_MODEL)}",
                ),
                Query(
                    p.objective_line("latency_.*"),
                    f"objective {legend(agent_series.LABEL_OBJECTIVE)}",
                ),
            ],
            "s",
            "Percentiles the agent computes from merged base-2 exponential histograms "
            "(under 1% error), per model, over the last minute.",
            ceiling(latency_line),
            minimum=0,
        ),
        w=12,
    )
    g.add(
        timeseries_panel(
            "End-to-end latency p50/p95/p99 (histogram_quantile)",
            [
                *[
                    Query(p.histogram_quantile(x, q.DURATION, MODEL), f"p{x * 100:g}")
                    for x in (0.5, 0.95, 0.99)
                ],
                Query(
                    p.objective_line("latency_.*"),
                    f"objective {legend(agent_series.LABEL_OBJECTIVE)}",
                ),
            ],
            "s",
            "histogram_quantile over the SLO-aligned buckets: exact at each threshold, "
            "interpolated between buckets.",
            ceiling(latency_line),
            minimum=0,
        ),
        w=12,
    )
    ttft_line = common_threshold(spec, mode, ObjectiveKind.TTFT)
    g.add(
        timeseries_panel(
            "Time to first token p50/p95/p99 (agent, exact)",
            [
                Query(
                    p.agent_percentile(agent_series.AGENT_TTFT_PERCENTILE),
                    f"p{legend(agent_series.LABEL_QUANTILE)} {legend(s.LABEL_MODEL)}",
                ),
                Query(
                    p.objective_line("ttft_.*"), f"objective {legend(agent_series.LABEL_OBJECTIVE)}"
                ),
            ],
            "s",
            "Time from the call to the first streamed chunk, exact percentiles per model.",
            ceiling(ttft_line),
            minimum=0,
        ),
        w=12,
    )
    g.add(
        timeseries_panel(
            "Time to first token p50/p95/p99 (histogram_quantile)",
            [
                *[
                    Query(p.histogram_quantile(x, q.TTFT, MODEL), f"p{x * 100:g}")
                    for x in (0.5, 0.95, 0.99)
                ],
                Query(
                    p.objective_line("ttft_.*"), f"objective {legend(agent_series.LABEL_OBJECTIVE)}"
                ),
            ],
            "s",
            "histogram_quantile over the time-to-first-chunk buckets.",
            ceiling(ttft_line),
            minimum=0,
        ),
        w=12,
    )
    g.add(
        timeseries_panel(
            "p95 latency per model",
            [
                Query(
                    p.histogram_quantile(0.95, q.DURATION, MODEL, labels=(s.LABEL_MODEL,)),
                    legend(s.LABEL_MODEL),
                )
            ],
            "s",
            "End-to-end p95 per requested model.",
            ceiling(latency_line),
            minimum=0,
        ),
        w=12,
    )
    g.add(
        timeseries_panel(
            "Calls per second by outcome",
            [Query(p.calls_by_outcome(), legend(s.LABEL_OUTCOME))],
            "reqps",
            "Every call by how it ended: ok, error, timeout, rejected (shed), rate_limited, "
            "blocked.",
            minimum=0,
        ),
        w=12,
    )

    g.row("Queueing and load shedding")
    g.add(
        timeseries_panel(
            "Queue depth",
            [
                Query(
                    f"{q.by(s.LABEL_QUEUE)} ({q.sel(q.QUEUE_DEPTH, RAW)})",
                    legend(s.LABEL_QUEUE),
                )
            ],
            "short",
            "Calls waiting in an admission queue for a concurrency slot.",
            minimum=0,
        ),
        w=8,
    )
    queue_line = common_threshold(spec, mode, ObjectiveKind.QUEUE_WAIT)
    g.add(
        timeseries_panel(
            "Queue wait p95/p99",
            [
                Query(p.histogram_quantile(0.95, q.QUEUE_WAIT), "p95"),
                Query(p.histogram_quantile(0.99, q.QUEUE_WAIT), "p99"),
                Query(
                    p.objective_line("queue_wait_.*"),
                    f"objective {legend(agent_series.LABEL_OBJECTIVE)}",
                ),
            ],
            "s",
            "Time calls waited for a slot before they were sent (or shed).",
            ceiling(queue_line),
            minimum=0,
        ),
        w=8,
    )
    g.add(
        timeseries_panel(
            "Shed and timeout ratio",
            [
                Query(p.outcome_ratio(Outcome.REJECTED), "shed"),
                Query(p.outcome_ratio(Outcome.TIMEOUT), "timeout"),
                Query(
                    p.objective_line("shed_ratio|timeout_ratio"),
                    f"objective {legend(agent_series.LABEL_OBJECTIVE)}",
                ),
            ],
            "percentunit",
            "Share of calls shed by the admission queue and share that timed out.",
            minimum=0,
        ),
        w=8,
    )
    g.add(
        timeseries_panel(
            "Errors by type",
            [Query(p.errors_by_type(), f"{legend(s.LABEL_OUTCOME)} {legend(s.LABEL_ERROR_TYPE)}")],
            "reqps",
            "Calls that did not end ok, by outcome and error.type (429, 503, timeouts...).",
            minimum=0,
        ),
        w=12,
    )
    headroom_line = common_threshold(spec, mode, ObjectiveKind.HEADROOM)
    g.add(
        timeseries_panel(
            "Utilization against the headroom ceiling",
            [
                Query(p.recorded(n.UTILIZATION), "utilization"),
                Query(p.recorded(n.UTILIZATION_AVG, "5m"), f"{w5m} average"),
                Query(p.objective_line("headroom"), "ceiling"),
            ],
            "percentunit",
            "Requests in flight / concurrency limit. Latency mode keeps headroom: above the "
            "ceiling, bursts queue.",
            ceiling(headroom_line),
            minimum=0,
        ),
        w=12,
    )
    return d.build()
