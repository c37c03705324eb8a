"""``promtool test rules`` files generated from the spec: every alert fires on its scenario.

For each workload, one test file with:

* one test group per alert name: input series that create exactly the condition the alert
  exists for (all calls slow, all calls timing out, tokens at 1% of the floor, ...), and the
  expected firing alerts with their full labels and rendered annotations;
* one healthy group: series that meet every objective, and no alert of the workload may
  fire at any of several evaluation times.

Series use the contract's names and labels (plus ``job``/``instance``, as the OTLP
translation adds them) and are derived from the spec's thresholds, so the scenarios follow
the spec; scaled specs (``alerting.window_scale``) get scaled intervals and times too.
Values are chosen so that the expected ``$value`` renders exactly (100%, 80%, ...).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gemini_slo.alerts import rules as r
from gemini_slo.contract import alert_names as n
from gemini_slo.contract import promql as q
from gemini_slo.contract import signals as s
from gemini_slo.contract.signals import Mode, Outcome
from gemini_slo.contract.spec import Objective, ObjectiveKind, SloSpec, Workload, format_duration

MINUTE = 60.0
CALLS_PER_MINUTE = 60
LIMIT = 1000  # concurrency limit in the scenarios: fine resolution for utilization
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


@dataclass
class Traffic:
    """Per-minute increments and gauge levels of one workload's input series."""

    outcomes: dict[Outcome, float] = field(default_factory=lambda: {Outcome.OK: CALLS_PER_MINUTE})
    slow_latency: bool = False  # every call above every latency threshold
    slow_ttft: bool = False
    slow_queue: bool = False
    in_flight: float = 0.0
    output_tokens_per_s: float = 0.0
    input_tokens_per_s: float = 0.0
    cost_per_s: float = 0.0


def _labels(workload: Workload, **extra: str) -> dict[str, str]:
    model = workload.models[0] if workload.models else "gemini-2.5-flash"
    base = {
        s.LABEL_WORKLOAD: workload.name,
        s.LABEL_MODE: workload.mode.value,
        s.LABEL_OPERATION: s.OPERATION_GENERATE,
        s.LABEL_PROVIDER: s.PROVIDER_GEMINI,
        s.LABEL_MODEL: model,
        "job": "gemini-slo",
        "instance": "app-0",
    }
    return {**base, **extra}


def _series(metric: str, labels: dict[str, str]) -> str:
    inner = ", ".join(f'{k}="{v}"' for k, v in labels.items())
    return f"{metric}{{{inner}}}"


def _counter(per_step: float, steps: int) -> str:
    return f"0+{per_step:.10g}x{steps}"


def _gauge(level: float, steps: int) -> str:
    return f"{level:.10g}+0x{steps}"


def _histogram(
    metric: str,
    labels: dict[str, str],
    thresholds: tuple[float, ...],
    *,
    total: float,
    slow: bool,
    steps: int,
) -> list[dict[str, str]]:
    out = []
    for t in thresholds:
        good = 0.0 if slow else total
        out.append(
            {
                "series": _series(f"{metric}_bucket", {**labels, "le": s.format_le(t)}),
                "values": _counter(good, steps),
            }
        )
    out.append(
        {
            "series": _series(f"{metric}_bucket", {**labels, "le": "+Inf"}),
            "values": _counter(total, steps),
        }
    )
    out.append({"series": _series(f"{metric}_count", labels), "values": _counter(total, steps)})
    return out


