"""The agent's series store: merging instances, restarts, delta, expiry, overflow, bad points.

Hand-built OTLP requests (gemini_slo.agent.testing builders) go straight into a Store with
a fake clock; the exposed values are read back through the scrape-time collector, parsed
with prometheus_client's parser, so that each test checks what Prometheus would see.
"""

from __future__ import annotations

import math

import pytest
from gemini_slo.agent.exposition import StoreCollector, make_registry
from gemini_slo.agent.store import Store, StoreLimits
from gemini_slo.agent.testing import (
    exponential_metric,
    gauge_metric,
    histogram_metric,
    otlp_request,
    sum_metric,
)
from gemini_slo.agent.windows import Windows
from gemini_slo.contract import agent_series, signals
from opentelemetry.proto.metrics.v1 import metrics_pb2
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

CALLS = signals.CALLS.name
ATTRS = {signals.ATTR_WORKLOAD: "chat", signals.ATTR_MODE: "latency", "gen_ai.request.model": "m"}


class Clock:
    """A manual monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_store(**limits: float) -> tuple[Store, Clock]:
    clock = Clock()
    store = Store(
        StoreLimits(**limits),  # type: ignore[arg-type]
        windows=Windows(clock=clock, snapshot_interval=1.0),
        clock=clock,
    )
    return store, clock


def scrape(store: Store) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Sample name -> {sorted labels: value}."""
    text = generate_latest(make_registry(StoreCollector(store))).decode()
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def calls_value(store: Store, labels: dict[str, str] | None = None) -> float:
    samples = scrape(store)["gemini_slo_client_calls_total"]
    want = {signals.prometheus_label(k): v for k, v in (labels or ATTRS).items()}
    return samples[tuple(sorted(want.items()))]


def test_cumulative_points_of_two_instances_are_summed() -> None:
    """Two processes with the same attributes are one series: their counts add up."""
    store, _ = make_store()
    store.ingest(otlp_request([sum_metric(CALLS, [(ATTRS, 5)])], instance="a"))
    store.ingest(otlp_request([sum_metric(CALLS, [(ATTRS, 7)])], instance="b"))
    assert calls_value(store) == 12
    store.ingest(otlp_request([sum_metric(CALLS, [(ATTRS, 8)], time_=3)], instance="a"))
    assert calls_value(store) == 15


def test_labels_are_translated_and_resource_attributes_dropped() -> None:
    """Point attributes become labels (dots to underscores); no job/instance labels."""
    store, _ = make_store()
    store.ingest(otlp_request([sum_metric(CALLS, [(ATTRS, 1)])], instance="a"))
    (labels,) = scrape(store)["gemini_slo_client_calls_total"]
    names = {k for k, _ in labels}
    assert names == {"gemini_slo_workload", "gemini_slo_mode", "gen_ai_request_model"}


def test_restart_with_new_start_time_keeps_the_counter_monotonic() -> None:
    """A restarted instance counts from zero again; the merged counter never goes down."""
    store, _ = make_store()
    store.ingest(otlp_request([sum_metric(CALLS, [(ATTRS, 100)], start=1, time_=2)]))
    store.ingest(otlp_request([sum_metric(CALLS, [(ATTRS, 3)], start=10, time_=11)]))
    assert calls_value(store) == 103
    store.ingest(otlp_request([sum_metric(CALLS, [(ATTRS, 5)], start=10, time_=12)]))
    assert calls_value(store) == 105


def test_value_going_down_without_new_start_time_is_a_reset() -> None:
    """A counter that went down (same start time) is treated as a restart, not a decrease."""
    store, _ = make_store()
    store.ingest(otlp_request([sum_metric(CALLS, [(ATTRS, 50)], time_=2)]))
    store.ingest(otlp_request([sum_metric(CALLS, [(ATTRS, 4)], time_=3)]))
    assert calls_value(store) == 54


