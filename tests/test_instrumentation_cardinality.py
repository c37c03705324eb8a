"""The registry's cardinality limit: past ``max_series`` distinct call attribute sets, calls
fold into one overflow series per workload and mode (``otel.metric.overflow=true``), totals
stay exact, the folding is counted and warned about once, and memory no longer grows with
the number of distinct model names."""

from __future__ import annotations

import gc
import logging
import tracemalloc

import pytest
from gemini_slo.contract import signals as S
from gemini_slo.contract.otlp_limits import CARDINALITY_LIMIT
from gemini_slo.instrumentation import Registry, configure, observe, pricing, shutdown, testing
from gemini_slo.instrumentation._registry import OVERFLOW_WARNING_INTERVAL
from gemini_slo.instrumentation.config import resolve

OVERFLOW = {S.ATTR_OVERFLOW: "true"}


def _calls(registry: Registry, workload: str, mode: str, models: range, prefix: str) -> None:
    for i in range(models.start, models.stop):
        with observe(
            workload=workload, mode=mode, model=f"{prefix}-{i}", registry=registry
        ) as call:
            call.record_usage(prompt_tokens=3, output_tokens=2)


def test_overflow_series_per_workload_keep_exact_totals() -> None:
    """600 distinct models against a limit of 50 (a reserve of 1 series for each of 8
    workloads, 42 shared): chat keeps its reserve and the pool (43), batch, arriving after
    the flood, its reserve (1); the rest fold into one overflow series per workload and mode
    carrying the workload, and calls, tokens and in-flight still add up to what was
    recorded."""
    registry = Registry(max_series=50)
    assert (registry.budget.reserve, registry.budget.pool) == (1, 42)
    _calls(registry, "chat", "latency", range(500), "junk")
    _calls(registry, "batch", "throughput", range(100), "other")
    rec = testing.InMemoryRecorder(registry)

    keys = {tuple(sorted(a.items())) for a in rec.series(S.CALLS)}
    overflow = [dict(k) for k in keys if dict(k).get(S.ATTR_OVERFLOW) == "true"]
    assert len(keys) == 43 + 1 + 2
    assert sorted((o[S.ATTR_WORKLOAD], o[S.ATTR_MODE]) for o in overflow) == [
        ("batch", "throughput"),
        ("chat", "latency"),
    ]
    for o in overflow:  # no model, operation or provider: nothing per folded key
        assert set(o) == {S.ATTR_WORKLOAD, S.ATTR_MODE, S.ATTR_OVERFLOW, S.ATTR_OUTCOME}
    assert rec.value(S.CALLS) == 600
    assert rec.value(S.CALLS, workload="chat") == 500
    assert rec.value(S.CALLS, workload="batch") == 100
    assert rec.value(S.CALLS, workload="chat", attributes=OVERFLOW) == 500 - 43
    assert rec.value(S.CALLS, workload="batch", attributes=OVERFLOW) == 100 - 1
    assert rec.value(S.TOKENS, token_type="input") == 600 * 3
    assert rec.value(S.TOKENS, token_type="output") == 600 * 2
    assert rec.histogram(S.OPERATION_DURATION, workload="chat").count == 500
    assert rec.value(S.REQUESTS_IN_FLIGHT) == 0
    assert registry.overflow_calls == 457 + 99
    # The overflow series have the signals of their mode, as any series does.
    assert rec.value(S.DEADLINE_EXCEEDED, attributes=OVERFLOW) == 0
    assert rec.series(S.DEADLINE_EXCEEDED, attributes={**OVERFLOW, S.ATTR_WORKLOAD: "chat"})
    assert not rec.series(S.DEADLINE_EXCEEDED, workload="batch")


def test_a_known_series_keeps_counting_after_the_limit() -> None:
    """A series admitted before the limit was reached keeps its own points afterwards."""
    registry = Registry(max_series=3)
    _calls(registry, "chat", "latency", range(3), "m")
    _calls(registry, "chat", "latency", range(3, 30), "m")
    _calls(registry, "chat", "latency", range(2), "m")
    rec = testing.InMemoryRecorder(registry)
    assert rec.value(S.CALLS, model="m-0") == 2
    assert rec.value(S.CALLS, model="m-1") == 2
    assert rec.value(S.CALLS, model="m-2") == 1
    assert rec.value(S.CALLS, attributes=OVERFLOW) == 27


