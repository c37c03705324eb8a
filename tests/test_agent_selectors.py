"""The spec's workload selectors at ingest: foreign series get a workload, own ones never change."""

from __future__ import annotations

from gemini_slo.agent.store import Store
from gemini_slo.agent.testing import histogram_metric, otlp_request, sum_metric
from gemini_slo.contract import signals as S
from gemini_slo.contract.spec import parse_spec

SPEC = parse_spec(
    """\
version: gemini-slo/v1
workloads:
  - name: chat
    mode: latency
    select:
      - resource: {service.name: chat-api}
        attributes: {gen_ai.request.model: gemini-2.5-flash}
  - name: batch
    mode: throughput
    select:
      - resource: {service.name: chat-api}
      - attributes: {server.address: batch.example.com}
"""
)
DURATION = S.OPERATION_DURATION
OFFICIAL = {  # what opentelemetry-instrumentation-google-genai puts on a point
    "gen_ai.operation.name": "generate_content",
    "gen_ai.provider.name": "gemini",
    "gen_ai.request.model": "gemini-2.5-flash",
    "server.address": "127.0.0.1",
}


def _labels(store: Store, name: str = DURATION.prometheus) -> list[dict[str, str]]:
    return [dict(k) for k in store.families[name].series]


def _ingest(store: Store, attributes: dict[str, str], service: str, instance: str = "i1") -> None:
    metric = histogram_metric(DURATION.name, attributes, [0.5], [1, 0], 0.2)
    result = store.ingest(otlp_request([metric], service=service, instance=instance))
    assert result.rejected == 0, result.error_message


def test_foreign_series_gets_the_first_matching_workload_and_its_mode() -> None:
    """Resource + model match chat (first in spec order) though batch's selector matches too."""
    store = Store(spec=SPEC)
    _ingest(store, OFFICIAL, service="chat-api")
    (labels,) = _labels(store)
    assert labels[S.LABEL_WORKLOAD] == "chat"
    assert labels[S.LABEL_MODE] == S.Mode.LATENCY.value
    assert labels[S.LABEL_MODEL] == "gemini-2.5-flash"  # the point's own labels stay


def test_second_selector_and_second_workload() -> None:
    """Another model of the same service falls to batch; a data-point-only selector works."""
    store = Store(spec=SPEC)
    _ingest(store, {**OFFICIAL, "gen_ai.request.model": "gemini-2.5-pro"}, service="chat-api")
    _ingest(store, {**OFFICIAL, "server.address": "batch.example.com"}, service="x", instance="i2")
    got = sorted((d[S.LABEL_WORKLOAD], d[S.LABEL_MODE], d[S.LABEL_MODEL]) for d in _labels(store))
    assert got == [
        ("batch", "throughput", "gemini-2.5-flash"),
        ("batch", "throughput", "gemini-2.5-pro"),
    ]


def test_series_with_a_workload_are_never_relabelled() -> None:
    """The project's own points (gemini_slo.workload set) keep their workload and mode."""
    store = Store(spec=SPEC)
    own = {**OFFICIAL, S.ATTR_WORKLOAD: "mine", S.ATTR_MODE: "throughput"}
    _ingest(store, own, service="chat-api")
    (labels,) = _labels(store)
    assert (labels[S.LABEL_WORKLOAD], labels[S.LABEL_MODE]) == ("mine", "throughput")


def test_unmatched_foreign_series_keep_flowing_without_a_workload() -> None:
    """No selector matches: the series is kept, with no workload or mode label (documented)."""
    store = Store(spec=SPEC)
    _ingest(store, {**OFFICIAL, "gen_ai.request.model": "gemini-2.5-pro"}, service="other")
    (labels,) = _labels(store)
    assert S.LABEL_WORKLOAD not in labels and S.LABEL_MODE not in labels
    assert labels[S.LABEL_MODEL] == "gemini-2.5-pro"


def test_counters_are_relabelled_too_and_increments_merge() -> None:
    """Every kind goes through the selectors; two points of one instance add up as usual."""
    store = Store(spec=SPEC)
    name = S.TOKEN_USAGE.name
    for value, t in ((5.0, 2), (8.0, 3)):
        metric = sum_metric(name, [(OFFICIAL, value)], unit="{token}", time_=t)
        store.ingest(otlp_request([metric], service="chat-api"))
    family = store.families[S.prometheus_name(name, "{token}", S.Kind.COUNTER)]
    ((labels, series),) = family.series.items()
    assert dict(labels)[S.LABEL_WORKLOAD] == "chat"
    assert series.value == 8.0


