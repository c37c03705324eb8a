"""Issue #16, agent side: ``--state-file``, restarts without loss (the fast tests).

The regression test with a real Prometheus is tests/test_e2e_restart.py; these check the
state file itself: what it restores, that an app's next export after a restart is an
increment, that a broken file starts the agent empty, and how and when it is written.
"""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest
from gemini_slo.agent import state_file
from gemini_slo.agent.exposition import StoreCollector, make_registry
from gemini_slo.agent.store import Store, StoreLimits
from gemini_slo.agent.testing import (
    exponential_metric,
    gauge_metric,
    histogram_metric,
    otlp_request,
    post_otlp,
    running_agent,
    sum_metric,
)
from gemini_slo.agent.windows import Windows
from gemini_slo.contract import agent_series, signals
from gemini_slo.contract.spec import default_spec_path, load_spec
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

SPEC = load_spec(default_spec_path())
CALLS = signals.CALLS.name
ATTRS = {
    signals.ATTR_WORKLOAD: "chat",
    signals.ATTR_MODE: "latency",
    signals.ATTR_REQUEST_MODEL: "gemini-2.5-flash",
}
OK = {**ATTRS, signals.ATTR_OUTCOME: "ok"}


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def make_store(clock: Clock, **limits: float) -> Store:
    return Store(
        StoreLimits(**limits),  # type: ignore[arg-type]
        windows=Windows(clock=clock),
        clock=clock,
        spec=SPEC,
    )


#: Series the state file does not hold: the windows' percentiles start afresh.
_WINDOWED = set(agent_series.PERCENTILE_METRICS.values())


def scrape(store: Store) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every merged sample (not the agent's own health nor the windows), by name and labels."""
    text = generate_latest(make_registry(StoreCollector(store))).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if not s.name.startswith(agent_series.AGENT_PREFIX) and s.name not in _WINDOWED
    }


def export(
    store: Store, instance: str, calls: float, durations: list[float], t: int, start: int = 1
) -> None:
    """One instance's cumulative export: calls, a classic and an exponential histogram, a gauge."""
    buckets = [
        sum(d <= 0.5 for d in durations),
        sum(0.5 < d <= 1.0 for d in durations),
        sum(d > 1.0 for d in durations),
    ]
    duration = signals.OPERATION_DURATION.name
    exponential = signals.OPERATION_DURATION_EXPONENTIAL.name
    store.ingest(
        otlp_request(
            [
                sum_metric(CALLS, [(OK, calls)], start=start, time_=t),
                histogram_metric(
                    duration, ATTRS, [0.5, 1.0], buckets, sum(durations), start=start, time_=t
                ),
                exponential_metric(exponential, ATTRS, durations, start=start, time_=t),
                gauge_metric(signals.REQUESTS_IN_FLIGHT.name, [(ATTRS, 2.0)], time_=t),
            ],
            instance=instance,
        )
    )


def test_the_state_round_trips_and_the_next_export_is_an_increment(tmp_path: Path) -> None:
    """Counters, classic histograms and gauges come back as they were, with the totals of
    an instance that has exited; a live instance's next cumulative point then adds only
    its increment (the restored store and one that never restarted agree exactly)."""
    clock = Clock()
    before = make_store(clock)
    export(before, "gone", 40, [0.2] * 40, t=10)
    export(before, "live", 10, [0.7] * 10, t=10)
    path = tmp_path / "state.json"
    size = state_file.save(before, path)
    assert size == path.stat().st_size > 0
    after = make_store(clock)
    loaded = state_file.load(after, path)
    assert (loaded.series, loaded.dropped) == (before.series_count(), 0)
    assert scrape(after) == scrape(before)
    assert after.instance_count() == before.instance_count()
    for store in (before, after):  # "gone" never comes back; "live" counts on
        export(store, "live", 15, [0.7] * 10 + [1.5] * 5, t=20)
    assert scrape(after) == scrape(before)
    assert scrape(after)[(signals.CALLS.prometheus, tuple(sorted(
        {k.replace(".", "_"): v for k, v in OK.items()}.items())))] == 55  # fmt: skip
    # The exponential histogram's instance state came back too: the increment, not the
    # whole total, reaches the windows.
    group = (signals.OPERATION_DURATION_EXPONENTIAL.name, "chat", "latency", "gemini-2.5-flash")
    assert after.windows.lifetime_histogram(group).count == 5


