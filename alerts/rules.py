"""Prometheus recording and alerting rules from the spec: pure functions, data out.

One recording group and one alerting group per workload. Recording rules compute every
SLI per window (``gemini_slo:sli_error:ratio_rate5m`` ...), budgets and capacity series;
alerts read the recorded series, so an alert and the dashboard panel next to it always
show the same number.

Which objective gets which alert is decided here, per mode (see the issue and
docs/slo-spec.md): latency-mode burn rates page, throughput-mode alerts open tickets and
only a stall pages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gemini_slo.contract import agent_series
from gemini_slo.contract import alert_names as n
from gemini_slo.contract import promql as q
from gemini_slo.contract.burn_windows import BurnWindow, Policy, windows_for
from gemini_slo.contract.signals import Mode
from gemini_slo.contract.spec import (
    Objective,
    ObjectiveKind,
    SloSpec,
    Workload,
    format_duration,
)

Rule = dict[str, Any]
Group = dict[str, Any]

MINUTE = 60.0
HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class BurnAlert:
    """A burn-rate alert for one objective kind: its name, window policy and wording."""

    alert: str
    policy: Policy
    bad_events: str  # completes "{value} of calls ..." in the description


#: Burn-rate alerts per objective kind. Timeouts and sheds use the fast (page) windows, as
#: spikes, but warn: they are symptoms that the availability burn already pages on.
BURN_ALERTS: dict[ObjectiveKind, BurnAlert] = {
    ObjectiveKind.LATENCY: BurnAlert(n.LATENCY_BURN, Policy.PAGE, "of calls took longer than {threshold}"),
    ObjectiveKind.TTFT: BurnAlert(n.TTFT_BURN, Policy.PAGE, "of streamed calls waited longer than {threshold} for the first chunk"),
    ObjectiveKind.AVAILABILITY: BurnAlert(n.AVAILABILITY_BURN, Policy.PAGE, "of calls failed (error, timeout, shed or 429)"),
    ObjectiveKind.TIMEOUT_RATIO: BurnAlert(n.TIMEOUT_SPIKE, Policy.PAGE, "of calls timed out"),
    ObjectiveKind.SHED_RATIO: BurnAlert(n.SHED_SPIKE, Policy.PAGE, "of calls were shed by the admission queue"),
    ObjectiveKind.ERROR_RATIO: BurnAlert(n.ERROR_BUDGET_BURN, Policy.TICKET, "of calls failed (error, timeout, shed or 429)"),
}  # fmt: skip

#: Nominal windows every event-ratio SLI is recorded over, for the dashboards.
DASHBOARD_WINDOWS: tuple[float, ...] = (5 * MINUTE, HOUR)
#: Nominal windows of the capacity and throughput series.
TOKEN_WINDOWS: tuple[float, ...] = (MINUTE, 5 * MINUTE, HOUR)
COST_WINDOWS: tuple[float, ...] = (5 * MINUTE, HOUR)
UTILIZATION_WINDOWS: tuple[float, ...] = (5 * MINUTE, HOUR)

# Nominal windows and holds of the threshold alerts (scaled like the burn windows).
QUEUE_HOLD = 10 * MINUTE
HEADROOM_HOLD = 15 * MINUTE
TOKEN_HOLD = 15 * MINUTE
COST_HOLD = 15 * MINUTE
UTILIZATION_HOLD = 30 * MINUTE
RATE_LIMIT_HOLD = 5 * MINUTE


def window_name(seconds: float) -> str:
    """The nominal window as used in rule names: 300 -> '5m'."""
    return format_duration(seconds)


def sli_windows(objective: Objective) -> tuple[float, ...]:
    """Nominal windows an event-ratio objective's SLI is recorded over, sorted."""
    found: set[float] = set(DASHBOARD_WINDOWS)
    burn = BURN_ALERTS.get(objective.kind)
    if burn is not None:
        for w in windows_for(burn.policy):
            found.update((w.long, w.short))
    return tuple(sorted(found))