def test_without_selectors_nothing_changes() -> None:
    """A spec without select: leaves foreign series exactly as they came."""
    store = Store(
        spec=parse_spec("version: gemini-slo/v1\nworkloads: [{name: a, mode: latency}]\n")
    )
    _ingest(store, OFFICIAL, service="chat-api")
    (labels,) = _labels(store)
    assert S.LABEL_WORKLOAD not in labels


def _calls(store: Store) -> dict[tuple[str, str, str], float]:
    family = store.families.get(S.CALLS.prometheus)
    if family is None:
        return {}
    return {
        (d[S.LABEL_WORKLOAD], d[S.LABEL_OUTCOME], d.get(S.LABEL_ERROR_TYPE, "")): series.value
        for d, series in ((dict(k), v) for k, v in family.series.items())
    }


def test_foreign_duration_histograms_are_counted_as_calls_by_outcome() -> None:
    """A relabelled duration histogram feeds the calls counter: increments, outcome from error.type."""
    store = Store(spec=SPEC)

    def send(attrs: dict[str, str], count: int, t: int) -> None:
        metric = histogram_metric(DURATION.name, attrs, [0.5], [count, 0], 0.1 * count, time_=t)
        store.ingest(otlp_request([metric], service="chat-api"))

    send(OFFICIAL, 3, 2)
    send(OFFICIAL, 5, 3)  # cumulative: 2 more calls
    send({**OFFICIAL, "error.type": "429"}, 1, 3)
    send({**OFFICIAL, "error.type": "503"}, 2, 3)
    send({**OFFICIAL, "error.type": "httpx.ReadTimeout"}, 1, 3)
    assert _calls(store) == {
        ("chat", "ok", ""): 5.0,
        ("chat", "rate_limited", "429"): 1.0,
        ("chat", "error", "503"): 2.0,
        ("chat", "timeout", "httpx.ReadTimeout"): 1.0,
    }


def test_own_and_unmatched_histograms_are_not_counted_as_calls() -> None:
    """The project's own histograms (it sends its calls counter) and unmatched ones add nothing."""
    store = Store(spec=SPEC)
    _ingest(store, {**OFFICIAL, S.ATTR_WORKLOAD: "chat", S.ATTR_MODE: "latency"}, "chat-api")
    _ingest(store, {**OFFICIAL, "gen_ai.request.model": "gemini-2.5-pro"}, service="other")
    assert _calls(store) == {}


def test_own_series_never_count_as_foreign_calls_even_when_caches_are_cold() -> None:
    """An own series (workload set) relabels to an equal label set, not the same object,
    once the translation cache is cleared: still not a foreign call."""
    store = Store(spec=SPEC)
    own = {**OFFICIAL, S.ATTR_WORKLOAD: "chat", S.ATTR_MODE: "latency"}
    for t in (2, 3, 4):
        store.labels._cache.clear()  # the translator hands out a new, equal tuple
        metric = histogram_metric(DURATION.name, own, [0.5], [t, 0], 0.1 * t, time_=t)
        store.ingest(otlp_request([metric], service="chat-api"))
    assert _calls(store) == {}


def test_foreign_token_usage_is_added_to_the_tokens_counter() -> None:
    """A relabelled gen_ai.client.token.usage histogram feeds gemini_slo_client_tokens_total
    with its sum's increments, per token type."""
    store = Store(spec=SPEC)

    def send(token_type: str, count: int, total: float, t: int) -> None:
        attrs = {**OFFICIAL, S.ATTR_TOKEN_TYPE: token_type}
        metric = histogram_metric(
            S.TOKEN_USAGE.name, attrs, [100.0], [count, 0], total, unit="{token}", time_=t
        )
        store.ingest(otlp_request([metric], service="chat-api"))

    send("input", 2, 30.0, 2)
    send("input", 3, 50.0, 3)  # cumulative: 20 more
    send("output", 3, 120.0, 3)
    family = store.families[S.TOKENS.prometheus]
    got = {
        (dict(k)[S.LABEL_WORKLOAD], dict(k)[S.LABEL_TOKEN_TYPE]): v.value
        for k, v in family.series.items()
    }
    assert got == {("chat", "input"): 50.0, ("chat", "output"): 120.0}
