"""Prometheus recording and alerting rules from the spec: pure functions, data out.

One recording group and one alerting group per workload. Recording rules compute every
SLI per window (``gemini_slo:sli_error:ratio_rate5m`` ...), budgets and capacity series;
alerts read the recorded series, so an alert and the dashboard panel next to it always
show the same number.

Which objective gets which alert is decided here, per mode (docs/alerting.md has the why,
docs/slo-spec.md the table): every budgeted objective gets the burn-rate pairs of
:mod:`gemini_slo.contract.burn_windows`, page pairs with the alert's severity and ticket
pairs as warnings; latency mode pages on fast burns of latency, TTFT and availability,
throughput mode pages on a stall and a fast error-budget burn, and the rest are tickets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gemini_slo.contract import agent_series
from gemini_slo.contract import alert_names as n
from gemini_slo.contract import promql as q
from gemini_slo.contract.burn_windows import BurnCondition, Policy
from gemini_slo.contract.burn_windows import conditions as burn_conditions
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
    """A burn-rate alert for one objective kind: its name and wording."""

    alert: str
    bad_events: str  # completes "{value} of calls ..." in the description


#: Burn-rate alerts per objective kind. Every one gets every pair of BURN_WINDOWS: its page
#: pairs carry the alert's default severity (ALERT_SEVERITIES: timeouts and sheds warn,
#: they are symptoms that the availability burn already pages on), its ticket pairs warn.
BURN_ALERTS: dict[ObjectiveKind, BurnAlert] = {
    ObjectiveKind.LATENCY: BurnAlert(n.LATENCY_BURN, "of calls took longer than {threshold}"),
    ObjectiveKind.TTFT: BurnAlert(n.TTFT_BURN, "of streamed calls waited longer than {threshold} for the first chunk"),
    ObjectiveKind.AVAILABILITY: BurnAlert(n.AVAILABILITY_BURN, "of calls failed (error, timeout, shed or 429)"),
    ObjectiveKind.TIMEOUT_RATIO: BurnAlert(n.TIMEOUT_SPIKE, "of calls timed out"),
    ObjectiveKind.SHED_RATIO: BurnAlert(n.SHED_SPIKE, "of calls were shed by the admission queue"),
    ObjectiveKind.ERROR_RATIO: BurnAlert(n.ERROR_BUDGET_BURN, "of calls failed (error, timeout, shed or 429)"),
}  # fmt: skip

#: Nominal windows every event-ratio SLI is recorded over, for the dashboards.
DASHBOARD_WINDOWS: tuple[float, ...] = (5 * MINUTE, HOUR)
#: Nominal windows of the capacity and throughput series.
TOKEN_WINDOWS: tuple[float, ...] = (MINUTE, 5 * MINUTE, HOUR)
COST_WINDOWS: tuple[float, ...] = (5 * MINUTE, HOUR)
UTILIZATION_WINDOWS: tuple[float, ...] = (5 * MINUTE, HOUR)

# Nominal holds (`for:`) of the threshold alerts, scaled like the windows. They earn their
# delay: each compares one short average (5m, or 1h for cost and utilization) with a line,
# with no second window to confirm it, so a burst or a single slow scrape would fire and
# resolve it within minutes; the hold asks the condition to last. Burn-rate alerts have
# none (see _burn_rule).
QUEUE_HOLD = 10 * MINUTE
HEADROOM_HOLD = 15 * MINUTE
TOKEN_HOLD = 15 * MINUTE
COST_HOLD = 15 * MINUTE
UTILIZATION_HOLD = 30 * MINUTE
RATE_LIMIT_HOLD = 5 * MINUTE


def window_name(seconds: float) -> str:
    """The nominal window as used in rule names: 300 -> '5m'."""
    return format_duration(seconds)


@dataclass(frozen=True, slots=True)
class BurnRule:
    """One burn-rate rule of an objective: its resolved window pair and its severity."""

    condition: BurnCondition
    severity: n.Severity


def burn_rules_of(spec: SloSpec, objective: Objective) -> tuple[BurnRule, ...]:
    """The burn-rate rules of one objective, in BURN_WINDOWS order (none without one).

    Page pairs take the alert's severity (after ``severity_overrides``), ticket pairs are
    warnings. Two rules with the same windows and severity would carry the same labels;
    only the lower threshold is kept, since it fires whenever the other one does (a
    warning-only alert such as the timeout spike keeps the 6h/30m ticket, not the 6h/30m
    fast pair).
    """
    burn = BURN_ALERTS.get(objective.kind)
    if burn is None or objective.budget is None:
        return ()
    a = spec.alerting
    found: dict[tuple[float, float, n.Severity], BurnRule] = {}
    for c in burn_conditions(objective.budget, spec.period, a.min_bad_events):
        severity = (
            a.severity(burn.alert, n.ALERT_SEVERITIES[burn.alert])
            if c.policy is Policy.PAGE
            else n.Severity.WARNING
        )
        key = (c.long, c.short, severity)
        if key not in found or c.threshold < found[key].condition.threshold:
            found[key] = BurnRule(c, severity)
    return tuple(found.values())


def sli_windows(spec: SloSpec, objective: Objective) -> tuple[float, ...]:
    """Nominal windows an event-ratio objective's SLI is recorded over, sorted."""
    found: set[float] = set(DASHBOARD_WINDOWS)
    for rule in burn_rules_of(spec, objective):
        found.update((rule.condition.long, rule.condition.short))
    return tuple(sorted(found))


