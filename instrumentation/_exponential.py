"""Base-2 exponential histogram aggregation (the OTLP ExponentialHistogram data model).

The bucket math (which bucket a value falls in, bucket bounds, quantiles) is the
contract's (``gemini_slo.contract.exponential``), shared with the agent. The histogram
starts at :data:`~gemini_slo.contract.signals.EXPONENTIAL_SCALE` and, when a value would
need more than ``max_buckets`` buckets, halves its resolution as many times as needed (the
index at scale ``s - 1`` is the index at scale ``s`` shifted right by one), exactly as the
OpenTelemetry SDK does. Counts are kept dense, from the lowest bucket used to the highest,
which is the shape the OTLP data point carries: a snapshot is one tuple copy. Only
non-negative values are expected (durations); a negative one (a clock oddity) is counted
as zero.

Not thread-safe on its own: the series that own a histogram hold their lock around it.
"""

from __future__ import annotations

import math

from gemini_slo.contract.exponential import bucket_index, downscale
from gemini_slo.instrumentation._values import ExponentialPoint


class ExponentialHistogram:
    """A mutable base-2 exponential histogram; see the module docstring."""

    __slots__ = (
        "count",
        "counts",
        "max",
        "max_buckets",
        "min",
        "offset",
        "scale",
        "sum",
        "zero_count",
    )

    def __init__(self, scale: int, max_buckets: int) -> None:
        self.scale = scale
        self.max_buckets = max_buckets
        self.counts: list[int] = []  # counts[i] is bucket offset + i
        self.offset = 0
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
        counts = self.counts
        i = index - self.offset
        if counts and 0 <= i < len(counts):
            counts[i] += 1
            return
        self._widen(index)

    def _widen(self, index: int) -> None:
        """Count ``index``, outside the current range: extend it, downscaling if needed."""
        counts = self.counts
        if not counts:
            self.offset, self.counts = index, [1]
            return
        lo, hi = min(self.offset, index), max(self.offset + len(counts) - 1, index)
        change = 0
        while (hi >> change) - (lo >> change) + 1 > self.max_buckets:
            change += 1
        if change:
            self.offset, counts = downscale(self.offset, counts, change)
            self.scale -= change
            index, lo, hi = index >> change, lo >> change, hi >> change
        widened = [0] * (hi - lo + 1)
        start = self.offset - lo
        widened[start : start + len(counts)] = counts
        widened[index - lo] += 1
        self.offset, self.counts = lo, widened

    def snapshot(self) -> ExponentialPoint:
        """A frozen copy of the current state."""
        return ExponentialPoint(
            scale=self.scale,
            zero_count=self.zero_count,
            offset=self.offset if self.counts else 0,
            bucket_counts=tuple(self.counts),
            count=self.count,
            sum=self.sum,
            min=self.min if self.count else 0.0,
            max=self.max if self.count else 0.0,
        )
