"""The in-process aggregation: pre-bound series keyed by their attribute values.

Why not the OpenTelemetry SDK's instruments: ``Histogram.record()`` costs 7-9 us per
instrument with three attributes, and a call records a dozen values. Here a call appends
one event tuple to a deque (a stream that ended well, the means to build it: its last
chunk is read in the batch too); events are folded, in batches, into one series
bundle per attribute set (:class:`CallSeries`, found by one dict lookup on the tuple of
:data:`~gemini_slo.contract.signals.CALL_ATTRIBUTES` values) made of plain integers,
explicit-bucket histograms (bisect) and base-2 exponential histograms. Measured against
the emulator, aggregating in batches costs the caller a third of what aggregating inline
did: a dozen cold histogram updates in the middle of an HTTP call's code path are far
slower than the same updates in a warm loop (see bench/overhead.py).
The exporters (OTLP, Prometheus) and :mod:`gemini_slo.instrumentation.testing` read
:meth:`Registry.collect`, a consistent snapshot per bundle, as cumulative values since
:attr:`Registry.start_time_ns`.

Costs are accumulated as integers of pico-USD (1e-12 USD) so that totals are exact: the
sum over calls equals the price table applied to the token totals (see ``pricing.py``).

Memory is bounded by a cardinality limit (:attr:`Registry.max_series`, the OpenTelemetry
SDK's 2,000 by default): past it, a new set's calls are folded into one overflow bundle per
workload and mode, labelled ``otel.metric.overflow=true`` (as the SDK's overflow series is),
so that totals stay exact and the agent still attributes the calls to their workload.
200,000 distinct model names cost what 2,000 do. The limit is shared fairly
(:class:`SeriesBudget`): a flood in one workload cannot fold another's series.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from gemini_slo.contract import signals as S
from gemini_slo.contract.cardinality_budget import split_budget
from gemini_slo.contract.otlp_limits import CARDINALITY_LIMIT
from gemini_slo.instrumentation import pricing
from gemini_slo.instrumentation._exponential import ExponentialHistogram
from gemini_slo.instrumentation._usage import usage_from
from gemini_slo.instrumentation._values import (
    PICO,
    CallKey,
    HistogramPoint,
    Point,
    Thresholds,
    Usage,
)


class ExplicitHistogram:
    """A mutable explicit-bucket histogram (upper-inclusive bounds, like OTLP and ``le``)."""

    __slots__ = ("bounds", "count", "counts", "max", "min", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    def record(self, value: float) -> None:
        """Add one value."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.sum += value
        self.min = min(self.min, value)
        self.max = max(self.max, value)

    def snapshot(self) -> HistogramPoint:
        """A frozen copy."""
        return HistogramPoint(
            bounds=self.bounds,
            bucket_counts=tuple(self.counts),
            count=self.count,
            sum=self.sum,
            min=self.min if self.count else 0.0,
            max=self.max if self.count else 0.0,
        )


def _exponential() -> ExponentialHistogram:
    return ExponentialHistogram(S.EXPONENTIAL_SCALE, S.EXPONENTIAL_MAX_BUCKETS)