def workload_matcher(workload: Workload) -> str:
    """The matcher selecting one workload's series."""
    return f'{q.WORKLOAD}="{workload.name}"'


def _objective_matchers(workload: Workload, objective: Objective) -> str:
    return f'{workload_matcher(workload)},{agent_series.LABEL_OBJECTIVE}="{objective.name}"'


def _pct(ratio: float) -> str:
    return f"{ratio * 100:.6g}%"


def _num(value: float) -> str:
    return f"{value:.6g}"


# ======================================================================================
# Recording rules
# ======================================================================================


def recording_group(spec: SloSpec, workload: Workload) -> Group:
    """All recording rules of one workload."""
    a = spec.alerting
    where = workload_matcher(workload)
    mode_label = {q.MODE: workload.mode.value}

    def win(nominal: float) -> str:
        return format_duration(a.window(nominal))

    rules: list[Rule] = []
    for o in workload.objectives:
        rules.append(
            {
                "record": n.OBJECTIVE_THRESHOLD,
                "expr": f"vector({_num(o.threshold)})",
                "labels": {
                    q.WORKLOAD: workload.name,
                    **mode_label,
                    agent_series.LABEL_OBJECTIVE: o.name,
                },
            }
        )
    for o in workload.objectives:
        if not o.has_budget:
            continue
        labels = {**mode_label, agent_series.LABEL_OBJECTIVE: o.name}
        for w in sli_windows(o):
            rules.append(
                {
                    "record": n.windowed(n.SLI_ERROR, window_name(w)),
                    "expr": q.sli_error(o, where, win(w)),
                    "labels": labels,
                }
            )
        static = {q.WORKLOAD: workload.name, **labels}
        budget = o.budget or 0.0
        rules.append(
            {"record": n.ERROR_BUDGET, "expr": f"vector({_num(budget)})", "labels": static}
        )
        rules.append(
            {"record": n.OBJECTIVE_TARGET, "expr": f"vector({_num(o.target)})", "labels": static}
        )
        rate5m = q.sel(n.windowed(n.SLI_ERROR, "5m"), _objective_matchers(workload, o))
        period = format_duration(a.window(spec.period))
        rules.append(
            {
                "record": n.SLI_ERROR_PERIOD,
                "expr": f"avg_over_time({rate5m}[{period}])",
                "labels": labels,
            }
        )
        period_sel = q.sel(n.SLI_ERROR_PERIOD, _objective_matchers(workload, o))
        rules.append(
            {
                "record": n.ERROR_BUDGET_REMAINING,
                "expr": f"1 - {period_sel} / {_num(budget)}",
                "labels": labels,
            }
        )

    rules.append(
        {
            "record": n.windowed(n.CALLS_RATE, "5m"),
            "expr": q.calls_per_second(where, win(5 * MINUTE)),
            "labels": mode_label,
        }
    )
    rules.append(
        {
            "record": n.REQUESTS_IN_FLIGHT,
            "expr": f"{q.by()} ({q.sel(q.IN_FLIGHT, where)})",
            "labels": mode_label,
        }
    )
    rules.append({"record": n.UTILIZATION, "expr": q.utilization(where), "labels": mode_label})
    for w in UTILIZATION_WINDOWS:
        rules.append(
            {
                "record": n.windowed(n.UTILIZATION_AVG, window_name(w)),
                "expr": f"avg_over_time({q.sel(n.UTILIZATION, where)}[{win(w)}])",
                "labels": mode_label,
            }
        )
    if workload.mode is Mode.THROUGHPUT:
        for w in TOKEN_WINDOWS:
            rules.append(
                {
                    "record": n.windowed(n.TOKENS_GENERATED_RATE, window_name(w)),
                    "expr": q.tokens_per_second(where, win(w)),
                    "labels": mode_label,
                }
            )
        for w in COST_WINDOWS:
            rules.append(
                {
                    "record": n.windowed(n.COST_PER_MILLION_TOKENS, window_name(w)),
                    "expr": q.cost_per_million_tokens(where, win(w)),
                    "labels": mode_label,
                }
            )
        rules.append(
            {
                "record": n.windowed(n.COST_PER_HOUR, "1h"),
                "expr": q.cost_per_hour(where, win(HOUR)),
                "labels": mode_label,
            }
        )
    return {"name": f"gemini-slo-{workload.name}-recording", "rules": rules}


