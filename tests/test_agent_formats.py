"""Scrape formats: Accept negotiation, the protobuf exposition with native histograms, and
OpenMetrics; checked by promtool and scraped by a real Prometheus 2.53."""

from __future__ import annotations

import io
import math
import random
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from gemini_slo.agent import _prometheus_metrics_pb2 as pb
from gemini_slo.agent import state_file
from gemini_slo.agent.exponential import ExpHistogram
from gemini_slo.agent.exposition_proto import native_families, native_histogram
from gemini_slo.agent.formats import Format, negotiate
from gemini_slo.agent.store import Store, StoreLimits
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
from gemini_slo.contract import exponential
from gemini_slo.contract import signals as S
from gemini_slo.lab.native import NativeStack
from google.protobuf import proto
from prometheus_client.openmetrics.exposition import generate_latest as om_generate_latest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

#: What Prometheus 2.53 sends with native histograms on (its default scrape_protocols).
PROMETHEUS_253_ACCEPT = (
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
    "encoding=delimited;q=0.6,application/openmetrics-text;version=1.0.0;q=0.5,"
    "application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,"
    "*/*;q=0.2"
)
PROTO_ACCEPT = Format.PROTOBUF.content_type
OM_ACCEPT = "application/openmetrics-text;version=1.0.0"
CHAT = {S.ATTR_WORKLOAD: "chat", S.ATTR_MODE: "latency", S.ATTR_REQUEST_MODEL: "m"}
TWIN = S.OPERATION_DURATION_EXPONENTIAL


def test_negotiation_follows_q_values() -> None:
    """Prometheus' own header picks protobuf; q-values decide, q=0 refuses, ties go to the
    first listed, and anything unknown or absent gets the classic text format."""
    assert negotiate(PROMETHEUS_253_ACCEPT) is Format.PROTOBUF
    assert negotiate(None) is Format.TEXT
    assert negotiate("") is Format.TEXT
    assert negotiate("*/*") is Format.TEXT
    assert negotiate("application/json") is Format.TEXT
    assert negotiate(OM_ACCEPT) is Format.OPENMETRICS
    assert negotiate(f"text/plain;q=0.9,{OM_ACCEPT};q=0.5") is Format.TEXT
    assert negotiate(f"{PROTO_ACCEPT};q=0,{OM_ACCEPT};q=0.1") is Format.OPENMETRICS
    assert negotiate(f"{OM_ACCEPT};q=0.5,{PROTO_ACCEPT};q=0.5") is Format.OPENMETRICS
    # The draft OpenMetrics 0.0.1 and a protobuf without delimited encoding: not ours.
    assert negotiate("application/openmetrics-text;version=0.0.1") is Format.TEXT
    assert negotiate("application/vnd.google.protobuf;proto=x.Y") is Format.TEXT
    assert negotiate(f"{OM_ACCEPT};q=oops,text/plain;version=0.0.4") is Format.TEXT


def _counts_from(spans: Any, deltas: Any) -> dict[int, int]:
    """Native bucket index -> count, from spans and deltas."""
    out: dict[int, int] = {}
    index, count, k = 0, 0, 0
    for n, span in enumerate(spans):
        index = span.offset if n == 0 else index + span.offset
        for _ in range(span.length):
            count += deltas[k]
            k += 1
            out[index] = count
            index += 1
    return {i: c for i, c in out.items() if c}


def test_native_histogram_has_the_otlp_buckets_one_index_up() -> None:
    """OTLP bucket i (base**i, base**(i+1)] is native bucket i+1 (base**(i), base**(i+1)]:
    every value lands in the native bucket whose bounds hold it, counts and sum kept."""
    rng = random.Random(3)
    values = [rng.lognormvariate(0, 1) for _ in range(500)]
    idx = [exponential.bucket_index(v, 5) for v in values]
    lo = min(idx)
    counts = [0] * (max(idx) - lo + 1)
    for i in idx:
        counts[i - lo] += 1
    hist = ExpHistogram(5, len(values), sum(values), 2, 0.001, lo, counts)
    target = pb.Histogram()
    assert native_histogram(hist, target)
    assert target.schema == 5 and target.sample_count == 500 and target.zero_count == 2
    assert math.isclose(target.sample_sum, sum(values))
    native = _counts_from(target.positive_span, target.positive_delta)
    base = 2 ** (2**-5)
    for v in values[:50]:
        n = next(i for i in native if base ** (i - 1) < v <= base**i)
        assert n == exponential.bucket_index(v, 5) + 1
    assert sum(native.values()) == 500
    fine = ExpHistogram(12, 1, 1.5, 0, 0.0, exponential.bucket_index(1.5, 12), [1])
    target = pb.Histogram()
    assert native_histogram(fine, target) and target.schema == 8
    assert _counts_from(target.positive_span, target.positive_delta) == {
        exponential.bucket_index(1.5, 8) + 1: 1
    }
    empty = pb.Histogram()
    assert native_histogram(ExpHistogram(5), empty)
    assert len(empty.positive_span) == 1 and empty.positive_span[0].length == 0


