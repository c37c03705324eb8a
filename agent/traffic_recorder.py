"""The agent's source for the advisor: periodic frames of what the store holds, bounded.

The store keeps totals (merged counters and histograms that never decrease) and the
windows keep 1m/5m percentiles; the advisor needs more: an hour of history, and how each
workload moved over it (calls, in flight, p95) to see bursts and interference. So the
agent's maintenance loop calls :meth:`TrafficRecorder.sample` every few seconds, off the
ingest path, which reads the store under its lock and keeps:

* a *frame* per sample and per workload: five numbers (calls so far, in flight, the
  concurrency limit, and the p95 duration and TTFT of the calls that finished since the
  previous frame, from the exponential histograms' increments, or the classic ones for
  other instrumentations);
* a *checkpoint* every ``checkpoint_interval`` (a minute): per shape (workload, mode, model,
  operation) the counters' totals, the in-flight gauge and the cumulative classic
  histograms (packed: one shared bounds tuple, an array of counts), per workload its
  limit, shed total, queue wait and exponential histograms.

A window's totals and histograms are the difference between now and the checkpoint at or
before its start (so a window is rounded up to the minute); its steps are the frames since.
Bounds: an hour of both (``history``), at most ``max_frames`` frames and ``max_shapes``
shapes (200; beyond, new shapes are not followed and the advice says so). Memory is about 100
bytes per workload per frame and 1-2 KB per shape per checkpoint: for 10 shapes, about
1 MB for the hour. :meth:`observe` answers a window with what it covers: less than asked
while the agent is younger than the window (``Observed.seconds`` says how much).
"""

from __future__ import annotations

import bisect
import math
from array import array
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from gemini_slo.agent.exponential import ExpHistogram
from gemini_slo.agent.store import Series, Store
from gemini_slo.agent.traffic import (
    MIN_STEP_CALLS,
    Extras,
    Hist,
    Observed,
    Quantiles,
    ShapeKey,
    Step,
    Tally,
    WorkloadInput,
    foreign_name,
)
from gemini_slo.contract import signals as S
from gemini_slo.contract.signals import Kind, Outcome, TokenType

_DURATION_EXP = S.OPERATION_DURATION_EXPONENTIAL.name
_TTFT_EXP = S.TIME_TO_FIRST_CHUNK_EXPONENTIAL.name
_WANTED = {
    s.name
    for s in (
        S.CALLS,
        S.TOKENS,
        S.COST,
        S.REQUESTS_IN_FLIGHT,
        S.CONCURRENCY_LIMIT,
        S.OPERATION_DURATION,
        S.TIME_TO_FIRST_CHUNK,
        S.TOKEN_USAGE,
        S.QUEUE_WAIT,
        S.QUEUE_SHED,
    )
}
_RESOURCE_SERVICE = S.RESOURCE_SERVICE_NAME


@dataclass(slots=True)
class _Shape:
    """Cumulative totals of one shape (mutable while a state is being read)."""

    calls: dict[str, float] = field(default_factory=dict)
    tokens: dict[str, float] = field(default_factory=dict)
    cost: float = 0.0
    in_flight: float = 0.0
    duration: dict[float, float] = field(default_factory=dict)
    duration_sum: float = 0.0
    ttft: dict[float, float] = field(default_factory=dict)
    ttft_sum: float = 0.0
    input_tokens: dict[float, float] = field(default_factory=dict)
    output_tokens: dict[float, float] = field(default_factory=dict)


@dataclass(slots=True)
class _Workload:
    """Cumulative per-workload state."""

    limit: float | None = None
    shed: float = 0.0
    queue: dict[float, float] = field(default_factory=dict)
    duration_exp: ExpHistogram | None = None
    ttft_exp: ExpHistogram | None = None


@dataclass(slots=True)
class _State:
    at: float
    shapes: dict[ShapeKey, _Shape]
    workloads: dict[str, _Workload]


@dataclass(frozen=True, slots=True)
class _Point:
    """One workload in one frame: a few numbers."""

    calls: float  # total so far
    in_flight: float | None
    limit: float | None
    p95_s: float | None  # of the calls finished since the previous frame
    ttft_p95_s: float | None