def test_staleness_counts_the_downtime_and_a_retired_instance_is_not_counted_twice(
    tmp_path: Path,
) -> None:
    """Ages are kept: an agent down longer than stale_after expires the instance at its
    next maintenance, and the instance, back with the same start time, revives from the
    retired table instead of being counted again from zero."""
    clock = Clock()
    before = make_store(clock, stale_after=300)
    export(before, "app", 10, [0.2] * 10, t=10)
    path = tmp_path / "state.json"
    state_file.save(before, path)
    document = json.loads(path.read_text())
    document["saved_at"] -= 400  # written 400 s ago: the agent was down that long
    path.write_text(json.dumps(document))
    after = make_store(clock, stale_after=300)
    assert state_file.load(after, path).age >= 400
    after.expire()
    assert after.instance_count() == 0  # stale: retired, its total kept
    export(after, "app", 12, [0.2] * 12, t=20)
    key = (
        signals.CALLS.prometheus,
        tuple(sorted({k.replace(".", "_"): v for k, v in OK.items()}.items())),
    )
    assert scrape(after)[key] == 12


@pytest.mark.parametrize(
    "content",
    [b"", b"{not json", b'{"format": "something else"}',
     b'{"format": "gemini-slo-agent-state", "version": 99}',
     b'{"format": "gemini-slo-agent-state", "version": 1, "saved_at": 0, "families": [{}]}'],
    ids=["empty", "garbled", "foreign", "newer", "truncated"],
)  # fmt: skip
def test_an_unusable_state_file_restores_nothing(tmp_path: Path, content: bytes) -> None:
    """A file that does not decode whole is a StateError and leaves the store empty; the
    agent then starts empty, says so, and overwrites it at its next write."""
    path = tmp_path / "state.json"
    path.write_bytes(content)
    store = make_store(Clock())
    with pytest.raises(state_file.StateError):
        state_file.load(store, path)
    assert store.series_count() == 0
    with running_agent(state_file=path) as agent:
        assert agent.store.series_count() == 0
        body = otlp_request([sum_metric(CALLS, [(OK, 3.0)])]).SerializeToString()
        assert post_otlp(agent.otlp_url + "/v1/metrics", body)[0] == 200
    assert json.loads(path.read_text())["format"] == state_file.FORMAT


def test_an_agent_restart_with_a_state_file_loses_nothing(tmp_path: Path) -> None:
    """Two agents in turn on the same state file: the first one's totals (an exited app's
    among them) are there at the second's first scrape, and the live app's next export
    adds its increment only."""
    path = tmp_path / "state.json"

    def post(agent_url: str, instance: str, calls: float, t: int) -> None:
        request: ExportMetricsServiceRequest = otlp_request(
            [sum_metric(CALLS, [(OK, calls)], time_=t)], instance=instance
        )
        assert post_otlp(agent_url + "/v1/metrics", request.SerializeToString())[0] == 200

    def total(text: str) -> float:
        return sum(
            s.value
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.name == signals.CALLS.prometheus
        )

    with running_agent(state_file=path) as first:
        post(first.otlp_url, "gone", 40, 10)
        post(first.otlp_url, "live", 10, 10)
        assert total(first.scrape()) == 50
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # label values are data
    with running_agent(state_file=path) as second:
        assert total(second.scrape()) == 50
        post(second.otlp_url, "live", 15, 20)
        assert total(second.scrape()) == 55


def test_the_state_file_is_written_at_intervals_atomically(tmp_path: Path) -> None:
    """Written every state_interval (not only at shutdown), through a temporary file
    renamed over the old one, and counted in the self-metrics."""
    path = tmp_path / "state.json"
    with running_agent(
        state_file=path, state_interval=0.2, maintenance_interval=0.1, snapshot_interval=0.1
    ) as agent:
        body = otlp_request([sum_metric(CALLS, [(OK, 7.0)])]).SerializeToString()
        assert post_otlp(agent.otlp_url + "/v1/metrics", body)[0] == 200
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if path.exists() and json.loads(path.read_text())["families"]:
                break
            time.sleep(0.05)
        assert path.exists(), "no state file while the agent runs"
        writes = [
            s.value
            for f in text_string_to_metric_families(agent.scrape())
            for s in f.samples
            if s.name == agent_series.STATE_WRITES and s.labels == {"outcome": "ok"}
        ]
        assert writes and writes[0] >= 1
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temporary left
