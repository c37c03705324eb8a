"""The metric contract: names, translation and bucket layouts."""

from __future__ import annotations

import pytest
from gemini_slo.contract import signals as s
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families


def test_prometheus_names_match_the_standard_python_exporter() -> None:
    """Every explicit signal, recorded through the OTel SDK and exposed by
    opentelemetry-exporter-prometheus, gets exactly the name and labels signals.py computes.

    This is the scale-out promise at the level of the contract: rules and dashboards written
    against ``Signal.prometheus`` read what the standard translation produces.
    """
    registry = CollectorRegistry()
    reader = PrometheusMetricReader(disable_target_info=True)
    registry.register(reader._collector)
    provider = MeterProvider(metric_readers=[reader])
    meter = provider.get_meter("contract-test")
    for signal in s.INSTRUMENTATION_SIGNALS:
        attrs = {a: "v" for a in signal.attributes}
        match signal.kind:
            case s.Kind.COUNTER:
                meter.create_counter(signal.name, unit=signal.unit).add(1, attrs)
            case s.Kind.UP_DOWN_COUNTER:
                meter.create_up_down_counter(signal.name, unit=signal.unit).add(1, attrs)
            case s.Kind.GAUGE:
                meter.create_gauge(signal.name, unit=signal.unit).set(1, attrs)
            case s.Kind.HISTOGRAM:
                meter.create_histogram(signal.name, unit=signal.unit).record(1, attrs)
            case s.Kind.EXPONENTIAL_HISTOGRAM:
                continue  # opentelemetry-exporter-prometheus fails the whole scrape on these
    from prometheus_client import generate_latest

    families = {
        f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())
    }
    provider.shutdown()
    for signal in s.INSTRUMENTATION_SIGNALS:
        if signal.kind is s.Kind.EXPONENTIAL_HISTOGRAM:
            continue
        # The parser strips _total from counter family names.
        family_name = signal.prometheus.removesuffix("_total")
        assert family_name in families, f"{signal.name} -> {signal.prometheus} not exposed"
        labels = set(families[family_name].samples[0].labels) - {"le"}
        labels = {lb for lb in labels if not lb.startswith("otel_scope_")}
        assert labels == set(signal.labels), signal.name


def test_every_name_is_unique_and_prefixed() -> None:
    """No two signals share a Prometheus name; non-semconv ones carry the project prefix."""
    names = [sig.prometheus for sig in s.INSTRUMENTATION_SIGNALS]
    assert len(names) == len(set(names))
    for sig in s.INSTRUMENTATION_SIGNALS:
        assert sig.name.startswith("gen_ai.") == sig.semconv
        if not sig.semconv:
            assert sig.name.startswith("gemini_slo.")


def test_every_series_carries_workload_and_mode() -> None:
    """The design rule: every series says which workload and mode it belongs to."""
    for sig in s.INSTRUMENTATION_SIGNALS:
        assert s.ATTR_WORKLOAD in sig.attributes, sig.name
        assert s.ATTR_MODE in sig.attributes, sig.name


@pytest.mark.parametrize("mode", list(s.Mode))
def test_histograms_have_sorted_positive_buckets(mode: s.Mode) -> None:
    """Bucket layouts are strictly increasing and positive, per mode."""
    for sig in s.signals_for(mode):
        if sig.kind is s.Kind.HISTOGRAM:
            assert sig.buckets, sig.name
            assert all(b > 0 for b in sig.buckets)
            assert list(sig.buckets) == sorted(set(sig.buckets)), sig.name


def test_spec_thresholds_become_boundaries() -> None:
    """A latency threshold that is not a default boundary is added, once."""
    layout = s.duration_buckets(s.Mode.LATENCY, [0.45, 0.5])
    assert 0.45 in layout and layout.count(0.5) == 1
    assert list(layout) == sorted(layout)
    assert s.duration_buckets(s.Mode.THROUGHPUT, [42.0])[-1] >= 42.0


def test_mode_specific_signals() -> None:
    """Latency mode has TTFT and queue signals; throughput mode has tokens/s and cost per token."""
    latency = {sig.name for sig in s.signals_for(s.Mode.LATENCY)}
    throughput = {sig.name for sig in s.signals_for(s.Mode.THROUGHPUT)}
    assert s.TIME_TO_FIRST_CHUNK.name in latency - throughput
    assert s.QUEUE_DEPTH.name in latency - throughput
    assert s.CALL_TOKENS_PER_SECOND.name in throughput - latency
    assert s.CALL_COST_PER_MILLION_TOKENS.name in throughput - latency
    assert s.CALLS.name in latency & throughput
