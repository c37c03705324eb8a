"""What a workload's traffic looked like over a window: the advisor's input, whatever its source.

Two sources feed the advisor (``gemini_slo.agent.advice``): the agent's own recorder
(:mod:`gemini_slo.agent.traffic_recorder`, from its store) and Prometheus
(:mod:`gemini_slo.agent.traffic_prometheus`, from PromQL answers). Both reduce what they
read to the same pieces, defined here, and :func:`profile` turns them into one
:class:`Traffic` per workload:

* a :class:`Tally` per *shape* (workload, mode, model, operation, service): the increase of
  each counter over the window and the window's classic histograms (:class:`Hist`);
* per workload, :class:`Extras`: its concurrency limit, queue, the accurate percentiles the
  agent computes from exponential histograms (when the source has them), and its
  :class:`Step` series (one per sample interval) for burstiness and interference.

Definitions of the derived figures (the advisor's rules read them by these names):

* ``streamed_share``: calls with a first chunk (time-to-first-chunk observations) over
  successful timed calls;
* ``ttft_share``: mean time to first chunk over mean duration (streamed calls' share of
  waiting before anything arrives);
* ``burstiness``: the index of dispersion of the in-flight count across steps (variance
  over mean, the variance taken from successive differences so that a slowly changing load
  does not count). Poisson arrivals give a Poisson in-flight count (about 1), workers back
  to back a constant one (about 0), bursts more than 1;
* ``batch_job_share``: share of calls finished in steps where the in-flight count sat at
  90% or more of the concurrency limit of the moment (capped at the peak reached; without a
  limit, of the peak): the signature of a job draining a backlog rather than answering
  arrivals;
* ``utilization``: in flight over the concurrency limit of the moment, averaged over the
  steps with traffic.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from gemini_slo.contract.signals import GENERATED_TOKEN_TYPES, Outcome, TokenType

#: Labels a hybrid workload may be split by, in the order they are tried.
SPLIT_LABELS: tuple[str, ...] = ("model", "operation", "service")
#: A step's percentile is kept only when it rests on at least this many calls.
MIN_STEP_CALLS = 5
#: In-flight at this share of the limit (or peak) or more: the workload is running flat out.
SATURATED = 0.9

_GENERATED = tuple(t.value for t in GENERATED_TOKEN_TYPES)
_BILLABLE = (TokenType.INPUT.value, *_GENERATED, TokenType.TOOL_USE.value)


@dataclass(frozen=True, slots=True)
class Hist:
    """A classic histogram over the window: non-cumulative counts by upper bound."""

    counts: Mapping[float, float]
    total: float = 0.0  # the sum of the observations

    @property
    def count(self) -> float:
        """Observations in the window."""
        return sum(self.counts.values())

    @property
    def mean(self) -> float | None:
        """Mean observation; None when empty."""
        n = self.count
        return self.total / n if n > 0 else None

    def quantile(self, q: float) -> float | None:
        """``histogram_quantile``'s interpolation (lower bound 0); None when empty."""
        n = self.count
        if n <= 0:
            return None
        rank = q * n
        seen = 0.0
        lower = 0.0
        for bound in sorted(self.counts):
            c = self.counts[bound]
            if c > 0 and seen + c >= rank:
                if math.isinf(bound):
                    return lower
                return lower + (bound - lower) * (rank - seen) / c
            seen += c
            if not math.isinf(bound):
                lower = bound
        return lower

    def plus(self, other: Hist | None) -> Hist:
        """Both histograms' observations (bounds of different layouts are kept side by side)."""
        if other is None:
            return self
        merged = dict(self.counts)
        for bound, c in other.counts.items():
            merged[bound] = merged.get(bound, 0.0) + c
        return Hist(merged, self.total + other.total)

    @staticmethod
    def of(bounds: Sequence[float], counts: Sequence[float], total: float = 0.0) -> Hist:
        """From explicit bounds (without +Inf) and their ``len(bounds) + 1`` counts."""
        return Hist(dict(zip((*bounds, math.inf), counts, strict=True)), total)


def merge_hists(hists: Iterable[Hist | None]) -> Hist | None:
    """The sum of the given histograms; None when there is none."""
    out: Hist | None = None
    for h in hists:
        if h is not None:
            out = h if out is None else out.plus(h)
    return out