# ======================================================================================
# Alerting rules
# ======================================================================================


def runbook_anchor(alert: str) -> str:
    """The anchor of an alert's section in runbook.md (GitHub lowercases headings)."""
    return alert.lower()


def _alert(
    spec: SloSpec,
    workload: Workload,
    alert: str,
    *,
    expr: str,
    hold: float,
    objective: Objective | None,
    summary: str,
    description: str,
    extra_labels: dict[str, str] | None = None,
) -> Rule:
    a = spec.alerting
    labels: dict[str, str] = {
        n.LABEL_SEVERITY: a.severity(alert, n.ALERT_SEVERITIES[alert]).value,
        q.WORKLOAD: workload.name,
        q.MODE: workload.mode.value,
    }
    if objective is not None:
        labels[agent_series.LABEL_OBJECTIVE] = objective.name
    labels.update(extra_labels or {})
    for key, value in sorted({**a.label_dict, **workload.label_dict}.items()):
        labels.setdefault(key, value)
    rule: Rule = {"alert": alert, "expr": expr}
    held = a.hold(hold)
    if held > 0:
        rule["for"] = format_duration(held)
    rule["labels"] = labels
    rule["annotations"] = {
        "summary": summary,
        "description": description,
        "runbook_url": f"{a.runbook_base_url}#{runbook_anchor(alert)}",
    }
    return rule


def burn_threshold(spec: SloSpec, objective: Objective, window: BurnWindow) -> float:
    """The error ratio above which a window pair fires: burn rate x error budget."""
    return round(window.burn_rate(spec.period) * (objective.budget or 0.0), 9)


def _burn_rules(spec: SloSpec, workload: Workload, o: Objective, burn: BurnAlert) -> list[Rule]:
    a = spec.alerting
    rules = []
    for w in windows_for(burn.policy):
        threshold = burn_threshold(spec, o, w)
        # A loose objective (p90: 10% budget) cannot burn 14.4x: the error ratio tops out
        # at 1. Cap the threshold there, so "every event bad" still fires the pair instead
        # of an alert that can never fire.
        op = ">"
        if threshold >= 1.0:
            threshold, op = 1.0, ">="
        matchers = _objective_matchers(workload, o)
        long_sel = q.sel(n.windowed(n.SLI_ERROR, window_name(w.long)), matchers)
        short_sel = q.sel(n.windowed(n.SLI_ERROR, window_name(w.short)), matchers)
        expr = f"{long_sel} {op} {_num(threshold)}\nand\n{short_sel} {op} {_num(threshold)}"
        long_real = format_duration(a.window(w.long))
        short_real = format_duration(a.window(w.short))
        rate = w.burn_rate(spec.period)
        bad = burn.bad_events.format(threshold=format_duration(o.threshold))
        summary = f"{workload.name}: {o.name} error budget burning {rate:g}x too fast ({w.name})"
        description = (
            f"{{{{ $value | humanizePercentage }}}} {bad} over the last {long_real} "
            f"(and above {_pct(threshold)} over {short_real} too). Objective: {o.summary}; "
            f"at {rate:g}x the {_pct(o.budget or 0.0)} error budget, "
            f"{_pct(w.budget_fraction)} of the {spec.period_days}d budget is gone "
            f"in {format_duration(a.window(w.long))}."
        )
        rules.append(
            _alert(
                spec,
                workload,
                burn.alert,
                expr=expr,
                hold=w.hold,
                objective=o,
                summary=summary,
                description=description,
                extra_labels={n.LABEL_BURN_WINDOW: w.name},
            )
        )
    return rules


