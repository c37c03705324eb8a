"""The app's cardinality limit is shared fairly between workloads: a flood of distinct model
names in one workload takes its reserve and the common pool, never another workload's
reserve, so that workload's models keep their own series (a spec selector on the model still
matches them) with exact counts; totals stay exact and memory bounded."""

from __future__ import annotations

import gc
import tracemalloc

import pytest
from gemini_slo.contract import signals as S
from gemini_slo.contract.cardinality_budget import split_budget
from gemini_slo.instrumentation import Registry, observe, testing
from gemini_slo.instrumentation._registry import RESERVED_WORKLOADS
from gemini_slo.instrumentation._values import Thresholds

OVERFLOW = {S.ATTR_OVERFLOW: "true"}
B_MODELS = [f"gemini-b-{i}" for i in range(5)]


def _call(registry: Registry, workload: str, model: str) -> None:
    with observe(workload=workload, mode="latency", model=model, registry=registry) as call:
        call.record_usage(prompt_tokens=3, output_tokens=2)


def _flood_with_b(registry: Registry, flood: int) -> None:
    """Workload A sends ``flood`` distinct models; B's 5 models start once A has taken all
    it may (after 5,000 of A's) and go on during the flood: in round r (every 10,000 of A's)
    models r and up are called once, so model j is called j + 1 times."""
    for i in range(flood):
        _call(registry, "a", f"junk-{i}")
        if i % 10_000 == 5_000:
            for model in B_MODELS[i // 10_000 :]:
                _call(registry, "b", model)


def test_a_flood_of_fifty_thousand_models_never_folds_another_workload() -> None:
    """A floods 50,000 model names with the default limit (2,000); B's 5 models, arriving
    after the flood filled the limit, keep their own series with exact counts; A keeps its
    reserve plus the pool and folds the rest; calls and tokens add up exactly."""
    registry = Registry()
    budget = registry.budget
    assert (budget.reserve, budget.pool) == (62, 2000 - RESERVED_WORKLOADS * 62)
    _flood_with_b(registry, 50_000)
    rec = testing.InMemoryRecorder(registry)

    for j, model in enumerate(B_MODELS):
        assert rec.value(S.CALLS, workload="b", model=model) == j + 1
    assert not rec.series(S.CALLS, workload="b", attributes=OVERFLOW)
    kept_a = budget.reserve + budget.pool
    a_models = {
        a[S.ATTR_REQUEST_MODEL]
        for a in rec.series(S.CALLS, workload="a")
        if S.ATTR_REQUEST_MODEL in a
    }
    assert len(a_models) == kept_a
    assert rec.value(S.CALLS, workload="a", attributes=OVERFLOW) == 50_000 - kept_a
    assert registry.overflow_calls == 50_000 - kept_a
    total = 50_000 + sum(range(1, len(B_MODELS) + 1))
    assert rec.value(S.CALLS) == total
    assert rec.value(S.TOKENS, token_type="input") == 3 * total
    assert rec.value(S.TOKENS, token_type="output") == 2 * total
    assert rec.histogram(S.OPERATION_DURATION, workload="b").count == 15


def test_known_workloads_keep_a_reserve_under_a_flood_of_workload_names() -> None:
    """A flood of distinct *workload* names takes every first-seen reserve and the pool; a
    workload the registry was told of (thresholds, i.e. the spec's) still has its reserve."""
    registry = Registry(Thresholds.from_mapping({"spec-chat": [1.0]}), max_series=200)
    for i in range(500):
        _call(registry, f"w{i}", "m")
    for model in B_MODELS:
        _call(registry, "spec-chat", model)
    rec = testing.InMemoryRecorder(registry)
    assert registry.budget.reserve >= len(B_MODELS)
    for model in B_MODELS:
        assert rec.value(S.CALLS, workload="spec-chat", model=model) == 1
    assert rec.value(S.CALLS) == 500 + len(B_MODELS)
    kept = len([a for a in rec.series(S.CALLS) if S.ATTR_OVERFLOW not in a])
    assert kept <= registry.max_series


def test_past_its_reserve_and_the_pool_a_fair_workload_folds_into_its_own_overflow() -> None:
    """B's own share is its reserve (plus the pool, when A left some): past it, B's further
    models fold into B's overflow series, not A's, and A's kept series are untouched."""
    registry = Registry(max_series=64)  # reserve 2 per workload, pool 48
    assert (registry.budget.reserve, registry.budget.pool) == (2, 48)
    for i in range(100):
        _call(registry, "a", f"junk-{i}")
    for model in B_MODELS:
        _call(registry, "b", model)
    rec = testing.InMemoryRecorder(registry)
    assert rec.value(S.CALLS, workload="b", model=B_MODELS[0]) == 1
    assert rec.value(S.CALLS, workload="b", model=B_MODELS[1]) == 1
    assert rec.value(S.CALLS, workload="b", attributes=OVERFLOW) == 3
    assert rec.value(S.CALLS, workload="a", attributes=OVERFLOW) == 100 - 50


def test_the_split_is_the_agents_arithmetic() -> None:
    """The app and the agent cut a limit with the same rule: equal reserves capped by the
    limit, the rest pooled; and bad numbers are a clear error."""
    assert split_budget(2000, 0) == split_budget(2000, 0, 5)
    assert split_budget(2000, 0).pool == 2000
    assert split_budget(2000, 3) == type(split_budget(0, 0))(500, 500)
    assert split_budget(10, 3, per_workload=7) == type(split_budget(0, 0))(3, 1)
    with pytest.raises(ValueError, match="non-negative"):
        split_budget(-1, 2)


def _retained_bytes(flood: int) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        registry = Registry(max_series=100)
        for model in B_MODELS:
            _call(registry, "b", model)
        for i in range(flood):
            _call(registry, "a", f"flood-{i}")
        registry.collect()
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0] - before
        rec = testing.InMemoryRecorder(registry)
        assert rec.value(S.CALLS) == flood + len(B_MODELS)
        del registry, rec
        return retained
    finally:
        tracemalloc.stop()


def test_memory_stays_bounded_with_reserves() -> None:
    """Ten times more flood models cost next to nothing more: the reserves keep one counter
    per entitled workload, nothing per folded key."""
    small = _retained_bytes(2_000)
    large = _retained_bytes(20_000)
    per_extra_model = (large - small) / 18_000
    print(f"retained: 2,000 flood models {small} B, 20,000 {large} B: {per_extra_model:.1f} B")
    assert per_extra_model < 20  # a kept series costs about 4,300 B


def test_new_thresholds_give_their_workloads_a_reserve() -> None:
    """A registry whose first-seen reserves were all taken by a flood of workload names
    gives a workload a reserve once thresholds name it (``configure(spec=...)`` does this),
    and a call in flight across the change is still counted out of the new series."""
    registry = Registry(max_series=200)
    for i in range(500):
        _call(registry, f"w{i}", "m")
    with observe(workload="late", mode="latency", model=B_MODELS[0], registry=registry):
        registry.set_thresholds(Thresholds.from_mapping({"late": [0.5]}))
    for model in B_MODELS:
        _call(registry, "late", model)
    rec = testing.InMemoryRecorder(registry)
    assert "late" in registry.budget.reserved
    assert rec.value(S.CALLS, workload="late", model=B_MODELS[0]) == 2
    for model in B_MODELS[1:]:
        assert rec.value(S.CALLS, workload="late", model=model) == 1
    assert not rec.series(S.CALLS, workload="late", attributes=OVERFLOW)
    assert rec.value(S.REQUESTS_IN_FLIGHT) == 0
