"""Exponential histograms in the agent: downscale, merge across scales, subtract, percentiles."""

from __future__ import annotations

import math
import random

from gemini_slo.agent.exponential import ExpHistogram, downscale_buckets
from gemini_slo.agent.windows import Windows, format_quantile
from gemini_slo.contract.durations import parse_duration as window_seconds
from hypothesis import given, settings
from hypothesis import strategies as st


def build(values: list[float], scale: int) -> ExpHistogram:
    """An exponential histogram of positive values at ``scale`` (OTLP bucket rule)."""
    h = ExpHistogram(scale)
    indexes = [math.ceil(math.log2(v) * 2**scale) - 1 for v in values]
    h.positive_offset = min(indexes)
    h.positive = [0] * (max(indexes) - h.positive_offset + 1)
    for i in indexes:
        h.positive[i - h.positive_offset] += 1
    h.count = len(values)
    h.sum = sum(values)
    return h


def test_downscale_merges_pairs_of_buckets() -> None:
    """One scale down maps index i to i >> 1, negative indexes included."""
    assert downscale_buckets(-3, [1, 2, 3, 4], 1) == (-2, [1, 5, 4])
    assert downscale_buckets(4, [1, 1, 1, 1], 2) == (1, [4])


def test_merge_aligns_to_the_smaller_scale() -> None:
    """Merging scale 5 and scale 3 gives scale 3 with every count kept."""
    rng = random.Random(3)
    a = build([rng.lognormvariate(0, 1) for _ in range(1000)], 5)
    b = build([rng.lognormvariate(0, 1) for _ in range(500)], 3)
    merged = ExpHistogram(20)
    merged.merge(a, 320)
    merged.merge(b, 320)
    assert merged.scale == 3
    assert merged.count == 1500 == sum(merged.positive)


def test_merge_downscales_to_fit_max_buckets() -> None:
    """A merged range wider than max_buckets halves the resolution until it fits."""
    a = build([0.001, 0.002], 5)
    b = build([1000.0], 5)
    a.merge(b, 64)
    assert len(a.positive) <= 64
    assert a.count == 3 == sum(a.positive)


def test_subtraction_gives_the_window_content() -> None:
    """Later cumulative minus an earlier snapshot = what came in between."""
    first = [0.1, 0.2, 0.3]
    later = build([*first, 5.0, 6.0], 5)
    window = later.copy()
    window.merge(build(first, 5), 320, sign=-1)
    assert window.count == 2
    assert 4.8 < window.quantile(0.5) < 6.2


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.001, 1000.0), min_size=50, max_size=400),
    st.sampled_from([0.5, 0.9, 0.99]),
    st.integers(0, 5),
)
def test_quantile_is_within_one_bucket_of_exact(values: list[float], q: float, scale: int) -> None:
    """The estimate lies inside (or at the edges of) the bucket holding the exact rank."""
    h = build(values, scale)
    exact = sorted(values)[max(math.ceil(q * len(values)) - 1, 0)]
    width = 2 ** (2.0**-scale)
    assert exact / width <= h.quantile(q) * (1 + 1e-9)
    assert h.quantile(q) <= exact * width * (1 + 1e-9)


def test_lognormal_percentiles_within_one_percent() -> None:
    """A lognormal sample of 50k at scale 5: p50/p95/p99 within 1% of exact."""
    rng = random.Random(7)
    values = [rng.lognormvariate(-1.0, 0.6) for _ in range(50_000)]
    h = build(values, 5)
    ordered = sorted(values)
    for q in (0.5, 0.95, 0.99):
        exact = ordered[math.ceil(q * len(values)) - 1]
        assert abs(h.quantile(q) - exact) / exact < 0.01


def test_fraction_at_or_below() -> None:
    """Share of observations under a threshold, for error budgets."""
    h = build([0.1] * 90 + [2.0] * 10, 5)
    assert math.isclose(h.fraction_at_or_below(0.5), 0.9)
    assert h.fraction_at_or_below(10.0) == 1.0


def test_windows_helpers() -> None:
    """Window and quantile label spellings."""
    assert window_seconds("1m") == 60 and window_seconds("5m") == 300
    assert [format_quantile(q) for q in (0.5, 0.95, 0.999)] == ["0.5", "0.95", "0.999"]


def test_windows_snapshots_are_not_mutated_by_later_increments() -> None:
    """Copy on write: a snapshot keeps its counts while the aggregate grows."""
    now = [0.0]
    windows = Windows(clock=lambda: now[0], snapshot_interval=1.0)
    key = ("m", "w", "latency", "model")
    windows.add_histogram(key, build([0.1] * 10, 5), now[0])
    now[0] = 2.0
    windows.tick()
    windows.add_histogram(key, build([0.1] * 5, 5), now[0])
    now[0] = 70.0
    windows.tick()
    assert windows.histogram(key, "1m").count == 5
    assert windows.lifetime_histogram(key).count == 15


def test_expired_counter_never_goes_negative_in_a_window() -> None:
    """A counter forgotten after a long silence reads 0 in every window, not minus its total."""
    now = [0.0]
    windows = Windows(clock=lambda: now[0], snapshot_interval=5.0)
    key = ("m", "w", "latency", "ok")
    windows.add_counter(key, 7.0, now[0])
    for t in range(5, 320, 5):
        now[0] = float(t)
        windows.tick()
    windows.expire(now[0], idle=300.0)
    assert windows.counter(key, "5m") == 0.0
    assert windows.counter(key, None) == 0.0
