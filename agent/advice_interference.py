"""Interference: does a latency workload slow down when another one has calls in flight?

For two workloads seen over the same steps, fit the latency workload's p95 (and TTFT p95)
against the other's calls in flight, by least squares: ``p95 = intercept + slope * in_flight``,
with ``r2`` for how much of the p95's movement the other's load explains. The interference
is *detected* when the slope is positive, the fit explains a fair share (``MIN_R2``) and the
effect over the load observed is material (``MIN_EFFECT`` of the p95 at zero load).

The cap: the other workload's largest in-flight count at which the fitted p95 stays within
the latency objective (the spec's p95 threshold, or, without one, ``MARGIN`` over the p95
the fit gives when the other is idle). It is proposed only inside the load range the data
covers; outside it the data does not support one, and the answer says so.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from gemini_slo.agent.traffic import Traffic

MIN_POINTS = 6
MIN_R2 = 0.3
MIN_EFFECT = 0.2
MARGIN = 1.25


@dataclass(frozen=True, slots=True)
class Fit:
    """``y = intercept + slope * x`` over ``n`` points with x in ``[x_min, x_max]``."""

    slope: float
    intercept: float
    r2: float
    n: int
    x_min: float
    x_max: float

    def at(self, x: float) -> float:
        """The fitted value at ``x``."""
        return self.intercept + self.slope * x

    @property
    def material(self) -> bool:
        """A positive slope that explains enough and moves the value enough."""
        effect = self.slope * (self.x_max - self.x_min)
        return self.slope > 0 and self.r2 >= MIN_R2 and effect >= MIN_EFFECT * max(self.at(0), 1e-3)

    def to_json(self) -> dict[str, float | int]:
        """For ``/api/advice``."""
        return {
            "slope_s_per_call": self.slope,
            "intercept_s": self.intercept,
            "r2": self.r2,
            "points": self.n,
            "in_flight_min": self.x_min,
            "in_flight_max": self.x_max,
        }


def fit_line(points: Sequence[tuple[float, float]]) -> Fit | None:
    """Least squares over ``points``; None with too few points or no spread in x."""
    if len(points) < MIN_POINTS:
        return None
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    if max(xs) - min(xs) <= 0:
        return None
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in points)
    syy = sum((y - my) ** 2 for y in ys)
    slope = sxy / sxx
    r2 = (sxy * sxy) / (sxx * syy) if syy > 0 else 0.0
    return Fit(slope, my - slope * mx, r2, len(points), min(xs), max(xs))


@dataclass(frozen=True, slots=True)
class Interference:
    """What the other workload's load does to a latency workload."""

    latency: str
    other: str
    shares: str
    p95: Fit | None
    ttft: Fit | None
    detected: bool
    objective_s: float | None
    objective_from: str
    cap: int | None
    summary: str

    def to_json(self) -> dict[str, object]:
        """For ``/api/advice``."""
        return {
            "latency_workload": self.latency,
            "other_workload": self.other,
            "shares": self.shares,
            "p95_fit": self.p95.to_json() if self.p95 else None,
            "ttft_p95_fit": self.ttft.to_json() if self.ttft else None,
            "detected": self.detected,
            "objective_s": self.objective_s,
            "objective_from": self.objective_from,
            "cap_in_flight": self.cap,
            "summary": self.summary,
        }


def _points(latency: Traffic, other: Traffic, ttft: bool) -> list[tuple[float, float]]:
    # Steps are matched by their time: a workload that appeared later has fewer of them.
    theirs = {round(s.end, 3): s.in_flight for s in other.steps}
    out = []
    for mine in latency.steps:
        y = mine.ttft_p95_s if ttft else mine.p95_s
        x = theirs.get(round(mine.end, 3))
        if y is not None and x is not None and math.isfinite(y):
            out.append((x, y))
    return out


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def interference(
    latency: Traffic, other: Traffic, shares: str, objective_s: float | None = None
) -> Interference:
    """Fit ``latency``'s p95 and TTFT p95 on ``other``'s in-flight and propose a cap."""
    p95 = fit_line(_points(latency, other, ttft=False))
    ttft = fit_line(_points(latency, other, ttft=True))
    lead = p95 if p95 is not None and p95.material else ttft if ttft and ttft.material else None
    name, them = latency.name, other.name
    if p95 is None and ttft is None:
        summary = (
            f"the data does not support a fit: {them}'s calls in flight did not vary while "
            f"{name} had calls (or too few steps); run both with and without {them}"
        )
        return Interference(name, them, shares, None, None, False, None, "", None, summary)
    if lead is None:
        best = p95 or ttft
        assert best is not None
        summary = (
            f"no interference: {name}'s p95 does not follow {them}'s calls in flight "
            f"(slope {best.slope * 1000:+.1f} ms per call, r2 {best.r2:.2f}, "
            f"{best.n} steps, {best.x_min:.0f}-{best.x_max:.0f} in flight)"
        )
        return Interference(name, them, shares, p95, ttft, False, None, "", None, summary)
    what = "p95" if lead is p95 else "TTFT p95"
    if objective_s is None:
        objective_s = MARGIN * max(lead.at(0), 1e-3)
        source = f"{MARGIN:g} x the {what} when {them} is idle"
    else:
        source = "the spec's objective"
    found = (
        f"{name}'s {what} grows {lead.slope * 1000:.1f} ms per call of {them} in flight "
        f"(r2 {lead.r2:.2f}, {lead.n} steps, {_ms(lead.at(lead.x_min))} at "
        f"{lead.x_min:.0f} to {_ms(lead.at(lead.x_max))} at {lead.x_max:.0f})"
    )
    cap_value = (objective_s - lead.intercept) / lead.slope
    cap: int | None = None
    if cap_value < 1:
        advice = f"no cap keeps {what} under {_ms(objective_s)}: give {name} its own pool"
    elif cap_value >= lead.x_max:
        advice = (
            f"{what} stayed under {_ms(objective_s)} at every load seen (up to "
            f"{lead.x_max:.0f} in flight): the data does not support a cap beyond that"
        )
    else:
        cap = math.floor(cap_value)
        advice = (
            f"cap {them} at {cap} calls in flight (observe(concurrency_limit={cap})) to keep "
            f"{name}'s {what} under {_ms(objective_s)} ({source}), or split the pools"
        )
    return Interference(
        name, them, shares, p95, ttft, True, objective_s, source, cap, f"{found}; {advice}"
    )