def evidence_windows(spec: SloSpec, objective: Objective) -> tuple[float, ...]:
    """Nominal windows an objective's bad events are counted over (its pairs' long ones)."""
    return tuple(sorted({rule.condition.long for rule in burn_rules_of(spec, objective)}))


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
        for w in sli_windows(spec, o):
            rules.append(
                {
                    "record": n.windowed(n.SLI_ERROR, window_name(w)),
                    "expr": q.sli_error(o, where, win(w)),
                    "labels": labels,
                }
            )
        for w in evidence_windows(spec, o):
            rules.append(
                {
                    "record": n.windowed(n.SLI_BAD_EVENTS, window_name(w)),
                    "expr": q.bad_events(o, where, win(w)),
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
        # The mean of the 5m ratio, sampled every 5m (a subquery): the same mean as over
        # every evaluation, 20 times fewer samples (8640 for 30d, under promtool's limit of
        # 10,000 per query, so that multi-day rule tests can run).
        rules.append(
            {
                "record": n.SLI_ERROR_PERIOD,
                "expr": f"avg_over_time({rate5m}[{period}:{win(5 * MINUTE)}])",
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
        rules.append(
            {
                "record": n.windowed(n.UNPRICED_SHARE, "1h"),
                "expr": q.unpriced_share(where, win(HOUR)),
                "labels": mode_label,
            }
        )
    if workload.batch is not None:
        from gemini_slo.alerts.batch_rules import batch_recording_rules  # built on this module

        rules += batch_recording_rules(spec, workload)
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
    severity: n.Severity | None = None,
    extra_labels: dict[str, str] | None = None,
) -> Rule:
    a = spec.alerting
    if severity is None:
        severity = a.severity(alert, n.ALERT_SEVERITIES[alert])
    labels: dict[str, str] = {
        n.LABEL_SEVERITY: severity.value,
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


def _pct4(ratio: float) -> str:
    return f"{ratio * 100:.4g}%"


def burn_alert(
    spec: SloSpec,
    workload: Workload,
    alert: str,
    *,
    objective: str,
    condition: BurnCondition,
    severity: n.Severity,
    summary: str,
    description: str,
) -> Rule:
    """A burn-rate alert over the recorded SLI and bad-event series of ``objective`` (its
    ``objective`` label): the long and the short window above the pair's threshold, and the
    minimum evidence in the long one. The one builder of every burn-rate alert."""
    c = condition
    matchers = f'{workload_matcher(workload)},{agent_series.LABEL_OBJECTIVE}="{objective}"'
    long_name, short_name = window_name(c.long), window_name(c.short)
    long_sel = q.sel(n.windowed(n.SLI_ERROR, long_name), matchers)
    short_sel = q.sel(n.windowed(n.SLI_ERROR, short_name), matchers)
    bad_sel = q.sel(n.windowed(n.SLI_BAD_EVENTS, long_name), matchers)
    # A threshold of 100% (a huge budget at its floor) fires when every event is bad.
    op = ">=" if c.inclusive else ">"
    t = _num(c.threshold)
    expr = f"{long_sel} {op} {t}\nand\n{short_sel} {op} {t}\nand\n{bad_sel} >= {c.min_bad_events}"
    return _alert(
        spec,
        workload,
        alert,
        expr=expr,
        # No `for:`: the short window already makes the alert wait for the burn to be
        # current and resets it soon after the burn stops (the Workbook uses none); a hold
        # would only add its length to every detection time.
        hold=0.0,
        objective=None,
        summary=summary,
        description=description,
        severity=severity,
        extra_labels={agent_series.LABEL_OBJECTIVE: objective, n.LABEL_BURN_WINDOW: c.name},
    )


def _burn_rule(
    spec: SloSpec, workload: Workload, o: Objective, burn: BurnAlert, rule: BurnRule
) -> Rule:
    a = spec.alerting
    c = rule.condition
    long_real = format_duration(a.window(c.long))
    short_real = format_duration(a.window(c.short))
    factor = f"{c.burn_factor:.3g}x"
    bad = burn.bad_events.format(threshold=format_duration(o.threshold))
    budget = o.budget or 0.0
    days = spec.period_days
    summary = (
        f"{workload.name}: {o.name} error budget burning over {factor} ({c.name} {c.policy.value})"
    )
    description = (
        f"{{{{ $value | humanizePercentage }}}} {bad} over the last {long_real}, above "
        f"{_pct4(c.threshold)} over {short_real} too, with at least {c.min_bad_events} bad "
        f"events. Objective: {o.summary}; at over {factor} its {_pct4(budget)} error budget, "
        f"the {days}d budget is gone within {days / c.burn_factor:.3g}d."
    )
    return burn_alert(
        spec,
        workload,
        burn.alert,
        objective=o.name,
        condition=c,
        severity=rule.severity,
        summary=summary,
        description=description,
    )


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
            # The last 5m must be low too: after an idle spell the 1h average stays low for
            # most of an hour while the workload already runs at full speed again.
            recent = mode_sel(n.windowed(n.UTILIZATION_AVG, "5m"))
            return _alert(
                spec,
                workload,
                n.UTILIZATION_LOW,
                expr=f"{util} < {_num(t)}\nand\n{recent} < {_num(t)}\n"
                f"and on ({q.WORKLOAD})\n{_busy(workload)}",
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


def _unpriced_rule(spec: SloSpec, workload: Workload, o: Objective) -> Rule:
    """A ticket when a share of the calls of a workload with a cost objective is unpriced:
    those calls cost $0 in the counter, so the objective would be met by calls nobody priced."""
    share = q.sel(n.windowed(n.UNPRICED_SHARE, "1h"), workload_matcher(workload))
    limit = n.UNPRICED_SHARE_MAX
    return _alert(
        spec,
        workload,
        n.UNPRICED_CALLS,
        expr=f"{share} > {_num(limit)}",
        hold=COST_HOLD,
        objective=o,
        summary=f"{workload.name}: calls the price table cannot price (cost objective not judged)",
        description=f"{{{{ $value | humanizePercentage }}}} of calls over the last "
        f"{format_duration(spec.alerting.window(HOUR))} went to a model (or service tier) the "
        f"price table does not know (more than {_pct(limit)}): they cost $0, so the cost per 1M "
        f"tokens ({o.summary}) is understated. `gemini-slo status` names the model.",
    )


def alerting_group(spec: SloSpec, workload: Workload) -> Group:
    """All alerting rules of one workload."""
    rules: list[Rule] = []
    for o in workload.objectives:
        burn = BURN_ALERTS.get(o.kind)
        if burn is not None:
            rules += [_burn_rule(spec, workload, o, burn, x) for x in burn_rules_of(spec, o)]
        else:
            rule = _threshold_rule(spec, workload, o)
            if rule is not None:
                rules.append(rule)
            if o.kind is ObjectiveKind.COST_PER_MILLION_TOKENS:
                rules.append(_unpriced_rule(spec, workload, o))
    if workload.batch is not None:
        from gemini_slo.alerts.batch_rules import batch_alert_rules  # built on this module

        rules += batch_alert_rules(spec, workload)
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
