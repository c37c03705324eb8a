"""The rules of a throughput workload's Batch API objectives (its ``batch:`` block).

Recorded (labels workload, mode, ``objective``): the completion SLI over 1h, 1d and the
windows of its burn-rate pairs (objective ``batch_completion_p95``: the share of finished
jobs that took longer than the threshold) with its bad events, budget and target, the
failure SLI over every window
its burn-rate pairs need (objective ``batch_failure_ratio``) with its bad events, budget and
target, each objective's threshold, and the oldest pending job's age.

Alerts, all tickets (a batch job is throughput work: nobody is woken for it):

* ``GeminiSloBatchJobStuckInQueue``: a job has been pending longer than ``max_queue_time``;
  it reads the instrumentation's oldest-pending gauge, because a stuck job never reaches a
  histogram;
* ``GeminiSloBatchFailureBurnRate``: failed and expired jobs burn the failure budget, over
  the burn-rate pairs of :mod:`gemini_slo.contract.burn_windows` (every pair a warning);
* ``GeminiSloBatchCompletionBurnRate``: jobs ending later than the completion threshold
  burn the completion budget (1 - percentile), over the long ticket pairs of
  :data:`~gemini_slo.contract.burn_windows.BATCH_COMPLETION_WINDOWS` (1d/2h, 3d/6h).

Built on :mod:`gemini_slo.alerts.rules` (its alert and burn-rate builders, windows and naming), which
appends these to the workload's groups.
"""

from __future__ import annotations

from gemini_slo.alerts import rules as r
from gemini_slo.contract import agent_series
from gemini_slo.contract import alert_names as n
from gemini_slo.contract import batch_promql as b
from gemini_slo.contract import promql as q
from gemini_slo.contract.batch_spec import FAILURE_RATIO, QUEUE_TIME, BatchObjectives
from gemini_slo.contract.burn_windows import BATCH_COMPLETION_WINDOWS, BurnCondition
from gemini_slo.contract.burn_windows import conditions as burn_conditions
from gemini_slo.contract.spec import SloSpec, Workload, format_duration

HOUR = 3600.0
DAY = 86400.0
#: Nominal windows of the completion SLI: jobs take hours, so minutes say nothing.
COMPLETION_WINDOWS: tuple[float, ...] = (HOUR, DAY)
#: Nominal hold of the stuck-job ticket: the gauge is exact, the hold rides out one
#: missed export.
STUCK_HOLD = 5 * 60.0


def failure_conditions(spec: SloSpec, batch: BatchObjectives) -> tuple[BurnCondition, ...]:
    """The failure budget's burn-rate pairs, one per (long, short) window pair."""
    if batch.failure_ratio is None:
        return ()
    found: dict[tuple[float, float], BurnCondition] = {}
    for c in burn_conditions(batch.failure_ratio, spec.period, spec.alerting.min_bad_events):
        key = (c.long, c.short)
        if key not in found or c.threshold < found[key].threshold:
            found[key] = c  # every pair is a ticket: the lower threshold of a pair covers both
    return tuple(found.values())


def completion_conditions(spec: SloSpec, batch: BatchObjectives) -> tuple[BurnCondition, ...]:
    """The completion budget's burn-rate pairs (tickets over long windows), none without
    a completion objective."""
    if batch.completion_percentile is None or batch.completion_threshold is None:
        return ()
    budget = 1.0 - batch.completion_percentile
    if budget <= 0:
        return ()  # p100: no budget to burn, nothing to alert on by rate
    return burn_conditions(
        budget, spec.period, spec.alerting.min_bad_events, BATCH_COMPLETION_WINDOWS
    )


def _labels(workload: Workload, objective: str) -> dict[str, str]:
    return {q.MODE: workload.mode.value, agent_series.LABEL_OBJECTIVE: objective}


