"""Sliding windows (1m, 5m) over what the agent has merged: percentiles, rates, ratios.

The store hands every *increment* it computes (the growth of a merged counter or
exponential histogram) to :class:`Windows`, aggregated per workload, mode and model. The
aggregates are cumulative since the agent started and never decrease, whatever happens to
the instances and series behind them (restarts, expiry). Every ``snapshot_interval``
seconds a snapshot is kept; a window's content is "now minus the latest snapshot at least
one window old". Unchanged aggregates are shared between snapshots, so memory is about
one histogram per group per *changed* interval.

How many aggregates are kept follows the store's cardinality limit: at most
``max_groups`` histogram groups and as many counter keys (the store sets it to its
``max_series_per_metric``: a group exists only for a series the store admitted), and the
workloads of the spec (``protected``) are always tracked, whatever floods the others. What
could not be tracked is counted in ``untracked`` (exposed as a self-metric).

Percentiles are computed from calls without ``error.type``: a timeout or a 503 ends a call
at an arbitrary point (the client's deadline, the server's first refusal) that says nothing
about the latency users get, and availability objectives count those calls already.
"""

from __future__ import annotations

import math
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from gemini_slo.agent.exponential import ExpHistogram
from gemini_slo.contract import agent_series, signals
from gemini_slo.contract.durations import parse_duration

#: Counters tracked per workload for /api/slo: OTel name -> the attribute kept as sub-key.
COUNTER_METRICS: dict[str, str | None] = {
    signals.CALLS.name: signals.ATTR_OUTCOME,
    signals.TOKENS.name: signals.ATTR_TOKEN_TYPE,
    signals.COST.name: None,
    signals.UNPRICED_CALLS.name: signals.ATTR_REQUEST_MODEL,  # by model: status names the model
}

#: (OTel metric name, workload, mode, request model)
GroupKey = tuple[str, str, str, str]
#: (OTel metric name, workload, mode, sub-key value: outcome, token type, model or "")
CounterKey = tuple[str, str, str, str]


def format_quantile(q: float) -> str:
    """``0.5`` -> ``"0.5"``, ``0.999`` -> ``"0.999"`` (the ``quantile`` label value)."""
    return repr(float(q))


@dataclass(frozen=True, slots=True)
class _Snapshot:
    at: float
    histograms: dict[GroupKey, ExpHistogram]  # never mutated once taken
    counters: dict[CounterKey, float]


