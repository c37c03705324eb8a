"""What the generated burn-rate rules compute from synthetic input series, in Python.

The scenario tests (:mod:`gemini_slo.alerts.scenarios`) need to know, for every burn-rate
rule and every check time, whether the rule fires and with which ``$value``: the expected
alerts of a promtool ``alert_rule_test`` list every firing alert of a name, and a
detection time is asserted as "absent one evaluation before, present at it". This module
evaluates the rules' SLI and evidence expressions (``contract/promql.py``) the way
Prometheus 2.x does: ``rate``/``increase`` over the samples in ``[t - window, t]`` with
counter-reset correction and extrapolation to the window's edges (promql/functions.go,
``extrapolatedRate``), summed by workload, filtered by ``> 0``. The promtool run then checks
that Prometheus agrees; the detection bound (:meth:`BurnCondition.detection_seconds`) is the
closed-form arithmetic the docs quote.

Prometheus 3 excludes the sample at ``t - window``; crossing times can move by one sample
and a rendered ``$value`` in its fourth digit. The suite targets the Prometheus 2 promtool
that Debian ships (``make tools``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from gemini_slo.alerts.traffic import Series
from gemini_slo.contract import promql as q
from gemini_slo.contract import signals as s
from gemini_slo.contract.burn_windows import BurnCondition
from gemini_slo.contract.spec import Alerting, Objective

#: A ratio this close to a threshold (or a count to the evidence) is too close to call.
TOLERANCE = 1e-9


class Samples:
    """One series sampled every ``step`` seconds from t=0, with O(1) range functions."""

    def __init__(self, values: Sequence[float], step: float) -> None:
        self.values = tuple(values)
        self.step_ms = round(step * 1000)
        resets = [0.0]
        for i in range(1, len(self.values)):
            drop = self.values[i] < self.values[i - 1]
            resets.append(resets[-1] + (self.values[i - 1] if drop else 0.0))
        self._resets = resets

    def extrapolated(self, t: float, window: float, *, rate: bool) -> float | None:
        """``rate(x[window])`` (``rate=True``) or ``increase(x[window])`` at time t, or None.

        None when fewer than two samples are in the window.
        """
        t_ms, w_ms = round(t * 1000), round(window * 1000)
        start_ms = t_ms - w_ms
        lo = max(0, -(-start_ms // self.step_ms))
        hi = min(len(self.values) - 1, t_ms // self.step_ms)
        if hi - lo < 1:
            return None
        first, last = self.values[lo], self.values[hi]
        result = last - first + (self._resets[hi] - self._resets[lo])
        to_start = (lo * self.step_ms - start_ms) / 1000
        to_end = (t_ms - hi * self.step_ms) / 1000
        sampled = (hi - lo) * self.step_ms / 1000
        average = sampled / (hi - lo)
        if result > 0 and first >= 0:
            to_zero = sampled * (first / result)
            to_start = min(to_start, to_zero)
        threshold = average * 1.1
        interval = sampled
        interval += to_start if to_start < threshold else average / 2
        interval += to_end if to_end < threshold else average / 2
        result *= interval / sampled
        return result / window if rate else result


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a rule fires at a time: ``fires`` (None: too close to call) and ``$value``."""

    fires: bool | None
    value: float | None


