"""The agent's source for the advisor: periodic frames of what the store holds, bounded.

The store keeps totals (merged counters and histograms that never decrease) and the
windows keep 1m/5m percentiles; the advisor needs more: an hour of history, and how each
workload moved over it (calls, in flight, p95) to see bursts and interference. So the
agent's maintenance loop calls :meth:`TrafficRecorder.sample` every few seconds, off the
ingest path, which reads the store under its lock and keeps:

* a *frame* per sample: per shape (workload, mode, model, operation) the counters' totals
  (calls by outcome, tokens by type, cost) and the in-flight gauge; per workload its
  concurrency limit, shed total, and the p95 duration and TTFT of the calls that finished
  since the previous frame (from the exponential histograms' increments, or the classic
  ones for other instrumentations);
* a *checkpoint* every ``checkpoint_interval`` (a minute): copies of the cumulative
  histograms, from which a window's percentiles and per-call token distributions are the
  difference between now and the checkpoint at the window's start.

Bounds: frames older than ``history`` (an hour) are dropped and at most ``max_frames`` kept;
checkpoints likewise. A frame is a few dozen numbers per shape; a checkpoint a few
histograms per shape. :meth:`observe` answers a window with what it covers: less than
asked while the agent is younger than the window (``Observed.seconds`` says how much).
"""

from __future__ import annotations

import math
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
class _StepFigures:
    p95_s: float | None
    ttft_p95_s: float | None


@dataclass(frozen=True, slots=True)
class _Frame:
    at: float
    shapes: dict[ShapeKey, tuple[dict[str, float], dict[str, float], float, float]]
    limits: dict[str, float | None]
    sheds: dict[str, float]
    steps: dict[str, _StepFigures]


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
        checkpoint_interval: float = 60.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.store = store
        self.history = history
        self.max_frames = max_frames
        self.checkpoint_interval = checkpoint_interval
        self.clock = clock or store.clock
        start = self._read(self.clock())
        self._frames: deque[_Frame] = deque([self._frame(start, start)])
        self._checkpoints: deque[_State] = deque([start])
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
                                          shapes=shapes, workloads=workloads)  # fmt: skip
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
        steps: dict[str, _StepFigures] = {}
        durations: dict[str, dict[float, float]] = {}
        ttfts: dict[str, dict[float, float]] = {}
        for key, shape in state.shapes.items():
            then = previous.shapes.get(key)
            name = self._name(key)
            for into, now_b, then_b in (
                (durations, shape.duration, then.duration if then else None),
                (ttfts, shape.ttft, then.ttft if then else None),
            ):
                merged = into.setdefault(name, {})
                for b, c in _minus(now_b, then_b).items():
                    merged[b] = merged.get(b, 0.0) + c
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
            steps[name] = _StepFigures(p95, ttft_p95)
        return _Frame(
            state.at,
            {k: (dict(s.calls), dict(s.tokens), s.cost, s.in_flight) for k, s in state.shapes.items()},
            {n: w.limit for n, w in state.workloads.items()},
            {n: w.shed for n, w in state.workloads.items()},
            steps,
        )  # fmt: skip

    def sample(self, now: float | None = None) -> None:
        """Take a frame (and a checkpoint when one is due); drop what is past the history."""
        now = self.clock() if now is None else now
        state = self._read(now)
        self._frames.append(self._frame(state, self._last))
        self._last = state
        if now - self._checkpoints[-1].at >= self.checkpoint_interval:
            self._checkpoints.append(state)
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
        """What the store saw over the last ``seconds`` (up to the history kept)."""
        now = self.clock() if now is None else now
        frames = list(self._frames)
        base = frames[0]
        for frame in frames:
            if frame.at <= now - seconds:
                base = frame
            else:
                break
        inside = [f for f in frames if f.at > base.at]
        checkpoint = self._checkpoints[0]
        for ckpt in self._checkpoints:
            if ckpt.at <= base.at:
                checkpoint = ckpt
        current = self._read(now)
        covered = max(now - base.at, 1e-9)
        groups: dict[str, list[ShapeKey]] = {}
        for key in current.shapes:
            groups.setdefault(self._name(key), []).append(key)
        workloads: list[WorkloadInput] = []
        for name, keys in sorted(groups.items()):
            tallies = tuple(
                self._tally(key, current, base, checkpoint, inside) for key in sorted(keys)
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
                    self._extras(name, keys, current, base=base, ckpt=checkpoint, inside=inside),
                )
            )
        return Observed("agent", covered, tuple(workloads))

    @staticmethod
    def _tally(
        key: ShapeKey, current: _State, base: _Frame, ckpt: _State, inside: list[_Frame]
    ) -> Tally:
        shape = current.shapes[key]
        calls0, tokens0, cost0, _ = base.shapes.get(key, ({}, {}, 0.0, 0.0))
        then = ckpt.shapes.get(key)
        flights = [f.shapes[key][3] for f in inside if key in f.shapes]
        return Tally(
            key=key,
            calls={o: max(0.0, v - calls0.get(o, 0.0)) for o, v in shape.calls.items()},
            tokens={t: max(0.0, v - tokens0.get(t, 0.0)) for t, v in shape.tokens.items()},
            cost_usd=max(0.0, shape.cost - cost0),
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
    def _extras(
        name: str,
        keys: list[ShapeKey],
        current: _State,
        *,
        base: _Frame,
        ckpt: _State,
        inside: list[_Frame],
    ) -> Extras:
        wl = current.workloads.get(name, _Workload())
        then = ckpt.workloads.get(name)
        limits = [f.limits.get(name) for f in inside]
        known = [v for v in limits if v]
        steps: list[Step] = []
        previous = base
        start = base.at
        for frame in inside:
            calls = 0.0
            flight: float | None = None
            for key in keys:
                now_calls = sum(frame.shapes[key][0].values()) if key in frame.shapes else 0.0
                before = sum(previous.shapes[key][0].values()) if key in previous.shapes else 0.0
                calls += max(0.0, now_calls - before)
                if key in frame.shapes:
                    flight = (flight or 0.0) + frame.shapes[key][3]
            figures = frame.steps.get(name, _StepFigures(None, None))
            steps.append(
                Step(frame.at - start, frame.at - previous.at, calls, flight, figures.p95_s,
                     figures.ttft_p95_s, frame.limits.get(name))
            )  # fmt: skip
            previous = frame
        return Extras(
            concurrency_limit=max(known) if known else wl.limit,
            queue_wait=_hist(wl.queue, then.queue if then else None),
            shed=max(0.0, wl.shed - base.sheds.get(name, 0.0)),
            duration=_exp_quantiles(
                _exp_minus(wl.duration_exp, then.duration_exp if then else None)
            ),
            ttft=_exp_quantiles(_exp_minus(wl.ttft_exp, then.ttft_exp if then else None)),
            steps=tuple(steps),
        )