def input_series(
    workload: Workload, traffic: Traffic, step: float, steps: int
) -> list[dict[str, str]]:
    """The input series of one workload under ``traffic``, one sample per ``step`` seconds."""
    # Calls count per step (only their ratios matter); tokens and cost are absolute rates
    # that the alerts compare with the spec's floors and ceilings, so they count per second.
    per_step_s = step
    total = sum(traffic.outcomes.values())
    out: list[dict[str, str]] = []
    for outcome, count in traffic.outcomes.items():
        out.append(
            {
                "series": _series(q.CALLS, _labels(workload, **{s.LABEL_OUTCOME: outcome.value})),
                "values": _counter(count, steps),
            }
        )
    out += _histogram(
        q.DURATION,
        _labels(workload),
        workload.latency_thresholds,
        total=total,
        slow=traffic.slow_latency,
        steps=steps,
    )
    if workload.mode is Mode.LATENCY:
        out += _histogram(
            q.TTFT,
            _labels(workload),
            workload.ttft_thresholds,
            total=total,
            slow=traffic.slow_ttft,
            steps=steps,
        )
        queue = {
            s.LABEL_WORKLOAD: workload.name,
            s.LABEL_MODE: workload.mode.value,
            s.LABEL_QUEUE: "default",
            "job": "gemini-slo",
            "instance": "app-0",
        }
        queue_thresholds = tuple(o.threshold for o in workload.of_kind(ObjectiveKind.QUEUE_WAIT))
        out += _histogram(
            q.QUEUE_WAIT, queue, queue_thresholds, total=total, slow=traffic.slow_queue, steps=steps
        )
    for token_type, rate in (
        (s.TokenType.OUTPUT, traffic.output_tokens_per_s),
        (s.TokenType.INPUT, traffic.input_tokens_per_s),
    ):
        out.append(
            {
                "series": _series(
                    q.TOKENS, _labels(workload, **{s.LABEL_TOKEN_TYPE: token_type.value})
                ),
                "values": _counter(rate * per_step_s, steps),
            }
        )
    out.append(
        {
            "series": _series(q.COST, _labels(workload)),
            "values": _counter(traffic.cost_per_s * per_step_s, steps),
        }
    )
    out.append(
        {
            "series": _series(q.IN_FLIGHT, _labels(workload)),
            "values": _gauge(traffic.in_flight, steps),
        }
    )
    limit_labels = {
        s.LABEL_WORKLOAD: workload.name,
        s.LABEL_MODE: workload.mode.value,
        "job": "gemini-slo",
        "instance": "app-0",
    }
    out.append(
        {"series": _series(q.CONCURRENCY_LIMIT, limit_labels), "values": _gauge(LIMIT, steps)}
    )
    return out


@dataclass(frozen=True)
class Scenario:
    """The traffic that makes one alert fire, the value it reports, and how long it needs."""

    traffic: Traffic
    value: float
    window: float = 0.0  # nominal range that must be full of data for ``value`` to be exact


def healthy_traffic(workload: Workload) -> Traffic:
    """Traffic that meets every objective of the workload."""
    if workload.mode is Mode.LATENCY:
        headroom = workload.first(ObjectiveKind.HEADROOM)
        ceiling = headroom.threshold if headroom else 0.6
        return Traffic(in_flight=math.floor(LIMIT * ceiling / 2))
    floor_o = workload.first(ObjectiveKind.UTILIZATION)
    floor = floor_o.threshold if floor_o else 0.8
    return Traffic(
        in_flight=math.ceil(LIMIT * (floor + 1) / 2),
        output_tokens_per_s=_base_tokens(workload),
        input_tokens_per_s=_base_tokens(workload),
        cost_per_s=_cost_rate(workload, 0.5),
    )


def _base_tokens(workload: Workload) -> float:
    tps = workload.first(ObjectiveKind.TOKENS_PER_SECOND)
    return 2 * tps.threshold if tps else 10_000.0


def _cost_rate(workload: Workload, factor: float) -> float:
    """USD/s that costs ``factor`` x the ceiling per 1M billable tokens of the base traffic."""
    ceiling = workload.first(ObjectiveKind.COST_PER_MILLION_TOKENS)
    per_million = factor * (ceiling.threshold if ceiling else 1.0)
    return per_million * 2 * _base_tokens(workload) / 1e6