@dataclass(frozen=True, slots=True)
class Quantiles:
    """Percentiles and mean of a duration, seconds."""

    p50: float | None
    p95: float | None
    p99: float | None
    mean: float | None
    count: float

    @staticmethod
    def of(hist: Hist | None) -> Quantiles | None:
        """From a classic histogram; None when it is empty."""
        if hist is None or hist.count <= 0:
            return None
        return Quantiles(
            hist.quantile(0.5), hist.quantile(0.95), hist.quantile(0.99), hist.mean, hist.count
        )


@dataclass(frozen=True, slots=True, order=True)
class ShapeKey:
    """The finest grain a source reports: one label set of the call-level series."""

    workload: str  # "" for a series without gemini_slo_workload (another instrumentation)
    mode: str
    model: str
    operation: str
    service: str = ""  # when the source knows it (Prometheus' job; the agent, rarely)


@dataclass(frozen=True, slots=True)
class Tally:
    """One shape over the window: increases of the counters, the window's histograms."""

    key: ShapeKey
    calls: Mapping[str, float] = field(default_factory=dict)  # by outcome
    tokens: Mapping[str, float] = field(default_factory=dict)  # by token type
    cost_usd: float = 0.0
    duration: Hist | None = None  # successful calls (no error.type)
    ttft: Hist | None = None
    input_tokens: Hist | None = None  # per call
    output_tokens: Hist | None = None
    in_flight_mean: float | None = None
    in_flight_peak: float | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """One sample interval of a workload; ``end`` is seconds from the window's start."""

    end: float
    seconds: float
    calls: float
    in_flight: float | None
    p95_s: float | None  # None when fewer than MIN_STEP_CALLS timed calls
    ttft_p95_s: float | None
    limit: float | None = None  # the concurrency limit at the step's end

    @property
    def active(self) -> bool:
        """Calls finished or in flight during the step."""
        return self.calls > 0 or bool(self.in_flight)


@dataclass(frozen=True, slots=True)
class Extras:
    """What a source knows per workload besides its shapes."""

    concurrency_limit: float | None = None
    queue_wait: Hist | None = None
    shed: float = 0.0
    duration: Quantiles | None = None  # accurate percentiles, when the source has them
    ttft: Quantiles | None = None
    steps: tuple[Step, ...] = ()


@dataclass(frozen=True, slots=True)
class Traffic:
    """The profile of one workload (or one part of it) over the window."""

    name: str
    declared_mode: str | None
    foreign: bool
    models: tuple[str, ...]
    operations: tuple[str, ...]
    services: tuple[str, ...]
    seconds: float
    calls: float
    outcomes: Mapping[str, float]
    streamed_share: float | None
    ttft_share: float | None
    duration: Quantiles | None
    ttft: Quantiles | None
    input_per_call: tuple[float | None, float | None] | None  # p50, p95
    output_per_call: tuple[float | None, float | None] | None
    burstiness: float | None
    calls_per_s: float
    generated_tokens_per_s: float
    sustained_tokens_per_s: float  # generated tokens over the seconds with traffic
    tokens: Mapping[str, float]
    in_flight_mean: float | None
    in_flight_peak: float | None
    concurrency_limit: float | None
    utilization: float | None
    queue_wait_p95_s: float | None
    shed_share: float | None
    timeout_share: float | None
    rate_limited_share: float | None
    error_share: float | None
    availability: float | None
    cost_usd: float
    cost_per_million: float | None
    batch_job_share: float | None
    steps: tuple[Step, ...] = ()
    parts: Mapping[str, Mapping[str, Traffic]] = field(default_factory=dict)

    def feature(self, name: str) -> float | None:
        """A figure by name, for the rule table (None when unknown)."""
        derived = {
            "output_tokens_p50": self.output_per_call[0] if self.output_per_call else None,
            "duration_p50_s": self.duration.p50 if self.duration else None,
        }
        if name in derived:
            return derived[name]
        value = getattr(self, name, None)
        return float(value) if isinstance(value, int | float) else None


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None


