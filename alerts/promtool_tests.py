"""``promtool test rules`` files generated from the spec: every alert fires on its scenario.

For each workload, one test file with:

* one test group per alert name: input series that create exactly the condition the alert
  exists for (all calls slow, all calls timing out, tokens at 1% of the floor, ...), and the
  expected firing alerts with their full labels and rendered annotations;
* one healthy group: series that meet every objective, and no alert of the workload may
  fire at any of several evaluation times;
* the scenario suite (:mod:`gemini_slo.alerts.scenarios`, production windows only):
  detection times after a healthy history, days of healthy traffic with a restart and a
  traffic stop, sustained burns, very low traffic.

Series come from :mod:`gemini_slo.alerts.traffic` (the contract's names and labels) and
are derived from the spec's thresholds, so the tests follow the spec; scaled specs
(``alerting.window_scale``) get scaled intervals and times too. Values are chosen so that
the expected ``$value`` renders exactly (100%, 80%, ...). ``group_eval_order`` puts the
recording groups first, so that every evaluation's alerts read what it just recorded.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gemini_slo.alerts import batch_promtool, scenarios
from gemini_slo.alerts import rules as r
from gemini_slo.alerts import traffic as tr
from gemini_slo.alerts.traffic import LIMIT, MINUTE, Phase, Traffic
from gemini_slo.contract import alert_names as n
from gemini_slo.contract.durations import parse_duration
from gemini_slo.contract.signals import Outcome
from gemini_slo.contract.spec import Objective, ObjectiveKind, SloSpec, Workload, format_duration

CALLS_PER_MINUTE = 60  # calls per step of the per-alert cases (only their ratios matter)
MARGIN_STEPS = 5  # evaluation intervals after the alert's hold before the check


def go_humanize(value: float) -> str:
    """Prometheus' ``humanize`` template function (SI prefixes, 4 significant digits)."""
    if value == 0 or math.isnan(value) or math.isinf(value):
        return f"{value:.4g}"
    prefixes_up = ["", "k", "M", "G", "T", "P", "E", "Z", "Y"]
    prefixes_down = ["", "m", "u", "n", "p", "f", "a", "z", "y"]
    if abs(value) >= 1:
        i = 0
        while abs(value) >= 1000 and i < len(prefixes_up) - 1:
            value /= 1000
            i += 1
        return f"{value:.4g}{prefixes_up[i]}"
    i = 0
    while abs(value) < 1 and i < len(prefixes_down) - 1:
        value *= 1000
        i += 1
    return f"{value:.4g}{prefixes_down[i]}"


def render(template: str, value: float) -> str:
    """Expand the ``$value`` templates gemini-slo's annotations use."""
    return (
        template.replace("{{ $value | humanizePercentage }}", f"{value * 100:.4g}%")
        .replace("{{ $value | humanize }}", go_humanize(value))
        .replace('{{ $value | printf "%.3g" }}', f"{value:.3g}")
        .replace("{{ $value }}", f"{value:g}")
    )


@dataclass(frozen=True)
class Scenario:
    """The traffic that makes one alert fire, the value it reports, and how long it needs."""

    traffic: Traffic
    value: float
    window: float = 0.0  # nominal range that must be full of data for ``value`` to be exact


def healthy_traffic(workload: Workload, step: float = MINUTE) -> Traffic:
    """Traffic that meets every objective of the workload, CALLS_PER_MINUTE calls a step."""
    return tr.healthy(workload, calls_per_s=CALLS_PER_MINUTE / step)


def input_series(
    workload: Workload, traffic: Traffic, step: float, steps: int
) -> list[dict[str, str]]:
    """The ``input_series`` of one workload under steady ``traffic``: steps + 1 samples."""
    return [x.promtool() for x in tr.input_series(workload, [Phase(steps * step, traffic)], step)]


