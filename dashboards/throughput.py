"""The throughput dashboard: batch workloads (throughput mode).

Sustained generated tokens/s (1m, 5m, 1h) against the floor, tokens by type, requests in
flight and utilization against the floor, cost per 1M tokens and per hour, the 429 rate,
errors and the error budget.
"""

from __future__ import annotations

from gemini_slo.contract import agent_series
from gemini_slo.contract import alert_names as n
from gemini_slo.contract import promql as q
from gemini_slo.contract import signals as s
from gemini_slo.contract.signals import Mode, Outcome
from gemini_slo.contract.spec import ObjectiveKind, SloSpec
from gemini_slo.dashboards import panels as p
from gemini_slo.dashboards.batch_row import add_batch_row
from gemini_slo.dashboards.common import (
    GREEN,
    MODEL,
    RATE,
    RAW,
    RED,
    YELLOW,
    Grid,
    Query,
    ceiling,
    datasource_variable,
    floor,
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

NAME = "throughput"
TITLE = "Gemini SLO / Throughput"


def build(spec: SloSpec) -> Dashboard:
    """The throughput-mode dashboard for every throughput workload of the spec."""
    d = new_dashboard(
        spec,
        NAME,
        TITLE,
        "Batch (throughput-mode) Gemini workloads: sustained tokens/s, utilization, cost "
        "per token, 429s and the error budget.",
    )
    d.with_variable(datasource_variable()).with_variable(job_variable()).with_variable(
        workload_variable(spec, Mode.THROUGHPUT)
    ).with_variable(model_variable())
    g = Grid(d)
    mode = Mode.THROUGHPUT
    w1m, w5m, w1h = (window_label(spec, x) for x in (60, 300, 3600))
    tps_floor = common_threshold(spec, mode, ObjectiveKind.TOKENS_PER_SECOND)
    cost_ceiling = common_threshold(spec, mode, ObjectiveKind.COST_PER_MILLION_TOKENS)
    util_floor = common_threshold(spec, mode, ObjectiveKind.UTILIZATION)

    g.row("Throughput")
    g.add(
        stat_panel(
            f"Generated tokens/s ({w5m})",
            [Query(p.recorded(n.TOKENS_GENERATED_RATE, "5m"), legend(s.LABEL_WORKLOAD))],
            "short",
            "Output + thought tokens per second (what the tokens/s objective counts).",
            floor(tps_floor),
        ),
        w=6,
    )
    g.add(
        timeseries_panel(
            f"Sustained generated tokens/s ({w1m}, {w5m}, {w1h}) against the floor",
            [
                Query(p.recorded(n.TOKENS_GENERATED_RATE, "1m"), w1m),
                Query(p.recorded(n.TOKENS_GENERATED_RATE, "5m"), w5m),
                Query(p.recorded(n.TOKENS_GENERATED_RATE, "1h"), w1h),
                Query(p.objective_line("tokens_per_second"), "floor"),
            ],
            "short",
            "Generated tokens per second over three windows; the ticket fires when the 5m "
            "rate stays under the floor while the workload is busy.",
            floor(tps_floor),
            minimum=0,
        ),
        w=18,
    )
    g.add(
        timeseries_panel(
            "Tokens by type",
            [
                Query(
                    q.rate_sum(q.TOKENS, RATE, RAW, MODEL, labels=(s.LABEL_TOKEN_TYPE,)),
                    legend(s.LABEL_TOKEN_TYPE),
                )
            ],
            "short",
            "Tokens per second by type: input (includes cached), cached, output, thoughts, "
            "tool_use.",
            minimum=0,
        ),
        w=12,
    )
    g.add(
        timeseries_panel(
            "Generated tokens/s per model",
            [
                Query(
                    q.rate_sum(
                        q.TOKENS, RATE, RAW, MODEL, q.GENERATED_TOKENS, labels=(s.LABEL_MODEL,)
                    ),
                    legend(s.LABEL_MODEL),
                )
            ],
            "short",
            "Output + thought tokens per second per requested model.",
            minimum=0,
        ),
        w=12,
    )

    g.row("Capacity")
    g.add(
        timeseries_panel(
            "Requests in flight and concurrency limit",
            [
                Query(f"{q.by()} ({q.sel(q.IN_FLIGHT, RAW, MODEL)})", "in flight"),
                Query(f"{q.by()} ({q.sel(q.CONCURRENCY_LIMIT, RAW)})", "limit"),
            ],
            "short",
            "Calls sent and not finished, against the workload's concurrency limit.",
            minimum=0,
        ),
        w=12,
    )
    g.add(
        timeseries_panel(
            "Utilization against the floor",
            [
                Query(p.recorded(n.UTILIZATION), "utilization"),
                Query(p.recorded(n.UTILIZATION_AVG, "1h"), f"{w1h} average"),
                Query(p.objective_line("utilization"), "floor"),
            ],
            "percentunit",
            "Requests in flight / concurrency limit. Throughput mode runs hot: below the "
            "floor, paid capacity idles.",
            floor(util_floor),
            minimum=0,
        ),
        w=12,
    )

    g.row("Cost")
    g.add(
        stat_panel(
            f"Cost per 1M tokens ({w1h})",
            [Query(p.recorded(n.COST_PER_MILLION_TOKENS, "1h"), legend(s.LABEL_WORKLOAD))],
            "currencyUSD",
            "USD per 1M billable tokens (input + output + thoughts + tool use).",
            ceiling(cost_ceiling),
        ),
        w=6,
    )
    g.add(
        timeseries_panel(
            "Cost per 1M tokens against the ceiling",
            [
                Query(p.recorded(n.COST_PER_MILLION_TOKENS, "5m"), w5m),
                Query(p.recorded(n.COST_PER_MILLION_TOKENS, "1h"), w1h),
                Query(p.objective_line("cost_per_million_tokens"), "ceiling"),
            ],
            "currencyUSD",
            "USD per 1M billable tokens from the dated price table.",
            ceiling(cost_ceiling),
            minimum=0,
        ),
        w=9,
    )
    g.add(
        timeseries_panel(
            "Cost per hour",
            [
                Query(p.recorded(n.COST_PER_HOUR, "1h"), f"total ({w1h})"),
                Query(
                    f"{q.cost_per_hour(f'{RAW},{MODEL}', RATE, labels=(s.LABEL_MODEL,))}",
                    legend(s.LABEL_MODEL),
                ),
            ],
            "currencyUSD",
            "Spend rate in USD per hour, in total and per model.",
            minimum=0,
        ),
        w=9,
    )
    unpriced_max = n.UNPRICED_SHARE_MAX
    g.add(
        stat_panel(
            f"Unpriced calls ({w1h})",
            [Query(p.recorded(n.UNPRICED_SHARE, "1h"), legend(s.LABEL_WORKLOAD))],
            "percentunit",
            "Share of calls to a model (or service tier) the price table does not know: they "
            "cost $0, so the cost panels understate the spend. Above "
            f"{unpriced_max:.0%} a workload with a cost objective raises {n.UNPRICED_CALLS}.",
            ceiling(unpriced_max),
        ),
        w=6,
    )
    g.add(
        timeseries_panel(
            "Unpriced calls per model",
            [
                Query(
                    q.unpriced_share(f"{RAW},{MODEL}", RATE, labels=(s.LABEL_MODEL,)),
                    legend(s.LABEL_MODEL),
                )
            ],
            "percentunit",
            "Which models the price table does not price (gemini-slo prices MODEL tells what "
            "it knows); add them to a GEMINI_SLO_PRICING file.",
            ceiling(unpriced_max),
            minimum=0,
        ),
        w=18,
    )

    g.row("Errors and error budget")
    g.add(
        stat_panel(
            f"Error budget remaining ({spec.period_days}d)",
            [Query(p.recorded(n.ERROR_BUDGET_REMAINING), legend(agent_series.LABEL_OBJECTIVE))],
            "percentunit",
            "Share of the period's error budget left per objective (negative: overspent).",
            steps((None, RED), (0.0, YELLOW), (0.25, GREEN)),
        ),
        w=6,
    )
    g.add(
        timeseries_panel(
            "429 (rate limited) ratio",
            [
                Query(p.outcome_ratio(Outcome.RATE_LIMITED), "429"),
                Query(p.objective_line("rate_limited_ratio"), "storm threshold"),
            ],
            "percentunit",
            "Share of calls answered 429 RESOURCE_EXHAUSTED: the quota is the limit.",
            minimum=0,
        ),
        w=9,
    )
    g.add(
        timeseries_panel(
            "Errors by type",
            [Query(p.errors_by_type(), f"{legend(s.LABEL_OUTCOME)} {legend(s.LABEL_ERROR_TYPE)}")],
            "reqps",
            "Calls that did not end ok, by outcome and error.type.",
            minimum=0,
        ),
        w=9,
    )
    g.add(
        timeseries_panel(
            "Calls per second by outcome",
            [Query(p.calls_by_outcome(), legend(s.LABEL_OUTCOME))],
            "reqps",
            "Every call by how it ended.",
            minimum=0,
        ),
        w=24,
    )
    add_batch_row(g, spec)
    return d.build()
