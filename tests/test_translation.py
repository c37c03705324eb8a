"""prometheus_name/prometheus_label against opentelemetry-exporter-prometheus and otlptranslator.

Each case is translated three ways:

* by the project's ``signals.prometheus_name``;
* by the real opentelemetry-exporter-prometheus (its collector fed the metric, the
  exposed family name read back): the project must give exactly this;
* by Prometheus' otlptranslator, whose rules are transcribed below as data and a short
  function (source: github.com/prometheus/otlptranslator, metric_namer.go and
  unit_namer.go at commit 51da77392288a9e499af0900c6cde6a8d769dc34, ``normalizeName``
  with suffixes and underscore escaping, the mode of Prometheus' OTLP receiver); the
  table records its result, and the cases where it differs from the exporter are exactly
  the ones marked so.
"""

from __future__ import annotations

import pytest
from gemini_slo.contract import signals as S
from gemini_slo.contract import translation
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

K = S.Kind
#: (OTel name, unit, kind, exporter's name = the project's, otlptranslator's name)
CASES: list[tuple[str, str, S.Kind, str, str]] = [
    # The project's own kinds of names.
    ("gen_ai.client.operation.duration", "s", K.HISTOGRAM, "gen_ai_client_operation_duration_seconds", "gen_ai_client_operation_duration_seconds"),
    ("gemini_slo.client.calls", "{call}", K.COUNTER, "gemini_slo_client_calls_total", "gemini_slo_client_calls_total"),
    ("gen_ai.client.token.usage", "{token}", K.HISTOGRAM, "gen_ai_client_token_usage", "gen_ai_client_token_usage"),
    ("gemini_slo.client.call.output_tokens_per_second", "{token/s}", K.HISTOGRAM, "gemini_slo_client_call_output_tokens_per_second", "gemini_slo_client_call_output_tokens_per_second"),
    # Unit "1": nothing on counters and histograms; otlptranslator adds _ratio to gauges.
    ("app.requests", "1", K.COUNTER, "app_requests_total", "app_requests_total"),
    ("app.fill", "1", K.HISTOGRAM, "app_fill", "app_fill"),
    ("app.utilization", "1", K.GAUGE, "app_utilization", "app_utilization_ratio"),
    ("app.ratio", "1", K.GAUGE, "app_ratio", "app_ratio"),
    ("app.level", "1", K.UP_DOWN_COUNTER, "app_level", "app_level"),
    # Every unit of the unit map.
    ("app.age", "d", K.GAUGE, "app_age_days", "app_age_days"),
    ("app.uptime", "h", K.GAUGE, "app_uptime_hours", "app_uptime_hours"),
    ("app.wait", "min", K.HISTOGRAM, "app_wait_minutes", "app_wait_minutes"),
    ("app.latency", "ms", K.HISTOGRAM, "app_latency_milliseconds", "app_latency_milliseconds"),
    ("app.latency", "us", K.HISTOGRAM, "app_latency_microseconds", "app_latency_microseconds"),
    ("app.latency", "ns", K.HISTOGRAM, "app_latency_nanoseconds", "app_latency_nanoseconds"),
    ("app.size", "By", K.GAUGE, "app_size_bytes", "app_size_bytes"),
    ("app.size", "KiBy", K.GAUGE, "app_size_kibibytes", "app_size_kibibytes"),
    ("app.size", "MiBy", K.GAUGE, "app_size_mebibytes", "app_size_mebibytes"),
    ("app.size", "GiBy", K.GAUGE, "app_size_gibibytes", "app_size_gibibytes"),
    ("app.size", "TiBy", K.GAUGE, "app_size_tibibytes", "app_size_tibibytes"),
    ("app.size", "KBy", K.GAUGE, "app_size_kilobytes", "app_size_kilobytes"),
    ("app.size", "MBy", K.GAUGE, "app_size_megabytes", "app_size_megabytes"),
    ("app.size", "GBy", K.GAUGE, "app_size_gigabytes", "app_size_gigabytes"),
    ("app.size", "TBy", K.GAUGE, "app_size_terabytes", "app_size_terabytes"),
    ("app.distance", "m", K.GAUGE, "app_distance_meters", "app_distance_meters"),
    ("app.voltage", "V", K.GAUGE, "app_voltage_volts", "app_voltage_volts"),
    ("app.current", "A", K.GAUGE, "app_current_amperes", "app_current_amperes"),
    ("app.energy", "J", K.COUNTER, "app_energy_joules_total", "app_energy_joules_total"),
    ("app.power", "W", K.GAUGE, "app_power_watts", "app_power_watts"),
    ("app.mass", "g", K.GAUGE, "app_mass_grams", "app_mass_grams"),
    ("app.temperature", "Cel", K.GAUGE, "app_temperature_celsius", "app_temperature_celsius"),
    ("app.clock", "Hz", K.GAUGE, "app_clock_hertz", "app_clock_hertz"),
    ("app.cpu", "%", K.GAUGE, "app_cpu_percent", "app_cpu_percent"),
    # _per_ forms.
    ("app.io", "By/s", K.GAUGE, "app_io_bytes_per_second", "app_io_bytes_per_second"),
    ("app.io", "MiBy/s", K.GAUGE, "app_io_mebibytes_per_second", "app_io_mebibytes_per_second"),
    ("app.speed", "m/s", K.GAUGE, "app_speed_meters_per_second", "app_speed_meters_per_second"),
    ("app.events", "1/s", K.GAUGE, "app_events_per_second", "app_events_per_second"),
    ("app.calls", "{call}/s", K.COUNTER, "app_calls_per_second_total", "app_calls_per_second_total"),
    ("app.events", "{event}/min", K.GAUGE, "app_events_per_min", "app_events_per_min"),
    ("app.speed", "km/h", K.GAUGE, "app_speed_km_per_hour", "app_speed_km_per_hour"),
    ("app.cycles", "{cycle}/w", K.GAUGE, "app_cycles_per_week", "app_cycles_per_week"),
    ("app.billing", "/mo", K.GAUGE, "app_billing_per_month", "app_billing_per_month"),
    ("app.growth", "By/y", K.GAUGE, "app_growth_bytes_per_year", "app_growth_bytes_per_year"),
    ("app.rate", "By/d", K.GAUGE, "app_rate_bytes_per_day", "app_rate_bytes_per_day"),
    # Units outside the map are kept as they are.
    ("app.cost", "USD", K.COUNTER, "app_cost_USD_total", "app_cost_USD_total"),
    ("app.queue", "requests", K.GAUGE, "app_queue_requests", "app_queue_requests"),
    ("app.bits", "bit", K.GAUGE, "app_bits_bit", "app_bits_bit"),
    ("app.duration", "s", K.COUNTER, "app_duration_seconds_total", "app_duration_seconds_total"),
    # Separators, suffixes already there, leading digits: where the two part ways.
    ("a..b", "s", K.GAUGE, "a_b_seconds", "a_b_seconds"),
    ("a__b", "", K.GAUGE, "a_b", "a_b"),
    ("app-name/metric", "", K.GAUGE, "app_name_metric", "app_name_metric"),
    ("app.duration_seconds", "s", K.HISTOGRAM, "app_duration_seconds", "app_duration_seconds"),
    ("app.count_total", "", K.COUNTER, "app_count_total", "app_count_total"),
    ("app.total.count", "", K.COUNTER, "app_total_count_total", "app_count_total"),
    ("seconds.elapsed", "s", K.GAUGE, "seconds_elapsed_seconds", "seconds_elapsed"),
    ("app.name.", "s", K.GAUGE, "app_name__seconds", "app_name_seconds"),
    ("2xx.responses", "", K.COUNTER, "_xx_responses_total", "_2xx_responses_total"),
    ("app.size", "By{compressed}", K.GAUGE, "app_size_bytes", "app_size"),
]  # fmt: skip

