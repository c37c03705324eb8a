"""Exports split below the agent's per-request limits: a collection too large for one body
is sent as several, each accepted by a real agent, and no series is lost (before, from
about 10,000 models on, every export was refused whole with 413)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from gemini_slo.agent.testing import AgentHandle, running_agent
from gemini_slo.contract import signals as S
from gemini_slo.contract.otlp_limits import MAX_REQUEST_BYTES, MAX_REQUEST_POINTS
from gemini_slo.instrumentation import Registry, observe
from gemini_slo.instrumentation._export_otlp import (
    OtlpExporter,
    resource_size_bound,
    split_points,
    to_metrics_data,
)
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.sdk.resources import Resource
from prometheus_client.parser import text_string_to_metric_families

FLASH = "gemini-2.5-flash"


def _flood(registry: Registry, models: int, workload: str = "junk") -> None:
    for i in range(models):
        with observe(workload=workload, mode="latency", model=f"m-{i}", registry=registry) as c:
            c.record_usage(prompt_tokens=5, output_tokens=3)


def _resource(name: str) -> Resource:
    return Resource.create({S.RESOURCE_SERVICE_NAME: name, S.RESOURCE_SERVICE_INSTANCE: name})


def test_split_points_respects_both_limits() -> None:
    """Every run holds at most max_points points and encodes to at most max_bytes (the
    size bound is an upper bound of the real protobuf size); every point is sent once, in
    order; and the bound is not so loose that it wastes bodies."""
    registry = Registry(max_series=10_000)
    _flood(registry, 400)
    points = registry.collect()
    now = time.time_ns()
    for max_points, max_bytes in ((500, 100_000), (10_000, 300_000), (50, 10**9)):
        batches = split_points(points, max_points, max_bytes, resource_size_bound(_resource("t")))
        assert [p for b in batches for p in b] == points
        sizes = []
        for batch in batches:
            assert 0 < len(batch) <= max_points
            request = encode_metrics(to_metrics_data(batch, _resource("t"), 0, now))
            sizes.append(request.ByteSize())
            assert sizes[-1] <= max_bytes, (max_points, max_bytes)
        by_size = -(-sum(sizes) // max_bytes)
        by_count = -(-len(points) // max_points)
        print(f"{len(batches)} bodies; {by_size} by encoded size, {by_count} by count")
        assert len(batches) <= 2 * max(by_size, by_count) + 1


def _calls_by_model(agent: AgentHandle) -> dict[str, float]:
    """Calls per model label in the agent's scrape (only the calls lines are parsed: the
    full parser takes seconds on a scrape this large)."""
    prefix = S.CALLS.prometheus + "{"
    lines = "\n".join(line for line in agent.scrape().splitlines() if line.startswith(prefix))
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(lines + "\n"):
        for sample in family.samples:
            model = sample.labels.get(S.LABEL_MODEL, "")
            out[model] = out.get(model, 0.0) + sample.value
    return out


@pytest.fixture
def small_agent() -> Iterator[AgentHandle]:
    """An agent with small per-request limits, and room for every series."""
    with running_agent(
        max_points=3_000,
        max_body_bytes=512 * 1024,
        max_decompressed_bytes=512 * 1024,
        max_series_per_metric=10_000,
    ) as agent:
        yield agent


def test_a_collection_over_the_limits_reaches_the_agent_whole(small_agent: AgentHandle) -> None:
    """1,000 models against an agent that takes 3,000 points or 512 KiB a request: sent
    unsplit it is refused (the control), split every body is accepted and every series is
    there with its exact count."""
    registry = Registry(max_series=10_000)
    _flood(registry, 1_000)
    url = f"{small_agent.otlp_url}/v1/metrics"
    unsplit = OtlpExporter(
        registry,
        url,
        _resource("unsplit"),
        interval=3600,
        exit_timeout=0,
        max_points=10**9,
        max_bytes=10**12,
    )
    try:
        assert unsplit.flush() is False
    finally:
        unsplit.shutdown()
    assert small_agent.agent.self_metrics.rejected_requests  # what the agent refused
    refused = dict(small_agent.agent.self_metrics.rejected_requests)

    exporter = OtlpExporter(
        registry, url, _resource("split"), interval=3600, max_points=3_000, max_bytes=512 * 1024
    )
    try:
        assert exporter.flush() is True
        assert exporter.requests > 4
    finally:
        exporter.shutdown()
    assert dict(small_agent.agent.self_metrics.rejected_requests) == refused  # none more
    calls = _calls_by_model(small_agent)
    assert len(calls) == 1_000
    assert set(calls.values()) == {1.0}


def _timed_flush(agent: AgentHandle, registry: Registry, what: str) -> int:
    """Flush ``registry`` to ``agent`` once (asserting success), print how long it took;
    the number of request bodies sent. exit_timeout 0: no second export at shutdown."""
    exporter = OtlpExporter(
        registry, f"{agent.otlp_url}/v1/metrics", _resource("app"), interval=3600, exit_timeout=0
    )
    try:
        started = time.perf_counter()
        assert exporter.flush() is True
        elapsed = time.perf_counter() - started
    finally:
        exporter.shutdown()
    print(f"{what}: flush {elapsed:.2f} s in {exporter.requests} bodies")
    return exporter.requests


@pytest.mark.slow
def test_ten_thousand_models_with_the_default_limits() -> None:
    """10,000 distinct models (the cardinality limit raised to keep them all) against an
    agent with its default limits: the export goes through in several bodies, and the spec
    workload's own series arrive with their exact count."""
    registry = Registry(max_series=20_000)
    for _ in range(7):
        with observe(workload="chat", mode="latency", model=FLASH, registry=registry):
            pass
    _flood(registry, 10_000)
    points = registry.collect()
    assert len(points) > MAX_REQUEST_POINTS  # one body could not hold them
    with running_agent() as agent:
        requests = _timed_flush(agent, registry, "10,000 models")
        assert requests >= len(points) // MAX_REQUEST_POINTS + 1
        assert not agent.agent.self_metrics.rejected_requests
        assert _calls_by_model(agent)[FLASH] == 7


@pytest.mark.slow
def test_flush_with_fifty_thousand_models_is_quick_and_delivered() -> None:
    """50,000 distinct models with the default cardinality limit: the flush is delivered
    (it was refused with 413 after 8-30 s before the limit and the split) and prints its
    time; every call reaches the agent (the folded ones under their workload)."""
    registry = Registry()
    _flood(registry, 50_000)
    with running_agent() as agent:
        _timed_flush(agent, registry, "50,000 models")
        assert sum(_calls_by_model(agent).values()) == 50_000
    assert MAX_REQUEST_BYTES == 8 * 1024 * 1024