class Windows:
    """Cumulative aggregates per group plus periodic snapshots (see the module docstring)."""

    def __init__(
        self,
        *,
        windows: tuple[str, ...] = agent_series.AGENT_WINDOWS,
        snapshot_interval: float = 5.0,
        max_groups: int = 2000,
        protected: frozenset[str] = frozenset(),
        max_buckets: int = signals.EXPONENTIAL_MAX_BUCKETS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.windows = windows
        self.longest = max(parse_duration(w) for w in windows)
        self.snapshot_interval = snapshot_interval
        self.max_groups = max_groups
        self.protected = protected  # workloads always tracked (the spec's)
        self.max_buckets = max_buckets
        self.clock = clock
        self.started = clock()
        self.histograms: dict[GroupKey, ExpHistogram] = {}
        self.counters: dict[CounterKey, float] = {}
        self.changed: dict[GroupKey | CounterKey, float] = {}  # key -> last change time
        #: Increments dropped because max_groups was reached, by kind (histogram, counter).
        self.untracked: Counter[str] = Counter()
        self._dirty: set[GroupKey] = set()
        self._snapshots: deque[_Snapshot] = deque([_Snapshot(self.started, {}, {})])

    # ---- ingest side ------------------------------------------------------------------

    def add_histogram(self, key: GroupKey, increment: ExpHistogram, now: float) -> None:
        """Add an exponential-histogram increment to ``key``'s cumulative aggregate."""
        current = self.histograms.get(key)
        if current is None:
            if len(self.histograms) >= self.max_groups and key[1] not in self.protected:
                self.untracked["histogram"] += 1
                return
            current = self.histograms[key] = ExpHistogram(increment.scale)
        elif key not in self._dirty:
            # The previous object may be referenced by a snapshot: copy on first write.
            current = self.histograms[key] = current.copy()
        self._dirty.add(key)
        current.merge(increment, self.max_buckets)
        self.changed[key] = now

    def add_counter(self, key: CounterKey, increment: float, now: float) -> None:
        """Add a counter increment to ``key``."""
        if (
            key not in self.counters
            and len(self.counters) >= self.max_groups
            and key[1] not in self.protected
        ):
            self.untracked["counter"] += 1
            return
        self.counters[key] = self.counters.get(key, 0.0) + increment
        self.changed[key] = now

    # ---- periodic ---------------------------------------------------------------------

    def tick(self, now: float | None = None) -> None:
        """Take a snapshot when one is due; drop those no window needs any more."""
        now = self.clock() if now is None else now
        if now - self._snapshots[-1].at < self.snapshot_interval:
            return
        self._snapshots.append(_Snapshot(now, dict(self.histograms), dict(self.counters)))
        self._dirty.clear()
        # Keep exactly one snapshot at least `longest` old: the base of the longest window.
        while len(self._snapshots) > 1 and self._snapshots[1].at <= now - self.longest:
            self._snapshots.popleft()

    def expire(self, now: float, idle: float) -> None:
        """Forget groups unchanged for ``idle`` seconds (past every window by then)."""
        idle = max(idle, self.longest + self.snapshot_interval)
        stale = [k for k, t in self.changed.items() if now - t > idle]
        for key in stale:
            del self.changed[key]
            self.histograms.pop(key, None)
            self.counters.pop(key, None)
        if stale:
            # The snapshots still hold the forgotten totals: were the key to come back, its
            # new aggregate (from zero) minus an old total would be a negative increase. It
            # did not change for longer than any window, so every window's base is zero.
            for snap in self._snapshots:
                for key in stale:
                    snap.histograms.pop(key, None)
                    snap.counters.pop(key, None)

    # ---- read side --------------------------------------------------------------------

    def _base(self, seconds: float, now: float) -> _Snapshot | None:
        """The latest snapshot at least ``seconds`` old; None when the agent is younger."""
        base = None
        for snap in self._snapshots:
            if snap.at <= now - seconds:
                base = snap
            else:
                break
        return base

    def histogram(self, key: GroupKey, window: str, now: float | None = None) -> ExpHistogram:
        """What ``key`` received during the window (empty when nothing)."""
        now = self.clock() if now is None else now
        current = self.histograms.get(key)
        if current is None:
            return ExpHistogram(0)
        result = current.copy()
        base = self._base(parse_duration(window), now)
        old = base.histograms.get(key) if base is not None else None
        if old is not None:
            result.merge(old, self.max_buckets, sign=-1)
        return result

    def lifetime_histogram(self, key: GroupKey) -> ExpHistogram:
        """Everything ``key`` received since the agent started."""
        current = self.histograms.get(key)
        return current.copy() if current is not None else ExpHistogram(0)

    def counter(self, key: CounterKey, window: str | None, now: float | None = None) -> float:
        """Increase of ``key`` during the window (``None``: since the agent started)."""
        now = self.clock() if now is None else now
        value = self.counters.get(key)
        if value is None:
            return 0.0  # never seen, or expired after a long silence: nothing in any window
        if window is None:
            return value
        base = self._base(parse_duration(window), now)
        return value - (base.counters.get(key, 0.0) if base is not None else 0.0)

    def elapsed(self, window: str | None, now: float | None = None) -> float:
        """Seconds the window actually covers (shorter while the agent is young)."""
        now = self.clock() if now is None else now
        if window is None:
            return now - self.started
        base = self._base(parse_duration(window), now)
        return now - (base.at if base is not None else self.started)

    def groups(self) -> Iterator[GroupKey]:
        """Percentile groups currently tracked."""
        return iter(list(self.histograms))

    def counter_keys(self) -> Iterator[CounterKey]:
        """Counter keys currently tracked."""
        return iter(list(self.counters))


def percentile_or_nan(histogram: ExpHistogram, q: float) -> float:
    """``histogram.quantile(q)``, NaN when it is empty; never infinite.

    A bucket at the top of the float range has ``2**1024`` (infinity) as its upper
    boundary; the estimate is held to the largest float, so that a percentile is a number
    a threshold can be compared with (``/api/slo`` says met false, value 1.8e308, not
    value null).
    """
    if histogram.count <= 0:
        return math.nan
    value = histogram.quantile(q)
    return max(-sys.float_info.max, min(value, sys.float_info.max))
