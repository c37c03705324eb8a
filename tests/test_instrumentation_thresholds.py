"""SLO thresholds as bucket boundaries (``Thresholds`` in ``_values.py``, layouts from the
contract's ``signals.bucket_layout``): from the spec model, from a mapping, changed mid-call."""

from __future__ import annotations

from pathlib import Path

import pytest
from gemini_slo.contract import signals as S
from gemini_slo.contract.durations import parse_duration
from gemini_slo.contract.spec import SpecError, default_spec_path, load_spec
from gemini_slo.instrumentation import (
    Registry,
    _state,
    configure,
    observe,
    shutdown,
    testing,
)
from gemini_slo.instrumentation._values import Thresholds

FLASH = "gemini-2.5-flash"


def test_thresholds_from_spec() -> None:
    """The example spec's latency and TTFT thresholds become bucket boundaries."""
    spec = load_spec(default_spec_path())
    thresholds = Thresholds.from_spec(spec)
    assert thresholds.duration["chat"] == (0.5, 0.8)
    assert thresholds.ttft["chat"] == (0.3,)
    assert (
        parse_duration("1.5s") == 1.5
        and parse_duration("250ms") == 0.25
        and parse_duration("2s") == 2.0
    )
    # Exact decimals, as the spec model gives: the rules match these boundaries literally.
    assert [parse_duration(v) for v in ("700ms", "350ms", "1100ms")] == [0.7, 0.35, 1.1]
    registry = Registry(thresholds)
    series = registry.call_series(("chat", "latency", "generate_content", "gcp.gemini", FLASH))
    assert 0.5 in series.duration_bounds and 0.8 in series.duration_bounds


def test_registry_layout_is_the_spec_models_layout() -> None:
    """What the registry records into is what the generated rules count at: the spec
    model's layout (both from signals.bucket_layout), for every workload and mode."""
    spec = load_spec(default_spec_path())
    registry = Registry(Thresholds.from_spec(spec))
    for workload in spec.workloads:
        key = (workload.name, workload.mode.value, S.OPERATION_GENERATE, S.PROVIDER_GEMINI, FLASH)
        series = registry.call_series(key)
        assert series.duration_bounds == workload.bucket_layout.duration
        assert series.ttft.bounds == workload.bucket_layout.ttft
        assert set(workload.latency_thresholds) <= set(series.duration_bounds)


def test_mapping_and_spec_thresholds_are_united() -> None:
    """configure(thresholds=...) and configure(spec=...) together: the union, per workload;
    a mapping's values bound both the duration and the TTFT buckets."""
    mapping = Thresholds.from_mapping({"chat": [0.45, 0.5, 0.45], "other": [2]})
    assert mapping.duration == {"chat": (0.45, 0.5), "other": (2.0,)}
    assert mapping.ttft == mapping.duration
    united = mapping.union(Thresholds.from_spec(load_spec(default_spec_path())))
    assert united.duration["chat"] == (0.45, 0.5, 0.8)
    assert united.ttft["chat"] == (0.3, 0.45, 0.5)
    assert united.duration["other"] == (2.0,) and united.duration["batch"] == ()
    assert Thresholds().union(mapping) == mapping


def test_configure_reads_the_spec_through_the_spec_model(tmp_path: Path) -> None:
    """An invalid spec fails loudly at configure() with the spec model's error (file, line,
    field); a valid one sets the default registry's thresholds."""
    bad = tmp_path / "slo.yaml"
    bad.write_text(
        "version: gemini-slo/v1\nworkloads:\n  - name: chat\n    mode: latency\n"
        "    objectives:\n      latency: {percentile: 95, threshold: fast}\n"
    )
    with pytest.raises(SpecError, match=r"slo.yaml:6: .*threshold"):
        configure(spec=bad, otlp=False)
    previous = _state.default_registry.thresholds
    try:
        configure(spec=default_spec_path(), otlp=False)
        assert _state.default_registry.thresholds.duration["chat"] == (0.5, 0.8)
    finally:
        shutdown()
        _state.default_registry.set_thresholds(previous)


def test_threshold_not_in_default_layout_becomes_a_boundary() -> None:
    """A threshold like 0.45 s is added to the layout, so compliance is counted exactly."""
    registry = Registry(Thresholds.from_mapping({"chat": [0.45]}))

    @observe(workload="chat", model=FLASH, registry=registry)
    def call() -> None:
        pass

    call()
    hist = testing.InMemoryRecorder(registry).histogram(S.OPERATION_DURATION, workload="chat")
    assert 0.45 in hist.bounds


def test_in_flight_survives_a_threshold_change() -> None:
    """Changing thresholds mid-call restarts the series but keeps in-flight balanced."""
    registry = Registry()
    rec = testing.InMemoryRecorder(registry)
    with observe(workload="chat", model=FLASH, registry=registry):
        assert rec.value(S.REQUESTS_IN_FLIGHT) == 1
        registry.set_thresholds(Thresholds.from_mapping({"chat": [0.33]}))
        assert rec.value(S.REQUESTS_IN_FLIGHT) == 1
    assert rec.value(S.REQUESTS_IN_FLIGHT) == 0
    assert 0.33 in rec.histogram(S.OPERATION_DURATION).bounds
