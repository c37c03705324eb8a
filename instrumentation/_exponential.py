"""Base-2 exponential histogram aggregation (the OTLP ExponentialHistogram data model).

Bucket ``i`` at scale ``s`` covers ``(base**i, base**(i + 1)]`` with ``base = 2**(2**-s)``
(upper-inclusive, as OTLP defines it). The histogram starts at
:data:`~gemini_slo.contract.signals.EXPONENTIAL_SCALE` and, when a value would need
more than ``max_buckets`` buckets, halves its resolution as many times as needed (the
index at scale ``s - 1`` is the index at scale ``s`` shifted right by one), exactly as the
OpenTelemetry SDK does. Only non-negative values are expected (durations); a negative one
(a clock oddity) is counted as zero.

Not thread-safe on its own: the series that own a histogram hold their lock around it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

_LN2 = math.log(2.0)


@dataclass(frozen=True, slots=True)
class ExponentialPoint:
    """A snapshot of an exponential histogram (positive buckets only, plus zeros)."""

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
        base = 2.0 ** (2.0**-self.scale)
        return base ** (self.offset + i), base ** (self.offset + i + 1)

    def quantile(self, q: float) -> float:
        """Estimate quantile ``q`` (0..1) by linear interpolation inside the bucket."""
        if self.count == 0:
            return math.nan
        rank = q * self.count
        if rank <= self.zero_count:
            return 0.0
        seen = float(self.zero_count)
        for i, n in enumerate(self.bucket_counts):
            if n and seen + n >= rank:
                lower, upper = self.bucket_bounds(i)
                lower, upper = max(lower, self.min), min(upper, self.max)
                return lower + (upper - lower) * (rank - seen) / n
            seen += n
        return self.max


def bucket_index(value: float, scale: int) -> int:
    """The index of the bucket holding ``value`` (> 0) at ``scale``."""
    mantissa, exp = math.frexp(value)  # value = mantissa * 2**exp, mantissa in [0.5, 1)
    if scale <= 0:
        # Scale 0: bucket i is (2**i, 2**(i+1)]; an exact power of two closes its bucket.
        index0 = exp - 2 if mantissa == 0.5 else exp - 1
        return index0 >> -scale
    if mantissa == 0.5:
        # Exact powers of two are bucket upper bounds: avoid the log's rounding there.
        return ((exp - 1) << scale) - 1
    return math.ceil(math.log(value) * (1 << scale) / _LN2) - 1


class ExponentialHistogram:
    """A mutable base-2 exponential histogram; see the module docstring."""

    __slots__ = (
        "buckets",
        "count",
        "hi",
        "lo",
        "max",
        "max_buckets",
        "min",
        "scale",
        "sum",
        "zero_count",
    )

    def __init__(self, scale: int, max_buckets: int) -> None:
        self.scale = scale
        self.max_buckets = max_buckets
        self.buckets: dict[int, int] = {}
        self.lo = 0
        self.hi = -1  # lo > hi: empty
        self.zero_count = 0
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    def record(self, value: float) -> None:
        """Add one value."""
        value = max(value, 0.0)
        self.count += 1
        self.sum += value
        self.min = min(self.min, value)
        self.max = max(self.max, value)
        if value == 0.0:
            self.zero_count += 1
            return
        index = bucket_index(value, self.scale)
        if self.lo > self.hi:
            self.lo = self.hi = index
        elif index < self.lo or index > self.hi:
            lo, hi = min(self.lo, index), max(self.hi, index)
            change = 0
            while (hi >> change) - (lo >> change) + 1 > self.max_buckets:
                change += 1
            if change:
                self._downscale(change)
                index >>= change
                lo, hi = lo >> change, hi >> change
            self.lo, self.hi = lo, hi
        buckets = self.buckets
        buckets[index] = buckets.get(index, 0) + 1

    def _downscale(self, change: int) -> None:
        """Halve the resolution ``change`` times, merging neighbouring buckets."""
        merged: dict[int, int] = {}
        for index, n in self.buckets.items():
            key = index >> change
            merged[key] = merged.get(key, 0) + n
        self.buckets = merged
        self.scale -= change

    def snapshot(self) -> ExponentialPoint:
        """A frozen copy of the current state."""
        if self.lo > self.hi:
            counts: tuple[int, ...] = ()
            offset = 0
        else:
            get = self.buckets.get
            counts = tuple(get(i, 0) for i in range(self.lo, self.hi + 1))
            offset = self.lo
        return ExponentialPoint(
            scale=self.scale,
            zero_count=self.zero_count,
            offset=offset,
            bucket_counts=counts,
            count=self.count,
            sum=self.sum,
            min=self.min if self.count else 0.0,
            max=self.max if self.count else 0.0,
        )