def test_late_and_duplicate_points_are_ignored() -> None:
    """An out-of-order point or a retry of the same export does not count twice."""
    store, _ = make_store()
    store.ingest(otlp_request([sum_metric(CALLS, [(ATTRS, 10)], start=5, time_=6)]))
    store.ingest(otlp_request([sum_metric(CALLS, [(ATTRS, 10)], start=5, time_=6)]))
    store.ingest(otlp_request([sum_metric(CALLS, [(ATTRS, 8)], start=5, time_=4)]))
    store.ingest(otlp_request([sum_metric(CALLS, [(ATTRS, 99)], start=1, time_=7)]))
    assert calls_value(store) == 10


#: One instance's cumulative points (start, time, total) and the increment the merge rule
#: gives each: the same for a counter's value and a histogram's count.
_INCARNATION_STEPS = [
    (5, 6, 10, 10),  # the instance's first point: all of it
    (5, 6, 10, 0),  # the same point again (a retried export)
    (5, 4, 8, 0),  # out of order: older than the last point
    (1, 7, 99, 0),  # from an older incarnation
    (5, 8, 15, 5),  # the same incarnation, grown: the difference
    (5, 9, 4, 4),  # went down without a new start time: a restart, all of it
    (20, 21, 3, 3),  # a new start time: all of it
]


def _merged_count(kind: str, store: Store) -> float:
    """What the store merged so far: the counter, the histogram's count, the percentile input."""
    if kind == "counter":
        return calls_value(store)
    if kind == "histogram":
        samples = scrape(store)[signals.OPERATION_DURATION.prometheus + "_count"]
        return next(iter(samples.values()))
    (group,) = store.windows.groups()
    return store.windows.lifetime_histogram(group).count


def _cumulative_point(kind: str, start: int, time_: int, total: int) -> metrics_pb2.Metric:
    if kind == "counter":
        return sum_metric(CALLS, [(ATTRS, total)], start=start, time_=time_)
    if kind == "histogram":
        name = signals.OPERATION_DURATION.name
        return histogram_metric(
            name, ATTRS, [1.0], [total, 0], 0.5 * total, start=start, time_=time_
        )
    name = signals.OPERATION_DURATION_EXPONENTIAL.name
    return exponential_metric(name, ATTRS, [0.5] * total, start=start, time_=time_)


@pytest.mark.parametrize("kind", ["counter", "histogram", "exponential"])
def test_every_point_type_merges_by_the_same_rule(kind: str) -> None:
    """Late, duplicated, grown, reset and restarted points count alike for every type."""
    store, _ = make_store()
    merged = 0
    for start, time_, total, increment in _INCARNATION_STEPS:
        store.ingest(otlp_request([_cumulative_point(kind, start, time_, total)]))
        merged += increment
        assert _merged_count(kind, store) == merged, (start, time_, total)


def test_delta_points_accumulate() -> None:
    """Delta temporality: every point is an increment."""
    store, _ = make_store()
    for i in range(3):
        store.ingest(otlp_request([sum_metric(CALLS, [(ATTRS, 2)], delta=True, time_=i + 2)]))
    assert calls_value(store) == 6


def test_expired_instance_keeps_its_contribution() -> None:
    """An instance gone for stale_after stops being tracked, but what it counted stays."""
    store, clock = make_store(stale_after=60)
    store.ingest(otlp_request([sum_metric(CALLS, [(ATTRS, 40)])], instance="gone"))
    clock.now += 30
    store.ingest(otlp_request([sum_metric(CALLS, [(ATTRS, 2)])], instance="alive"))
    clock.now += 40
    store.expire()
    assert store.instance_count() == 1
    assert calls_value(store) == 42
    store.ingest(otlp_request([sum_metric(CALLS, [(ATTRS, 3)], time_=3)], instance="alive"))
    assert calls_value(store) == 43