def batch_recording_rules(spec: SloSpec, workload: Workload) -> list[r.Rule]:
    """The recording rules of the workload's batch objectives (none without a block)."""
    batch = workload.batch
    if batch is None:
        return []
    a = spec.alerting
    where = r.workload_matcher(workload)

    def win(nominal: float) -> str:
        return format_duration(a.window(nominal))

    def static(objective: str, value: float) -> r.Rule:
        labels = {q.WORKLOAD: workload.name, **_labels(workload, objective)}
        return {"record": n.OBJECTIVE_THRESHOLD, "expr": f"vector({value:.6g})", "labels": labels}

    rules: list[r.Rule] = []
    if batch.completion_threshold is not None and batch.completion_percentile is not None:
        name = batch.completion_name
        threshold = batch.completion_threshold
        rules.append(static(name, threshold))
        pairs = completion_conditions(spec, batch)
        for w in sorted({*COMPLETION_WINDOWS, *(x for c in pairs for x in (c.long, c.short))}):
            rules.append(
                {
                    "record": n.windowed(n.SLI_ERROR, r.window_name(w)),
                    "expr": b.completion_error(where, threshold, win(w)),
                    "labels": _labels(workload, name),
                }
            )
        for w in sorted({c.long for c in pairs}):
            rules.append(
                {
                    "record": n.windowed(n.SLI_BAD_EVENTS, r.window_name(w)),
                    "expr": b.completion_bad_events(where, threshold, win(w)),
                    "labels": _labels(workload, name),
                }
            )
        if pairs:
            fixed = {q.WORKLOAD: workload.name, **_labels(workload, name)}
            budget = 1.0 - batch.completion_percentile
            rules.append(
                {"record": n.ERROR_BUDGET, "expr": f"vector({budget:.6g})", "labels": fixed}
            )
            rules.append(
                {
                    "record": n.OBJECTIVE_TARGET,
                    "expr": f"vector({batch.completion_percentile:.6g})",
                    "labels": fixed,
                }
            )
    if batch.failure_ratio is not None:
        budget = batch.failure_ratio
        rules.append(static(FAILURE_RATIO, budget))
        pairs = failure_conditions(spec, batch)
        windows = sorted({*r.DASHBOARD_WINDOWS, *(x for c in pairs for x in (c.long, c.short))})
        for w in windows:
            rules.append(
                {
                    "record": n.windowed(n.SLI_ERROR, r.window_name(w)),
                    "expr": b.failure_ratio(where, win(w)),
                    "labels": _labels(workload, FAILURE_RATIO),
                }
            )
        for w in sorted({c.long for c in pairs}):
            rules.append(
                {
                    "record": n.windowed(n.SLI_BAD_EVENTS, r.window_name(w)),
                    "expr": b.failure_bad_events(where, win(w)),
                    "labels": _labels(workload, FAILURE_RATIO),
                }
            )
        fixed = {q.WORKLOAD: workload.name, **_labels(workload, FAILURE_RATIO)}
        rules.append({"record": n.ERROR_BUDGET, "expr": f"vector({budget:.6g})", "labels": fixed})
        rules.append(
            {"record": n.OBJECTIVE_TARGET, "expr": f"vector({1 - budget:.6g})", "labels": fixed}
        )
    if batch.max_queue_time is not None:
        rules.append(static(QUEUE_TIME, batch.max_queue_time))
    rules.append(
        {
            "record": n.BATCH_OLDEST_PENDING,
            "expr": b.oldest_pending(where),
            "labels": {q.MODE: workload.mode.value},
        }
    )
    return rules


def _failure_burn(spec: SloSpec, workload: Workload, c: BurnCondition) -> r.Rule:
    a = spec.alerting
    factor = f"{c.burn_factor:.3g}x"
    return r.burn_alert(
        spec,
        workload,
        n.BATCH_FAILURE_BURN,
        objective=FAILURE_RATIO,
        condition=c,
        severity=n.Severity.WARNING,
        summary=f"{workload.name}: batch job failure budget burning over {factor} ({c.name})",
        description=(
            f"{{{{ $value | humanizePercentage }}}} of the batch jobs that ended over the last "
            f"{format_duration(a.window(c.long))} failed or expired, above {c.threshold * 100:.4g}% "
            f"over {format_duration(a.window(c.short))} too, with at least {c.min_bad_events} "
            f"failed jobs. Objective: at most {c.budget * 100:g}% of jobs fail or expire."
        ),
    )


def _completion_burn(
    spec: SloSpec, workload: Workload, batch: BatchObjectives, c: BurnCondition
) -> r.Rule:
    a = spec.alerting
    factor = f"{c.burn_factor:.3g}x"
    limit = format_duration(batch.completion_threshold or 0.0)
    return r.burn_alert(
        spec,
        workload,
        n.BATCH_COMPLETION_BURN,
        objective=batch.completion_name,
        condition=c,
        severity=n.Severity.WARNING,
        summary=f"{workload.name}: batch completion budget burning over {factor} ({c.name})",
        description=(
            f"{{{{ $value | humanizePercentage }}}} of the batch jobs that ended over the last "
            f"{format_duration(a.window(c.long))} took longer than {limit}, above "
            f"{c.threshold * 100:.4g}% over {format_duration(a.window(c.short))} too, with at "
            f"least {c.min_bad_events} late jobs. Objective: {batch.completion_summary}."
        ),
    )


def batch_alert_rules(spec: SloSpec, workload: Workload) -> list[r.Rule]:
    """The alerting rules of the workload's batch objectives (none without a block)."""
    batch = workload.batch
    if batch is None:
        return []
    rules: list[r.Rule] = []
    if batch.max_queue_time is not None:
        limit = batch.max_queue_time
        oldest = q.sel(n.BATCH_OLDEST_PENDING, r.workload_matcher(workload))
        rules.append(
            r._alert(
                spec,
                workload,
                n.BATCH_STUCK,
                expr=f"{oldest} > {limit:.6g}",
                hold=STUCK_HOLD,
                objective=None,
                summary=f"{workload.name}: a batch job has been pending for over {format_duration(limit)}",
                description=(
                    "The oldest batch job of the workload still pending was created more "
                    f"than {format_duration(limit)} ago, the most the spec allows in the queue."
                ),
                extra_labels={agent_series.LABEL_OBJECTIVE: QUEUE_TIME},
            )
        )
    rules += [_failure_burn(spec, workload, c) for c in failure_conditions(spec, batch)]
    rules += [
        _completion_burn(spec, workload, batch, c) for c in completion_conditions(spec, batch)
    ]
    return rules
