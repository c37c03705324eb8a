"""Issue #16, agent side: bounded sizes, and floods that cannot hide a workload of the spec.

Against a real agent on 127.0.0.1 (the packaged example spec: chat in latency mode on
gemini-2.5-flash, batch in throughput mode) or a bare store, with hand-built OTLP requests.
"""

from __future__ import annotations

import math

import pytest
from gemini_slo.agent.exposition import StoreCollector, make_registry
from gemini_slo.agent.store import Store, StoreLimits, exp_index_range
from gemini_slo.agent.testing import (
    AgentHandle,
    exponential_metric,
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
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.metrics.v1 import metrics_pb2
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

CALLS = signals.CALLS.name
DURATION = signals.OPERATION_DURATION_EXPONENTIAL.name
TTFT = signals.TIME_TO_FIRST_CHUNK_EXPONENTIAL.name
SPEC = load_spec(default_spec_path())
CHAT = SPEC.by_mode(signals.Mode.LATENCY)[0]
MODEL = CHAT.models[0]


def chat_attrs(model: str = MODEL, workload: str = CHAT.name) -> dict[str, str]:
    return {
        signals.ATTR_WORKLOAD: workload,
        signals.ATTR_MODE: "latency",
        signals.ATTR_REQUEST_MODEL: model,
    }


def export(agent: AgentHandle, metrics: list[metrics_pb2.Metric], instance: str) -> str:
    """POST one request; returns the partial-success message (empty when all stored)."""
    body = otlp_request(metrics, instance=instance).SerializeToString()
    status, payload, _ = post_otlp(agent.otlp_url + "/v1/metrics", body, timeout=60)
    assert status == 200, payload[:300]
    return str(ExportMetricsServiceResponse.FromString(payload).partial_success.error_message)


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == name
    }


# ---- bounded sizes ---------------------------------------------------------------------


def test_long_label_values_and_names_are_cut_with_a_digest() -> None:
    """100 label values of 1 MiB made RSS +303 MB and /metrics 105 MB. Now a value past
    1,024 characters (a name past 256) is cut to the limit, ending in a digest so that two
    long values stay two series, and each cut label set is counted."""
    with running_agent() as agent:
        values = [f"{i:03d}" + "x" * (1024 * 1024) for i in range(20)]
        for part in range(0, 20, 7):  # 7 MiB per request: under the 8 MiB body limit
            points = [({**chat_attrs(), "payload": v}, 1.0) for v in values[part : part + 7]]
            assert export(agent, [sum_metric(CALLS, points)], "app") == ""
        long_name = "k" * 300
        export(agent, [sum_metric(CALLS, [({**chat_attrs(), long_name: "v"}, 1.0)])], "app")
        text = agent.scrape()
        assert len(text) < 200_000, f"/metrics is {len(text)} bytes"
        calls = samples(text, signals.CALLS.prometheus)
        payloads = sorted(dict(k)["payload"] for k in calls if "payload" in dict(k))
        assert len(payloads) == 20  # still 20 series
        assert all(len(p) == 1024 for p in payloads)
        assert [p[:3] for p in payloads] == [f"{i:03d}" for i in range(20)]
        names = {name for key in calls for name, _ in key}
        cut = [n for n in names if n.startswith("kkk")]
        assert len(cut) == 1 and len(cut[0]) == 256
        truncated = samples(text, agent_series.TRUNCATED_LABELS)
        assert truncated[()] == 21


def _exp_point(
    offset: int, counts: list[int], *, scale: int = 5, negative: bool = False
) -> metrics_pb2.Metric:
    buckets = metrics_pb2.ExponentialHistogramDataPoint.Buckets(offset=offset, bucket_counts=counts)
    point = metrics_pb2.ExponentialHistogramDataPoint(
        attributes=exponential_metric(DURATION, chat_attrs(), [1.0])
        .exponential_histogram.data_points[0]
        .attributes,
        start_time_unix_nano=1,
        time_unix_nano=2,
        count=sum(counts),
        scale=scale,
        **({"negative": buckets} if negative else {"positive": buckets}),
    )
    return metrics_pb2.Metric(
        name=DURATION,
        unit="s",
        exponential_histogram=metrics_pb2.ExponentialHistogram(
            aggregation_temporality=metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE,
            data_points=[point],
        ),
    )


