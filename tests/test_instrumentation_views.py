"""otel_views(spec): the official instrumentation records into the spec's bucket layout."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from gemini_slo.contract import signals as S
from gemini_slo.contract.spec import default_spec_path, load_spec, parse_spec
from gemini_slo.emulator.testing import running_emulator
from gemini_slo.instrumentation import otel_views
from google import genai
from google.genai import types
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

SPEC = load_spec(default_spec_path())
MODEL = "gemini-2.5-flash"


def test_views_carry_the_contract_layout_with_every_threshold() -> None:
    """The duration and TTFT views use Workload.bucket_layout; every threshold is a boundary."""
    chat = SPEC.workload("chat")
    views = otel_views(SPEC, "chat")
    assert [v._instrument_name for v in views] == [
        S.OPERATION_DURATION.name,
        S.TIME_TO_FIRST_CHUNK.name,
    ]
    duration, ttft = (tuple(v._aggregation._boundaries) for v in views)
    assert duration == chat.bucket_layout.duration
    assert ttft == chat.bucket_layout.ttft
    assert set(chat.latency_thresholds) <= set(duration)
    assert set(chat.ttft_thresholds) <= set(ttft)


def test_all_workloads_merge_their_boundaries() -> None:
    """Without a workload, every workload's thresholds are boundaries (one process, many)."""
    spec = parse_spec(
        "version: gemini-slo/v1\nworkloads:\n"
        "  - {name: a, mode: latency, objectives: {latency: {percentile: 95, threshold: 333ms}}}\n"
        "  - {name: b, mode: latency, objectives: {latency: {percentile: 95, threshold: 777ms}}}\n"
    )
    duration = tuple(otel_views(spec)[0]._aggregation._boundaries)
    assert {0.333, 0.777} <= set(duration)
    assert list(duration) == sorted(set(duration))
    with pytest.raises(KeyError):
        otel_views(spec, "nope")


@pytest.fixture
def official() -> Iterator[tuple[Any, InMemoryMetricReader, Any]]:
    """The official GoogleGenAiSdkInstrumentor on an in-memory reader with our views."""
    from opentelemetry.instrumentation.google_genai import GoogleGenAiSdkInstrumentor

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], views=otel_views(SPEC, exponential=True))
    instrumentor = GoogleGenAiSdkInstrumentor()
    instrumentor.instrument(skip_dep_check=True, meter_provider=provider)
    try:
        with running_emulator(seed=1, time_scale=0.0) as emu:
            client = genai.Client(api_key="t", http_options=types.HttpOptions(base_url=emu.url))
            yield client, reader, provider
    finally:
        instrumentor.uninstrument()
        provider.shutdown()


def test_official_instrumentation_records_into_our_buckets(
    official: tuple[Any, InMemoryMetricReader, Any],
) -> None:
    """Real SDK calls: duration and TTFT histograms have our boundaries, twins are exponential."""
    client, reader, _ = official
    client.models.generate_content(model=MODEL, contents="hi")
    for _ in client.models.generate_content_stream(model=MODEL, contents="hi"):
        pass
    data = reader.get_metrics_data()
    assert data is not None
    metrics = {
        m.name: m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
    }
    layout = SPEC.workload("chat").bucket_layout
    merged = otel_views(SPEC)
    duration = metrics[S.OPERATION_DURATION.name].data.data_points
    assert tuple(duration[0].explicit_bounds) == tuple(merged[0]._aggregation._boundaries)
    assert set(layout.duration) <= set(duration[0].explicit_bounds)
    assert sum(p.count for p in duration) == 2
    # The official instrumentation writes the old gen_ai.system name, not the semconv's.
    assert {p.attributes[S.ATTR_PROVIDER] for p in duration} == {"gemini"}
    assert "gemini" in S.PROVIDER_VALUES
    ttft = metrics[S.TIME_TO_FIRST_CHUNK.name].data.data_points
    assert set(layout.ttft) <= set(ttft[0].explicit_bounds)
    twin = metrics[S.OPERATION_DURATION_EXPONENTIAL.name].data.data_points
    assert sum(p.count for p in twin) == 2 and twin[0].scale <= S.EXPONENTIAL_SCALE
    assert S.TIME_TO_FIRST_CHUNK_EXPONENTIAL.name in metrics
