"""PromQL building blocks over the metric contract, shared by the rules and the dashboards.

Every metric and label name comes from :mod:`gemini_slo.contract.signals`. Every
aggregation is ``sum by (gemini_slo_workload, ...)``: behind the agent there is one series
per workload and label set, but behind the OpenTelemetry Collector or Prometheus' OTLP
receiver each instance adds ``job``/``instance`` and the series must be summed; no
expression relies on a label the standard OTLP translation does not produce.

``where`` arguments are matcher lists without braces, e.g. ``gemini_slo_workload="chat"``
(rules) or ``gemini_slo_workload=~"$workload"`` (dashboards).
"""

from __future__ import annotations

from gemini_slo.contract import signals as s
from gemini_slo.contract.spec import Objective, ObjectiveKind

WORKLOAD = s.LABEL_WORKLOAD
MODE = s.LABEL_MODE
#: The scrape job label Prometheus adds to every scraped series (the dashboards' $job).
JOB = "job"

DURATION = s.OPERATION_DURATION.prometheus
TTFT = s.TIME_TO_FIRST_CHUNK.prometheus
QUEUE_WAIT = s.QUEUE_WAIT.prometheus
CALLS = s.CALLS.prometheus
TOKENS = s.TOKENS.prometheus
COST = s.COST.prometheus
UNPRICED = s.UNPRICED_CALLS.prometheus
IN_FLIGHT = s.REQUESTS_IN_FLIGHT.prometheus
CONCURRENCY_LIMIT = s.CONCURRENCY_LIMIT.prometheus
QUEUE_DEPTH = s.QUEUE_DEPTH.prometheus
QUEUE_SHED = s.QUEUE_SHED.prometheus

#: The histogram behind each percentile objective.
HISTOGRAM_OF: dict[ObjectiveKind, str] = {
    ObjectiveKind.LATENCY: DURATION,
    ObjectiveKind.TTFT: TTFT,
    ObjectiveKind.QUEUE_WAIT: QUEUE_WAIT,
}

#: Outcomes counted as bad by each event-ratio objective.
BAD_OUTCOMES: dict[ObjectiveKind, tuple[s.Outcome, ...]] = {
    ObjectiveKind.AVAILABILITY: s.FAILED_OUTCOMES,
    ObjectiveKind.ERROR_RATIO: s.FAILED_OUTCOMES,
    ObjectiveKind.TIMEOUT_RATIO: (s.Outcome.TIMEOUT,),
    ObjectiveKind.SHED_RATIO: (s.Outcome.REJECTED,),
    ObjectiveKind.RATE_LIMITED_RATIO: (s.Outcome.RATE_LIMITED,),
}


def one_of(label: str, values: tuple[str, ...]) -> str:
    """A matcher for one value (``=``) or several (``=~"a|b"``)."""
    if len(values) == 1:
        return f'{label}="{values[0]}"'
    return f'{label}=~"{"|".join(values)}"'


GENERATED_TOKENS = one_of(s.LABEL_TOKEN_TYPE, tuple(t.value for t in s.GENERATED_TOKEN_TYPES))
BILLABLE_TOKENS = one_of(s.LABEL_TOKEN_TYPE, tuple(t.value for t in s.BILLABLE_TOKEN_TYPES))


def le_matcher(bound: float) -> str:
    """A matcher for the bucket at ``bound``.

    prometheus_client (the agent) writes whole numbers as ``1.0``; the OTLP receivers of
    Prometheus 2.x write ``1``. A whole-number threshold matches both spellings.
    """
    value = s.format_le(bound)
    if value.endswith(".0"):
        return f'le=~"{value[:-2]}|{value[:-2]}\\\\.0"'
    return f'le="{value}"'


def sel(metric: str, *matchers: str) -> str:
    """``metric{m1,m2}``, empty matchers dropped."""
    inner = ",".join(m for m in matchers if m)
    return f"{metric}{{{inner}}}" if inner else metric


def by(*labels: str) -> str:
    """``sum by (gemini_slo_workload, labels...)``."""
    return f"sum by ({', '.join((WORKLOAD, *labels))})"


def rate_sum(metric: str, window: str, *matchers: str, labels: tuple[str, ...] = ()) -> str:
    """``sum by (workload, labels) (rate(metric{matchers}[window]))``."""
    return f"{by(*labels)} (rate({sel(metric, *matchers)}[{window}]))"


def ratio_or_zero(bad: str, total: str) -> str:
    """``bad / total`` that is 0 (not empty) when there are no bad series yet.

    A counter of failures only exists after the first failure; without the ``or`` the
    ratio would have no data instead of 0 on a healthy workload.
    """
    return f"(\n  {bad}\n  or\n  0 * {total}\n)\n/\n{total}"