def test_exponential_buckets_past_the_float_range_are_refused_and_percentiles_stay_finite() -> None:
    """Offsets past the float range were accepted: +Inf percentiles, and /api/slo said
    met: false, value: null. Now a bucket beyond the float range is refused with a message,
    and the highest valid bucket gives finite percentiles and a measured, unmet objective."""
    lo, hi = exp_index_range(5)
    assert 2.0 ** (hi / 32) < math.inf  # the bucket's lower boundary is a float
    with pytest.raises(OverflowError):
        2.0 ** ((hi + 1) / 32)  # ... and the next bucket holds none
    with running_agent() as agent:
        for offset, counts, negative in (
            (hi + 1, [1], False),
            (hi, [1, 1], False),  # starts in range, ends one past it
            (lo - 1, [1], True),
        ):
            message = export(agent, [_exp_point(offset, counts, negative=negative)], "bad")
            assert "outside the float range at scale 5" in message, message
        # The extreme calls, counted too: a workload with no call is "no traffic", not unmet.
        calls = sum_metric(signals.CALLS.name, [({**chat_attrs(), signals.ATTR_OUTCOME: "ok"}, 10)])
        assert export(agent, [_exp_point(hi, [10]), calls], "app") == ""
        text = agent.scrape()
        percentiles = samples(text, agent_series.AGENT_DURATION_PERCENTILE)
        assert percentiles, "the valid extreme point gives percentiles"
        assert all(math.isfinite(v) for v in percentiles.values())
        status = next(w for w in agent.slo()["workloads"] if w["name"] == CHAT.name)
        latency = [o for o in status["objectives"] if o["kind"] == "latency"]
        assert latency
        for objective in latency:
            assert objective["value"] is not None and objective["value"] > 1e300
            assert objective["met"] is False


def test_too_many_explicit_bounds_is_said_so() -> None:
    """1,025 bounds were refused as "bounds must be finite and strictly increasing"."""
    bounds = [float(i) for i in range(1, 1026)]
    metric = histogram_metric(
        signals.OPERATION_DURATION.name, chat_attrs(), bounds, [0] * 1026, 0.0
    )
    store = Store()
    result = store.ingest(otlp_request([metric]))
    assert result.rejected == 1
    assert "1025 explicit bounds, more than the limit of 1024" in result.error_message()


# ---- fair cardinality ------------------------------------------------------------------


def _flood(agent: AgentHandle, *, same_workload: bool, models: int = 1500) -> int:
    """``models`` junk models, each with an ok and an error series of calls and an
    exponential duration and TTFT histogram; returns the calls sent for the chat workload."""
    calls: list[tuple[dict[str, str], float]] = []
    durations: list[metrics_pb2.Metric] = []
    for i in range(models):
        attrs = (
            chat_attrs(f"junk-{i}")
            if same_workload
            else chat_attrs(f"junk-{i}", workload=f"junk-{i}")
        )
        calls.append(({**attrs, signals.ATTR_OUTCOME: "ok"}, 2.0))
        calls.append(
            ({**attrs, signals.ATTR_OUTCOME: "error", signals.ATTR_ERROR_TYPE: "503"}, 1.0)
        )
        durations.append(exponential_metric(DURATION, attrs, [0.2, 0.2]))
        durations.append(exponential_metric(TTFT, attrs, [0.1, 0.1]))
    export(agent, [sum_metric(CALLS, calls), *durations], "flood")
    return 3 * models if same_workload else 0


@pytest.mark.parametrize("same_workload", [True, False], ids=["in-chat", "other-workloads"])
def test_a_flood_of_junk_models_cannot_hide_a_spec_workload(same_workload: bool) -> None:
    """After 1,500 junk models (3,000 call series, 3,000 histograms: more than the
    2,000-series budget and the windows' old 1,000 groups), chat's new series were refused
    and it had no percentiles and 0 calls/s in /api/slo. Now chat keeps its new series, its
    percentiles and its exact calls, whether the junk is in chat or in other workloads."""
    with running_agent(snapshot_interval=0.2) as agent:
        flood_calls = _flood(agent, same_workload=same_workload)
        ok = {**chat_attrs(), signals.ATTR_OUTCOME: "ok"}
        error = {**chat_attrs(), signals.ATTR_OUTCOME: "error", signals.ATTR_ERROR_TYPE: "503"}
        export(
            agent,
            [
                sum_metric(CALLS, [(ok, 100.0), (error, 5.0)]),
                exponential_metric(DURATION, chat_attrs(), [0.2] * 100),
            ],
            "app",
        )
        text = agent.scrape()
        overflowed = samples(text, agent_series.OVERFLOW_POINTS)
        assert sum(overflowed.values()) > 0, "the flood did not overflow: the test proves nothing"
        calls = samples(text, signals.CALLS.prometheus)
        assert calls[tuple(sorted({k.replace(".", "_"): v for k, v in ok.items()}.items()))] == 100
        assert calls[tuple(sorted({k.replace(".", "_"): v for k, v in error.items()}.items()))] == 5
        percentiles = {
            dict(k)["quantile"]: v
            for k, v in samples(text, agent_series.AGENT_DURATION_PERCENTILE).items()
            if dict(k)[signals.LABEL_MODEL] == MODEL and dict(k)["window"] == "1m"
        }
        assert percentiles and abs(percentiles["0.5"] - 0.2) / 0.2 < 0.03
        assert samples(text, agent_series.WINDOW_UNTRACKED) in ({}, {(("kind", "counter"),): 0.0})
        status = next(w for w in agent.slo()["workloads"] if w["name"] == CHAT.name)
        with agent.store.lock:
            windows = agent.store.windows
            elapsed = windows.elapsed("5m")
            counted = sum(
                windows.counter(key, "5m")
                for key in windows.counter_keys()
                if key[0] == CALLS and key[1] == CHAT.name
            )
        assert counted == flood_calls + 105
        assert status["calls_per_second"] == pytest.approx(counted / elapsed, rel=0.05)
        assert status["latency_seconds"]["p50"] == pytest.approx(0.2, rel=0.03)


