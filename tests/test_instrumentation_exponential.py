"""The instrumentation's exponential histogram (``_exponential.py``): bucket index, downscaling,
percentiles, and the quantile rule it shares with the agent (``contract/exponential.py``)."""

from __future__ import annotations

import math
import random

import pytest
from gemini_slo.agent.exponential import ExpHistogram
from gemini_slo.contract import signals as S
from gemini_slo.contract.exponential import bucket_index
from gemini_slo.instrumentation._exponential import ExponentialHistogram
from hypothesis import given, settings
from hypothesis import strategies as st


def test_exponential_index_is_upper_inclusive_at_powers_of_two() -> None:
    """A power of two closes its bucket (OTLP's (lower, upper] buckets), at every scale."""
    for scale in (-2, 0, 3, 5):
        for exp in (-10, -1, 0, 1, 7):
            value = 2.0**exp
            i = bucket_index(value, scale)
            base = 2.0 ** (2.0**-scale)
            assert base**i < value <= base ** (i + 1) * (1 + 1e-12)
            assert bucket_index(value * 1.0000001, scale) == i + 1 or scale <= 0


def test_exponential_downscales_and_keeps_counts() -> None:
    """Values spanning more than max_buckets lower the scale; no value is lost."""
    hist = ExponentialHistogram(S.EXPONENTIAL_SCALE, S.EXPONENTIAL_MAX_BUCKETS)
    values = [10.0**k for k in range(-6, 7)] + [0.0]
    for v in values:
        hist.record(v)
    snap = hist.snapshot()
    assert snap.scale < S.EXPONENTIAL_SCALE
    assert len(snap.bucket_counts) <= S.EXPONENTIAL_MAX_BUCKETS
    assert sum(snap.bucket_counts) + snap.zero_count == len(values) == snap.count
    for i, n in enumerate(snap.bucket_counts):  # every value sits in its bucket
        lo, hi = snap.bucket_bounds(i)
        inside = [v for v in values if v > 0 and lo < v <= hi * (1 + 1e-9)]
        assert len(inside) == n


def test_exponential_percentiles_within_one_percent() -> None:
    """Lognormal latencies with a heavy tail: p50/p95/p99 within 1% of exact."""
    rng = random.Random(7)
    values = sorted(rng.lognormvariate(math.log(0.3), 0.8) for _ in range(50_000))
    hist = ExponentialHistogram(S.EXPONENTIAL_SCALE, S.EXPONENTIAL_MAX_BUCKETS)
    for v in values:
        hist.record(v)
    snap = hist.snapshot()
    for q in (0.5, 0.95, 0.99):
        exact = values[math.ceil(q * len(values)) - 1]
        assert abs(snap.quantile(q) - exact) / exact < 0.01


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.floats(1e-4, 1e4), min_size=1, max_size=300),
    st.floats(0.0, 1.0),
)
def test_quantile_stays_within_the_observed_extremes(values: list[float], q: float) -> None:
    """The estimate never leaves [min, max] of what was recorded, at any rank."""
    hist = ExponentialHistogram(S.EXPONENTIAL_SCALE, S.EXPONENTIAL_MAX_BUCKETS)
    for v in values:
        hist.record(v)
    estimate = hist.snapshot().quantile(q)
    assert min(values) <= estimate <= max(values)


def test_the_agent_reads_the_same_buckets_alike() -> None:
    """One quantile rule: the agent's histogram holding the instrumentation's buckets gives
    the instrumentation's estimate wherever the observed extremes do not narrow the bucket
    (the agent's windows carry no min/max)."""
    rng = random.Random(11)
    hist = ExponentialHistogram(S.EXPONENTIAL_SCALE, S.EXPONENTIAL_MAX_BUCKETS)
    for _ in range(5000):
        hist.record(rng.lognormvariate(math.log(0.4), 0.7))
    snap = hist.snapshot()
    agent = ExpHistogram(
        snap.scale,
        count=snap.count,
        sum=snap.sum,
        zero_count=snap.zero_count,
        positive_offset=snap.offset,
        positive=list(snap.bucket_counts),
    )
    first, last = snap.bucket_bounds(0), snap.bucket_bounds(len(snap.bucket_counts) - 1)
    for q in (0.01, 0.1, 0.5, 0.9, 0.95, 0.99, 0.999):
        estimate = snap.quantile(q)
        if first[1] < estimate <= last[0]:
            assert agent.quantile(q) == pytest.approx(estimate, rel=1e-12)
    # In the top bucket the agent interpolates up to the bucket's bound, the snapshot only
    # up to the largest value seen.
    assert snap.quantile(1.0) == snap.max < agent.quantile(1.0) <= last[1] * (1 + 1e-12)