@dataclass(frozen=True, slots=True)
class _Frame:
    at: float
    workloads: dict[str, _Point]


def _compact(state: _State) -> _State:
    """A checkpoint's copy of a state: the histograms' counts as arrays, bounds shared."""
    shapes = {
        key: _Shape(
            dict(s.calls),
            dict(s.tokens),
            s.cost,
            s.in_flight,
            _Packed.of(s.duration),
            s.duration_sum,
            _Packed.of(s.ttft),
            s.ttft_sum,
            _Packed.of(s.input_tokens),
            _Packed.of(s.output_tokens),
        )
        for key, s in state.shapes.items()
    }
    workloads = {
        name: _Workload(w.limit, w.shed, _Packed.of(w.queue), w.duration_exp, w.ttft_exp)
        for name, w in state.workloads.items()
    }
    return _State(state.at, shapes, workloads)


_BOUNDS: dict[tuple[float, ...], tuple[float, ...]] = {}


class _Packed(dict[float, float]):
    """A bucket map stored as one shared bounds tuple and an array of counts.

    It reads like the dict it replaces (``get``, ``items``), so the arithmetic is shared.
    """

    __slots__ = ("_bounds", "_counts")

    def __init__(self, bounds: tuple[float, ...], counts: array[float]) -> None:
        super().__init__()
        self._bounds = bounds
        self._counts = counts

    @staticmethod
    def of(buckets: dict[float, float]) -> _Packed:
        bounds = tuple(sorted(buckets))
        shared = _BOUNDS.setdefault(bounds, bounds) if len(_BOUNDS) < 1000 else bounds
        return _Packed(shared, array("d", (buckets[b] for b in bounds)))

    def get(self, bound: float, default: float = 0.0) -> float:  # type: ignore[override]
        i = bisect.bisect_left(self._bounds, bound)
        if i < len(self._bounds) and self._bounds[i] == bound:
            return float(self._counts[i])
        return default

    def __bool__(self) -> bool:
        return bool(self._bounds)


def _add(into: dict[float, float], series: Series) -> None:
    if series.bounds is None:
        return
    for bound, c in zip((*series.bounds, math.inf), series.buckets, strict=True):
        if c:
            into[bound] = into.get(bound, 0.0) + c


def _minus(now: dict[float, float], then: dict[float, float] | None) -> dict[float, float]:
    if not then:
        return dict(now)
    return {b: max(0.0, c - then.get(b, 0.0)) for b, c in now.items()}


def _hist(
    now: dict[float, float], then: dict[float, float] | None, total: float = 0.0
) -> Hist | None:
    counts = _minus(now, then)
    return Hist(counts, max(total, 0.0)) if any(counts.values()) else None


def _exp_minus(now: ExpHistogram | None, then: ExpHistogram | None) -> ExpHistogram | None:
    if now is None:
        return None
    out = now.copy()
    if then is not None and then.count:
        out.merge(then, S.EXPONENTIAL_MAX_BUCKETS, sign=-1)
    return out if out.count > 0 else None


def _exp_quantiles(hist: ExpHistogram | None) -> Quantiles | None:
    if hist is None or hist.count <= 0:
        return None
    return Quantiles(
        hist.quantile(0.5), hist.quantile(0.95), hist.quantile(0.99), hist.sum / hist.count,
        float(hist.count),
    )  # fmt: skip


def _service(series: Series) -> str:
    """The service.name of the series' instances, when their resource says it."""
    names: set[str] = set()
    for key in series.instances:
        resource = key[0] if key else None
        if isinstance(resource, tuple) and resource and resource[0] == "attrs":
            names.update(v for k, v in resource[1] if k == _RESOURCE_SERVICE)
    return "+".join(sorted(names))


_RATE_LIMITED_TYPES = {"429", "ResourceExhausted"}