def sli_error(objective: Objective, where: str, window: str, labels: tuple[str, ...] = ()) -> str:
    """The fraction of bad events of an event-ratio or percentile objective over ``window``.

    Percentile objectives count calls above the threshold from the bucket *at* the
    threshold (a boundary by construction, see Workload.duration_buckets); event ratios
    count calls by outcome. Without calls in the window there is no sample (not 0/0 = NaN,
    which would turn the period's average into NaN). Raises ValueError for floor/ceiling
    objectives.
    """
    if objective.kind in HISTOGRAM_OF:
        hist = HISTOGRAM_OF[objective.kind]
        good = rate_sum(
            f"{hist}_bucket", window, where, le_matcher(objective.threshold), labels=labels
        )
        total = rate_sum(f"{hist}_count", window, where, labels=labels)
        return f"1 - (\n  {good}\n  /\n  ({total} > 0)\n)"
    if objective.kind in BAD_OUTCOMES:
        outcomes = tuple(o.value for o in BAD_OUTCOMES[objective.kind])
        bad = rate_sum(CALLS, window, where, one_of(s.LABEL_OUTCOME, outcomes), labels=labels)
        total = rate_sum(CALLS, window, where, labels=labels)
        return f"(\n  {bad}\n  or\n  0 * {total}\n)\n/\n({total} > 0)"
    raise ValueError(f"objective {objective.name!r} ({objective.kind}) is not an event ratio")


def increase_sum(metric: str, window: str, *matchers: str, labels: tuple[str, ...] = ()) -> str:
    """``sum by (workload, labels) (increase(metric{matchers}[window]))``."""
    return f"{by(*labels)} (increase({sel(metric, *matchers)}[{window}]))"


def bad_events(objective: Objective, where: str, window: str, labels: tuple[str, ...] = ()) -> str:
    """How many bad events of an event-ratio or percentile objective happened in ``window``.

    The minimum-evidence term of the burn-rate alerts. Percentile objectives count calls
    above the threshold (all calls minus the bucket at the threshold); event ratios count
    calls by outcome, 0 (not empty) before the first bad one while there are calls.
    ``increase`` handles counter resets (an app restart). Raises ValueError for
    floor/ceiling objectives.
    """
    if objective.kind in HISTOGRAM_OF:
        hist = HISTOGRAM_OF[objective.kind]
        total = increase_sum(f"{hist}_count", window, where, labels=labels)
        good = increase_sum(
            f"{hist}_bucket", window, where, le_matcher(objective.threshold), labels=labels
        )
        return f"{total}\n-\n{good}"
    if objective.kind in BAD_OUTCOMES:
        outcomes = tuple(o.value for o in BAD_OUTCOMES[objective.kind])
        bad = increase_sum(CALLS, window, where, one_of(s.LABEL_OUTCOME, outcomes), labels=labels)
        total = increase_sum(CALLS, window, where, labels=labels)
        return f"{bad}\nor\n0 * {total}"
    raise ValueError(f"objective {objective.name!r} ({objective.kind}) is not an event ratio")


def tokens_per_second(where: str, window: str, labels: tuple[str, ...] = ()) -> str:
    """Generated (output + thoughts) tokens per second."""
    return rate_sum(TOKENS, window, where, GENERATED_TOKENS, labels=labels)


def cost_per_million_tokens(where: str, window: str, labels: tuple[str, ...] = ()) -> str:
    """USD per 1M billable (input + output + thoughts + tool-use) tokens."""
    cost = rate_sum(COST, window, where, labels=labels)
    tokens = rate_sum(TOKENS, window, where, BILLABLE_TOKENS, labels=labels)
    return f"{cost}\n/\n{tokens}\n* 1e6"


def cost_per_hour(where: str, window: str, labels: tuple[str, ...] = ()) -> str:
    """USD per hour."""
    return f"{rate_sum(COST, window, where, labels=labels)} * 3600"


def unpriced_share(where: str, window: str, labels: tuple[str, ...] = ()) -> str:
    """Share of calls the price table could not price (they cost $0 in the cost counter)."""
    unpriced = rate_sum(UNPRICED, window, where, labels=labels)
    return f"{unpriced}\n/\n{rate_sum(CALLS, window, where, labels=labels)}"


def utilization(where: str) -> str:
    """Requests in flight / concurrency limit, summed over instances."""
    return f"{by()} ({sel(IN_FLIGHT, where)})\n/\n{by()} ({sel(CONCURRENCY_LIMIT, where)})"


def calls_per_second(where: str, window: str, labels: tuple[str, ...] = ()) -> str:
    """All calls per second."""
    return rate_sum(CALLS, window, where, labels=labels)