def test_partitioned_instance_coming_back_is_not_counted_twice() -> None:
    """An instance that expired and comes back with the same start time adds only its growth."""
    store, clock = make_store(stale_after=60)
    store.ingest(otlp_request([sum_metric(CALLS, [(ATTRS, 40)])], instance="a"))
    clock.now += 30
    store.ingest(otlp_request([sum_metric(CALLS, [(ATTRS, 1)])], instance="b"))
    clock.now += 40
    store.expire()
    store.ingest(otlp_request([sum_metric(CALLS, [(ATTRS, 45)], time_=9)], instance="a"))
    assert calls_value(store) == 46


def test_series_expire_after_stale_after() -> None:
    """A series nobody updated for stale_after disappears from the scrape."""
    store, clock = make_store(stale_after=60)
    store.ingest(otlp_request([sum_metric(CALLS, [(ATTRS, 1)])]))
    clock.now += 61
    assert store.expire() == 1
    assert "gemini_slo_client_calls_total" not in scrape(store)
    assert store.self_metrics.expired_series == 1


def test_gauges_sum_live_instances() -> None:
    """Gauges and up-down counters: the sum of the live instances' last values."""
    store, clock = make_store(stale_after=60)
    name = signals.REQUESTS_IN_FLIGHT.name
    for instance, value in (("a", 3), ("b", 4)):
        store.ingest(
            otlp_request(
                [sum_metric(name, [(ATTRS, value)], monotonic=False, unit="{request}")],
                instance=instance,
            )
        )
    prom = signals.REQUESTS_IN_FLIGHT.prometheus
    assert next(iter(scrape(store)[prom].values())) == 7
    store.ingest(
        otlp_request(
            [sum_metric(name, [(ATTRS, 1)], monotonic=False, unit="{request}", time_=3)],
            instance="a",
        )
    )
    assert next(iter(scrape(store)[prom].values())) == 5
    clock.now += 61
    store.ingest(
        otlp_request(
            [sum_metric(name, [(ATTRS, 1)], monotonic=False, unit="{request}", time_=4)],
            instance="a",
        )
    )
    store.expire()
    assert next(iter(scrape(store)[prom].values())) == 1
    limit = signals.CONCURRENCY_LIMIT
    store.ingest(otlp_request([gauge_metric(limit.name, [(ATTRS, 8)])]))
    assert next(iter(scrape(store)[limit.prometheus].values())) == 8


def test_histograms_merge_across_instances_and_restarts() -> None:
    """Explicit histograms add bucket by bucket; a restart adds the new counts."""
    store, _ = make_store()
    name = signals.OPERATION_DURATION.name
    bounds = [0.1, 0.5, 1.0]
    store.ingest(
        otlp_request([histogram_metric(name, ATTRS, bounds, [1, 2, 3, 4], 10.0)], instance="a")
    )
    store.ingest(
        otlp_request([histogram_metric(name, ATTRS, bounds, [1, 0, 0, 0], 0.05)], instance="b")
    )
    store.ingest(
        otlp_request(
            [histogram_metric(name, ATTRS, bounds, [0, 1, 0, 0], 0.2, start=50, time_=51)],
            instance="a",
        )
    )
    samples = scrape(store)
    prom = signals.OPERATION_DURATION.prometheus
    buckets = {dict(k)["le"]: v for k, v in samples[prom + "_bucket"].items()}
    assert buckets == {"0.1": 2, "0.5": 5, "1.0": 8, "+Inf": 12}
    assert next(iter(samples[prom + "_count"].values())) == 12
    assert math.isclose(next(iter(samples[prom + "_sum"].values())), 10.25)


def test_histogram_with_other_bounds_is_mapped_up() -> None:
    """An instance with different boundaries lands in the first merged bucket >= its bound."""
    store, _ = make_store()
    name = signals.OPERATION_DURATION.name
    store.ingest(
        otlp_request([histogram_metric(name, ATTRS, [0.1, 0.5], [1, 1, 1], 1.0)], instance="a")
    )
    # 0.3 maps up to 0.5; 0.5 to 0.5; +Inf to +Inf.
    store.ingest(
        otlp_request([histogram_metric(name, ATTRS, [0.3, 0.5], [2, 3, 4], 5.0)], instance="b")
    )
    prom = signals.OPERATION_DURATION.prometheus
    buckets = {dict(k)["le"]: v for k, v in scrape(store)[prom + "_bucket"].items()}
    assert buckets == {"0.1": 1, "0.5": 7, "+Inf": 12}


