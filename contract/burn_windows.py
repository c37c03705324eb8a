"""Multi-window, multi-burn-rate alert windows, as data, and the thresholds derived from them.

Source: Google, *The Site Reliability Workbook* (O'Reilly, 2018), chapter 5 "Alerting on
SLOs", section "6: Multiwindow, Multi-Burn-Rate Alerts" (sre.google/workbook/alerting-on-slos):
page when 2% of a 30-day budget burns in 1h (burn rate 14.4) or 5% in 6h (burn rate 6),
ticket when 10% burns in 1d (burn rate 3) or in 3d (burn rate 1), each long window paired
with a short window of 1/12 of it so that the alert resets soon after the burn stops.
:data:`WORKBOOK` keeps that table as it is.

The factor is *computed*, not stored, so that any SLO period works:
``burn = budget_fraction x period_hours / long_window_hours`` (30d: 14.4, 6, 3, 1; 28d:
13.44, 5.6, 2.8, 0.93).

The Workbook tunes its factors for 99.9% targets. Applied literally to a 5% budget (a p95
objective), a 14.4x burn means 72% of calls bad: a total regression fills the 1h window
only after 43 minutes. :data:`BURN_WINDOWS`, the pairs gemini-slo generates, therefore
derive their error-ratio threshold from the table with two bounds (docs/alerting.md has
the arithmetic):

* a **reachability cap** on the fast pairs: ``threshold <= detection_bound / long``. A
  total regression (every event bad) crosses a threshold T over a long window L after
  about ``T x L``, so the cap bounds the page's detection time for any target: 5 minutes
  for 1h/5m, 1 hour for 6h/30m. For 99.9% targets the cap does not bind (14.4 x 0.1% =
  1.44% < 1/12);
* a **floor**: ``threshold >= min_burn x budget``, so that no pair fires for a workload
  within its budget (page pairs at 1.5x, ticket pairs at 1x). When the floor is above the
  cap (budgets over 5.6%: p90, p50) the long window is shortened instead, to
  ``detection_bound / threshold``, so that the detection bound still holds;

and one pair of our own: **6h/30m at burn 1**, a ticket for a sustained breach that opens
within a few hours at 2x-4x the budget (the Workbook's 1d/2h at 3 is dropped: any day
above 3x contains six hours above 1x, so the 6h/30m ticket fires first).

:func:`min_bad_events` is the minimum-evidence rule: a pair also needs that many bad events
in its long window, so that a single bad call never pages and low traffic stays quiet.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from gemini_slo.contract.durations import format_duration

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0

#: Shortened long windows are whole minutes (the short one is 1/12 of it, whole seconds).
SHORTENED_LONG_STEP = MINUTE
#: Short window = long window / this, as in the Workbook.
SHORT_WINDOW_DIVISOR = 12


class Policy(enum.StrEnum):
    """What a window pair is for: page (fast burns) or ticket (slow, sustained burns)."""

    PAGE = "page"
    TICKET = "ticket"


@dataclass(frozen=True, slots=True)
class WorkbookRow:
    """One row of the Workbook's multiwindow, multi-burn-rate table (nominal seconds)."""

    policy: Policy
    long: float
    short: float
    budget_fraction: float  # share of the period's error budget spent at this burn

    def burn_rate(self, period_seconds: float) -> float:
        """The burn-rate factor for an SLO period: budget_fraction x period / long window."""
        return round(self.budget_fraction * period_seconds / self.long, 6)


#: The Workbook's table, unchanged (see the module docstring for the source).
WORKBOOK: tuple[WorkbookRow, ...] = (
    WorkbookRow(Policy.PAGE, long=1 * HOUR, short=5 * MINUTE, budget_fraction=0.02),
    WorkbookRow(Policy.PAGE, long=6 * HOUR, short=30 * MINUTE, budget_fraction=0.05),
    WorkbookRow(Policy.TICKET, long=1 * DAY, short=2 * HOUR, budget_fraction=0.10),
    WorkbookRow(Policy.TICKET, long=3 * DAY, short=6 * HOUR, budget_fraction=0.10),
)


