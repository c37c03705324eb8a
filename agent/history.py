"""The agent's recent past: a bounded ring of per-interval snapshots, for the SLO page.

The agent is not a time-series database, but a page that shows only "now" hides the
shape of an incident. Every ``interval`` seconds :meth:`History.sample` takes one
snapshot of every workload of the spec:

* what the page charts (:data:`CHART_COLUMNS`): duration p50/p95/p99 and TTFT p95, error,
  timeout and shed ratios, calls/s, generated tokens/s and cost per 1M tokens, all over
  the agent's shortest sliding window (:data:`CHART_WINDOW`, 1m); calls in flight and the
  concurrency limit as they are;
* per objective with an error budget, its bad and all events since the agent started
  (:meth:`SloStatus.events`), kept monotonic here (a counter that went down, e.g. after
  an idle group expired, counts as a reset). A burn rate over any window the ring covers
  is then a difference of two snapshots (``agent/burn_rates.py``).

**Bounded.** At most ``points`` snapshots (the oldest is dropped first), each one flat
array of 8-byte floats with one column per (workload, series): about
``points x 8 x columns`` bytes, e.g. 4,320 points x 20 columns = 690 KB per workload.
:func:`history_settings` picks ``interval`` and ``points`` from the spec so that the ring
covers the longest burn-rate window of the spec as the alert rules evaluate it (scaled by
``alerting.window_scale``), at most :data:`MAX_POINTS` points, at most :data:`MAX_SPAN`
(the page's charts show the last :data:`CHART_SPAN` of it), and one point at least every
:data:`MAX_INTERVAL` and at most every :data:`MIN_INTERVAL`. Unscaled (3-day windows)
that is one point a minute over 72 hours; the demo's ``window_scale: 60``, one a second
over 72 minutes.

Values that cannot be measured (no calls in the window) are NaN, never 0.
"""

from __future__ import annotations

import math
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from gemini_slo.agent.slo_status import SloStatus
from gemini_slo.contract import agent_series, signals
from gemini_slo.contract.burn_windows import BURN_WINDOWS
from gemini_slo.contract.signals import Outcome
from gemini_slo.contract.spec import Objective, SloSpec, Workload

#: The sliding window every charted rate, ratio and percentile is taken over.
CHART_WINDOW = agent_series.AGENT_WINDOWS[0]

MAX_POINTS = 4320
MIN_INTERVAL = 1.0
MAX_INTERVAL = 60.0
MAX_SPAN = 72 * 3600.0
#: How far back the page's charts reach (less while the agent is younger).
CHART_SPAN = 6 * 3600.0

#: The charted series, per workload: column name -> what it is.
CHART_COLUMNS: dict[str, str] = {
    "p50": "duration p50 (s)",
    "p95": "duration p95 (s)",
    "p99": "duration p99 (s)",
    "ttft_p95": "time to first chunk p95 (s)",
    "error_ratio": "share of calls failed",
    "timeout_ratio": "share of calls timed out",
    "shed_ratio": "share of calls shed",
    "calls_per_second": "calls finished per second",
    "tokens_per_second": "generated tokens per second",
    "cost_per_million": "USD per 1M billable tokens",
    "in_flight": "calls in flight",
    "concurrency_limit": "concurrency limit",
}


@dataclass(frozen=True, slots=True)
class HistorySettings:
    """How often the ring samples and how many points it keeps."""

    interval: float
    points: int

    @property
    def span(self) -> float:
        """Seconds the full ring covers."""
        return self.interval * self.points


def history_settings(spec: SloSpec | None) -> HistorySettings:
    """Interval and size covering the spec's longest scaled burn-rate window (see the module doc)."""
    if spec is None:
        span = CHART_SPAN
    else:
        span = min(max(spec.alerting.window(w.long) for w in BURN_WINDOWS), MAX_SPAN)
    interval = min(max(span / MAX_POINTS, MIN_INTERVAL), MAX_INTERVAL)
    # One more point than the span needs: the base of the longest window is one point old.
    points = min(MAX_POINTS, math.ceil(span / interval) + 1)
    return HistorySettings(interval=interval, points=points)


@dataclass(frozen=True, slots=True)
class Point:
    """One column's value at one time (NaN: not measurable then)."""

    at: float
    value: float


def _counts_column(objective: str, what: str) -> str:
    return f"{what}:{objective}"


