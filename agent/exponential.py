"""Base-2 exponential histograms in the agent: merge, subtract, downscale, percentiles.

OTLP's ExponentialHistogram: at scale ``s`` the base is ``2**(2**-s)`` and positive bucket
``i`` covers ``(base**i, base**(i+1)]``; negative bucket ``i`` covers the mirror image; a
zero bucket holds values within ``zero_threshold`` of zero. Two histograms merge exactly
once they share a scale: lowering the scale by ``k`` maps index ``i`` to ``i >> k`` (each
coarse bucket is the union of ``2**k`` fine ones), so the merged histogram takes the
smaller scale of the two, and halves again while its range needs more than
``max_buckets`` buckets (what the OpenTelemetry SDK does while recording).

:class:`ExpHistogram` is mutable on purpose: the agent adds increments into the same
accumulator thousands of times per second, and a fresh frozen copy each time would double
the ingest cost. Snapshots are explicit :meth:`ExpHistogram.copy` calls.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field

from gemini_slo.contract import exponential

#: Scales OTLP allows (the SDK's own limits: -10 .. 20).
MIN_SCALE = -10
MAX_SCALE = 20


def downscale_buckets(offset: int, counts: list[int], by: int) -> tuple[int, list[int]]:
    """Return ``(offset, counts)`` lowered by ``by`` scales (``by >= 0``).

    The rule is the contract's (:func:`gemini_slo.contract.exponential.downscale`); at
    ``by == 0`` the agent keeps its own list rather than a copy, as merges mostly are.
    """
    if by <= 0 or not counts:
        return offset, counts
    return exponential.downscale(offset, counts, by)


def add_buckets(
    offset: int, counts: list[int], other_offset: int, other: list[int], sign: int = 1
) -> tuple[int, list[int]]:
    """Return ``counts + sign * other`` (same scale), covering both index ranges."""
    if not other:
        return offset, counts
    if not counts:
        return other_offset, [sign * c for c in other]
    lo = min(offset, other_offset)
    hi = max(offset + len(counts), other_offset + len(other))
    if lo == offset and hi == offset + len(counts):
        out = counts
    else:
        out = [0] * (hi - lo)
        out[offset - lo : offset - lo + len(counts)] = counts
    base = other_offset - lo
    for i, c in enumerate(other):
        if c:
            out[base + i] += sign * c
    return lo, out


def _trim(offset: int, counts: list[int]) -> tuple[int, list[int]]:
    """Drop empty buckets at both ends (keeps the range, and so the scale, honest)."""
    start = 0
    end = len(counts)
    while start < end and counts[start] == 0:
        start += 1
    while end > start and counts[end - 1] == 0:
        end -= 1
    if start == 0 and end == len(counts):
        return offset, counts
    if start == end:
        return 0, []
    return offset + start, counts[start:end]


@dataclass(slots=True)
class ExpHistogram:
    """A mutable exponential histogram (see the module docstring)."""

    scale: int
    count: int = 0
    sum: float = 0.0
    zero_count: int = 0
    zero_threshold: float = 0.0
    positive_offset: int = 0
    positive: list[int] = field(default_factory=list)
    negative_offset: int = 0
    negative: list[int] = field(default_factory=list)

    def copy(self) -> ExpHistogram:
        """An independent copy (bucket lists are copied)."""
        return ExpHistogram(
            self.scale,
            self.count,
            self.sum,
            self.zero_count,
            self.zero_threshold,
            self.positive_offset,
            list(self.positive),
            self.negative_offset,
            list(self.negative),
        )

    def downscale(self, by: int) -> None:
        """Lower the scale by ``by`` (in place)."""
        if by <= 0:
            return
        self.positive_offset, self.positive = downscale_buckets(
            self.positive_offset, self.positive, by
        )
        self.negative_offset, self.negative = downscale_buckets(
            self.negative_offset, self.negative, by
        )
        self.scale -= by

    def _fit(self, other: ExpHistogram, max_buckets: int) -> int:
        """The largest scale (<= both scales) at which self and other fit in ``max_buckets``."""
        scale = min(self.scale, other.scale)
        ranges = (
            (_range(self.positive_offset, self.positive), self.scale),
            (_range(other.positive_offset, other.positive), other.scale),
            (_range(self.negative_offset, self.negative), self.scale),
            (_range(other.negative_offset, other.negative), other.scale),
        )
        while scale > MIN_SCALE:
            fits = True
            for a, b in ((ranges[0], ranges[1]), (ranges[2], ranges[3])):
                (a_lo, a_hi), a_scale = a
                (b_lo, b_hi), b_scale = b
                lo, hi = None, None
                if a_lo <= a_hi:
                    lo, hi = a_lo >> (a_scale - scale), a_hi >> (a_scale - scale)
                if b_lo <= b_hi:
                    blo, bhi = b_lo >> (b_scale - scale), b_hi >> (b_scale - scale)
                    lo = blo if lo is None else min(lo, blo)
                    hi = bhi if hi is None else max(hi, bhi)
                if lo is not None and hi is not None and hi - lo + 1 > max_buckets:
                    fits = False
                    break
            if fits:
                return scale
            scale -= 1
        return scale

    def _merge_in_place(self, other: ExpHistogram, sign: int) -> bool:
        """The hot path: ``other`` (at a scale >= ours) lands inside our bucket ranges.

        Then neither the scale nor the lists' extent change, and the bucket lists are
        added slice-wise in C (``map(operator.add, ...)``). False when it does not apply.
        """
        by = other.scale - self.scale
        o_pos_off, o_pos = downscale_buckets(other.positive_offset, other.positive, by)
        o_neg_off, o_neg = downscale_buckets(other.negative_offset, other.negative, by)
        pos_base = o_pos_off - self.positive_offset
        neg_base = o_neg_off - self.negative_offset
        if o_pos and (pos_base < 0 or pos_base + len(o_pos) > len(self.positive)):
            return False
        if o_neg and (neg_base < 0 or neg_base + len(o_neg) > len(self.negative)):
            return False
        op = operator.add if sign > 0 else operator.sub
        clamp = False
        for counts, base, part in (
            (self.positive, pos_base, o_pos),
            (self.negative, neg_base, o_neg),
        ):
            if part:
                end = base + len(part)
                counts[base:end] = map(op, counts[base:end], part)
                if sign < 0 and min(counts[base:end]) < 0:
                    clamp = True
        self.count += sign * other.count
        self.sum += sign * other.sum
        self.zero_count += sign * other.zero_count
        self.zero_threshold = max(self.zero_threshold, other.zero_threshold)
        if sign < 0:
            if clamp:
                self.positive = [c if c > 0 else 0 for c in self.positive]
                self.negative = [c if c > 0 else 0 for c in self.negative]
            self.zero_count = max(self.zero_count, 0)
            self.count = max(self.count, 0)
            self.positive_offset, self.positive = _trim(self.positive_offset, self.positive)
            self.negative_offset, self.negative = _trim(self.negative_offset, self.negative)
        return True

    def merge(self, other: ExpHistogram, max_buckets: int, sign: int = 1) -> None:
        """Add (``sign=1``) or subtract (``sign=-1``) ``other`` into self, aligning scales.

        ``other`` is not modified. Subtraction is meant for "later cumulative minus earlier
        snapshot" and clamps any negative bucket to zero (it can only come from a
        downscale boundary effect, never from real data, since both sides only grow).
        """
        if other.scale >= self.scale and self._merge_in_place(other, sign):
            return
        # max_buckets <= 0 skips the fit: only for callers that know both ranges are small.
        scale = self._fit(other, max_buckets) if max_buckets > 0 else min(self.scale, other.scale)
        self.downscale(self.scale - scale)
        o_pos_off, o_pos = downscale_buckets(
            other.positive_offset, other.positive, other.scale - scale
        )
        o_neg_off, o_neg = downscale_buckets(
            other.negative_offset, other.negative, other.scale - scale
        )
        self.positive_offset, self.positive = add_buckets(
            self.positive_offset, self.positive, o_pos_off, o_pos, sign
        )
        self.negative_offset, self.negative = add_buckets(
            self.negative_offset, self.negative, o_neg_off, o_neg, sign
        )
        self.count += sign * other.count
        self.sum += sign * other.sum
        self.zero_count += sign * other.zero_count
        self.zero_threshold = max(self.zero_threshold, other.zero_threshold)
        if sign < 0:
            self.positive = [c if c > 0 else 0 for c in self.positive]
            self.negative = [c if c > 0 else 0 for c in self.negative]
            self.zero_count = max(self.zero_count, 0)
            self.count = max(self.count, 0)
            self.positive_offset, self.positive = _trim(self.positive_offset, self.positive)
            self.negative_offset, self.negative = _trim(self.negative_offset, self.negative)

    def quantile(self, q: float) -> float:
        """Estimate quantile ``q`` (0..1); NaN when empty.

        The contract's estimate (``gemini_slo.contract.exponential.quantile``, shared with
        the instrumentation): log-linear inside the bucket, which is what an exponential
        layout assumes. At scale 5 a bucket is 2.2% wide, so the estimate is within about
        1% of the true value even before interpolation helps.
        """
        return exponential.quantile(
            q,
            self.scale,
            self.positive_offset,
            self.positive,
            zero_count=self.zero_count,
            negative_offset=self.negative_offset,
            negative=self.negative,
            count=self.count,
        )

    def fraction_at_or_below(self, threshold: float) -> float:
        """Fraction of the observations <= ``threshold`` (log-linear inside a bucket)."""
        total = self.count
        if total <= 0:
            return math.nan
        if threshold < 0:
            return math.nan  # not needed by the agent (durations are positive)
        below = float(sum(self.negative) + self.zero_count)
        if threshold > 0:
            factor = 2.0**-self.scale
            position = math.log2(threshold) / factor  # fractional bucket position
            for i, c in enumerate(self.positive):
                index = self.positive_offset + i
                if index + 1 <= position:
                    below += c
                elif index < position:
                    below += c * (position - index)
                else:
                    break
        return min(below / total, 1.0)


def _range(offset: int, counts: list[int]) -> tuple[int, int]:
    """First and last non-empty bucket index (lo > hi when empty)."""
    first = 0
    n = len(counts)
    while first < n and counts[first] == 0:
        first += 1
    if first == n:
        return 0, -1
    last = n - 1
    while counts[last] == 0:
        last -= 1
    return offset + first, offset + last
