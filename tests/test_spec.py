"""The slo.yaml model: the example loads, values parse, bad specs fail naming field and line."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
from gemini_slo.contract import signals
from gemini_slo.contract.signals import Mode
from gemini_slo.contract.spec import (
    Comparison,
    ObjectiveKind,
    SloSpec,
    SpecError,
    Unit,
    default_spec_path,
    format_duration,
    load_spec,
    parse_spec,
)

EXAMPLE = default_spec_path().read_text(encoding="utf-8")

MINIMAL = """\
version: gemini-slo/v1
workloads:
  - name: chat
    mode: latency
  - name: batch
    mode: throughput
"""


@pytest.fixture(scope="module")
def spec() -> SloSpec:
    """The packaged example spec."""
    return load_spec(default_spec_path())


def test_example_spec_loads_with_expected_objectives(spec: SloSpec) -> None:
    """The example has a latency chat workload and a throughput batch workload."""
    assert spec.version == "gemini-slo/v1"
    assert spec.period_days == 30
    chat, batch = spec.workloads
    assert (chat.name, chat.mode, chat.models) == ("chat", Mode.LATENCY, ("gemini-2.5-flash",))
    assert [o.name for o in chat.objectives] == [
        "latency_p95",
        "latency_p99",
        "ttft_p95",
        "availability",
        "timeout_ratio",
        "shed_ratio",
        "queue_wait_p95",
        "headroom",
    ]
    assert batch.mode is Mode.THROUGHPUT
    assert [o.name for o in batch.objectives] == [
        "tokens_per_second",
        "cost_per_million_tokens",
        "error_ratio",
        "rate_limited_ratio",
        "utilization",
        "stall",
    ]


@pytest.mark.parametrize(
    ("workload", "name", "kind", "target", "threshold", "unit", "comparison", "budget"),
    [
        ("chat", "latency_p95", ObjectiveKind.LATENCY, 0.95, 0.5, Unit.SECONDS, "<=", 0.05),
        ("chat", "latency_p99", ObjectiveKind.LATENCY, 0.99, 0.8, Unit.SECONDS, "<=", 0.01),
        ("chat", "ttft_p95", ObjectiveKind.TTFT, 0.95, 0.3, Unit.SECONDS, "<=", 0.05),
        ("chat", "availability", ObjectiveKind.AVAILABILITY, 0.995, 0.995, Unit.RATIO, ">=", 0.005),
        ("chat", "timeout_ratio", ObjectiveKind.TIMEOUT_RATIO, 0.999, 0.001, Unit.RATIO, "<=", 0.001),
        ("chat", "headroom", ObjectiveKind.HEADROOM, 1.0, 0.6, Unit.RATIO, "<=", None),
        ("batch", "tokens_per_second", ObjectiveKind.TOKENS_PER_SECOND, 1.0, 10000, Unit.TOKENS_PER_SECOND, ">=", None),
        ("batch", "cost_per_million_tokens", ObjectiveKind.COST_PER_MILLION_TOKENS, 1.0, 0.5, Unit.USD_PER_MILLION_TOKENS, "<=", None),
        ("batch", "error_ratio", ObjectiveKind.ERROR_RATIO, 0.99, 0.01, Unit.RATIO, "<=", 0.01),
        ("batch", "utilization", ObjectiveKind.UTILIZATION, 1.0, 0.8, Unit.RATIO, ">=", None),
        ("batch", "stall", ObjectiveKind.STALL, 1.0, 300.0, Unit.SECONDS, "<=", None),
    ],
)  # fmt: skip
def test_objective_values(
    spec: SloSpec,
    workload: str,
    name: str,
    kind: ObjectiveKind,
    target: float,
    threshold: float,
    unit: Unit,
    comparison: str,
    budget: float | None,
) -> None:
    """Each objective of the example carries the target, threshold, unit and budget."""
    o = spec.workload(workload).objective(name)
    assert (o.kind, o.target, o.threshold, o.unit, o.comparison) == (
        kind,
        target,
        threshold,
        unit,
        Comparison(comparison),
    )
    assert o.budget == budget
    assert o.summary


def test_is_met_follows_comparison(spec: SloSpec) -> None:
    """is_met compares a measured value with the threshold; NaN is never met."""
    p95 = spec.workload("chat").objective("latency_p95")
    assert p95.is_met(0.42) and not p95.is_met(0.51) and not p95.is_met(math.nan)
    tps = spec.workload("batch").objective("tokens_per_second")
    assert tps.is_met(12000) and not tps.is_met(9000)


def test_thresholds_are_bucket_boundaries(spec: SloSpec) -> None:
    """Latency and TTFT thresholds are boundaries of the layouts the instrumentation uses."""
    chat = spec.workload("chat")
    assert spec.latency_thresholds("chat") == (0.5, 0.8)
    assert spec.ttft_thresholds(chat) == (0.3,)
    assert set(chat.latency_thresholds) <= set(chat.duration_buckets())
    assert chat.duration_buckets() == signals.duration_buckets(Mode.LATENCY, (0.5, 0.8))
    assert set(chat.ttft_thresholds) <= set(chat.ttft_buckets())


def test_odd_threshold_is_merged_into_buckets() -> None:
    """A threshold that is not a default boundary (450ms) is added to the layout."""
    s = parse_spec(
        MINIMAL.replace(
            "    mode: latency\n",
            "    mode: latency\n    objectives:\n      latency: {percentile: 90, threshold: 450ms}\n",
        )
    )
    chat = s.workload("chat")
    assert chat.objectives[0].name == "latency_p90"
    assert 0.45 in chat.duration_buckets()


@pytest.mark.parametrize(("text", "seconds"), [("700ms", 0.7), ("350ms", 0.35), ("1100ms", 1.1)])
def test_millisecond_thresholds_are_exact_decimals(text: str, seconds: float) -> None:
    """'700ms' is the bucket boundary 0.7, not 700 x 0.001 = 0.7000000000000001.

    The rules match the bucket by its ``le`` text: a float-noise threshold gives
    ``le="0.7000000000000001"``, which an app that configures its thresholds in seconds
    (``0.7``) never exposes, so the latency SLI would have no data and its page could not
    fire; it also added a near-duplicate bucket next to the default 0.7.
    """
    from gemini_slo.contract.promql import le_matcher

    s = parse_spec(
        MINIMAL.replace(
            "    mode: latency\n",
            "    mode: latency\n    objectives:\n"
            f"      latency: {{percentile: 90, threshold: {text}}}\n"
            f"      ttft: {{percentile: 90, threshold: {text}}}\n",
        )
    )
    chat = s.workload("chat")
    assert chat.objective("latency_p90").threshold == seconds
    assert le_matcher(chat.objective("ttft_p90").threshold) == f'le="{seconds}"'
    buckets = chat.duration_buckets()
    assert seconds in buckets and len(buckets) == len(set(round(b, 9) for b in buckets))


def test_defaults_of_a_minimal_spec() -> None:
    """Omitted settings take documented defaults; headroom, utilization, stall always exist."""
    s = parse_spec(MINIMAL)
    assert s.period_days == 30
    assert s.alerting.window_scale == 1 and s.alerting.scrape_interval == 15
    assert s.alerting.notify.webhook_url == "http://127.0.0.1:9095/alerts"
    assert [o.name for o in s.workload("chat").objectives] == ["headroom"]
    assert s.workload("chat").objective("headroom").threshold == 0.6
    batch = s.workload("batch")
    assert [o.name for o in batch.objectives] == ["rate_limited_ratio", "utilization", "stall"]
    assert batch.objective("utilization").threshold == 0.8
    assert batch.objective("stall").threshold == 300


def test_values_in_all_spellings() -> None:
    """Ratios as '99.5%' or 0.995, percentiles as 99.9 or '99.9%', durations in any unit."""
    text = MINIMAL.replace(
        "    mode: latency\n",
        "    mode: latency\n    objectives:\n"
        "      latency: [{percentile: '99.9%', threshold: 1.5s}, {percentile: 50, threshold: 0.25s}]\n"
        "      availability: 0.999\n      timeout_ratio: '0.5 %'\n",
    ).replace("version: gemini-slo/v1\n", "version: gemini-slo/v1\nperiod: 28d\n")
    s = parse_spec(text)
    chat = s.workload("chat")
    assert chat.objective("latency_p99_9").threshold == 1.5
    assert chat.objective("latency_p99_9").target == 0.999
    assert chat.objective("latency_p50").threshold == 0.25
    assert chat.objective("availability").target == 0.999
    assert chat.objective("timeout_ratio").threshold == 0.005
    assert s.period_days == 28


def test_window_scale_and_min_window() -> None:
    """Windows divide by window_scale and never go below 4 scrape intervals."""
    s = parse_spec(
        MINIMAL.replace(
            "workloads:", "alerting: {window_scale: 60, scrape_interval: 2s}\nworkloads:"
        )
    )
    a = s.alerting
    assert a.min_window == 8
    assert a.window(3600) == 60
    assert a.window(300) == 8  # 5s clamped to 8s
    assert a.hold(120) == 2


def test_model_is_frozen(spec: SloSpec) -> None:
    """The model is immutable; variants are made with dataclasses.replace."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.workloads[0].name = "x"  # type: ignore[misc]
    scaled = dataclasses.replace(
        spec, alerting=dataclasses.replace(spec.alerting, window_scale=60.0)
    )
    assert scaled.alerting.window(3600) == 60