def test_invalid_points_are_rejected_and_nothing_stored_changes() -> None:
    """NaN, negative counters and inconsistent histograms are refused one by one."""
    store, _ = make_store()
    good = otlp_request([sum_metric(CALLS, [(ATTRS, 5)])])
    store.ingest(good)
    before = scrape(store)["gemini_slo_client_calls_total"]
    name = signals.OPERATION_DURATION.name
    bad = otlp_request(
        [
            sum_metric(CALLS, [(ATTRS, math.nan)], time_=5),
            sum_metric(CALLS, [(ATTRS, -1)], time_=6),
            sum_metric(CALLS, [(ATTRS, math.inf)], time_=7),
            histogram_metric(name, ATTRS, [0.1, 0.5], [1, 1], 1.0),  # too few buckets
            histogram_metric(name, ATTRS, [0.5, 0.1], [1, 1, 1], 1.0),  # unsorted bounds
            histogram_metric(name, ATTRS, [0.1], [1, 1], 1.0, count=7),  # count mismatch
            histogram_metric(name, ATTRS, [0.1], [1, 1], math.nan),  # NaN sum
        ]
    )
    result = store.ingest(bad)
    assert result.rejected == 7
    assert "non-finite" in result.error_message()
    assert scrape(store)["gemini_slo_client_calls_total"] == before
    assert signals.OPERATION_DURATION.prometheus + "_count" not in scrape(store)
    assert sum(store.self_metrics.rejected_points.values()) == 7


def test_type_conflict_is_rejected() -> None:
    """The same Prometheus name as another type (histogram after a gauge) is refused."""
    store, _ = make_store()
    store.ingest(otlp_request([sum_metric("x.y", [(ATTRS, 5)], unit="1")]))
    result = store.ingest(
        otlp_request([sum_metric("x.y", [(ATTRS, 5)], unit="1", monotonic=False)])
    )
    assert result.rejected == 0  # a non-monotonic sum is another family name (no _total)
    result = store.ingest(
        otlp_request([histogram_metric("x.y", ATTRS, [1.0], [1, 0], 0.5, unit="1")])
    )
    assert result.rejected == 1
    assert "is a non-monotonic sum" in result.error_message()
    # Unit "1": no suffix (opentelemetry-exporter-prometheus; contract/translation.py).
    assert "x_y_total" in scrape(store)
    assert "x_y" in scrape(store)


def test_cardinality_limit_folds_into_overflow_series() -> None:
    """Past max_series_per_metric, new label sets go to otel_metric_overflow="true"
    (keeping the contract's mode label: without a spec, the workload is not kept)."""
    store, _ = make_store(max_series_per_metric=10)
    points = [({**ATTRS, "user": f"u{i}"}, 1.0) for i in range(20)]
    result = store.ingest(otlp_request([sum_metric(CALLS, points)]))
    assert (result.overflowed, result.rejected) == (10, 0)
    samples = scrape(store)["gemini_slo_client_calls_total"]
    assert len(samples) == 11
    overflow = (("gemini_slo_mode", "latency"), ("otel_metric_overflow", "true"))
    assert samples[overflow] == 10
    assert sum(samples.values()) == 20
    # Cumulative points need per-label-set state to be merged; the overflow series keeps at
    # most max_series_per_metric of those, and refuses the rest with a clear message.
    more = [({**ATTRS, "user": f"v{i}"}, 1.0) for i in range(5)]
    result = store.ingest(otlp_request([sum_metric(CALLS, more)]))
    assert result.rejected == 5
    assert "overflow series is full (10 label sets)" in result.error_message()
    # Delta points need no state: they are always folded in.
    result = store.ingest(otlp_request([sum_metric(CALLS, more, delta=True)]))
    assert (result.overflowed, result.rejected) == (5, 0)
    assert scrape(store)["gemini_slo_client_calls_total"][overflow] == 15
    assert store.self_metrics.overflow_points["gemini_slo_client_calls_total"] == 20