class CallSeries:
    """Every call-level series of one attribute set.

    Mutated only by :meth:`Registry.drain` (under the registry's drain lock), so it needs
    no lock of its own.
    """

    __slots__ = (
        "attributes",
        "calls",
        "cost_per_million",
        "cost_pico",
        "deadline_exceeded",
        "duration",
        "duration_bounds",
        "in_flight",
        "latency",
        "overflow",
        "tokens",
        "tokens_per_second",
        "tpot",
        "ttft",
        "ttft_exp",
        "unpriced",
        "usage_input",
        "usage_output",
    )

    def __init__(
        self,
        key: CallKey,
        layout: S.BucketLayout,
        attributes: tuple[tuple[str, str], ...] | None = None,
    ) -> None:
        """``attributes`` replaces the ones ``key`` names (an overflow bundle's)."""
        self.attributes: tuple[tuple[str, str], ...] = (
            tuple(zip(S.CALL_ATTRIBUTES, key, strict=True)) if attributes is None else attributes
        )
        self.overflow = attributes is not None
        self.latency = key[1] == S.Mode.LATENCY.value
        self.duration_bounds = layout.duration
        # Per (outcome, error type) and per error type: error.type is an optional attribute.
        self.calls: dict[tuple[str, str | None], int] = {}
        self.duration: dict[str | None, tuple[ExplicitHistogram, ExponentialHistogram]] = {}
        self.tokens = [0, 0, 0, 0, 0]  # TokenType order: input, output, thoughts, cached, tool_use
        self.usage_input = ExplicitHistogram(S.TOKEN_USAGE_BUCKETS)
        self.usage_output = ExplicitHistogram(S.TOKEN_USAGE_BUCKETS)
        self.cost_pico = 0
        self.unpriced = 0
        self.in_flight = 0
        self.deadline_exceeded = 0
        self.ttft = ExplicitHistogram(layout.ttft)
        self.ttft_exp = _exponential()
        self.tpot = ExplicitHistogram(S.TIME_PER_TOKEN_BUCKETS)
        self.tokens_per_second = ExplicitHistogram(S.CALL_TOKENS_PER_SECOND_BUCKETS)
        self.cost_per_million = ExplicitHistogram(S.CALL_COST_PER_MILLION_BUCKETS)

    def record(  # noqa: PLR0917 - called once per event by the drain loop
        self,
        outcome: str,
        error_type: str | None,
        duration: float | None,
        ttft: float | None,
        usage: Usage | None,
        cost_pico: int | None,
        deadline_exceeded: bool,
    ) -> None:
        """Record one finished call.

        ``duration`` is None for a call that never ran (shed by a queue); ``cost_pico`` is
        None for a model the price table does not know (an unpriced call).
        """
        ckey = (outcome, error_type)
        self.calls[ckey] = self.calls.get(ckey, 0) + 1
        if duration is not None:
            hists = self.duration.get(error_type)
            if hists is None:
                hists = self.duration[error_type] = (
                    ExplicitHistogram(self.duration_bounds),
                    _exponential(),
                )
            hists[0].record(duration)
            hists[1].record(duration)
        if self.latency:
            if deadline_exceeded:
                self.deadline_exceeded += 1
            if ttft is not None:
                self.ttft.record(ttft)
                self.ttft_exp.record(ttft)
                if usage is not None and duration is not None and usage.generated > 1:
                    self.tpot.record(max(duration - ttft, 0.0) / (usage.generated - 1))
        if usage is None:
            return
        tokens = self.tokens
        for i, n in enumerate(usage):
            tokens[i] += n
        self.usage_input.record(usage.input)
        self.usage_output.record(usage.generated)
        if cost_pico is None:
            self.unpriced += 1
        else:
            self.cost_pico += cost_pico
        if not self.latency:
            if outcome == _OK and duration and usage.generated:
                self.tokens_per_second.record(usage.generated / duration)
            if cost_pico is not None and usage.billable:
                self.cost_per_million.record(cost_pico / PICO / usage.billable * 1e6)

    def collect(self, out: list[Point]) -> None:
        """Append this bundle's points to ``out`` (called under the drain lock)."""
        a = self.attributes
        for (outcome, error_type), n in self.calls.items():
            extra: tuple[tuple[str, str], ...] = ((S.ATTR_OUTCOME, outcome),)
            if error_type is not None:
                extra += ((S.ATTR_ERROR_TYPE, error_type),)
            out.append(Point(S.CALLS, a + extra, n))
        for error_type, (explicit, exponential) in self.duration.items():
            attrs = a if error_type is None else (*a, (S.ATTR_ERROR_TYPE, error_type))
            out.append(Point(S.OPERATION_DURATION, attrs, explicit.snapshot()))
            out.append(Point(S.OPERATION_DURATION_EXPONENTIAL, attrs, exponential.snapshot()))
        if self.usage_input.count:
            for token_type, n in zip(S.TokenType, self.tokens, strict=True):
                out.append(Point(S.TOKENS, (*a, (S.ATTR_TOKEN_TYPE, token_type.value)), n))
            out.append(
                Point(
                    S.TOKEN_USAGE, (*a, (S.ATTR_TOKEN_TYPE, "input")), self.usage_input.snapshot()
                )
            )
            out.append(
                Point(
                    S.TOKEN_USAGE, (*a, (S.ATTR_TOKEN_TYPE, "output")), self.usage_output.snapshot()
                )
            )
            out.append(Point(S.COST, a, self.cost_pico / PICO))
            out.append(Point(S.UNPRICED_CALLS, a, self.unpriced))
        out.append(Point(S.REQUESTS_IN_FLIGHT, a, self.in_flight))
        if self.latency:
            if self.ttft.count:
                out.append(Point(S.TIME_TO_FIRST_CHUNK, a, self.ttft.snapshot()))
                out.append(Point(S.TIME_TO_FIRST_CHUNK_EXPONENTIAL, a, self.ttft_exp.snapshot()))
            if self.tpot.count:
                out.append(Point(S.TIME_PER_OUTPUT_TOKEN, a, self.tpot.snapshot()))
            if self.calls:
                out.append(Point(S.DEADLINE_EXCEEDED, a, self.deadline_exceeded))
        else:
            if self.tokens_per_second.count:
                out.append(Point(S.CALL_TOKENS_PER_SECOND, a, self.tokens_per_second.snapshot()))
            if self.cost_per_million.count:
                out.append(
                    Point(S.CALL_COST_PER_MILLION_TOKENS, a, self.cost_per_million.snapshot())
                )