class Simulation:
    """The recorded SLIs and the burn-rate conditions of one workload's input series."""

    def __init__(self, alerting: Alerting, series: Sequence[Series], step: float) -> None:
        self.alerting = alerting
        self._series = [(x, Samples(x.values, step)) for x in series]
        self._selected: dict[tuple[str, str], tuple[list[Samples], list[Samples]]] = {}
        self._parts_memo: dict[
            tuple[str, float, float, bool], tuple[float | None, float | None]
        ] = {}

    def _find(self, metric: str, **labels: str) -> list[Samples]:
        return [
            samples
            for x, samples in self._series
            if x.metric == metric and all(x.label(k) == v for k, v in labels.items())
        ]

    def _select(self, o: Objective) -> tuple[list[Samples], list[Samples]]:
        """(bad or good, total) series of an objective, as its SLI expression selects them."""
        key = (o.name, o.kind.value)
        if key not in self._selected:
            if o.kind in q.HISTOGRAM_OF:
                hist = q.HISTOGRAM_OF[o.kind]
                picked = (
                    self._find(f"{hist}_bucket", le=s.format_le(o.threshold)),
                    self._find(f"{hist}_count"),
                )
            else:
                outcomes = {x.value for x in q.BAD_OUTCOMES[o.kind]}
                calls = [(x, samples) for x, samples in self._series if x.metric == q.CALLS]
                picked = (
                    [samples for x, samples in calls if x.label(s.LABEL_OUTCOME) in outcomes],
                    [samples for _, samples in calls],
                )
            self._selected[key] = picked
        return self._selected[key]

    def _sum(self, found: list[Samples], t: float, window: float, *, rate: bool) -> float | None:
        values = [v for v in (x.extrapolated(t, window, rate=rate) for x in found) if v is not None]
        return sum(values) if values else None

    def _parts(
        self, o: Objective, t: float, window: float, *, rate: bool
    ) -> tuple[float | None, float | None]:
        """(bad, total) of an objective over a window: rates or increases (memoized)."""
        key = (o.name, t, window, rate)
        if key not in self._parts_memo:
            first, every = self._select(o)
            total = self._sum(every, t, window, rate=rate)
            if o.kind in q.HISTOGRAM_OF:
                good = self._sum(first, t, window, rate=rate)
                parts = (None, total) if good is None or total is None else (total - good, total)
            elif total is None:
                parts = (None, None)
            else:
                bad = self._sum(first, t, window, rate=rate)
                parts = (0.0 if bad is None else bad, total)
            self._parts_memo[key] = parts
        return self._parts_memo[key]

    def ratio(self, o: Objective, nominal_window: float, t: float) -> float | None:
        """``gemini_slo:sli_error:ratio_rate<window>`` at t (None: no sample)."""
        bad, total = self._parts(o, t, self.alerting.window(nominal_window), rate=True)
        if bad is None or total is None or total <= 0:
            return None
        if o.kind in q.HISTOGRAM_OF:
            return 1 - (total - bad) / total  # as the rule writes it: 1 - good / total
        return bad / total

    def bad_events(self, o: Objective, nominal_window: float, t: float) -> float | None:
        """``gemini_slo:sli_bad_events:increase<window>`` at t (None: no sample)."""
        bad, total = self._parts(o, t, self.alerting.window(nominal_window), rate=False)
        return None if bad is None or total is None else bad

    def verdict(self, o: Objective, c: BurnCondition, t: float) -> Verdict:
        """Whether the rule of ``c`` fires at t, and the long window's ratio (its $value)."""
        long = self.ratio(o, c.long, t)
        short = self.ratio(o, c.short, t)
        bad = self.bad_events(o, c.long, t)
        if long is None or short is None or bad is None:
            return Verdict(False, long)
        close = False

        def over(ratio: float) -> bool:
            nonlocal close
            close = close or abs(ratio - c.threshold) <= TOLERANCE
            return ratio >= c.threshold if c.inclusive else ratio > c.threshold

        fires = over(long) and over(short)
        if fires:
            close = close or abs(bad - c.min_bad_events) <= 1e-6
            fires = bad >= c.min_bad_events
        return Verdict(None if close else fires, long)


def humanize_percentage(value: float) -> str:
    """Prometheus' ``humanizePercentage`` (``%.4g%%`` of value x 100)."""
    return f"{value * 100:.4g}%"


def stable_percentage(value: float) -> bool:
    """True when ``humanize_percentage`` does not depend on the last bits of ``value``."""
    if math.isnan(value):
        return False
    wiggle = max(abs(value) * 1e-9, 1e-15)
    return humanize_percentage(value - wiggle) == humanize_percentage(value + wiggle)