def test_a_million_label_values_keep_memory_bounded() -> None:
    """A burst of label values never grows the store past its limits."""
    store, _ = make_store(max_series_per_metric=100)
    for batch in range(20):
        points = [({**ATTRS, "id": f"{batch}-{i}"}, 1.0) for i in range(5000)]
        store.ingest(otlp_request([sum_metric(CALLS, points, delta=True)]))
    assert store.series_count() <= 101
    samples = scrape(store)["gemini_slo_client_calls_total"]
    assert sum(samples.values()) == 100_000


def test_exponential_histograms_feed_percentile_gauges() -> None:
    """Exponential histograms are not exposed; their merged percentiles are."""
    store, clock = make_store()
    name = signals.OPERATION_DURATION_EXPONENTIAL.name
    values_a = [0.1 * (1 + i / 100) for i in range(100)]
    values_b = [0.3 * (1 + i / 100) for i in range(100)]
    store.ingest(otlp_request([exponential_metric(name, ATTRS, values_a)], instance="a"))
    store.ingest(otlp_request([exponential_metric(name, ATTRS, values_b)], instance="b"))
    clock.now += 1
    samples = scrape(store)
    assert "gemini_slo_client_operation_duration_seconds" not in str(samples.keys()).replace(
        "percentile", "?"
    ).replace("gemini_slo_client_operation_duration_?_seconds", "")
    gauge = samples[agent_series.AGENT_DURATION_PERCENTILE]
    by = {(dict(k)["quantile"], dict(k)["window"]): v for k, v in gauge.items()}
    assert set(by) == {
        (q, w) for q in ("0.5", "0.9", "0.95", "0.99", "0.999") for w in ("1m", "5m")
    }
    exact_median = sorted(values_a + values_b)[99]
    assert abs(by[("0.5", "5m")] - exact_median) / exact_median < 0.03
    labels = dict(next(iter(gauge)))
    assert labels["gemini_slo_workload"] == "chat"
    assert labels["gen_ai_request_model"] == "m"


def test_percentile_windows_slide() -> None:
    """A window only holds what arrived within it."""
    store, clock = make_store()
    name = signals.OPERATION_DURATION_EXPONENTIAL.name
    store.ingest(otlp_request([exponential_metric(name, ATTRS, [0.1] * 100, time_=2)]))
    clock.now += 1
    store.windows.tick()  # the server ticks every few seconds
    clock.now += 61
    store.windows.tick()
    store.ingest(
        otlp_request([exponential_metric(name, ATTRS, [0.1] * 100 + [2.0] * 100, time_=3)])
    )
    gauge = scrape(store)[agent_series.AGENT_DURATION_PERCENTILE]
    by = {(dict(k)["quantile"], dict(k)["window"]): v for k, v in gauge.items()}
    assert abs(by[("0.5", "1m")] - 2.0) / 2.0 < 0.03  # only the new 2 s calls
    assert by[("0.5", "5m")] < 0.2  # 200 fast, 100 slow


def test_failed_calls_are_left_out_of_percentiles() -> None:
    """Points with error.type do not feed the percentile gauges."""
    store, _ = make_store()
    name = signals.OPERATION_DURATION_EXPONENTIAL.name
    failed = {**ATTRS, signals.ATTR_ERROR_TYPE: "TimeoutError"}
    store.ingest(otlp_request([exponential_metric(name, failed, [30.0] * 10)]))
    assert agent_series.AGENT_DURATION_PERCENTILE not in scrape(store)