def _get(agent: AgentHandle, accept: str | None) -> tuple[str, bytes]:
    request = urllib.request.Request(agent.metrics_url)
    if accept is not None:
        request.add_header("Accept", accept)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers["Content-Type"], response.read()


def _families(body: bytes) -> dict[str, pb.MetricFamily]:
    stream = io.BytesIO(body)
    out: dict[str, pb.MetricFamily] = {}
    while stream.tell() < len(body):
        family = proto.parse_length_prefixed(pb.MetricFamily, stream)
        assert family.name not in out, family.name
        out[family.name] = family
    return out


def _feed(agent: AgentHandle, values: list[float], calls: int, instance: str = "i1") -> None:
    request = otlp_request(
        [
            sum_metric(S.CALLS.name, [(CHAT, calls)]),
            exponential_metric(TWIN.name, CHAT, values),
        ],
        instance=instance,
    )
    status, _, _ = post_otlp(agent.otlp_url + "/v1/metrics", request.SerializeToString())
    assert status == 200


def test_protobuf_scrape_holds_the_text_families_and_native_histograms() -> None:
    """A protobuf scrape has every family of the text scrape with the same values, plus the
    exponential twin as a native histogram merged over two instances."""
    with running_agent() as agent:
        _feed(agent, [0.5, 1.0, 2.0], 3, "i1")
        _feed(agent, [0.7, 4.0], 2, "i2")
        content_type, body = _get(agent, PROMETHEUS_253_ACCEPT)
        assert content_type == Format.PROTOBUF.content_type
        families = _families(body)
        calls = families[S.CALLS.prometheus]
        assert calls.type == pb.COUNTER and calls.metric[0].counter.value == 5
        twin = families[TWIN.prometheus]
        assert twin.type == pb.HISTOGRAM and len(twin.metric) == 1
        native = twin.metric[0].histogram
        assert native.schema == S.EXPONENTIAL_SCALE and native.sample_count == 5
        assert math.isclose(native.sample_sum, 8.2)
        assert sum(_counts_from(native.positive_span, native.positive_delta).values()) == 5
        text_type, text = _get(agent, None)
        assert text_type.startswith("text/plain; version=0.0.4")
        text_names = {
            s.name for f in text_string_to_metric_families(text.decode()) for s in f.samples
        }
        assert TWIN.prometheus + "_count" not in text_names  # natives only over protobuf
        proto_names = set(families) - {TWIN.prometheus}
        # Protobuf names a family by its samples' names (counters keep _total); every one
        # is in the text scrape, and every text sample's family is in the protobuf one.
        for name in proto_names:
            assert name in text_names or name + "_count" in text_names, name
        for name in text_names:
            assert any(
                name == f or name in (f + "_bucket", f + "_count", f + "_sum") for f in families
            ), name