Started = tuple[CallKey]
"""Event: a call started (in flight +1 on that series)."""
Finished = tuple[
    CallKey,
    str,
    str | None,
    float | None,
    float | None,
    Any,
    str | None,
    bool,
    CallKey | None,
]
"""Event: (key, outcome, error type, duration, ttft, usage, service tier, deadline exceeded,
key the call was counted in flight under, or None). ``usage`` is a :class:`Usage`, None, or
a response's ``usage_metadata`` not read yet: the drain reads it (``_usage.usage_from``),
in a warm loop, rather than the call's own path."""
Deferred = tuple[Callable[[float], Finished], float]
"""Event: a finished call whose Finished event the drain builds, ``(build, ended)``: a
stream's end, left to the batch (see ``Call.finish``)."""

#: A thread that sees this many events pending aggregates them itself (amortised, in a
#: tight loop, with warm caches); the exporters and readers aggregate the rest.
DRAIN_AT = 64


class QueueSeries:
    """The series of one AdmissionQueue for one workload: depth, wait, shed."""

    __slots__ = ("attributes", "depth", "lock", "shed", "wait")

    def __init__(self, workload: str, mode: str, queue: str) -> None:
        self.attributes = ((S.ATTR_WORKLOAD, workload), (S.ATTR_MODE, mode), (S.ATTR_QUEUE, queue))
        self.lock = threading.Lock()
        self.depth = 0
        self.shed = 0
        self.wait = ExplicitHistogram(S.QUEUE_WAIT_BUCKETS)

    def enter(self) -> None:
        """A call starts waiting."""
        with self.lock:
            self.depth += 1

    def leave(self, waited: float, shed: bool, entered: bool = True) -> None:
        """A call got its slot (``shed`` False) or was rejected after ``waited`` seconds;
        ``entered`` False for a call admitted at once (it never counted in the depth)."""
        with self.lock:
            if entered:
                self.depth -= 1
            self.wait.record(waited)
            if shed:
                self.shed += 1

    def shed_at_once(self) -> None:
        """A call was rejected without waiting (it never entered the queue)."""
        with self.lock:
            self.wait.record(0.0)
            self.shed += 1

    def collect(self, out: list[Point]) -> None:
        """Append this queue's points to ``out``."""
        with self.lock:
            out.append(Point(S.QUEUE_DEPTH, self.attributes, self.depth))
            out.append(Point(S.QUEUE_WAIT, self.attributes, self.wait.snapshot()))
            out.append(Point(S.QUEUE_SHED, self.attributes, self.shed))


