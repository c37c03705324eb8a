"""Fuzzed bodies never crash the agent and never corrupt what it already stored.

Hypothesis generates random bytes, mutated valid protobuf bodies, random JSON and
structurally valid requests with hostile values; each goes through the same decode +
ingest path as the HTTP handler (in-process, for speed), then a few through HTTP. After
every example the reference series must still hold exactly their values.
"""

from __future__ import annotations

import math

from gemini_slo.agent.exposition import StoreCollector, make_registry
from gemini_slo.agent.otlp_decode import BodyError, Encoding, decode_request, gunzip
from gemini_slo.agent.store import Store
from gemini_slo.agent.testing import (
    exponential_metric,
    histogram_metric,
    otlp_request,
    post_otlp,
    running_agent,
    sum_metric,
)
from gemini_slo.contract import signals
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.metrics.v1 import metrics_pb2
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

REF = {signals.ATTR_WORKLOAD: "reference", signals.ATTR_MODE: "latency"}
CALLS = signals.CALLS.name
DURATION = signals.OPERATION_DURATION.name


def reference_store() -> Store:
    store = Store()
    store.ingest(
        otlp_request(
            [
                sum_metric(CALLS, [(REF, 10)], start=1, time_=10**18),
                histogram_metric(DURATION, REF, [0.1, 1.0], [1, 2, 3], 4.5, time_=10**18),
            ],
            instance="reference",
        )
    )
    return store


def reference_values(store: Store) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(make_registry(StoreCollector(store))).decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if labels.get("gemini_slo_workload") == "reference" and "fuzz" not in labels:
                out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


VALID = otlp_request(
    [
        sum_metric(CALLS, [({signals.ATTR_WORKLOAD: "fuzz"}, 3)]),
        histogram_metric(DURATION, {signals.ATTR_WORKLOAD: "fuzz"}, [0.5], [1, 1], 1.0),
        exponential_metric(
            signals.OPERATION_DURATION_EXPONENTIAL.name, {signals.ATTR_WORKLOAD: "fuzz"}, [0.2, 0.3]
        ),
    ]
).SerializeToString()

STORE = reference_store()
EXPECTED = reference_values(STORE)


def feed(store: Store, body: bytes, encoding: Encoding) -> None:
    try:
        request = decode_request(body, encoding)
    except BodyError as exc:
        assert exc.status == 400
        return
    store.ingest(request, encoding.value)


def check_reference() -> None:
    got = reference_values(STORE)
    assert got == EXPECTED


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes(body: bytes) -> None:
    """Arbitrary bytes as protobuf: a 400 or some ingested points, never an exception."""
    feed(STORE, body, Encoding.PROTOBUF)
    check_reference()


@FUZZ
@given(st.data())
def test_mutated_valid_bodies(data: st.DataObject) -> None:
    """A valid body with bytes flipped, cut or inserted."""
    body = bytearray(VALID)
    for _ in range(data.draw(st.integers(1, 8))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        pos = data.draw(st.integers(0, max(len(body) - 1, 0)))
        if op == "flip" and body:
            body[pos] ^= data.draw(st.integers(1, 255))
        elif op == "cut":
            del body[pos:]
        else:
            body[pos:pos] = data.draw(st.binary(min_size=1, max_size=16))
    feed(STORE, bytes(body), Encoding.PROTOBUF)
    check_reference()


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=4)
    ),
    max_leaves=20,
)


@FUZZ
@given(JSON_VALUES)
def test_random_json(value: object) -> None:
    """Random JSON documents (and the OTLP keys with random values)."""
    import json

    for document in (value, {"resourceMetrics": value}):
        try:
            body = json.dumps(document).encode()
        except (ValueError, TypeError):
            continue
        feed(STORE, body, Encoding.JSON)
    check_reference()


NUMBERS = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(2**63), 2**63 - 1)


@FUZZ
@given(
    value=NUMBERS,
    counts=st.lists(st.integers(0, 2**64 - 1), max_size=6),
    bounds=st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=6),
    count=st.integers(0, 2**64 - 1),
    total=st.floats(allow_nan=True, allow_infinity=True),
    scale=st.integers(-(2**31), 2**31 - 1),
    offset=st.integers(-(2**31), 2**31 - 1),
    start=st.integers(0, 2**64 - 1),
    time_=st.integers(0, 2**64 - 1),
    workload=st.sampled_from(["reference", "fuzz"]),
)
def test_hostile_values_in_valid_structures(
    value: float,
    counts: list[int],
    bounds: list[float],
    count: int,
    total: float,
    scale: int,
    offset: int,
    start: int,
    time_: int,
    workload: str,
) -> None:
    """NaN, infinities, huge counts, inconsistent histograms, absurd scales; even aimed at the
    reference series from another instance: the reference instance's values never change
    except by valid additions from other instances, which we do not send for it here."""
    attrs = {signals.ATTR_WORKLOAD: workload, "fuzz": "1"}
    point = metrics_pb2.ExponentialHistogramDataPoint(
        start_time_unix_nano=start,
        time_unix_nano=time_,
        count=count,
        sum=total if math.isfinite(total) else 0.0,
        scale=scale,
        zero_count=counts[0] if counts else 0,
        positive=metrics_pb2.ExponentialHistogramDataPoint.Buckets(
            offset=offset, bucket_counts=counts
        ),
    )
    exp = metrics_pb2.Metric(
        name=signals.OPERATION_DURATION_EXPONENTIAL.name,
        unit="s",
        exponential_histogram=metrics_pb2.ExponentialHistogram(
            aggregation_temporality=2, data_points=[point]
        ),
    )
    request = otlp_request(
        [
            sum_metric(CALLS, [(attrs, float(value))], start=start, time_=time_),
            histogram_metric(DURATION, attrs, bounds, counts, total, count=count),
            exp,
        ],
        instance="fuzzer",
    )
    STORE.ingest(request)
    check_reference()
    for key in STORE.windows.groups():
        hist = STORE.windows.lifetime_histogram(key)
        assert len(hist.positive) <= STORE.windows.max_buckets + 1


@FUZZ
@given(st.binary(max_size=512))
def test_random_gzip_bodies(body: bytes) -> None:
    """Random bytes announced as gzip: a 400 or 413, never an exception."""
    try:
        gunzip(body, 1 << 16)
    except BodyError as exc:
        assert exc.status in (400, 413)


def test_fuzzed_bodies_over_http_keep_the_agent_serving() -> None:
    """A handful of bad bodies over HTTP: all 4xx, the stored series intact afterwards."""
    with running_agent() as agent:
        url = agent.otlp_url + "/v1/metrics"
        good = otlp_request([sum_metric(CALLS, [(REF, 10)])]).SerializeToString()
        assert post_otlp(url, good)[0] == 200
        before = agent.scrape().count("gemini_slo_client_calls_total{")
        for body in (VALID[:-3], b"\xff" * 100, b"\x0a\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01"):
            status, _, _ = post_otlp(url, body)
            assert status in (200, 400)
        text = agent.scrape()
        assert text.count("gemini_slo_client_calls_total{") >= before
        assert 'gemini_slo_workload="reference"} 10.0' in text