def _busy(workload: Workload) -> str:
    """The workload has work: calls finished in the last 5m, or calls are in flight.

    Floors (tokens/s, utilization) only apply to a busy workload: an idle batch is not
    slow. In-flight counts too, so that long calls that have not finished yet still do.
    """
    where = workload_matcher(workload)
    calls = q.sel(n.windowed(n.CALLS_RATE, "5m"), where)
    in_flight = q.sel(n.REQUESTS_IN_FLIGHT, where)
    return f"(\n  {calls} > 0\n  or\n  {in_flight} > 0\n)"


def _threshold_rule(spec: SloSpec, workload: Workload, o: Objective) -> Rule | None:
    where = workload_matcher(workload)
    a = spec.alerting
    mode_sel: Callable[[str], str] = lambda name: q.sel(name, where)  # noqa: E731
    t = o.threshold
    match o.kind:
        case ObjectiveKind.QUEUE_WAIT:
            sli = q.sel(n.windowed(n.SLI_ERROR, "5m"), _objective_matchers(workload, o))
            budget = o.budget or 0.0
            return _alert(
                spec,
                workload,
                n.QUEUE_SATURATED,
                expr=f"{sli} > {_num(budget)}",
                hold=QUEUE_HOLD,
                objective=o,
                summary=f"{workload.name}: admission queue saturated ({o.name} above {format_duration(t)})",
                description=f"{{{{ $value | humanizePercentage }}}} of queue waits took longer than "
                f"{format_duration(t)} over the last {format_duration(a.window(5 * MINUTE))} "
                f"(objective: {o.summary}). Calls are waiting for a concurrency slot.",
            )
        case ObjectiveKind.HEADROOM:
            util = mode_sel(n.windowed(n.UTILIZATION_AVG, "5m"))
            return _alert(
                spec,
                workload,
                n.HEADROOM_LOW,
                expr=f"{util} > {_num(t)}",
                hold=HEADROOM_HOLD,
                objective=o,
                summary=f"{workload.name}: capacity headroom below spec (utilization above {_pct(t)})",
                description=f"Utilization of the concurrency limit is {{{{ $value | humanizePercentage }}}} "
                f"(average over {format_duration(a.window(5 * MINUTE))}); the spec keeps it at "
                f"or below {_pct(t)} so that bursts do not queue.",
            )
        case ObjectiveKind.TOKENS_PER_SECOND:
            tps = mode_sel(n.windowed(n.TOKENS_GENERATED_RATE, "5m"))
            return _alert(
                spec,
                workload,
                n.TOKEN_THROUGHPUT_LOW,
                expr=f"{tps} < {_num(t)}\nand on ({q.WORKLOAD})\n{_busy(workload)}",
                hold=TOKEN_HOLD,
                objective=o,
                summary=f"{workload.name}: generated tokens/s below the {t:g} floor",
                description=f"The workload generates {{{{ $value | humanize }}}} tokens/s (output + "
                f"thoughts, over {format_duration(a.window(5 * MINUTE))}) while it is busy; "
                f"the floor is {t:g} tokens/s.",
            )
        case ObjectiveKind.COST_PER_MILLION_TOKENS:
            cost = mode_sel(n.windowed(n.COST_PER_MILLION_TOKENS, "1h"))
            return _alert(
                spec,
                workload,
                n.COST_HIGH,
                expr=f"{cost} > {_num(t)}",
                hold=COST_HOLD,
                objective=o,
                summary=f"{workload.name}: cost per 1M tokens above the {t:g} USD ceiling",
                description=f'The workload costs {{{{ $value | printf "%.3g" }}}} USD per 1M billable tokens '
                f"(over {format_duration(a.window(HOUR))}); the ceiling is {t:g} USD.",
            )
        case ObjectiveKind.UTILIZATION:
            util = mode_sel(n.windowed(n.UTILIZATION_AVG, "1h"))
            return _alert(
                spec,
                workload,
                n.UTILIZATION_LOW,
                expr=f"{util} < {_num(t)}\nand on ({q.WORKLOAD})\n{_busy(workload)}",
                hold=UTILIZATION_HOLD,
                objective=o,
                summary=f"{workload.name}: utilization below the {_pct(t)} floor (paid capacity idle)",
                description=f"Utilization of the concurrency limit is {{{{ $value | humanizePercentage }}}} "
                f"(average over {format_duration(a.window(HOUR))}) while the workload is busy; "
                f"the floor is {_pct(t)}.",
            )
        case ObjectiveKind.RATE_LIMITED_RATIO:
            sli = q.sel(n.windowed(n.SLI_ERROR, "5m"), _objective_matchers(workload, o))
            return _alert(
                spec,
                workload,
                n.RATE_LIMIT_STORM,
                expr=f"{sli} > {_num(t)}",
                hold=RATE_LIMIT_HOLD,
                objective=o,
                summary=f"{workload.name}: 429 storm (more than {_pct(t)} of calls rate limited)",
                description=f"{{{{ $value | humanizePercentage }}}} of calls were answered 429 "
                f"RESOURCE_EXHAUSTED over the last {format_duration(a.window(5 * MINUTE))}; "
                f"the ceiling is {_pct(t)}.",
            )
        case ObjectiveKind.STALL:
            # Both conditions over the same `after` window (calls in flight all along, no
            # token in it) and a short hold: a 5m token window plus a 5m hold would page only
            # after twice `after` without tokens. The offset term asks for calls in flight
            # `after` ago too, so a workload that just started is not judged on a shorter span.
            window = format_duration(a.window(t))
            recorded = q.sel(n.REQUESTS_IN_FLIGHT, where)
            in_flight = (
                f"min_over_time({recorded}[{window}]) > 0\n"
                f"and on ({q.WORKLOAD})\n{recorded} offset {window} > 0"
            )
            tokens = f"{q.tokens_per_second(where, window)} > 0"
            return _alert(
                spec,
                workload,
                n.STALLED,
                expr=f"{in_flight}\nunless on ({q.WORKLOAD})\n{tokens}",
                hold=min(t, MINUTE),
                objective=o,
                summary=f"{workload.name}: stalled, no tokens for {format_duration(a.hold(t))} with calls in flight",
                description=f"{{{{ $value }}}} calls are in flight and no output or thought token was "
                f"generated for {format_duration(a.hold(t))}.",
            )
        case _:
            return None


def alerting_group(spec: SloSpec, workload: Workload) -> Group:
    """All alerting rules of one workload."""
    rules: list[Rule] = []
    for o in workload.objectives:
        burn = BURN_ALERTS.get(o.kind)
        if burn is not None:
            rules += _burn_rules(spec, workload, o, burn)
        else:
            rule = _threshold_rule(spec, workload, o)
            if rule is not None:
                rules.append(rule)
    return {"name": f"gemini-slo-{workload.name}-alerts", "rules": rules}


def recording_rules(spec: SloSpec) -> dict[str, Any]:
    """The recording-rules file: one group per workload."""
    return {"groups": [recording_group(spec, w) for w in spec.workloads]}


def alerting_rules(spec: SloSpec) -> dict[str, Any]:
    """The alerting-rules file: one group per workload."""
    return {"groups": [alerting_group(spec, w) for w in spec.workloads]}


def alert_names(spec: SloSpec) -> tuple[str, ...]:
    """Every alert name the spec generates, in runbook order."""
    found = {r["alert"] for g in alerting_rules(spec)["groups"] for r in g["rules"]}
    return tuple(name for name in n.ALERT_NAMES if name in found)