def test_load_spec_names_the_file(tmp_path: Path) -> None:
    """load_spec reports errors under the file's name."""
    path = tmp_path / "mine.yaml"
    path.write_text("version: gemini-slo/v1\nworkloads: [{name: x, mode: fast}]\n")
    with pytest.raises(SpecError, match=r"^mine\.yaml:2: workloads\[0\]\.mode: expected one of"):
        load_spec(path)


@pytest.mark.parametrize(
    ("old", "new", "line", "path", "message"),
    [
        ("threshold: 800ms", "threshold: fast", 24, "workloads[0].objectives.latency[1].threshold", "expected a duration like '500ms'"),
        ("mode: throughput", "mode: batchy", 32, "workloads[1].mode", "expected one of latency, throughput"),
        ("availability: 99.5%", "availability: 100%", 26, "workloads[0].objectives.availability", "strictly between 0 and 1"),
        ("availability: 99.5%", "availabilty: 99.5%", 26, "workloads[0].objectives.availabilty", "unknown field"),
        ("availability: 99.5%", "availability: lots", 26, "workloads[0].objectives.availability", "expected a percentage like '99.5%'"),
        ("tokens_per_second: {min: 10000}", "ttft: {percentile: 95, threshold: 1s}", 35, "workloads[1].objectives.ttft", "not an objective of a throughput-mode workload"),
        ("version: gemini-slo/v1", "version: gemini-slo/v2", 4, "version", "unsupported version"),
        ("name: batch", "name: chat", 31, "workloads[1]", "duplicate workload name 'chat' (first on line 18)"),
        ("name: batch", "name: Batch Jobs", 31, "workloads[1].name", "a workload name of lowercase letters"),
        ("threshold: 100ms", "threshold: 120ms", 29, "workloads[0].objectives.queue_wait.threshold", "queue-wait bucket boundary"),
        ("team: genai-platform", "severity: high", 10, "alerting.labels.severity", "set by gemini-slo itself"),
        ("period: 30d", "period: 36h", 5, "period", "whole number of days"),
        ("{percentile: 99, threshold: 800ms}", "{percentile: 95, threshold: 800ms}", 24, "workloads[0].objectives.latency[1]", "a second objective at percentile 95"),
        ("{percentile: 99, threshold: 800ms}", "{percentile: 99}", 24, "workloads[0].objectives.latency[1]", "missing required field 'threshold'"),
        ("{percentile: 99, threshold: 800ms}", "{percentile: 120, threshold: 800ms}", 24, "workloads[0].objectives.latency[1].percentile", "between 0 and 100"),
        ("stall: {after: 5m}", "stall: {after: 5m, after: 6m}", 40, "workloads[1].objectives.stall.after", "duplicate field"),
        ("window_scale: 1 ", "window_scale: 0.5 ", 7, "alerting.window_scale", "expected a number >= 1"),
        ("cost_per_million_tokens: {max: 0.5}", "cost_per_million_tokens: {max: -1}", 36, "workloads[1].objectives.cost_per_million_tokens.max", "expected a number > 0"),
        ("models: [gemini-2.5-flash]", "models: gemini-2.5-flash", 20, "workloads[0].models", "expected a list"),
        ("  labels:                        # added", "  lables:                        # added", 9, "alerting.lables", "unknown field"),
        ("runbook_base_url: https://", "runbook_base_url: ftp://", 11, "alerting.runbook_base_url", "an http(s) URL"),
    ],
)  # fmt: skip
def test_bad_spec_names_field_and_line(
    old: str, new: str, line: int, path: str, message: str
) -> None:
    """Each broken field is reported with its path and line, in the documented format."""
    assert old in EXAMPLE, old
    with pytest.raises(SpecError) as info:
        parse_spec(EXAMPLE.replace(old, new, 1))
    err = info.value
    assert (err.line, err.path) == (line, path), str(err)
    assert message in str(err)
    assert str(err).startswith(f"slo.yaml:{line}: {path}: ")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "slo.yaml:1: the spec is empty"),
        ("version: [\n", "invalid YAML"),
        ("- a\n- b\n", "expected a mapping with keys version"),
        ("version: gemini-slo/v1\n", "missing required field 'workloads'"),
        ("version: gemini-slo/v1\nworkloads: []\n", "expected at least one workload"),
        (
            "version: gemini-slo/v1\nalerting: {severity_overrides: {GeminiSloNope: critical}}\n"
            "workloads: [{name: a, mode: latency}]\n",
            "alerting.severity_overrides.GeminiSloNope: unknown alert",
        ),
    ],
)
def test_bad_documents(text: str, message: str) -> None:
    """Whole-document problems are reported too."""
    with pytest.raises(SpecError, match=None) as info:
        parse_spec(text)
    assert message in str(info.value)


