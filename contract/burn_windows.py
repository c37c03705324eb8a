"""Multi-window, multi-burn-rate alert windows, as data.

Source: Google, *The Site Reliability Workbook* (O'Reilly, 2018), chapter 5 "Alerting on
SLOs", section "6: Multiwindow, Multi-Burn-Rate Alerts" (sre.google/workbook/alerting-on-slos):
page when 2% of a 30-day budget burns in 1h (burn rate 14.4) or 5% in 6h (burn rate 6),
ticket when 10% burns in 3d (burn rate 1), each long window paired with a short window of
1/12 of it so that the alert resets soon after the burn stops. The 1d/2h ticket at burn rate
3 (10% of the budget in a day) completes the slow-burn side as Sloth's default 30-day
window catalog does.

The burn-rate factor is *computed*, not stored, so that any SLO period works:
``burn = budget_fraction x period_hours / long_window_hours`` (30d: 14.4, 6, 3, 1;
28d: 13.44, 5.6, 2.8, 0.93). An alert fires when the error ratio over both windows is above
``burn x error_budget``.

``hold`` is the ``for`` of the rule: the condition must hold that long before the alert
fires (against a single bad scrape). The workbook uses none; these are short next to the
long windows, and scale with ``alerting.window_scale`` like the windows do.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from gemini_slo.contract.spec import format_duration

HOUR = 3600.0


class Policy(enum.StrEnum):
    """Which window set an SLO uses: page (fast burns) or ticket (slow burns)."""

    PAGE = "page"
    TICKET = "ticket"


@dataclass(frozen=True, slots=True)
class BurnWindow:
    """One long/short window pair of the workbook's table, in nominal (unscaled) seconds."""

    policy: Policy
    long: float
    short: float
    budget_fraction: float  # share of the period's error budget spent at this burn
    hold: float

    def burn_rate(self, period_seconds: float) -> float:
        """The burn-rate factor for an SLO period: budget_fraction x period / long window."""
        return round(self.budget_fraction * period_seconds / self.long, 6)

    @property
    def name(self) -> str:
        """The nominal pair, e.g. '1h/5m' (the burn_window label)."""
        return f"{format_duration(self.long)}/{format_duration(self.short)}"


BURN_WINDOWS: tuple[BurnWindow, ...] = (
    BurnWindow(Policy.PAGE, long=1 * HOUR, short=5 * 60, budget_fraction=0.02, hold=2 * 60),
    BurnWindow(Policy.PAGE, long=6 * HOUR, short=30 * 60, budget_fraction=0.05, hold=15 * 60),
    BurnWindow(Policy.TICKET, long=24 * HOUR, short=2 * HOUR, budget_fraction=0.10, hold=HOUR),
    BurnWindow(Policy.TICKET, long=72 * HOUR, short=6 * HOUR, budget_fraction=0.10, hold=3 * HOUR),
)


def windows_for(policy: Policy) -> tuple[BurnWindow, ...]:
    """The window pairs of one policy, fastest first."""
    return tuple(w for w in BURN_WINDOWS if w.policy is policy)