@dataclass(frozen=True, slots=True)
class BurnWindow:
    """One window pair gemini-slo generates, before it meets an objective.

    The burn factor comes from a Workbook row (``row``) or is fixed (``burn``);
    ``detection_bound`` (seconds) caps the threshold at ``detection_bound / long``;
    ``min_burn`` floors it at ``min_burn x budget``.
    """

    policy: Policy
    long: float
    short: float
    row: WorkbookRow | None = None
    burn: float | None = None
    detection_bound: float | None = None
    min_burn: float = 1.0

    def burn_rate(self, period_seconds: float) -> float:
        """The nominal burn-rate factor (before the cap and the floor)."""
        if self.row is not None:
            return self.row.burn_rate(period_seconds)
        assert self.burn is not None, "a window pair needs a Workbook row or a fixed burn"
        return self.burn

    @property
    def cap(self) -> float | None:
        """The reachability cap on the error-ratio threshold, or None."""
        return None if self.detection_bound is None else self.detection_bound / self.long

    @property
    def name(self) -> str:
        """The nominal pair, e.g. '1h/5m'."""
        return pair_name(self.long, self.short)


def pair_name(long: float, short: float) -> str:
    """'1h/5m': the ``burn_window`` label of a pair (nominal, unscaled windows)."""
    return f"{format_duration(long)}/{format_duration(short)}"


def _row(long: float) -> WorkbookRow:
    return next(r for r in WORKBOOK if r.long == long)


#: The pairs every budgeted objective gets, fastest first within each policy.
BURN_WINDOWS: tuple[BurnWindow, ...] = (
    BurnWindow(Policy.PAGE, 1 * HOUR, 5 * MINUTE, row=_row(1 * HOUR), detection_bound=5 * MINUTE, min_burn=1.5),
    BurnWindow(Policy.PAGE, 6 * HOUR, 30 * MINUTE, row=_row(6 * HOUR), detection_bound=1 * HOUR, min_burn=1.5),
    BurnWindow(Policy.TICKET, 6 * HOUR, 30 * MINUTE, burn=1.0),
    BurnWindow(Policy.TICKET, 3 * DAY, 6 * HOUR, row=_row(3 * DAY), min_burn=1.0),
)  # fmt: skip


#: The pairs of a batch completion objective (a workload's ``batch.completion``). A job's
#: time to completion is hours, so a job counts only when it ends and few end per hour: the
#: page pairs (1h/5m, 6h/30m) would mostly hold no job at all. Tickets only, over the
#: Workbook's two ticket rows as they are (1d/2h at 3x, 3d/6h at 1x for 30 days), floored
#: at 1x the budget like every ticket.
BATCH_COMPLETION_WINDOWS: tuple[BurnWindow, ...] = (
    BurnWindow(Policy.TICKET, 1 * DAY, 2 * HOUR, row=_row(1 * DAY), min_burn=1.0),
    BurnWindow(Policy.TICKET, 3 * DAY, 6 * HOUR, row=_row(3 * DAY), min_burn=1.0),
)


def windows_for(policy: Policy) -> tuple[BurnWindow, ...]:
    """The window pairs of one policy, fastest first."""
    return tuple(w for w in BURN_WINDOWS if w.policy is policy)


# ======================================================================================
# A pair applied to one objective
# ======================================================================================


@dataclass(frozen=True, slots=True)
class BurnCondition:
    """A window pair resolved for one error budget: windows, threshold and evidence.

    The alert fires when the error ratio over ``long`` and over ``short`` is above
    ``threshold`` (``>=`` when it is 1: every event bad) and at least ``min_bad_events``
    bad events happened in ``long``. Windows are nominal seconds (before window_scale).
    """

    window: BurnWindow
    budget: float
    long: float
    short: float
    threshold: float
    min_bad_events: int

    @property
    def policy(self) -> Policy:
        """Page or ticket."""
        return self.window.policy

    @property
    def burn_factor(self) -> float:
        """The effective burn rate: threshold / budget."""
        return self.threshold / self.budget

    @property
    def inclusive(self) -> bool:
        """True when the threshold is 100% (then ``>=``: every event bad fires it)."""
        return self.threshold >= 1.0

    @property
    def name(self) -> str:
        """The ``burn_window`` label: the nominal pair, e.g. '1h/5m' (or '33m/165s' shortened)."""
        return pair_name(self.long, self.short)

    def detection_seconds(self, burn_ratio: float, history_ratio: float = 0.0) -> float | None:
        """Seconds from a step of the bad-event ratio to the alert, ignoring evidence and lag.

        Before the step the ratio was ``history_ratio`` for at least the long window;
        after it, ``burn_ratio``. The long window's ratio rises linearly and crosses the
        threshold after ``long x (T - h) / (r - h)`` (the short window, 12 times shorter,
        crossed before). None when the burn never reaches the threshold.
        """
        t, h, r = self.threshold, history_ratio, burn_ratio
        if r < t or (r == t and not self.inclusive) or r <= h:
            return None
        if h > t or (h == t and self.inclusive):
            return 0.0
        return self.long * (t - h) / (r - h)