def test_spec_error_is_a_value_error() -> None:
    """Callers that catch ValueError catch SpecError."""
    assert issubclass(SpecError, ValueError)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(300, "5m"), (0.5, "500ms"), (86400, "1d"), (3600 * 6, "6h"), (2.5, "2500ms"), (8, "8s")],
)
def test_format_duration(seconds: float, text: str) -> None:
    """Durations render in the largest exact unit (a valid PromQL duration)."""
    assert format_duration(seconds) == text


def test_every_field_is_documented() -> None:
    """docs/slo-spec.md names every field the loader accepts and every alert."""
    from gemini_slo.contract.alert_names import ALERT_NAMES

    doc = (Path(__file__).resolve().parents[1] / "docs" / "slo-spec.md").read_text()
    fields = [
        "version", "period", "alerting", "workloads", "window_scale", "scrape_interval",
        "labels", "runbook_base_url", "severity_overrides", "notify", "webhook_url",
        "pagerduty_routing_key_file", "slack_api_url_file", "slack_channel", "name", "mode",
        "models", "objectives", "percentile", "threshold", "max_utilization", "min", "max",
        "after",
    ]  # fmt: skip
    for name in [*fields, *(k.value for k in ObjectiveKind), *ALERT_NAMES]:
        assert f"`{name}`" in doc or f"{name}:" in doc, name