def _sum_maps(maps: Iterable[Mapping[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for m in maps:
        for k, v in m.items():
            out[k] = out.get(k, 0.0) + v
    return out


def _burstiness(steps: Sequence[Step]) -> float | None:
    # The in-flight count of independent (Poisson) arrivals is itself Poisson distributed
    # (M/G/inf): variance = mean, dispersion 1; workers back to back hold it constant (0);
    # bursts spread it (> 1). A level, unlike a count of finished calls, does not alias with
    # the apps' export interval. The variance is taken from successive differences so that
    # a slowly changing load (a job's phases, a daily curve) does not count.
    flights = [s.in_flight for s in steps if s.active and s.in_flight is not None]
    if len(flights) < 6:
        return None
    mean = statistics.fmean(flights)
    if mean <= 0:
        return None
    jumps = [(b - a) ** 2 for a, b in itertools.pairwise(flights)]
    return statistics.fmean(jumps) / 2 / mean


def _batch_job_share(steps: Sequence[Step]) -> float | None:
    active = [s for s in steps if s.active and s.in_flight is not None]
    total = sum(s.calls for s in active)
    if not active or total <= 0:
        return None
    peak = max(s.in_flight or 0.0 for s in active)
    saturated = 0.0
    for s in active:
        # The limit of the moment, but never above the peak reached: a limit gauge can
        # overstate (instances that exited still count until they go stale).
        ceiling = min(s.limit, peak) if s.limit else peak
        if ceiling >= 2 and (s.in_flight or 0.0) >= SATURATED * ceiling:
            saturated += s.calls  # one call at a time says nothing about a backlog
    return saturated / total


def _utilization(steps: Sequence[Step], mean: float | None, limit: float | None) -> float | None:
    # Step by step against the limit of the moment, over the steps with traffic: a job that
    # ran flat out and then stopped was fully utilized while it ran.
    ratios = [
        s.in_flight / s.limit for s in steps if s.active and s.in_flight is not None and s.limit
    ]
    if ratios:
        return statistics.fmean(ratios)
    return mean / limit if limit and mean is not None else None


def _peak(steps: Sequence[Step], shape_peaks: Sequence[float]) -> float | None:
    # The workload's own peak when steps have it; else the largest shape's (a lower bound).
    flights = [s.in_flight for s in steps if s.in_flight is not None]
    if flights:
        return max(flights)
    return max(shape_peaks) if shape_peaks else None


def _sustained(tokens: Mapping[str, float], steps: Sequence[Step], seconds: float) -> float:
    # A job idle for part of the window sustains its rate while it runs, not over the idle.
    generated = sum(tokens.get(k, 0.0) for k in _GENERATED)
    active = sum(s.seconds for s in steps if s.active) if steps else seconds
    return generated / active if active > 0 else 0.0


def _pair(hist: Hist | None) -> tuple[float | None, float | None] | None:
    if hist is None or hist.count <= 0:
        return None
    return hist.quantile(0.5), hist.quantile(0.95)


def _label(key: ShapeKey, label: str) -> str:
    return {"model": key.model, "operation": key.operation, "service": key.service}[label]


def profile(
    name: str,
    tallies: Sequence[Tally],
    seconds: float,
    *,
    extras: Extras | None = None,
    declared_mode: str | None = None,
    foreign: bool = False,
    split: bool = True,
) -> Traffic:
    """Reduce a workload's shapes (and extras) to its :class:`Traffic`.

    With ``split``, ``parts`` holds the same profile per value of every label of
    :data:`SPLIT_LABELS` that takes more than one value (parts have no steps, limit or queue:
    those are per workload).
    """
    extras = extras or Extras()
    outcomes = _sum_maps(t.calls for t in tallies)
    calls = sum(outcomes.values())
    tokens = _sum_maps(t.tokens for t in tallies)
    duration_hist = merge_hists(t.duration for t in tallies)
    ttft_hist = merge_hists(t.ttft for t in tallies)
    duration = extras.duration or Quantiles.of(duration_hist)
    ttft = extras.ttft or Quantiles.of(ttft_hist)
    timed = duration.count if duration else 0.0
    streamed = ttft.count if ttft else 0.0
    ttft_share = None
    if duration and ttft and duration.mean and ttft.mean is not None:
        ttft_share = min(1.0, ttft.mean / duration.mean)
    flights = [t.in_flight_mean for t in tallies if t.in_flight_mean is not None]
    peaks = [t.in_flight_peak for t in tallies if t.in_flight_peak is not None]
    stepped = [s.in_flight for s in extras.steps if s.in_flight is not None]
    # The workload's steps when there are some (every sample); else its shapes' means.
    in_flight_mean = statistics.fmean(stepped) if stepped else (sum(flights) if flights else None)
    limit = extras.concurrency_limit
    cost = sum(t.cost_usd for t in tallies)
    billable = sum(tokens.get(k, 0.0) for k in _BILLABLE)
    failed = sum(outcomes.get(o.value, 0.0) for o in (Outcome.ERROR, Outcome.TIMEOUT))
    failed += outcomes.get(Outcome.REJECTED.value, 0.0)
    failed += outcomes.get(Outcome.RATE_LIMITED.value, 0.0)
    shed = max(extras.shed, outcomes.get(Outcome.REJECTED.value, 0.0))
    # Without a queue, "sheds nothing" is no evidence either way: unknown rather than 0.
    queued = shed > 0 or extras.queue_wait is not None
    availability = None if calls <= 0 else 1.0 - failed / calls
    queue_p95 = extras.queue_wait.quantile(0.95) if extras.queue_wait else None
    traffic = Traffic(
        name=name,
        declared_mode=declared_mode,
        foreign=foreign,
        models=tuple(sorted({t.key.model for t in tallies})),
        operations=tuple(sorted({t.key.operation for t in tallies if t.key.operation})),
        services=tuple(sorted({t.key.service for t in tallies if t.key.service})),
        seconds=seconds,
        calls=calls,
        outcomes=outcomes,
        streamed_share=_share(streamed, timed) if timed else None,
        ttft_share=ttft_share,
        duration=duration,
        ttft=ttft,
        input_per_call=_pair(merge_hists(t.input_tokens for t in tallies)),
        output_per_call=_pair(merge_hists(t.output_tokens for t in tallies)),
        burstiness=_burstiness(extras.steps),
        calls_per_s=calls / seconds if seconds > 0 else 0.0,
        generated_tokens_per_s=(
            sum(tokens.get(k, 0.0) for k in _GENERATED) / seconds if seconds > 0 else 0.0
        ),
        sustained_tokens_per_s=_sustained(tokens, extras.steps, seconds),
        tokens=tokens,
        in_flight_mean=in_flight_mean,
        in_flight_peak=_peak(extras.steps, peaks),
        concurrency_limit=limit,
        utilization=_utilization(extras.steps, in_flight_mean, limit),
        queue_wait_p95_s=queue_p95,
        shed_share=_share(shed, calls) if queued else None,
        timeout_share=_share(outcomes.get(Outcome.TIMEOUT.value, 0.0), calls),
        rate_limited_share=_share(outcomes.get(Outcome.RATE_LIMITED.value, 0.0), calls),
        error_share=_share(outcomes.get(Outcome.ERROR.value, 0.0), calls),
        availability=availability,
        cost_usd=cost,
        cost_per_million=cost / billable * 1e6 if billable > 0 and cost > 0 else None,
        batch_job_share=_batch_job_share(extras.steps),
        steps=extras.steps,
    )
    if not split:
        return traffic
    parts: dict[str, dict[str, Traffic]] = {}
    for label in SPLIT_LABELS:
        groups: dict[str, list[Tally]] = {}
        for t in tallies:
            groups.setdefault(_label(t.key, label), []).append(t)
        groups.pop("", None)
        if len(groups) > 1:
            parts[label] = {
                value: profile(
                    f"{name}-{value}", group, seconds, declared_mode=declared_mode, split=False
                )
                for value, group in sorted(groups.items())
            }
    return replace(traffic, parts=parts)


@dataclass(frozen=True, slots=True)
class WorkloadInput:
    """One workload as a source reports it, before :func:`profile`."""

    name: str
    declared_mode: str | None
    foreign: bool
    tallies: tuple[Tally, ...]
    extras: Extras


@dataclass(frozen=True, slots=True)
class Observed:
    """Everything a source saw over one window."""

    source: str  # "agent" or "prometheus"
    seconds: float  # what the window actually covers (less while the source is young)
    workloads: tuple[WorkloadInput, ...]
    untracked: int = 0  # shapes the source left out (-1: some, how many unknown)

    def profiles(self) -> list[Traffic]:
        """One :class:`Traffic` per workload."""
        return [
            profile(
                w.name,
                w.tallies,
                self.seconds,
                extras=w.extras,
                declared_mode=w.declared_mode,
                foreign=w.foreign,
            )
            for w in self.workloads
        ]


def foreign_name(service: str, model: str) -> str:
    """The name a series without a workload is reported under: service and model."""
    return f"{service or 'genai'}/{model or 'unknown'}"