class TrafficRecorder:
    """Frames and checkpoints of the store (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        *,
        history: float = 3600.0,
        max_frames: int = 1440,
        max_shapes: int = 200,
        checkpoint_interval: float = 60.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.store = store
        self.history = history
        self.max_frames = max_frames
        self.max_shapes = max_shapes
        self.checkpoint_interval = checkpoint_interval
        self.clock = clock or store.clock
        start = self._read(self.clock())
        self._frames: deque[_Frame] = deque([self._frame(start, start)])
        self._checkpoints: deque[_State] = deque([_compact(start)])
        self._last = start

    # ---- reading the store -------------------------------------------------------------

    def _read(self, now: float) -> _State:
        shapes: dict[ShapeKey, _Shape] = {}
        workloads: dict[str, _Workload] = {}
        store = self.store
        with store.lock:
            for family in store.families.values():
                if family.otel_name in _WANTED:
                    for labels, series in family.series.items():
                        self._read_series(family.otel_name, family.kind, dict(labels), series,
                                          shapes=shapes, workloads=workloads,
                                          max_shapes=self.max_shapes)  # fmt: skip
            windows = store.windows
            for key, hist in windows.histograms.items():
                metric, workload = key[0], key[1]
                if metric not in (_DURATION_EXP, _TTFT_EXP) or not workload:
                    continue
                state = workloads.setdefault(workload, _Workload())
                attr = "duration_exp" if metric == _DURATION_EXP else "ttft_exp"
                merged = getattr(state, attr)
                if merged is None:
                    setattr(state, attr, hist.copy())
                else:
                    merged.merge(hist, windows.max_buckets)
        return _State(now, shapes, workloads)

    @staticmethod
    def _read_series(
        name: str,
        kind: Kind,
        labels: dict[str, str],
        series: Series,
        *,
        shapes: dict[ShapeKey, _Shape],
        workloads: dict[str, _Workload],
        max_shapes: int,
    ) -> None:
        workload = labels.get(S.LABEL_WORKLOAD, "")
        if name in (S.CONCURRENCY_LIMIT.name, S.QUEUE_WAIT.name, S.QUEUE_SHED.name):
            if not workload:
                return
            state = workloads.setdefault(workload, _Workload())
            if name == S.CONCURRENCY_LIMIT.name:
                state.limit = (state.limit or 0.0) + series.gauge_value()
            elif name == S.QUEUE_SHED.name:
                state.shed += series.value
            elif kind is Kind.HISTOGRAM:
                _add(state.queue, series)
            return
        model = labels.get(S.LABEL_MODEL, "")
        if not workload and not model:
            return  # neither ours nor a GenAI call series
        key = ShapeKey(
            workload,
            labels.get(S.LABEL_MODE, ""),
            model,
            labels.get(S.LABEL_OPERATION, ""),
            "" if workload else _service(series),
        )
        shape = shapes.get(key)
        if shape is None:
            if len(shapes) >= max_shapes:
                return  # a memory bound: Observed.untracked says how many were left out
            shape = shapes[key] = _Shape()
        if name == S.CALLS.name:
            outcome = labels.get(S.LABEL_OUTCOME, Outcome.OK.value)
            shape.calls[outcome] = shape.calls.get(outcome, 0.0) + series.value
        elif name == S.TOKENS.name:
            token_type = labels.get(S.LABEL_TOKEN_TYPE, "")
            shape.tokens[token_type] = shape.tokens.get(token_type, 0.0) + series.value
        elif name == S.COST.name:
            shape.cost += series.value
        elif name == S.REQUESTS_IN_FLIGHT.name:
            shape.in_flight += series.gauge_value()
        elif kind is not Kind.HISTOGRAM:
            return
        elif name == S.OPERATION_DURATION.name:
            error = labels.get(S.LABEL_ERROR_TYPE)
            if error is None:
                _add(shape.duration, series)
                shape.duration_sum += series.sum
            if not workload:  # no calls counter from other instrumentations: count these
                outcome = (
                    Outcome.OK.value
                    if error is None
                    else Outcome.RATE_LIMITED.value
                    if error in _RATE_LIMITED_TYPES
                    else Outcome.ERROR.value
                )
                shape.calls[outcome] = shape.calls.get(outcome, 0.0) + series.count
        elif name == S.TIME_TO_FIRST_CHUNK.name:
            _add(shape.ttft, series)
            shape.ttft_sum += series.sum
        elif name == S.TOKEN_USAGE.name:
            token_type = labels.get(S.LABEL_TOKEN_TYPE, "")
            if token_type == TokenType.INPUT.value:
                _add(shape.input_tokens, series)
            elif token_type == TokenType.OUTPUT.value:
                _add(shape.output_tokens, series)
            if not workload:
                total = shape.tokens.get(token_type, 0.0) + series.sum
                shape.tokens[token_type] = total

    # ---- frames --------------------------------------------------------------------------

    @staticmethod
    def _name(key: ShapeKey) -> str:
        return key.workload or foreign_name(key.service, key.model)

    def _frame(self, state: _State, previous: _State) -> _Frame:
        calls: dict[str, float] = {}
        flights: dict[str, float] = {}
        durations: dict[str, dict[float, float]] = {}
        ttfts: dict[str, dict[float, float]] = {}
        for key, shape in state.shapes.items():
            then = previous.shapes.get(key)
            name = self._name(key)
            calls[name] = calls.get(name, 0.0) + sum(shape.calls.values())
            flights[name] = flights.get(name, 0.0) + shape.in_flight
            for into, now_b, then_b in (
                (durations, shape.duration, then.duration if then else None),
                (ttfts, shape.ttft, then.ttft if then else None),
            ):
                merged = into.setdefault(name, {})
                for b, c in _minus(now_b, then_b).items():
                    merged[b] = merged.get(b, 0.0) + c
        points: dict[str, _Point] = {}
        for name, timed in durations.items():
            wl = state.workloads.get(name)
            before = previous.workloads.get(name)
            p95 = ttft_p95 = None
            exp = (
                _exp_minus(wl.duration_exp, before.duration_exp if before else None) if wl else None
            )
            if exp is not None and exp.count >= MIN_STEP_CALLS:
                p95 = exp.quantile(0.95)
            elif exp is None and sum(timed.values()) >= MIN_STEP_CALLS:
                p95 = Hist(timed).quantile(0.95)
            exp = _exp_minus(wl.ttft_exp, before.ttft_exp if before else None) if wl else None
            if exp is not None and exp.count >= MIN_STEP_CALLS:
                ttft_p95 = exp.quantile(0.95)
            elif exp is None and sum(ttfts[name].values()) >= MIN_STEP_CALLS:
                ttft_p95 = Hist(ttfts[name]).quantile(0.95)
            points[name] = _Point(
                calls[name], flights[name], wl.limit if wl else None, p95, ttft_p95
            )
        return _Frame(state.at, points)

    def sample(self, now: float | None = None) -> None:
        """Take a frame (and a checkpoint when one is due); drop what is past the history."""
        now = self.clock() if now is None else now
        state = self._read(now)
        self._frames.append(self._frame(state, self._last))
        self._last = state
        if now - self._checkpoints[-1].at >= self.checkpoint_interval:
            self._checkpoints.append(_compact(state))
        horizon = now - self.history
        # Keep one frame (and one checkpoint) at or before the horizon: a window's base.
        while len(self._frames) > 2 and (
            self._frames[1].at <= horizon or len(self._frames) > self.max_frames
        ):
            self._frames.popleft()
        while len(self._checkpoints) > 2 and self._checkpoints[1].at <= horizon:
            self._checkpoints.popleft()

    @property
    def frames(self) -> int:
        """Frames held (for tests and self-metrics)."""
        return len(self._frames)

    @property
    def last_frame_at(self) -> float:
        """When the latest frame was taken."""
        return self._frames[-1].at

    # ---- a window ------------------------------------------------------------------------

    def observe(self, seconds: float, now: float | None = None) -> Observed:
        """What the store saw over the last ``seconds`` (up to the history kept).

        Totals and histograms are differences from the checkpoint at or before the window's
        start (a minute's granularity); steps are the frames since that checkpoint.
        """
        now = self.clock() if now is None else now
        base = self._checkpoints[0]
        for ckpt in self._checkpoints:
            if ckpt.at <= now - seconds:
                base = ckpt
        inside = [f for f in self._frames if f.at > base.at]
        samples = [c for c in self._checkpoints if c.at > base.at]
        current = self._read(now)
        covered = max(now - base.at, 1e-9)
        groups: dict[str, list[ShapeKey]] = {}
        for key in current.shapes:
            groups.setdefault(self._name(key), []).append(key)
        workloads: list[WorkloadInput] = []
        for name, keys in sorted(groups.items()):
            tallies = tuple(
                self._tally(key, current, base, [*samples, current]) for key in sorted(keys)
            )
            if not any(sum(t.calls.values()) for t in tallies):
                continue  # nothing happened in the window
            modes: dict[str, float] = {}
            for t in tallies:
                modes[t.key.mode] = modes.get(t.key.mode, 0.0) + sum(t.calls.values())
            declared = max(modes, key=lambda m: modes[m]) or None
            workloads.append(
                WorkloadInput(
                    name,
                    declared,
                    not keys[0].workload,
                    tallies,
                    self._extras(name, current, base, inside),
                )
            )
        untracked = 0
        if len(current.shapes) >= self.max_shapes:
            untracked = -1  # at the bound: some shapes may be missing (count unknown)
        return Observed("agent", covered, tuple(workloads), untracked)

    @staticmethod
    def _tally(key: ShapeKey, current: _State, base: _State, samples: list[_State]) -> Tally:
        shape = current.shapes[key]
        then = base.shapes.get(key)
        calls0 = then.calls if then else {}
        tokens0 = then.tokens if then else {}
        # The shape's in-flight at each checkpoint of the window (and now): per minute.
        flights = [s.shapes[key].in_flight for s in samples if key in s.shapes]
        return Tally(
            key=key,
            calls={o: max(0.0, v - calls0.get(o, 0.0)) for o, v in shape.calls.items()},
            tokens={t: max(0.0, v - tokens0.get(t, 0.0)) for t, v in shape.tokens.items()},
            cost_usd=max(0.0, shape.cost - (then.cost if then else 0.0)),
            duration=_hist(
                shape.duration,
                then.duration if then else None,
                shape.duration_sum - (then.duration_sum if then else 0.0),
            ),
            ttft=_hist(
                shape.ttft, then.ttft if then else None, shape.ttft_sum - (then.ttft_sum if then else 0.0)
            ),
            input_tokens=_hist(shape.input_tokens, then.input_tokens if then else None),
            output_tokens=_hist(shape.output_tokens, then.output_tokens if then else None),
            in_flight_mean=sum(flights) / len(flights) if flights else None,
            in_flight_peak=max(flights) if flights else None,
        )  # fmt: skip

    @staticmethod
    def _extras(name: str, current: _State, base: _State, inside: list[_Frame]) -> Extras:
        wl = current.workloads.get(name, _Workload())
        then = base.workloads.get(name)
        points = [f.workloads.get(name) for f in inside]
        known = [p.limit for p in points if p is not None and p.limit]
        steps: list[Step] = []
        previous_at, previous_calls = base.at, None
        for frame, point in zip(inside, points, strict=True):
            if point is None:
                previous_at = frame.at
                continue
            if previous_calls is None:
                shapes = [s for k, s in base.shapes.items() if TrafficRecorder._name(k) == name]
                previous_calls = sum(sum(s.calls.values()) for s in shapes)
            steps.append(
                Step(frame.at - base.at, frame.at - previous_at,
                     max(0.0, point.calls - previous_calls), point.in_flight, point.p95_s,
                     point.ttft_p95_s, point.limit)
            )  # fmt: skip
            previous_at, previous_calls = frame.at, point.calls
        return Extras(
            concurrency_limit=max(known) if known else wl.limit,
            queue_wait=_hist(wl.queue, then.queue if then else None),
            shed=max(0.0, wl.shed - (then.shed if then else 0.0)),
            duration=_exp_quantiles(
                _exp_minus(wl.duration_exp, then.duration_exp if then else None)
            ),
            ttft=_exp_quantiles(_exp_minus(wl.ttft_exp, then.ttft_exp if then else None)),
            steps=tuple(steps),
        )
