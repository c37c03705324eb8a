"""PromQL of the dashboard panels, over the contract and the recording rules.

Templates use Grafana's variables ``$workload``, ``$model``, ``$job`` (raw series only:
recorded series are summed over jobs) and ``$__rate_interval``. Raw
metrics are always aggregated ``sum by (gemini_slo_workload, ...)`` (see
:mod:`gemini_slo.contract.promql`); SLO series come from the recording rules in
:mod:`gemini_slo.contract.alert_names`, so a panel and the alert next to it show the same number.
"""

from __future__ import annotations

from gemini_slo.contract import agent_series
from gemini_slo.contract import alert_names as n
from gemini_slo.contract import promql as q
from gemini_slo.contract import signals as s
from gemini_slo.dashboards.common import (
    GREEN,
    MODEL,
    RATE,
    RAW,
    RED,
    WORKLOAD,
    Query,
    legend,
    stat_panel,
    steps,
)
from grafana_foundation_sdk.builders import stat
from grafana_foundation_sdk.models import dashboard as dm

OK = f'{s.LABEL_OUTCOME}="{s.Outcome.OK.value}"'
NOT_OK = f'{s.LABEL_OUTCOME}!="{s.Outcome.OK.value}"'


def recorded(template: str, window: str | None = None, *matchers: str) -> str:
    """A recorded series of the selected workload: ``name{gemini_slo_workload=~"$workload"}``."""
    name = n.windowed(template, window) if window else template
    return q.sel(name, WORKLOAD, *matchers)


def objective_line(objective_regex: str) -> str:
    """The static threshold series of the objectives matching a regex (objective lines)."""
    return recorded(
        n.OBJECTIVE_THRESHOLD, None, f'{agent_series.LABEL_OBJECTIVE}=~"{objective_regex}"'
    )


def agent_percentile(metric: str, quantiles: str = "0.5|0.95|0.99") -> str:
    """The agent's exact percentiles (merged exponential histograms), per model."""
    matchers = (
        RAW,
        MODEL,
        f'{agent_series.LABEL_QUANTILE}=~"{quantiles}"',
        f'{agent_series.LABEL_WINDOW}="1m"',
    )
    return f"max by ({q.WORKLOAD}, {s.LABEL_MODEL}, {agent_series.LABEL_QUANTILE}) ({q.sel(metric, *matchers)})"


def histogram_quantile(
    quantile: float, histogram: str, *matchers: str, labels: tuple[str, ...] = ()
) -> str:
    """``histogram_quantile`` over a classic histogram, summed over instances."""
    inner = q.rate_sum(f"{histogram}_bucket", RATE, RAW, *matchers, labels=(*labels, "le"))
    return f"histogram_quantile({quantile:g}, {inner})"


def outcome_ratio(*outcomes: s.Outcome) -> str:
    """Share of the selected workload's calls with these outcomes (0, not empty, when none)."""
    values = tuple(o.value for o in outcomes)
    bad = q.rate_sum(q.CALLS, RATE, RAW, MODEL, q.one_of(s.LABEL_OUTCOME, values))
    total = q.rate_sum(q.CALLS, RATE, RAW, MODEL)
    return q.ratio_or_zero(bad, total)


def errors_by_type() -> str:
    """Failed (not ok) calls per second by outcome and error.type; 0 when there are none."""
    bad = q.rate_sum(
        q.CALLS, RATE, RAW, MODEL, NOT_OK, labels=(s.LABEL_OUTCOME, s.LABEL_ERROR_TYPE)
    )
    zero = f"0 * {q.rate_sum(q.CALLS, RATE, RAW, MODEL)}"
    return f"{bad}\nor on ({q.WORKLOAD})\n{zero}"


def calls_by_outcome() -> str:
    """Calls per second by outcome."""
    return q.rate_sum(q.CALLS, RATE, RAW, MODEL, labels=(s.LABEL_OUTCOME,))


def burn_rate(window: str) -> str:
    """Error-budget burn rate of every budgeted objective over a recorded window."""
    return f"{recorded(n.SLI_ERROR, window)}\n/\n{recorded(n.ERROR_BUDGET)}"


def unbucketed_panel() -> stat.Panel:
    """Per latency/TTFT objective: does the incoming histogram have a bucket at the threshold?

    The agent's ``gemini_slo_objective_threshold_unbucketed`` (agent/bucketing.py): 0 reads
    "bucketed", 1 reads "no bucket at the threshold" in red, so that an SLI that cannot be
    counted (a foreign emitter without otel_views) shows as such, not as an empty graph.
    """
    expr = (
        f"max by ({q.WORKLOAD}, {agent_series.LABEL_OBJECTIVE}) "
        f"({q.sel(agent_series.AGENT_OBJECTIVE_THRESHOLD_UNBUCKETED, WORKLOAD)})"
    )
    mapping = dm.ValueMap(
        options={
            "0": dm.ValueMappingResult(text="bucketed", color=GREEN, index=0),
            "1": dm.ValueMappingResult(text=agent_series.UNBUCKETED_STATE, color=RED, index=1),
        }
    )
    return stat_panel(
        "Bucket at each latency threshold",
        [Query(expr, legend(agent_series.LABEL_OBJECTIVE), instant=True)],
        "none",
        "Whether the incoming duration and TTFT histograms have a bucket boundary at each "
        "objective's threshold. Without one (the official OpenTelemetry instrumentation's "
        "default buckets) the SLI cannot be counted: add gemini_slo.instrumentation."
        "otel_views(spec) to the app's MeterProvider.",
        steps((None, GREEN), (1.0, RED)),
    ).mappings([mapping])