def _threshold(window: BurnWindow, budget: float, period: float) -> tuple[float, float]:
    """(threshold, long window) of a pair for a budget: the cap, then the floor."""
    threshold = window.burn_rate(period) * budget
    long = window.long
    cap = window.cap
    if cap is not None:
        threshold = min(threshold, cap)
    floor = window.min_burn * budget
    if threshold < floor:
        threshold = floor
        if window.detection_bound is not None:
            # The cap cannot hold without firing within budget: keep the detection bound
            # by shortening the long window instead (whole minutes, never longer).
            fitted = window.detection_bound / threshold
            long = min(
                long, max(SHORTENED_LONG_STEP, fitted // SHORTENED_LONG_STEP * SHORTENED_LONG_STEP)
            )
    # Six significant digits: the number the rule's expression carries, exactly.
    return min(float(f"{threshold:.6g}"), 1.0), long


def resolve(
    window: BurnWindow, budget: float, period: float, min_bad_events: int | None = None
) -> BurnCondition:
    """The pair for an objective with ``budget`` (1 - target) over an SLO ``period``.

    ``min_bad_events`` overrides the evidence rule (``alerting.min_bad_events``).
    """
    threshold, long = _threshold(window, budget, period)
    short = window.short if long == window.long else float(round(long / SHORT_WINDOW_DIVISOR))
    evidence = (
        min_bad_events if min_bad_events is not None else default_min_bad_events(threshold / budget)
    )
    return BurnCondition(window, budget, long, short, threshold, evidence)


def conditions(
    budget: float,
    period: float,
    min_bad_events: int | None = None,
    windows: tuple[BurnWindow, ...] | None = None,
) -> tuple[BurnCondition, ...]:
    """Every pair of ``windows`` (default: the generated ones) resolved for one budget, in order."""
    # BURN_WINDOWS is read at call time, not bound as a default: what-if tools and tests
    # replace it (tests/test_alerts_scenarios.py runs the Workbook's uncapped pairs).
    pairs = BURN_WINDOWS if windows is None else windows
    return tuple(resolve(w, budget, period, min_bad_events) for w in pairs)


# ======================================================================================
# Minimum evidence
# ======================================================================================

#: The reference healthy workload of the evidence rule spends this share of its budget.
EVIDENCE_REFERENCE_BURN = 0.5
#: ... and may fire a pair by chance in at most this share of windows.
EVIDENCE_FALSE_ALARM = 0.01
#: Never fewer bad events than this: one bad call alone never pages or tickets.
MIN_EVIDENCE = 2


def poisson_tail(mean: float, k: int) -> float:
    """P(X >= k) for X ~ Poisson(mean)."""
    term = math.exp(-mean)
    below = 0.0
    for i in range(k):
        below += term
        term *= mean / (i + 1)
    return max(0.0, 1.0 - below)


def default_min_bad_events(burn_factor: float) -> int:
    """The evidence a pair with this effective burn factor needs (docs/alerting.md).

    A pair fires on ``ratio > T`` and ``bad >= N``. For a workload whose true bad ratio is
    half its budget b, the likeliest way to fire by chance is a window of exactly N / T
    events, where it expects ``N x (b / 2) / T = N / (2 x burn)`` bad ones. N is the
    smallest count (at least 2) that such a window reaches with probability at most 1%,
    whatever the traffic: 2 for 14.4x, 7 for 1.67x (p95's capped fast page), 16 for the
    1x tickets.
    """
    k = MIN_EVIDENCE
    while poisson_tail(k * EVIDENCE_REFERENCE_BURN / burn_factor, k) > EVIDENCE_FALSE_ALARM:
        k += 1
    return k
