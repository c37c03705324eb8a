"""The instrumentation's value types: plain frozen data, no state and no behaviour beyond
arithmetic on itself.

What a call reports (:class:`Usage`), the money unit (:data:`PICO`), the SLO thresholds
that shape the bucket layouts (:class:`Thresholds`), and what the registry hands its
readers (:class:`Point` carrying an int/float, a :class:`HistogramPoint` or an
:class:`ExponentialPoint`). Every other module of the instrumentation imports these from
here, so that the aggregator (``_registry``), the price table (``pricing``) and the
process state (``_state``) need not import one another for a type.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from gemini_slo.contract import exponential
from gemini_slo.contract import signals as S

if TYPE_CHECKING:
    from gemini_slo.contract.spec import SloSpec

PICO = 10**12
"""pico-USD per USD: costs are counted in integer pico-dollars, so that totals are exact."""

CallKey = tuple[str, str, str, str, str]
"""Values of CALL_ATTRIBUTES: (workload, mode, operation, provider, request model)."""


class Usage(NamedTuple):
    """Token usage of one call, as Gemini reports it (see signals.TokenType)."""

    input: int = 0
    output: int = 0
    thoughts: int = 0
    cached: int = 0
    tool_use: int = 0

    @property
    def generated(self) -> int:
        """Decode-side tokens: output plus thoughts."""
        return self.output + self.thoughts

    @property
    def billable(self) -> int:
        """Disjoint billable tokens (Gemini's total_token_count)."""
        return self.input + self.output + self.thoughts + self.tool_use

    def plus(self, other: Usage) -> Usage:
        """Element-wise sum (``+`` would concatenate the tuples)."""
        return Usage(*(a + b for a, b in zip(self, other, strict=True)))


def _sorted_unique(values: Iterable[float]) -> tuple[float, ...]:
    return tuple(sorted({float(v) for v in values}))


@dataclass(frozen=True, slots=True)
class Thresholds:
    """SLO thresholds (seconds) per workload, merged into the explicit bucket layouts."""

    duration: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    ttft: Mapping[str, tuple[float, ...]] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, thresholds: Mapping[str, Sequence[float]]) -> Thresholds:
        """``{workload: [seconds, ...]}`` (``configure(thresholds=...)``): the values become
        boundaries of both the duration and the time-to-first-chunk buckets."""
        merged = {w: _sorted_unique(values) for w, values in thresholds.items()}
        return cls(duration=merged, ttft=dict(merged))

    @classmethod
    def from_spec(cls, spec: SloSpec) -> Thresholds:
        """The latency and TTFT thresholds of every workload of a validated spec."""
        return cls(
            duration={w.name: w.latency_thresholds for w in spec.workloads},
            ttft={w.name: w.ttft_thresholds for w in spec.workloads},
        )

    def union(self, *others: Thresholds) -> Thresholds:
        """These thresholds and ``others``', per workload (sorted, deduplicated)."""
        duration: dict[str, set[float]] = {}
        ttft: dict[str, set[float]] = {}
        for part in (self, *others):
            for w, values in part.duration.items():
                duration.setdefault(w, set()).update(values)
            for w, values in part.ttft.items():
                ttft.setdefault(w, set()).update(values)
        return Thresholds(
            duration={w: _sorted_unique(v) for w, v in duration.items()},
            ttft={w: _sorted_unique(v) for w, v in ttft.items()},
        )

    def layout(self, workload: str, mode: S.Mode) -> S.BucketLayout:
        """The bucket layout of ``workload`` recorded in ``mode``."""
        return S.bucket_layout(mode, self.duration.get(workload, ()), self.ttft.get(workload, ()))


@dataclass(frozen=True, slots=True)
class HistogramPoint:
    """A snapshot of an explicit-bucket histogram; ``bucket_counts`` are per bucket (not
    cumulative), ``len(bounds) + 1`` of them, the last one for values above every bound."""

    bounds: tuple[float, ...]
    bucket_counts: tuple[int, ...]
    count: int
    sum: float
    min: float
    max: float

    def cumulative(self) -> list[tuple[float, int]]:
        """``(le, cumulative count)`` pairs, ``+Inf`` last (the Prometheus layout)."""
        out: list[tuple[float, int]] = []
        total = 0
        for bound, n in zip((*self.bounds, math.inf), self.bucket_counts, strict=True):
            total += n
            out.append((bound, total))
        return out


@dataclass(frozen=True, slots=True)
class ExponentialPoint:
    """A snapshot of a base-2 exponential histogram (positive buckets only, plus zeros)."""

    scale: int
    zero_count: int
    offset: int
    bucket_counts: tuple[int, ...]
    count: int
    sum: float
    min: float
    max: float

    def bucket_bounds(self, i: int) -> tuple[float, float]:
        """The ``(lower, upper]`` bounds of ``bucket_counts[i]``."""
        return exponential.bucket_bounds(self.offset + i, self.scale)

    def quantile(self, q: float) -> float:
        """Estimate quantile ``q`` (0..1), as the agent does (see contract/exponential.py)."""
        return exponential.quantile(
            q,
            self.scale,
            self.offset,
            self.bucket_counts,
            zero_count=self.zero_count,
            count=self.count,
            minimum=self.min,
            maximum=self.max,
        )


Value = int | float | HistogramPoint | ExponentialPoint


@dataclass(frozen=True, slots=True)
class Point:
    """One series of one signal at collection time."""

    signal: S.Signal
    attributes: tuple[tuple[str, str], ...]
    value: Value

    @property
    def attrs(self) -> dict[str, str]:
        """The attributes as a dict."""
        return dict(self.attributes)