def test_overflow_bundles_are_bounded_too() -> None:
    """Distinct workload names past the limit share one overflow series per mode, without a
    workload: even a flood of workloads cannot grow the registry."""
    registry = Registry(max_series=2)
    for i in range(20):
        _calls(registry, f"w{i}", "latency", range(1), "m")
    rec = testing.InMemoryRecorder(registry)
    keys = {tuple(sorted(a.items())) for a in rec.series(S.CALLS)}
    assert len(keys) == 2 + 2 + 1
    assert rec.value(S.CALLS) == 20
    bare = [dict(k) for k in keys if S.ATTR_WORKLOAD not in dict(k)]
    assert bare == [{S.ATTR_MODE: "latency", S.ATTR_OVERFLOW: "true", S.ATTR_OUTCOME: "ok"}]
    assert rec.value(S.CALLS, attributes={S.ATTR_MODE: "latency", **OVERFLOW}) == 18


def test_one_warning_for_a_flood(caplog: pytest.LogCaptureFixture) -> None:
    """Folding 1,000 calls logs one warning (rate-limited), naming the limit and the knob."""
    registry = Registry(max_series=10)
    with caplog.at_level(logging.WARNING, logger="gemini_slo.instrumentation"):
        _calls(registry, "chat", "latency", range(1000), "junk")
        registry.collect()
    warnings = [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name != pricing.__name__  # junk is unpriced too
    ]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    message = warnings[0].getMessage()
    assert "more than 10 distinct call attribute sets" in message
    assert "GEMINI_SLO_MAX_SERIES" in message
    assert OVERFLOW_WARNING_INTERVAL >= 60


def _retained_bytes(models: int, max_series: int) -> int:
    """Bytes still allocated by a registry after ``models`` distinct model names."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        registry = Registry(max_series=max_series)
        _calls(registry, "chat", "latency", range(models), "flood")
        registry.collect()
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0] - before
        assert testing.InMemoryRecorder(registry).value(S.CALLS) == models
        del registry
        return retained
    finally:
        tracemalloc.stop()


def test_memory_is_bounded_by_the_limit() -> None:
    """Twenty times more distinct models cost next to nothing more once past the limit (the
    issue's 200,000 names took 1 GB unbounded), while without the limit every model costs a
    series: what grows is at most the price table's bounded cache of names."""
    small = _retained_bytes(1_000, max_series=100)
    large = _retained_bytes(20_000, max_series=100)
    unbounded = _retained_bytes(1_000, max_series=10**9)
    per_series = (unbounded - small) / 900
    per_extra_model = (large - small) / 19_000
    print(
        f"retained: 1,000 models {small} B, 20,000 models {large} B (limit 100); "
        f"1,000 unbounded {unbounded} B: {per_series:.0f} B a series, "
        f"{per_extra_model:.1f} B per model past the limit"
    )
    assert per_series > 1000  # the measurement sees series
    assert per_extra_model < 0.02 * per_series


def test_configure_sets_the_limit_and_the_environment_is_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """configure(max_series=...) applies to the default registry; GEMINI_SLO_MAX_SERIES is
    read, and a bad value is a clear error; the default is the SDK's 2,000."""
    assert resolve().max_series == CARDINALITY_LIMIT == 2000
    monkeypatch.setenv("GEMINI_SLO_MAX_SERIES", "300")
    assert resolve().max_series == 300
    monkeypatch.setenv("GEMINI_SLO_MAX_SERIES", "many")
    with pytest.raises(ValueError, match="GEMINI_SLO_MAX_SERIES='many' is not a number"):
        resolve()
    monkeypatch.delenv("GEMINI_SLO_MAX_SERIES")
    with pytest.raises(ValueError, match="max_series"):
        resolve(max_series=0)
    with testing.capture() as rec:
        try:
            configure(otlp=False, max_series=5)
            assert rec.registry.max_series == 5
            _calls(rec.registry, "chat", "latency", range(8), "m")
            assert rec.value(S.CALLS, attributes=OVERFLOW) == 3
        finally:
            shutdown()


def test_the_app_metrics_endpoint_shows_the_overflow_series() -> None:
    """The app's own /metrics (no agent) exposes the overflow series with the label the
    standard translation gives, otel_metric_overflow="true", and the workload's total."""
    from gemini_slo.instrumentation._export_prometheus import RegistryCollector
    from prometheus_client import CollectorRegistry, generate_latest

    registry = Registry(max_series=2)
    _calls(registry, "chat", "latency", range(10), "m")
    exposition = CollectorRegistry(auto_describe=False)
    exposition.register(RegistryCollector(registry))
    text = generate_latest(exposition).decode()
    overflow = [
        line
        for line in text.splitlines()
        if line.startswith(S.CALLS.prometheus + "{") and f'{S.LABEL_OVERFLOW}="true"' in line
    ]
    assert len(overflow) == 1, text
    assert f'{S.LABEL_WORKLOAD}="chat"' in overflow[0]
    assert overflow[0].endswith(" 8.0")
