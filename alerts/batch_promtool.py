"""``promtool test rules`` cases for the batch alerts: each fires on its condition, and a
healthy batch keeps both quiet.

* stuck: one job pending, its age growing one step per step from MARGIN_STEPS steps below
  ``max_queue_time``: quiet before it crosses the limit, firing once past it for the hold.
  (Starting near the limit, not at 0: a 6h limit at a 2s step would be 10,800 samples and
  as many rule evaluations, minutes of promtool for nothing.) The healthy case keeps the
  oldest age at one step;
* failure burn: every finished job failed (``$value`` 100%, every pair fires); healthy:
  every job succeeded;
* completion burn: every finished job ended later than the completion threshold (``$value``
  100%, both pairs fire); healthy: every job ended within it (in the bucket at the
  threshold).

Series are the instrumentation's batch signals with their contract labels; the alerts read
only their recorded series, so these cases test the recording rules too.
"""

from __future__ import annotations

import math
from typing import Any

from gemini_slo.alerts import batch_rules
from gemini_slo.alerts import rules as r
from gemini_slo.contract import alert_names as n
from gemini_slo.contract import signals as s
from gemini_slo.contract.durations import parse_duration
from gemini_slo.contract.spec import SloSpec, Workload, format_duration

#: Batch alerts have their cases here, not in promtool_tests' scenarios.
BATCH_ALERTS = frozenset({n.BATCH_STUCK, n.BATCH_FAILURE_BURN, n.BATCH_COMPLETION_BURN})
JOBS_PER_STEP = 60  # finished jobs per step (only their ratio matters; plenty of evidence)
MARGIN_STEPS = 5


def _labels(workload: Workload, **extra: str) -> str:
    model = workload.models[0] if workload.models else "gemini-2.5-flash"
    labels = {
        s.LABEL_WORKLOAD: workload.name,
        s.LABEL_MODE: workload.mode.value,
        s.LABEL_PROVIDER: s.PROVIDER_GEMINI,
        s.LABEL_MODEL: model,
        **extra,
    }
    return ",".join(f'{k}="{v}"' for k, v in labels.items())


def _durations(workload: Workload, steps: int, late: bool) -> list[dict[str, str]]:
    """The succeeded jobs' duration histogram at the completion threshold: within it, or
    every job late."""
    batch = workload.batch
    if batch is None or batch.completion_threshold is None:
        return []
    name = s.BATCH_JOB_DURATION.prometheus
    labels = _labels(workload, **{s.LABEL_BATCH_STATE: "succeeded"})
    within = 0 if late else JOBS_PER_STEP
    return [
        {
            "series": f'{name}_bucket{{{labels},le="{s.format_le(batch.completion_threshold)}"}}',
            "values": f"0+{within}x{steps}",
        },
        {"series": f'{name}_bucket{{{labels},le="+Inf"}}', "values": f"0+{JOBS_PER_STEP}x{steps}"},
        {"series": f"{name}_count{{{labels}}}", "values": f"0+{JOBS_PER_STEP}x{steps}"},
    ]


def _series(
    workload: Workload,
    step: float,
    steps: int,
    *,
    failing: bool,
    stuck: bool,
    late: bool = False,
    age_from: float = 0.0,
) -> list[dict[str, str]]:
    finished = s.BATCH_JOBS_FINISHED.prometheus
    state = s.LABEL_BATCH_STATE
    failed_per_step = JOBS_PER_STEP if failing else 0
    age = f"{age_from:g}+{step:g}x{steps}" if stuck else f"{step:g}x{steps}"
    return [
        *_durations(workload, steps, late),
        {
            "series": f"{finished}{{{_labels(workload, **{state: 'failed'})}}}",
            "values": f"0+{failed_per_step}x{steps}",
        },
        {
            "series": f"{finished}{{{_labels(workload, **{state: 'succeeded'})}}}",
            "values": f"0+{JOBS_PER_STEP - failed_per_step}x{steps}",
        },
        {"series": f"{s.BATCH_QUEUE_OLDEST.prometheus}{{{_labels(workload)}}}", "values": age},
    ]


def _expected(rules: list[r.Rule], value: float) -> list[dict[str, Any]]:
    from gemini_slo.alerts.promtool_tests import render  # the one template renderer

    return [
        {
            "exp_labels": dict(rule["labels"]),
            "exp_annotations": {k: render(v, value) for k, v in rule["annotations"].items()},
        }
        for rule in rules
    ]


def batch_tests(spec: SloSpec, workload: Workload, step: float) -> list[dict[str, Any]]:
    """The batch alerts' test groups of one workload (none without a ``batch:`` block)."""
    batch = workload.batch
    rules = batch_rules.batch_alert_rules(spec, workload)
    if batch is None or not rules:
        return []
    by_alert: dict[str, list[r.Rule]] = {}
    for rule in rules:
        by_alert.setdefault(rule["alert"], []).append(rule)
    tests: list[dict[str, Any]] = []
    latest = 0.0
    for alert, mine in by_alert.items():
        hold = max(parse_duration(x.get("for", "0s")) for x in mine)
        stuck = alert == n.BATCH_STUCK
        limit = batch.max_queue_time or 0.0
        # The stuck job's age crosses the limit after MARGIN_STEPS steps (see the docstring).
        age_from = max(limit - MARGIN_STEPS * step, 0.0) if stuck else 0.0
        crosses = limit - age_from if stuck else 0.0
        at = math.ceil((crosses + hold + MARGIN_STEPS * step) / step) * step
        latest = max(latest, at)
        steps = round(at / step) + 1
        quiet = (
            [{"eval_time": format_duration(crosses - step), "alertname": alert, "exp_alerts": []}]
            if stuck and crosses >= step
            else []
        )
        tests.append(
            {
                "name": f"{alert} fires for {workload.name}",
                "interval": format_duration(step),
                "input_series": _series(
                    workload,
                    step,
                    steps,
                    failing=alert == n.BATCH_FAILURE_BURN,
                    stuck=stuck,
                    late=alert == n.BATCH_COMPLETION_BURN,
                    age_from=age_from,
                ),
                "alert_rule_test": [
                    *quiet,
                    {
                        "eval_time": format_duration(at),
                        "alertname": alert,
                        "exp_alerts": _expected(mine, 1.0),
                    },
                ],
            }
        )
    steps = round(latest / step) + 1
    checks = [
        {"eval_time": format_duration(t), "alertname": alert, "exp_alerts": []}
        for t in sorted({math.ceil(latest / 2 / step) * step, latest})
        for alert in by_alert
    ]
    tests.append(
        {
            "name": f"{workload.name} batch jobs are healthy: no batch alert fires",
            "interval": format_duration(step),
            "input_series": _series(workload, step, steps, failing=False, stuck=False),
            "alert_rule_test": checks,
        }
    )
    return tests