_OK = S.Outcome.OK.value
_ORDER = {s.name: i for i, s in enumerate(S.INSTRUMENTATION_SIGNALS)}
_OVERFLOW = (S.ATTR_OVERFLOW, "true")
_log = logging.getLogger("gemini_slo.instrumentation")

#: At most one cardinality warning per registry per this many seconds (each one says how
#: many calls were folded so far): a flood of names must not become a flood of log lines.
OVERFLOW_WARNING_INTERVAL = 600.0


#: Workloads that get a reserve of series: every workload the registry is told of (the
#: thresholds' and the spec's), and first-seen ones up to this many in all.
RESERVED_WORKLOADS = 8
#: The part of the limit held back in reserves (a quarter): the rest is the common pool, so
#: that an app with one workload and many legitimate models still keeps most of the limit.
RESERVED_FRACTION = 4


class SeriesBudget:
    """Which new call attribute set gets a series of its own (the agent's policy, whose
    arithmetic is shared through :mod:`gemini_slo.contract.cardinality_budget`).

    Each entitled workload has a **reserve** of series that no other workload can take, and
    a workload whose reserve is full uses the **common pool**; with no room in either, the
    set is folded. Entitled: the ``known`` workloads (those with thresholds, i.e. the
    spec's), and the first workloads seen until :data:`RESERVED_WORKLOADS` have a reserve.
    Reserves together hold ``max_series // RESERVED_FRACTION``; a limit too small for one
    series each leaves reserves of 0 (first come, first served, as before). State is one
    counter per entitled workload and one for the pool: nothing per folded key.
    """

    __slots__ = ("pool", "pool_used", "reserve", "reserved", "slots")

    def __init__(self, max_series: int, known: Iterable[str] = ()) -> None:
        self.reserved: dict[str, int] = dict.fromkeys(known, 0)
        """Entitled workload -> series in its reserve."""
        self.slots = max(RESERVED_WORKLOADS, len(self.reserved))
        self.pool_used = 0
        self.reserve = 0
        self.pool = 0
        self.resize(max_series)

    def resize(self, max_series: int) -> None:
        """Apply a new limit (series already admitted stay; only new ones see it)."""
        split = split_budget(max_series, self.slots, max_series // (RESERVED_FRACTION * self.slots))
        self.reserve, self.pool = split.reserve, split.pool

    def admit(self, workload: str) -> bool:
        """True (and the room taken) when a new set of ``workload`` may have a series."""
        used = self.reserved.get(workload)
        if used is None and len(self.reserved) < self.slots:
            used = self.reserved[workload] = 0
        if used is not None and used < self.reserve:
            self.reserved[workload] = used + 1
            return True
        if self.pool_used < self.pool:
            self.pool_used += 1
            return True
        return False


def _known_workloads(thresholds: Thresholds) -> list[str]:
    """The workloads named by ``thresholds`` (the spec's, or ``configure(thresholds=)``)."""
    return sorted({*thresholds.duration, *thresholds.ttft})


class Registry:
    """Every series recorded in one process (or one test).

    A process-wide default registry is used unless ``registry=`` is given to
    ``observe``/``instrument``/``AdmissionQueue`` (tests pass a fresh one).

    Calls are recorded in two steps, which is what keeps the hot path cheap: the calling
    thread appends one small event tuple (:meth:`submit`, an atomic ``deque.append``), and
    events are aggregated into the series by :meth:`drain`, in batches: by the thread that
    finds :data:`DRAIN_AT` events pending, and by every reader (:meth:`collect`, i.e. the
    exporters and ``testing``) before it reads, so that what is read is exact. Pending events
    are bounded (about DRAIN_AT), never a queue that grows while the agent is down.
    """

    def __init__(
        self, thresholds: Thresholds | None = None, *, max_series: int = CARDINALITY_LIMIT
    ) -> None:
        if max_series < 1:
            raise ValueError(f"max_series must be at least 1, not {max_series}")
        self._lock = threading.Lock()
        self._drain_lock = threading.Lock()
        self._pending: deque[Started | Finished | Deferred] = deque()
        self._calls: dict[CallKey, CallSeries] = {}
        self._overflow: dict[tuple[str, str], CallSeries] = {}
        self._queues: dict[tuple[str, str, str], QueueSeries] = {}
        self._limits: dict[tuple[str, str], float] = {}
        self._collectors: list[Callable[[list[Point]], None]] = []
        self.thresholds = thresholds or Thresholds()
        self.start_time_ns = time.time_ns()
        self.export_failures = 0
        """Background exports that failed (the agent was down, say); never raised."""
        self._max_series = max_series
        self.budget = SeriesBudget(max_series, _known_workloads(self.thresholds))
        """How the limit is shared between workloads (reserves and the common pool)."""
        self.overflow_calls = 0
        """Finished calls folded into an overflow bundle (no room left in :attr:`budget`)."""
        self._warned_at = -math.inf

    @property
    def max_series(self) -> int:
        """The cardinality limit: distinct call attribute sets (workload, mode, operation,
        provider, model) kept apart, shared as :class:`SeriesBudget` says; the calls of
        further sets go to overflow bundles."""
        return self._max_series

    @max_series.setter
    def max_series(self, value: int) -> None:
        if value < 1:
            raise ValueError(f"max_series must be at least 1, not {value}")
        with self._lock:
            self._max_series = value
            self.budget.resize(value)

    def submit(self, event: Started | Finished | Deferred) -> None:
        """Record an event (the hot path): append, and aggregate now and then."""
        pending = self._pending
        pending.append(event)
        if len(pending) >= DRAIN_AT:
            try:  # noqa: SIM105 - the hot path: cheaper than contextlib.suppress
                self.drain(block=False)
            except Exception:  # never raise into the app's call; readers drain again
                pass

    def drain(self, block: bool = True) -> None:
        """Aggregate every pending event (``block`` False: unless another thread is at it)."""
        if not self._drain_lock.acquire(blocking=block):
            return
        try:
            self._drain()
        finally:
            self._drain_lock.release()

    def _drain(self) -> None:
        popleft = self._pending.popleft
        try:
            prices: pricing.PriceTable | None = pricing.active_table()
        except Exception:  # an unreadable GEMINI_SLO_PRICING file: count calls as unpriced
            prices = None
        series_for = self.call_series
        while True:
            try:
                event = popleft()
            except IndexError:
                return
            if len(event) == 1:
                series_for(event[0]).in_flight += 1
                continue
            if len(event) == 2:
                try:
                    event = event[0](event[1])
                except Exception:  # pragma: no cover - a bug must not stop the aggregation
                    continue
            key, outcome, error_type, duration, ttft, usage, tier, deadline_exceeded, started = (
                event
            )
            if usage is not None and type(usage) is not Usage:
                try:
                    usage = usage_from(usage)
                except Exception:  # an odd object posing as usage metadata: no usage
                    usage = None
            cost = (
                None if usage is None or prices is None else prices.cost_pico(key[4], usage, tier)
            )
            series = series_for(key)
            series.record(outcome, error_type, duration, ttft, usage, cost, deadline_exceeded)
            if series.overflow:
                self._folded()
            if started is not None:
                series_for(started).in_flight -= 1

    def call_series(self, key: CallKey) -> CallSeries:
        """The bundle for ``key``, created on first use while its workload has room in the
        budget (:class:`SeriesBudget`); else the overflow bundle of its workload and mode
        (nothing is kept per folded key)."""
        series = self._calls.get(key)
        if series is None:
            with self._lock:
                series = self._calls.get(key)
                if series is None:
                    if not self.budget.admit(key[0]):
                        return self._overflow_series(key)
                    series = CallSeries(key, self.thresholds.layout(key[0], S.Mode(key[1])))
                    self._calls[key] = series
        return series

    def _overflow_series(self, key: CallKey) -> CallSeries:
        """(Under ``_lock``.) One bundle per (workload, mode), and no more of those than the
        limit either: past it, one per mode without a workload (the SDK's bare overflow)."""
        workload, mode = key[0], key[1]
        series = self._overflow.get((workload, mode))
        if series is not None:
            return series
        attrs: tuple[tuple[str, str], ...]
        if len(self._overflow) < self.max_series:
            attrs = ((S.ATTR_WORKLOAD, workload), (S.ATTR_MODE, mode), _OVERFLOW)
        else:
            workload = ""
            series = self._overflow.get((workload, mode))
            if series is not None:
                return series
            attrs = ((S.ATTR_MODE, mode), _OVERFLOW)
        layout = self.thresholds.layout(workload, S.Mode(mode))
        series = CallSeries((workload, mode, "", "", ""), layout, attrs)
        self._overflow[(workload, mode)] = series
        return series

    def _folded(self) -> None:
        """Count one folded call; warn now and then (never raises: logging handles its own
        errors)."""
        self.overflow_calls += 1
        now = time.monotonic()
        if now - self._warned_at >= OVERFLOW_WARNING_INTERVAL:
            self._warned_at = now
            _log.warning(
                "gemini-slo: more than %d distinct call attribute sets (workload, mode, "
                "operation, provider, model), or a workload past its share of them (%d "
                "reserved per workload, %d shared): the calls of further ones are folded "
                "into an overflow series per workload and mode (otel.metric.overflow=true); "
                "%d calls folded so far. Send fewer distinct model names, or raise "
                "configure(max_series=...) / GEMINI_SLO_MAX_SERIES.",
                self._max_series,
                self.budget.reserve,
                self.budget.pool,
                self.overflow_calls,
            )

    def queue_series(self, workload: str, mode: str, queue: str) -> QueueSeries:
        """The bundle of one queue used by one workload."""
        key = (workload, mode, queue)
        series = self._queues.get(key)
        if series is None:
            with self._lock:
                series = self._queues.setdefault(key, QueueSeries(workload, mode, queue))
        return series

    def add_collector(self, collect: Callable[[list[Point]], None]) -> None:
        """Add series that are not calls (batch jobs): ``collect(out)`` appends their points
        to every snapshot. It must not raise."""
        with self._lock:
            self._collectors.append(collect)

    def set_concurrency_limit(self, workload: str, mode: str, limit: float) -> None:
        """Set the workload's concurrency limit gauge."""
        self._limits[(workload, mode)] = float(limit)

    def set_thresholds(self, thresholds: Thresholds) -> None:
        """Change the SLO thresholds. Bundles whose bucket layout changes start over."""
        with self._drain_lock:
            self._drain()
            with self._lock:
                self.thresholds = thresholds
                old, self._calls = self._calls, {}
                old_overflow, self._overflow = self._overflow, {}
                self.budget = SeriesBudget(self._max_series, _known_workloads(thresholds))
                self.start_time_ns = time.time_ns()
            for key, series in old.items():  # calls in flight now will finish in the new series
                if series.in_flight:
                    self.call_series(key).in_flight = series.in_flight
            for (workload, mode), series in old_overflow.items():
                if series.in_flight:
                    with self._lock:
                        self._overflow_series(
                            (workload, mode, "", "", "")
                        ).in_flight += series.in_flight

    def collect(self) -> list[Point]:
        """A snapshot of every series (pending events included), in the contract's order."""
        out: list[Point] = []
        with self._drain_lock:
            self._drain()
            with self._lock:
                calls = [*self._calls.values(), *self._overflow.values()]
                queues = list(self._queues.values())
                limits = list(self._limits.items())
                collectors = list(self._collectors)
            for series in calls:
                series.collect(out)
        for queue in queues:
            queue.collect(out)
        for (workload, mode), limit in limits:
            attrs = ((S.ATTR_WORKLOAD, workload), (S.ATTR_MODE, mode))
            out.append(Point(S.CONCURRENCY_LIMIT, attrs, limit))
        for collect in collectors:
            collect(out)
        out.sort(key=lambda p: _ORDER[p.signal.name])  # stable: keeps series order
        return out


def group_by_signal(points: Iterable[Point]) -> dict[S.Signal, list[Point]]:
    """Points grouped by signal, in the order they come."""
    grouped: dict[S.Signal, list[Point]] = {}
    for p in points:
        grouped.setdefault(p.signal, []).append(p)
    return grouped
