"""Worst-case detection times of the burn-rate rules, by arithmetic, for the docs' table.

A step of the bad-event ratio from 0 (a perfect history, the worst case) to ``r`` fires a
pair with threshold T and long window L after ``L x T / r`` (the long window's ratio rises
linearly; the short window, 12 times shorter, crossed earlier), if ``r`` is above T. The
first pair to fire gives the objective's detection time: of the pages for a total
regression (r = 1; the first alert when the objective only warns), of any alert for a 3x
burn. Production adds up to one scrape
and one evaluation (30 seconds at 15 s), and at low traffic the minimum evidence can come
later (docs/alerting.md). :func:`detection_table` renders the table of docs/slo-spec.md;
a test keeps the docs equal to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from gemini_slo.alerts import rules as r
from gemini_slo.contract import alert_names as n
from gemini_slo.contract.spec import Objective, SloSpec, Workload


@dataclass(frozen=True, slots=True)
class Detection:
    """The first rule of an objective to fire for a burn, and after how long."""

    seconds: float
    rule: r.BurnRule


def first_detection(
    spec: SloSpec, objective: Objective, burn_ratio: float, severity: n.Severity | None = None
) -> Detection | None:
    """The quickest rule (of ``severity``, or any) for a step from a perfect history to
    ``burn_ratio`` bad events."""
    found: list[Detection] = []
    for rule in r.burn_rules_of(spec, objective):
        if severity is not None and rule.severity is not severity:
            continue
        seconds = rule.condition.detection_seconds(burn_ratio)
        if seconds is not None:
            found.append(Detection(seconds, rule))
    return min(found, key=lambda d: d.seconds, default=None)


def _duration(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{secs}s" if secs or not text else "")


def _pct(ratio: float) -> str:
    return f"{ratio * 100:.4g}%"


def _when(spec: SloSpec, o: Objective, burn_ratio: float, page: bool = False) -> str:
    pages = any(x.severity is n.Severity.CRITICAL for x in r.burn_rules_of(spec, o))
    severity = n.Severity.CRITICAL if page and pages else None
    d = None if burn_ratio > 1 else first_detection(spec, o, burn_ratio, severity)
    if d is None:
        return "never"
    kind = "page" if d.rule.severity is n.Severity.CRITICAL else "ticket"
    return f"{_duration(d.seconds)} ({d.rule.condition.name} {kind})"


def _pairs(spec: SloSpec, o: Objective, severity: n.Severity) -> str:
    items = [
        f"{x.condition.name} {x.condition.burn_factor:.3g}x = {_pct(x.condition.threshold)}"
        for x in r.burn_rules_of(spec, o)
        if x.severity is severity
    ]
    return ", ".join(items) or "-"


def _evidence(spec: SloSpec, o: Objective) -> str:
    return ", ".join(str(x.condition.min_bad_events) for x in r.burn_rules_of(spec, o))


def detection_rows(spec: SloSpec, workload: Workload) -> list[list[str]]:
    """One row per budgeted objective with burn-rate rules, as the docs' table shows it."""
    rows = []
    for o in workload.objectives:
        if not r.burn_rules_of(spec, o) or o.budget is None:
            continue
        alert = r.BURN_ALERTS[o.kind].alert
        rows.append(
            [
                f"`{o.name}` ({o.summary})",
                f"`{alert}`",
                _pct(o.budget),
                _pairs(spec, o, n.Severity.CRITICAL),
                _pairs(spec, o, n.Severity.WARNING),
                _when(spec, o, 1.0, page=True),
                _when(spec, o, 3 * o.budget),
                _evidence(spec, o),
            ]
        )
    return rows


HEADER = (
    "objective",
    "alert",
    "budget",
    "pages (pair, factor = threshold)",
    "tickets",
    "total regression: first page",
    "3x burn: first alert",
    "min. bad events",
)


def detection_table(spec: SloSpec) -> str:
    """The markdown table of every workload's burn-rate objectives (docs/slo-spec.md)."""
    lines = [
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    for w in spec.workloads:
        for row in detection_rows(spec, w):
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"