def test_openmetrics_scrape_parses(require_binary: Callable[[str], str]) -> None:
    """OpenMetrics 1.0.0: the right Content-Type, ``# EOF``, parsed by prometheus_client's
    strict OpenMetrics parser; ``promtool check metrics`` is clean on text 0.0.4.

    promtool's linter reads text 0.0.4 only (it reports every OpenMetrics counter as
    without help: OpenMetrics announces ``x`` for samples ``x_total``), so OpenMetrics is
    checked by the strict parser here and by Prometheus 2.53 scraping it (below)."""
    promtool = require_binary("promtool")
    with running_agent() as agent:
        _feed(agent, [0.5, 1.0], 2)
        content_type, body = _get(agent, OM_ACCEPT)
        assert content_type == Format.OPENMETRICS.content_type
        assert body.endswith(b"# EOF\n")
        names = {s.name for f in openmetrics_families(body.decode()) for s in f.samples}
        assert S.CALLS.prometheus in names
        assert S.CALLS.prometheus.removesuffix("_total") in {
            f.name for f in openmetrics_families(body.decode())
        }
        _, scrape = _get(agent, "text/plain;version=0.0.4")
        check = subprocess.run(
            [promtool, "check", "metrics"],
            input=scrape,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert check.returncode == 0, check.stderr.decode() + check.stdout.decode()
        assert not check.stdout.strip() and not check.stderr.strip(), check.stdout


def test_fast_openmetrics_equals_prometheus_clients_writer() -> None:
    """The agent's fast OpenMetrics rendering parses (strictly) to exactly what
    prometheus_client's OpenMetrics writer gives for the same registry."""
    odd = {**CHAT, "note": 'a "quoted"\\ value\nwith a newline', "empty": ""}
    counter = sum_metric("custom.things", [(odd, 4), ({}, 1)], unit="1")
    counter.description = 'help with "quotes" and a \\ backslash'
    request = otlp_request(
        [
            counter,
            sum_metric(S.CALLS.name, [(CHAT, 3)]),
            sum_metric(S.REQUESTS_IN_FLIGHT.name, [(odd, 2)], monotonic=False),
            histogram_metric(S.OPERATION_DURATION.name, odd, [0.1, 1.0], [1, 2, 3], 4.5),
            exponential_metric(TWIN.name, CHAT, [0.2, 0.4]),
        ]
    )
    with running_agent() as agent:
        status, _, _ = post_otlp(agent.otlp_url + "/v1/metrics", request.SerializeToString())
        assert status == 200
        fast = agent.agent.collector.render(openmetrics=True).decode()
        slow = om_generate_latest(agent.agent.registry).decode()

    def parsed(text: str) -> list[tuple[object, ...]]:
        return sorted(
            (f.name, f.type, f.documentation, s.name, tuple(sorted(s.labels.items())), s.value)
            for f in openmetrics_families(text)
            for s in f.samples
            if not s.name.startswith("gemini_slo_agent_scrape")
        )

    assert parsed(fast) == parsed(slow)
    assert "custom_things_total" in fast and fast.endswith("# EOF\n")


def _wait(predicate: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError("timed out")


@pytest.mark.slow
@pytest.mark.victoria
@pytest.mark.parametrize("protocol", ["PrometheusProto", "OpenMetricsText1.0.0"])
def test_prometheus_253_scrapes_each_format(
    protocol: str, require_binary: Callable[[str], str]
) -> None:
    """Prometheus 2.53 (native histograms on) scrapes the agent in the format it pins:
    over protobuf the twin is a native histogram whose count and median match the agent's
    data; over OpenMetrics the counters arrive and no native histogram does."""
    require_binary("prometheus-2.53")
    rng = random.Random(5)
    values = [rng.lognormvariate(-1, 0.5) for _ in range(400)]
    with running_agent() as agent:
        _feed(agent, values, 400)
        target = agent.metrics_url.removeprefix("http://").removesuffix("/metrics")
        with NativeStack([target], scrape_protocols=[protocol]) as stack:
            stack.wait_scraped()
            _wait(lambda: stack.query_value(f"sum({S.CALLS.prometheus})"))
            assert stack.query_value(f"sum({S.CALLS.prometheus})") == 400
            native = stack.query(f"histogram_count({TWIN.prometheus})")
            if protocol == "PrometheusProto":
                assert float(native[0]["value"][1]) == 400
                median = stack.query_value(f"histogram_quantile(0.5, {TWIN.prometheus})")
                exact = sorted(values)[199]
                assert median is not None and abs(median / exact - 1) < 0.02
            else:
                assert native == []


def test_native_histograms_survive_a_restart_with_the_state_file(tmp_path: Path) -> None:
    """The merged native histogram is in the state file: restored as it was (no reset for
    Prometheus), and the next export of a live instance adds only its increment."""

    def store_() -> Store:
        return Store(StoreLimits(), windows=Windows())

    def feed(store: Store, instance: str, values: list[float], t: int) -> None:
        store.ingest(
            otlp_request([exponential_metric(TWIN.name, CHAT, values, time_=t)], instance=instance)
        )

    def native(store: Store) -> list[pb.Histogram]:
        return [m.histogram for f in native_families(store) for m in f.metric]

    before = store_()
    feed(before, "gone", [0.2] * 40, 10)
    feed(before, "live", [0.7] * 10, 10)
    path = tmp_path / "state.json"
    state_file.save(before, path)
    after = store_()
    state_file.load(after, path)
    assert native(after) == native(before) and native(after)[0].sample_count == 50
    for store in (before, after):
        feed(store, "live", [0.7] * 10 + [1.5] * 5, 20)
    assert native(after) == native(before) and native(after)[0].sample_count == 55