def test_no_recorded_value_points_are_skipped() -> None:
    """Points flagged NO_RECORDED_VALUE (staleness markers) change nothing."""
    store, _ = make_store()
    request = otlp_request([sum_metric(CALLS, [(ATTRS, 5)])])
    request.resource_metrics[0].scope_metrics[0].metrics[0].sum.data_points[0].flags = 1
    result = store.ingest(request)
    assert result.rejected == 0
    assert store.series_count() == 0


def test_fast_render_equals_generate_latest() -> None:
    """/metrics' fast renderer parses to exactly what prometheus_client would write."""
    store, _ = make_store()
    odd = {**ATTRS, "note": 'a "quoted"\\ value\nwith a newline', "empty": ""}
    store.ingest(
        otlp_request(
            [
                sum_metric(CALLS, [(ATTRS, 3), (odd, 4), ({}, 1)]),
                sum_metric(signals.REQUESTS_IN_FLIGHT.name, [(odd, 2)], monotonic=False),
                histogram_metric(signals.OPERATION_DURATION.name, odd, [0.1, 1.0], [1, 2, 3], 4.5),
                histogram_metric(signals.QUEUE_WAIT.name, {}, [], [], 0.0, count=0),
                exponential_metric(signals.OPERATION_DURATION_EXPONENTIAL.name, ATTRS, [0.2, 0.4]),
            ]
        )
    )
    collector = StoreCollector(store)
    slow = generate_latest(make_registry(collector)).decode()
    fast = collector.render().decode()

    def parsed(text: str) -> list[tuple[object, ...]]:
        return sorted(
            (f.name, f.type, f.documentation, s.name, tuple(sorted(s.labels.items())), s.value)
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if not s.name.startswith("gemini_slo_agent_scrape")
        )

    assert parsed(fast) == parsed(slow)
    assert "note" in fast


def test_odd_metric_names_never_break_the_scrape() -> None:
    """Names that are not valid Prometheus names are fixed (leading digit) or refused."""
    store, _ = make_store()
    result = store.ingest(
        otlp_request(
            [
                sum_metric("9lives", [(ATTRS, 1)], unit="1"),
                sum_metric("héllo wörld", [(ATTRS, 1)], unit="1"),
                sum_metric("", [(ATTRS, 1)]),
            ]
        )
    )
    assert result.rejected == 1
    names = set(scrape(store))
    # As opentelemetry-exporter-prometheus names them: a leading digit is replaced by "_",
    # runs of invalid characters become one "_", unit "1" adds nothing.
    assert "_lives_total" in names
    assert "h_llo_w_rld_total" in names
    assert StoreCollector(store).render()  # and the fast path renders them too


def test_gauge_and_up_down_counter_share_a_family() -> None:
    """One app's gauge and another's non-monotonic sum of the same name are summed."""
    store, _ = make_store()
    name = signals.REQUESTS_IN_FLIGHT.name
    store.ingest(otlp_request([gauge_metric(name, [(ATTRS, 2)])], instance="a"))
    result = store.ingest(
        otlp_request(
            [sum_metric(name, [(ATTRS, 3)], monotonic=False, unit="{request}")], instance="b"
        )
    )
    assert result.rejected == 0
    assert next(iter(scrape(store)[signals.REQUESTS_IN_FLIGHT.prometheus].values())) == 5


def test_instance_states_are_bounded() -> None:
    """Past max_instances, points from new instances are refused; known ones keep working."""
    store, clock = make_store(max_instances=3, stale_after=60)
    for i in range(5):
        result = store.ingest(otlp_request([sum_metric(CALLS, [(ATTRS, 1)])], instance=f"i{i}"))
    assert result.rejected == 1 and "instance states" in result.error_message()
    assert store.instance_count() == 3
    assert calls_value(store) == 3
    store.ingest(otlp_request([sum_metric(CALLS, [(ATTRS, 2)], time_=3)], instance="i0"))
    assert calls_value(store) == 4
    clock.now += 61
    store.expire()
    assert store.instance_count() == 0
    held = sum(len(s.instances) for f in store.families.values() for s in f.series.values())
    assert held == 0