def _scenario(workload: Workload, alert: str) -> Scenario:
    healthy = healthy_traffic(workload)

    def with_(**changes: Any) -> Traffic:
        values = {**healthy.__dict__, **changes}
        return Traffic(**values)

    def objective(kind: ObjectiveKind) -> Objective:
        found = workload.first(kind)
        assert found is not None, (alert, kind)
        return found

    all_bad: Callable[[Outcome], Traffic] = lambda o: with_(outcomes={o: CALLS_PER_MINUTE})  # noqa: E731
    match alert:
        case n.LATENCY_BURN:
            return Scenario(with_(slow_latency=True), 1.0)
        case n.TTFT_BURN:
            return Scenario(with_(slow_ttft=True), 1.0)
        case n.QUEUE_SATURATED:
            return Scenario(with_(slow_queue=True), 1.0)
        case n.AVAILABILITY_BURN | n.ERROR_BUDGET_BURN:
            return Scenario(all_bad(Outcome.ERROR), 1.0)
        case n.TIMEOUT_SPIKE:
            return Scenario(all_bad(Outcome.TIMEOUT), 1.0)
        case n.SHED_SPIKE:
            return Scenario(all_bad(Outcome.REJECTED), 1.0)
        case n.HEADROOM_LOW:
            level = round(LIMIT * (objective(ObjectiveKind.HEADROOM).threshold + 1) / 2)
            return Scenario(with_(in_flight=level), level / LIMIT)
        case n.UTILIZATION_LOW:
            level = math.floor(LIMIT * objective(ObjectiveKind.UTILIZATION).threshold / 2)
            return Scenario(with_(in_flight=level), level / LIMIT)
        case n.TOKEN_THROUGHPUT_LOW:
            low = objective(ObjectiveKind.TOKENS_PER_SECOND).threshold / 100
            return Scenario(with_(output_tokens_per_s=low), low, window=5 * MINUTE)
        case n.COST_HIGH:
            ceiling = objective(ObjectiveKind.COST_PER_MILLION_TOKENS).threshold
            return Scenario(with_(cost_per_s=_cost_rate(workload, 2.0)), 2 * ceiling)
        case n.RATE_LIMIT_STORM:
            half = CALLS_PER_MINUTE / 2
            return Scenario(with_(outcomes={Outcome.OK: half, Outcome.RATE_LIMITED: half}), 0.5)
        case n.STALLED:
            return Scenario(
                with_(output_tokens_per_s=0.0, input_tokens_per_s=0.0, cost_per_s=0.0),
                healthy.in_flight,
            )
        case _:
            raise ValueError(f"no scenario for {alert}")


def _hold_seconds(rule: dict[str, Any]) -> float:
    text = rule.get("for", "0s")
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    for unit in ("ms", "s", "m", "h", "d"):
        if text.endswith(unit) and text[: -len(unit)].isdigit():
            return int(text[: -len(unit)]) * units[unit]
    raise ValueError(text)


def workload_tests(spec: SloSpec, workload: Workload, rule_files: list[str]) -> dict[str, Any]:
    """The promtool test file of one workload."""
    a = spec.alerting
    step = a.hold(MINUTE) or 1.0  # one sample per nominal minute (scaled)
    rules = r.alerting_group(spec, workload)["rules"]
    by_alert: dict[str, list[dict[str, Any]]] = {}
    for rule in rules:
        by_alert.setdefault(rule["alert"], []).append(rule)

    tests: list[dict[str, Any]] = []
    latest = 0.0
    for alert, alert_rules in by_alert.items():
        scenario = _scenario(workload, alert)
        hold = max(_hold_seconds(x) for x in alert_rules)
        at = (a.window(scenario.window) if scenario.window else 0.0) + hold + MARGIN_STEPS * step
        at = math.ceil(at / step) * step
        latest = max(latest, at)
        steps = int(at / step) + 1
        expected = [
            {
                "exp_labels": dict(rule["labels"]),
                "exp_annotations": {
                    k: render(v, scenario.value) for k, v in rule["annotations"].items()
                },
            }
            for rule in alert_rules
        ]
        tests.append(
            {
                "name": f"{alert} fires for {workload.name}",
                "interval": format_duration(step),
                "input_series": input_series(workload, scenario.traffic, step, steps),
                "alert_rule_test": [
                    {"eval_time": format_duration(at), "alertname": alert, "exp_alerts": expected}
                ],
            }
        )
    if by_alert:
        steps = int(latest / step) + 1
        checks = [
            {"eval_time": format_duration(t), "alertname": alert, "exp_alerts": []}
            for t in sorted({math.ceil(latest / 2 / step) * step, latest})
            for alert in by_alert
        ]
        tests.append(
            {
                "name": f"{workload.name} is healthy: no alert fires",
                "interval": format_duration(step),
                "input_series": input_series(workload, healthy_traffic(workload), step, steps),
                "alert_rule_test": checks,
            }
        )
    return {
        "rule_files": rule_files,
        "evaluation_interval": format_duration(step),
        "tests": tests,
    }