#: The cases where the two translators differ (the project follows the exporter).
DIFFERENT = {
    ("app.utilization", "1"),
    ("app.total.count", ""),
    ("seconds.elapsed", "s"),
    ("app.name.", "s"),
    ("2xx.responses", ""),
    ("app.size", "By{compressed}"),
}

# ---- otlptranslator, transcribed (metric_namer.go, unit_namer.go @ 51da773) -----------
#: unitMap and perUnitMap are the same tables as the exporter's (contract/translation.py).
OTLP_UNIT_MAP = translation.UNIT_MAP
OTLP_PER_UNIT_MAP = translation.PER_UNIT_MAP


def _valid(c: str) -> bool:
    return c.isascii() and (c.isalnum() or c == ":")


def _tokens(text: str) -> list[str]:
    """strings.FieldsFunc(text, !isValidCompliantMetricChar)."""
    out, word = [], ""
    for c in text:
        if _valid(c):
            word += c
        elif word:
            out.append(word)
            word = ""
    return [*out, word] if word else out


def _clean_unit(unit: str) -> str:
    """cleanUpUnit: invalid characters to _, runs collapsed, a leading _ trimmed."""
    mapped = "".join(c if _valid(c) else "_" for c in unit)
    while "__" in mapped:
        mapped = mapped.replace("__", "_")
    return mapped.removeprefix("_")


