"""Burn rates per alert window from the agent's history, and what the agent sees burning.

A burn rate is how fast an objective spends its error budget: the share of bad events over
a window divided by the budget (1 - target). 1 spends exactly the budget over the SLO
period; 14.4 spends 2% of a 30-day budget in an hour. For every objective with a budget
and every window pair of :data:`gemini_slo.contract.burn_windows.BURN_WINDOWS` (windows
scaled by ``alerting.window_scale``, as the generated rules evaluate them) the agent
computes the burn over the long and the short window from two snapshots of its history
(``agent/history.py``): now, and the latest snapshot at least one window old.

A pair is **burning** when both burns are above the pair's threshold, the condition of the
generated burn-rate alert without its ``for`` hold. This is the agent's own view, for the
page when there is no Prometheus to ask; with ``--prometheus`` the page shows Prometheus'
alerts instead. While the agent is younger than a window, the window covers what the agent
has seen (``covered`` says how much), as a ``rate()`` over a short history would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gemini_slo.agent.history import History
from gemini_slo.contract.burn_windows import BURN_WINDOWS, BurnWindow, Policy, resolve
from gemini_slo.contract.spec import Objective, SloSpec, Workload


@dataclass(frozen=True, slots=True)
class WindowBurn:
    """The burn over one window: seconds wanted, seconds covered, events, burn rate."""

    seconds: float
    covered: float
    bad: float
    events: float
    budget: float

    @property
    def ratio(self) -> float | None:
        """Bad events over all events; None without events."""
        return self.bad / self.events if self.events > 0 else None

    @property
    def burn(self) -> float | None:
        """The error ratio over the budget; None without events."""
        ratio = self.ratio
        return None if ratio is None else max(ratio, 0.0) / self.budget


@dataclass(frozen=True, slots=True)
class PairBurn:
    """One window pair for one objective."""

    window: BurnWindow
    threshold: float  # the burn rate the pair alerts above
    long: WindowBurn
    short: WindowBurn

    @property
    def name(self) -> str:
        """The nominal pair, '1h/5m' (the alerts' burn_window label)."""
        return self.window.name

    @property
    def policy(self) -> Policy:
        """Page or ticket."""
        return self.window.policy

    @property
    def burning(self) -> bool:
        """Both windows above the threshold (at 100% bad, reaching it is enough)."""
        return _above(self.long, self.threshold) and _above(self.short, self.threshold)


@dataclass(frozen=True, slots=True)
class ObjectiveBurn:
    """Every pair of one objective."""

    objective: Objective
    pairs: tuple[PairBurn, ...]

    @property
    def burning(self) -> tuple[PairBurn, ...]:
        """The pairs burning now."""
        return tuple(p for p in self.pairs if p.burning)


def pair_threshold(spec: SloSpec, window: BurnWindow, budget: float) -> float:
    """The burn rate above which ``window`` alerts for a budget: the generated rules' own.

    The contract resolves a pair for a budget once (reachability cap, floor, evidence:
    docs/alerting.md); the page shows the same factor the alert fires at.
    """
    return resolve(window, budget, spec.period, spec.alerting.min_bad_events).burn_factor


def _above(burn: WindowBurn, threshold: float) -> bool:
    value = burn.burn
    if value is None:
        return False
    capped = math.isclose(threshold * burn.budget, 1.0) or threshold * burn.budget > 1.0
    return value >= threshold if capped else value > threshold


def _window(
    history: History,
    key: tuple[Workload, Objective],
    seconds: float,
    now: float,
    current: tuple[float, float],
) -> WindowBurn:
    workload, objective = key
    budget = objective.budget or 1.0
    base = history.counts_before(workload.name, objective.name, now - seconds)
    if base is None:
        return WindowBurn(seconds, 0.0, 0.0, 0.0, budget)
    at, bad, events = base
    return WindowBurn(
        seconds=seconds,
        covered=max(now - at, 0.0),
        bad=max(current[0] - bad, 0.0),
        events=max(current[1] - events, 0.0),
        budget=budget,
    )


def objective_burns(
    spec: SloSpec, history: History, workload: Workload, now: float | None = None
) -> tuple[ObjectiveBurn, ...]:
    """Burn rates of every objective with a budget of ``workload``, per window pair."""
    now = history.clock() if now is None else now
    out = []
    for objective in workload.objectives:
        if objective.budget is None:
            continue
        key = (workload, objective)
        current = history.events(workload, objective)
        pairs = tuple(
            PairBurn(
                window=w,
                threshold=pair_threshold(spec, w, objective.budget),
                long=_window(history, key, spec.alerting.window(w.long), now, current),
                short=_window(history, key, spec.alerting.window(w.short), now, current),
            )
            for w in BURN_WINDOWS
        )
        out.append(ObjectiveBurn(objective, pairs))
    return tuple(out)