def test_the_windows_share_the_series_cap_track_spec_workloads_and_count_the_rest() -> None:
    """The windows stopped tracking new groups at 1,000 (half the series cap) without a
    word. Now their cap is the store's series cap, spec workloads are tracked beyond it,
    and what could not be tracked is exposed."""
    # Two percentile metrics, each with a pool of 8 series: more groups than the cap.
    store = Store(StoreLimits(max_series_per_metric=10, max_series_per_workload=1), spec=SPEC)
    windows = store.windows
    assert windows.max_groups == 10 and CHAT.name in windows.protected
    junk = [exponential_metric(DURATION, chat_attrs("m", f"w{i}"), [0.2]) for i in range(30)]
    junk += [exponential_metric(TTFT, chat_attrs("m", f"w{i}"), [0.1]) for i in range(30)]
    store.ingest(otlp_request(junk, instance="flood"))
    assert len(windows.histograms) == 10  # the junk filled the windows' cap...
    store.ingest(otlp_request([exponential_metric(TTFT, chat_attrs(), [0.1])], instance="app"))
    assert (TTFT, CHAT.name, "latency", MODEL) in windows.histograms  # ... chat is tracked
    text = generate_latest(make_registry(StoreCollector(store))).decode()
    assert samples(text, agent_series.WINDOW_UNTRACKED)[(("kind", "histogram"),)] > 0
    assert samples(text, agent_series.WINDOW_GROUPS)[(("kind", "histogram"),)] == 11


def test_reserves_the_pool_and_the_unlisted_model_budget() -> None:
    """The rule itself: a spec workload's listed model uses its reserve, then the pool;
    an unlisted model only the pool, up to max_models_per_workload distinct models; an
    expired series gives its place back."""
    clock = [1000.0]
    store = Store(
        StoreLimits(max_series_per_metric=12, max_models_per_workload=2, stale_after=60),
        windows=Windows(clock=lambda: clock[0]),
        clock=lambda: clock[0],
        spec=SPEC,
    )
    budget = store.cardinality
    assert (budget.reserve, budget.pool) == (4, 4)  # 12 // (2 spec workloads + 1), the rest

    def add(attrs: dict[str, str], n: int) -> int:
        points = [({**attrs, "i": str(i)}, 1.0) for i in range(n)]
        return store.ingest(otlp_request([sum_metric(CALLS, points)])).overflowed

    assert add(chat_attrs("other-a"), 1) == 0
    assert add(chat_attrs("other-b"), 1) == 0
    assert add(chat_attrs("other-c"), 1) == 1  # a third unlisted model: chat's overflow
    assert add(chat_attrs(), 6) == 0  # 4 in the reserve, 2 in the pool (2 left by a, b)
    assert add(chat_attrs(workload="elsewhere"), 3) == 3  # the pool is full
    family = store.families[signals.CALLS.prometheus]
    chat_overflow = [k for k in family.overflow if (signals.LABEL_WORKLOAD, CHAT.name) in k]
    other_overflow = [k for k in family.overflow if all(n != signals.LABEL_WORKLOAD for n, _ in k)]
    assert chat_overflow and other_overflow
    clock[0] += 120
    store.expire()
    assert add(chat_attrs(workload="elsewhere"), 3) == 0  # expiry gave the places back