def _unit_suffixes(unit: str) -> tuple[str, str]:
    """buildUnitSuffixes: main and per unit; a part holding { or } is dropped."""
    parts = unit.split("/", 1)
    main = parts[0].strip()
    main_suffix = OTLP_UNIT_MAP.get(main, main) if main and not set(main) & set("{}") else ""
    per_suffix = ""
    if len(parts) > 1 and parts[1]:
        per = parts[1].strip()
        if per and not set(per) & set("{}"):
            per_suffix = OTLP_PER_UNIT_MAP.get(per, per)
        if per_suffix:
            per_suffix = "per_" + per_suffix
    return main_suffix, per_suffix


def otlptranslator_name(name: str, unit: str, kind: S.Kind) -> str:
    """normalizeName(name, unit, type, namespace="") with addUnitTokens."""
    tokens = _tokens(name)
    main, per = (_clean_unit(u) for u in _unit_suffixes(unit))
    if main in tokens:
        main = ""
    if per == "per_":
        per = ""
    else:
        per = per.removesuffix("_")
        if per in tokens:
            per = ""
    if per:
        main = main.removesuffix("_")
    tokens += [t for t in (main, per) if t]
    if kind is K.COUNTER:
        tokens = [t for t in tokens if t != "total"] + ["total"]
    if unit == "1" and kind is K.GAUGE:
        tokens = [t for t in tokens if t != "ratio"] + ["ratio"]
    out = "_".join(tokens)
    return "_" + out if out[:1].isdigit() else out


# ---- opentelemetry-exporter-prometheus, run -------------------------------------------


def _point(kind: S.Kind) -> Sum | Gauge | Histogram:
    number = [NumberDataPoint({"k": "v"}, 1, 2, 1.0)]
    cumulative = AggregationTemporality.CUMULATIVE
    if kind is K.COUNTER:
        return Sum(number, cumulative, is_monotonic=True)
    if kind is K.UP_DOWN_COUNTER:
        return Sum(number, cumulative, is_monotonic=False)
    if kind is K.GAUGE:
        return Gauge(number)
    hist = HistogramDataPoint({"k": "v"}, 1, 2, 1, 1.0, [1, 0], [1.0], 1.0, 1.0)
    return Histogram([hist], cumulative)


def exporter_name(name: str, unit: str, kind: S.Kind) -> str:
    """The name the real PrometheusMetricReader exposes for one metric (``_total`` included)."""
    reader = PrometheusMetricReader(disable_target_info=True)
    metric = Metric(name=name, description="d", unit=unit, data=_point(kind))
    scope = ScopeMetrics(InstrumentationScope("t"), [metric], "")
    reader._collector.add_metrics_data(MetricsData([ResourceMetrics(Resource({}), [scope], "")]))
    (family,) = list(reader._collector.collect())
    return f"{family.name}_total" if family.type == "counter" else family.name


def test_enough_cases() -> None:
    """The table covers at least 40 name/unit/type cases and every unit of the unit map."""
    assert len(CASES) >= 40
    assert set(translation.UNIT_MAP) <= {unit for _, unit, _, _, _ in CASES}


@pytest.mark.parametrize(("name", "unit", "kind", "exporter", "otlp"), CASES)
def test_project_translation_is_the_exporters(
    name: str, unit: str, kind: S.Kind, exporter: str, otlp: str
) -> None:
    """prometheus_name equals the real exporter's name; the table's otlptranslator column is
    what the transcribed rules give, and differs from the exporter only where marked."""
    assert exporter_name(name, unit, kind) == exporter
    assert S.prometheus_name(name, unit, kind) == exporter
    assert otlptranslator_name(name, unit, kind) == otlp
    assert (exporter != otlp) == ((name, unit) in DIFFERENT)


@pytest.mark.parametrize(
    ("key", "label"),
    [
        ("gen_ai.request.model", "gen_ai_request_model"),
        ("error.type", "error_type"),
        ("a..b", "a_b"),
        ("a__b", "a_b"),
        ("http.response.status_code", "http_response_status_code"),
        ("1abc", "_abc"),
        ("k8s.pod.name", "k8s_pod_name"),
        ("weird-key/with spaces", "weird_key_with_spaces"),
    ],
)
def test_label_translation_is_the_exporters(key: str, label: str) -> None:
    """prometheus_label equals the exporter's label sanitizer on each key."""
    from opentelemetry.exporter.prometheus._mapping import sanitize_attribute

    assert sanitize_attribute(key) == label
    assert S.prometheus_label(key) == label