class History:
    """The ring (see the module docstring). Not thread-safe: the agent's event loop owns it."""

    def __init__(
        self,
        status: SloStatus,
        settings: HistorySettings | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.status = status
        self.settings = settings or history_settings(status.spec)
        self.clock = clock
        self.columns: dict[tuple[str, str], int] = {}
        workloads = status.spec.workloads if status.spec is not None else ()
        for workload in workloads:
            for column in CHART_COLUMNS:
                self.columns[(workload.name, column)] = len(self.columns)
            for objective in _budgeted(workload):
                for what in ("bad", "all"):
                    key = (workload.name, _counts_column(objective.name, what))
                    self.columns[key] = len(self.columns)
        self._times: deque[float] = deque(maxlen=self.settings.points)
        self._rows: deque[array[float]] = deque(maxlen=self.settings.points)
        # Monotonic event counts: the last raw lifetime reading and the running total.
        self._raw: dict[tuple[str, str], tuple[float, float]] = {}
        self._total: dict[tuple[str, str], tuple[float, float]] = {}

    def __len__(self) -> int:
        return len(self._times)

    @property
    def started(self) -> float | None:
        """Time of the oldest snapshot kept (None before the first)."""
        return self._times[0] if self._times else None

    # ---- sampling ---------------------------------------------------------------------

    def _advance(self, key: tuple[str, str], raw: tuple[float, float]) -> tuple[float, float]:
        """The monotonic total after a raw lifetime reading (not committed)."""
        last_bad, last_all = self._raw.get(key, (0.0, 0.0))
        total_bad, total_all = self._total.get(key, (0.0, 0.0))
        bad, every = raw
        if every < last_all or bad < last_bad:
            # The agent forgot a group (idle expiry): count from zero again, like a counter
            # reset in Prometheus, rather than subtract.
            last_bad, last_all = 0.0, 0.0
        return total_bad + bad - last_bad, total_all + every - last_all

    def events(self, workload: Workload, objective: Objective) -> tuple[float, float]:
        """(bad, all) events of an objective since the ring started, as of now."""
        key = (workload.name, objective.name)
        raw = self.status.events(workload, objective) or (0.0, 0.0)
        return self._advance(key, raw)

    def _row(self) -> array[float]:
        row = array("d", [math.nan]) * len(self.columns)
        if self.status.spec is None:
            return row
        for workload in self.status.spec.workloads:
            for column, value in self._chart_values(workload).items():
                row[self.columns[(workload.name, column)]] = value
            for objective in _budgeted(workload):
                key = (workload.name, objective.name)
                raw = self.status.events(workload, objective) or (0.0, 0.0)
                bad, every = self._total[key] = self._advance(key, raw)
                self._raw[key] = raw
                row[self.columns[(workload.name, _counts_column(objective.name, "bad"))]] = bad
                row[self.columns[(workload.name, _counts_column(objective.name, "all"))]] = every
        return row

    def _chart_values(self, workload: Workload) -> dict[str, float]:
        s = self.status
        name = workload.name
        window = CHART_WINDOW
        p50, p95, p99 = s.percentiles(
            signals.OPERATION_DURATION_EXPONENTIAL.name, name, (0.5, 0.95, 0.99), window
        )
        (ttft,) = s.percentiles(signals.TIME_TO_FIRST_CHUNK_EXPONENTIAL.name, name, (0.95,), window)
        failed = [o.value for o in signals.FAILED_OUTCOMES]
        in_flight = s.store.gauge_total(signals.REQUESTS_IN_FLIGHT.name, name)
        limit = s.store.gauge_total(signals.CONCURRENCY_LIMIT.name, name)
        active = s.has_traffic(name, window)
        return {
            "p50": p50,
            "p95": p95,
            "p99": p99,
            "ttft_p95": ttft,
            "error_ratio": s.call_ratio(name, failed, window),
            "timeout_ratio": s.call_ratio(name, [Outcome.TIMEOUT.value], window),
            "shed_ratio": s.call_ratio(name, [Outcome.REJECTED.value], window),
            "calls_per_second": s.calls_per_second(name, window),
            "tokens_per_second": s.tokens_per_second(name, window) if active else math.nan,
            "cost_per_million": s.cost_per_million(name, window),
            "in_flight": math.nan if in_flight is None else in_flight,
            "concurrency_limit": limit or math.nan,
        }

    def sample(self, now: float | None = None) -> None:
        """Take one snapshot now (the agent calls this every ``settings.interval``)."""
        now = self.clock() if now is None else now
        row = self._row()
        self._times.append(now)
        self._rows.append(row)

    # ---- reading ----------------------------------------------------------------------

    def series(self, workload: str, column: str, since: float | None = None) -> list[Point]:
        """One column's points, oldest first, from ``since`` on (default: all kept)."""
        index = self.columns[(workload, column)]
        return [
            Point(t, row[index])
            for t, row in zip(self._times, self._rows, strict=True)
            if since is None or t >= since
        ]

    def counts_before(
        self, workload: str, objective: str, at: float
    ) -> tuple[float, float, float] | None:
        """(time, bad, all) of the latest snapshot at or before ``at``, else the oldest kept.

        None before the first snapshot. The caller compares the time with the window it
        wanted: a ring younger (or shorter) than the window covers less of it.
        """
        if not self._times:
            return None
        bad_index = self.columns[(workload, _counts_column(objective, "bad"))]
        all_index = self.columns[(workload, _counts_column(objective, "all"))]
        chosen = 0
        for i, t in enumerate(self._times):
            if t <= at:
                chosen = i
            else:
                break
        row = self._rows[chosen]
        return self._times[chosen], row[bad_index], row[all_index]

    def times(self) -> Iterator[float]:
        """Snapshot times, oldest first."""
        return iter(self._times)


def _budgeted(workload: Workload) -> tuple[Objective, ...]:
    return tuple(o for o in workload.objectives if o.has_budget)
