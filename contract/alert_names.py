"""Every alert name, alert label and recording-rule name gemini-slo generates.

The rule generators, the Alertmanager routes, the runbook, the dashboards and the spec's
validation (severity overrides name alerts) all import these; none restates one. Metric
and label names of the instrumented signals come from
:mod:`gemini_slo.contract.signals`.

Recording rules follow the Prometheus convention ``level:metric:operations``. The window
suffix (``rate5m``) names the *nominal* window of a 30-day SLO; when the spec sets
``alerting.window_scale`` the range actually evaluated is shorter (see docs/slo-spec.md), but
the name stays, so that dashboards and alerts never depend on the scale.
"""

from __future__ import annotations

import enum

PREFIX = "GeminiSlo"


class Severity(enum.StrEnum):
    """The ``severity`` label: critical pages a human now, warning opens a ticket."""

    CRITICAL = "critical"
    WARNING = "warning"


# ---- alert names -----------------------------------------------------------------------
# Latency mode (interactive): burn rates page; capacity and queueing warn.
LATENCY_BURN = f"{PREFIX}LatencyBurnRate"
TTFT_BURN = f"{PREFIX}TimeToFirstTokenBurnRate"
AVAILABILITY_BURN = f"{PREFIX}AvailabilityBurnRate"
TIMEOUT_SPIKE = f"{PREFIX}TimeoutSpike"
SHED_SPIKE = f"{PREFIX}ShedSpike"
QUEUE_SATURATED = f"{PREFIX}QueueSaturated"
HEADROOM_LOW = f"{PREFIX}HeadroomLow"
# Throughput mode (batch): tickets; pages for a stall and a fast error-budget burn.
TOKEN_THROUGHPUT_LOW = f"{PREFIX}TokenThroughputLow"
COST_HIGH = f"{PREFIX}CostPerTokenHigh"
#: A share of the calls of a workload with a cost objective is unpriced (a model the price
#: table does not know): the cost objective would be met by $0.
UNPRICED_CALLS = f"{PREFIX}UnpricedCalls"
UTILIZATION_LOW = f"{PREFIX}UtilizationLow"
RATE_LIMIT_STORM = f"{PREFIX}RateLimitStorm"
ERROR_BUDGET_BURN = f"{PREFIX}ErrorBudgetBurn"
STALLED = f"{PREFIX}Stalled"
# Throughput mode, Batch API jobs (a workload's `batch:` block): tickets.
BATCH_STUCK = f"{PREFIX}BatchJobStuckInQueue"
BATCH_FAILURE_BURN = f"{PREFIX}BatchFailureBurnRate"
#: Too few finished jobs end within the completion objective's threshold (long windows).
BATCH_COMPLETION_BURN = f"{PREFIX}BatchCompletionBurnRate"

#: Every alert name with its default severity, in runbook order. For a burn-rate alert this
#: is the severity of its page (fast-burn) pairs; its ticket pairs are always warning.
ALERT_SEVERITIES: dict[str, Severity] = {
    LATENCY_BURN: Severity.CRITICAL,
    TTFT_BURN: Severity.CRITICAL,
    AVAILABILITY_BURN: Severity.CRITICAL,
    TIMEOUT_SPIKE: Severity.WARNING,
    SHED_SPIKE: Severity.WARNING,
    QUEUE_SATURATED: Severity.WARNING,
    HEADROOM_LOW: Severity.WARNING,
    TOKEN_THROUGHPUT_LOW: Severity.WARNING,
    COST_HIGH: Severity.WARNING,
    UNPRICED_CALLS: Severity.WARNING,
    UTILIZATION_LOW: Severity.WARNING,
    RATE_LIMIT_STORM: Severity.WARNING,
    ERROR_BUDGET_BURN: Severity.CRITICAL,
    STALLED: Severity.CRITICAL,
    BATCH_STUCK: Severity.WARNING,
    BATCH_FAILURE_BURN: Severity.WARNING,
    BATCH_COMPLETION_BURN: Severity.WARNING,
}
ALERT_NAMES: tuple[str, ...] = tuple(ALERT_SEVERITIES)

# ---- alert labels (besides the signals' workload and mode labels) ----------------------
LABEL_SEVERITY = "severity"
#: The burn-rate window pair that fired, e.g. "1h/5m" (nominal, unscaled). The same pair
#: can exist twice (6h/30m pages at a fast burn and tickets at burn 1): severity tells them
#: apart.
LABEL_BURN_WINDOW = "burn_window"

# ---- recording rules -------------------------------------------------------------------
#: Fraction of bad events of one objective over a window; labels workload, mode, objective.
SLI_ERROR = "gemini_slo:sli_error:ratio_rate{window}"
#: The same over the whole SLO period (mean of the 5m ratio, as Sloth does).
SLI_ERROR_PERIOD = "gemini_slo:sli_error:ratio_period"
#: Bad events of one objective in a window (``increase``): the burn-rate alerts' minimum
#: evidence. Recorded for the long window of every pair; labels workload, mode, objective.
SLI_BAD_EVENTS = "gemini_slo:sli_bad_events:increase{window}"
#: The objective's error budget as a ratio (1 - target); static, one per objective.
ERROR_BUDGET = "gemini_slo:error_budget:ratio"
#: The objective's target ratio (e.g. 0.95); static, one per objective.
OBJECTIVE_TARGET = "gemini_slo:objective_target:ratio"
#: Every objective's threshold in its own unit (seconds, ratio, tokens/s, USD per 1M
#: tokens); static, one per objective, so dashboards can draw objective lines per workload.
OBJECTIVE_THRESHOLD = "gemini_slo:objective_threshold:value"
#: Fraction of the period's error budget left (1 = untouched, <0 = overspent).
ERROR_BUDGET_REMAINING = "gemini_slo:error_budget_remaining:ratio"
#: All calls per second; labels workload, mode.
CALLS_RATE = "gemini_slo:calls:rate{window}"
#: Age of the oldest batch job still pending, instant; labels workload, mode.
BATCH_OLDEST_PENDING = "gemini_slo:batch_queue_oldest_age:max"
#: Generated tokens (output + thoughts) per second; labels workload, mode.
TOKENS_GENERATED_RATE = "gemini_slo:tokens_generated:rate{window}"
#: USD per 1M billable tokens over a window; labels workload, mode.
COST_PER_MILLION_TOKENS = "gemini_slo:cost_usd_per_million_tokens:rate{window}"
#: USD per hour over a window; labels workload, mode.
COST_PER_HOUR = "gemini_slo:cost_usd_per_hour:rate{window}"
#: Share of calls the price table could not price over a window; labels workload, mode.
UNPRICED_SHARE = "gemini_slo:unpriced_calls:ratio_rate{window}"
#: The share of unpriced calls above which UNPRICED_CALLS raises its ticket: above it the
#: cost per 1M tokens is understated by more than the table's own rounding could explain.
UNPRICED_SHARE_MAX = 0.01
#: Requests in flight summed over instances, instant; labels workload, mode.
REQUESTS_IN_FLIGHT = "gemini_slo:requests_in_flight:sum"
#: Requests in flight / concurrency limit, instant; labels workload, mode.
UTILIZATION = "gemini_slo:utilization:ratio"
#: The same averaged over a window.
UTILIZATION_AVG = "gemini_slo:utilization:ratio_avg{window}"


def windowed(template: str, window: str) -> str:
    """Fill a ``{window}`` template: ``windowed(SLI_ERROR, "5m")``."""
    return template.format(window=window)