def _scenario(workload: Workload, alert: str, step: float) -> Scenario:
    healthy = healthy_traffic(workload, step)

    def objective(kind: ObjectiveKind) -> Objective:
        found = workload.first(kind)
        assert found is not None, (alert, kind)
        return found

    def all_slow(thresholds: tuple[float, ...]) -> dict[float, float]:
        return dict.fromkeys(thresholds, 1.0)

    all_bad: Callable[[Outcome], Traffic] = lambda o: healthy.but(failed={o: 1.0})  # noqa: E731
    queue = tuple(o.threshold for o in workload.of_kind(ObjectiveKind.QUEUE_WAIT))
    match alert:
        case n.LATENCY_BURN:
            return Scenario(healthy.but(slow=all_slow(workload.latency_thresholds)), 1.0)
        case n.TTFT_BURN:
            return Scenario(healthy.but(slow_ttft=all_slow(workload.ttft_thresholds)), 1.0)
        case n.QUEUE_SATURATED:
            return Scenario(healthy.but(slow_queue=all_slow(queue)), 1.0)
        case n.AVAILABILITY_BURN | n.ERROR_BUDGET_BURN:
            return Scenario(all_bad(Outcome.ERROR), 1.0)
        case n.TIMEOUT_SPIKE:
            return Scenario(all_bad(Outcome.TIMEOUT), 1.0)
        case n.SHED_SPIKE:
            return Scenario(all_bad(Outcome.REJECTED), 1.0)
        case n.HEADROOM_LOW:
            level = round(LIMIT * (objective(ObjectiveKind.HEADROOM).threshold + 1) / 2)
            return Scenario(healthy.but(in_flight=level), level / LIMIT)
        case n.UTILIZATION_LOW:
            level = math.floor(LIMIT * objective(ObjectiveKind.UTILIZATION).threshold / 2)
            return Scenario(healthy.but(in_flight=level), level / LIMIT)
        case n.TOKEN_THROUGHPUT_LOW:
            low = objective(ObjectiveKind.TOKENS_PER_SECOND).threshold / 100
            return Scenario(healthy.but(output_tokens_per_s=low), low, window=5 * MINUTE)
        case n.COST_HIGH:
            ceiling = objective(ObjectiveKind.COST_PER_MILLION_TOKENS).threshold
            cost = tr.cost_rate(workload, 2.0, healthy.output_tokens_per_s)
            return Scenario(healthy.but(cost_per_s=cost), 2 * ceiling)
        case n.UNPRICED_CALLS:
            # Unpriced calls are a share of the ok calls (a failed call has no usage to price).
            return Scenario(healthy.but(unpriced_share=0.25), 0.25 * healthy.ok_share)
        case n.RATE_LIMIT_STORM:
            return Scenario(healthy.but(failed={Outcome.RATE_LIMITED: 0.5}), 0.5)
        case n.STALLED:
            return Scenario(
                healthy.but(output_tokens_per_s=0.0, input_tokens_per_s=0.0, cost_per_s=0.0),
                healthy.in_flight,
            )
        case _:
            raise ValueError(f"no scenario for {alert}")


def group_eval_order(spec: SloSpec) -> list[str]:
    """Every rule group, recording groups first: an alert reads what was just recorded."""
    recording = [g["name"] for g in r.recording_rules(spec)["groups"]]
    alerting = [g["name"] for g in r.alerting_rules(spec)["groups"]]
    return recording + alerting


def workload_tests(spec: SloSpec, workload: Workload, rule_files: list[str]) -> dict[str, Any]:
    """The promtool test file of one workload: per-alert cases, healthy, then the scenarios."""
    a = spec.alerting
    step = scenarios.evaluation(spec)  # one sample and one evaluation per nominal minute
    rules = r.alerting_group(spec, workload)["rules"]
    by_alert: dict[str, list[dict[str, Any]]] = {}
    for rule in rules:
        if rule["alert"] not in batch_promtool.BATCH_ALERTS:  # their cases: batch_promtool
            by_alert.setdefault(rule["alert"], []).append(rule)

    tests: list[dict[str, Any]] = []
    latest = 0.0
    for alert, alert_rules in by_alert.items():
        scenario = _scenario(workload, alert, step)
        hold = max(parse_duration(x.get("for", "0s")) for x in alert_rules)
        at = (a.window(scenario.window) if scenario.window else 0.0) + hold + MARGIN_STEPS * step
        at = math.ceil(at / step) * step
        latest = max(latest, at)
        expected = [
            {
                "exp_labels": dict(rule["labels"]),
                "exp_annotations": {
                    k: render(v, scenario.value) for k, v in rule["annotations"].items()
                },
            }
            for rule in alert_rules
        ]
        series = tr.input_series(workload, [Phase(at + step, scenario.traffic)], step)
        tests.append(
            {
                "name": f"{alert} fires for {workload.name}",
                "interval": format_duration(step),
                "input_series": [x.promtool() for x in series],
                "alert_rule_test": [
                    {"eval_time": format_duration(at), "alertname": alert, "exp_alerts": expected}
                ],
            }
        )
    if by_alert:
        checks = [
            {"eval_time": format_duration(t), "alertname": alert, "exp_alerts": []}
            for t in sorted({math.ceil(latest / 2 / step) * step, latest})
            for alert in by_alert
        ]
        healthy = healthy_traffic(workload, step)
        series = tr.input_series(workload, [Phase(latest + step, healthy)], step)
        tests.append(
            {
                "name": f"{workload.name} is healthy: no alert fires",
                "interval": format_duration(step),
                "input_series": [x.promtool() for x in series],
                "alert_rule_test": checks,
            }
        )
    tests += batch_promtool.batch_tests(spec, workload, step)
    for case in scenarios.cases(spec, workload):
        tests.append(scenarios.case_tests(spec, case, step)[0])
    return {
        "rule_files": rule_files,
        "evaluation_interval": format_duration(step),
        "group_eval_order": group_eval_order(spec),
        "tests": tests,
    }
