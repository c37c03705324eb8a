"""gemini_slo.lab.victoria without the binaries: the relabeling it generates and the command lines.

The end-to-end proof is in test_victoria_names.py, test_e2e_fullstack.py and
test_dashboards_promql.py (they need VictoriaMetrics); these pin the pieces they rely on.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from gemini_slo.contract import agent_series
from gemini_slo.contract import signals as S
from gemini_slo.contract.spec import default_spec_path, load_spec
from gemini_slo.lab import victoria


@pytest.mark.parametrize(
    ("bound", "go"),
    [
        (1.0, "1"),
        (0.5, "0.5"),
        (10.0, "10"),
        (0.0005, "0.0005"),
        (1e-05, "0.00001"),
        (1048576.0, "1048576"),
        (67108864.0, "67108864"),
        (1.25, "1.25"),
        (float("inf"), "+Inf"),
    ],
)
def test_go_format_f_writes_bounds_as_victoria_metrics_does(bound: float, go: str) -> None:
    """Go's FormatFloat(b, 'f', -1): the shortest round-trip decimal, never an exponent."""
    assert victoria.go_format_f(bound) == go


def _relabel(le: str, rules: list[dict[str, object]]) -> str:
    """Apply ``replace`` rules on ``le`` as Prometheus-style relabeling does (anchored regex)."""
    for rule in rules:
        match = re.fullmatch(str(rule["regex"]), le)
        if rule.get("action") == "replace" and match:
            le = match.expand(str(rule["replacement"]).replace("${1}", r"\g<1>"))
    return le


def test_the_le_rules_give_format_le_for_every_bound_of_the_spec() -> None:
    """Every bound the apps can export: VictoriaMetrics' spelling, relabeled, is format_le's."""
    spec = load_spec(default_spec_path())
    bounds = victoria.spec_bounds(spec)
    assert set(S.LATENCY_DURATION_BUCKETS) <= set(bounds)
    assert set(spec.latency_thresholds("chat")) <= set(bounds)
    rules = victoria.le_relabel_rules(bounds)
    for bound in bounds:
        assert _relabel(victoria.go_format_f(bound), rules) == S.format_le(bound), bound
    # Large bounds (the token-usage layout) need rules of their own; few rules in all.
    assert any(b >= 1e6 for b in bounds) and 1 < len(rules) < 10


@pytest.mark.parametrize("bound", [0.0, 1.0, 7.0, 10.0, 300.0, 4096.0, 999_999.0, 1e6, 1.5e6])
def test_the_integer_rule_covers_integral_thresholds_of_any_spec(bound: float) -> None:
    """An integral threshold of a user's spec (``2s``, ``300`` tokens/s) needs no rule of its own."""
    rules = victoria.le_relabel_rules([])
    expected = S.format_le(bound) if bound < 1e6 else victoria.go_format_f(bound)
    assert _relabel(victoria.go_format_f(bound), rules) == expected
    assert _relabel(victoria.go_format_f(bound + 0.5), rules) == victoria.go_format_f(bound + 0.5)


def test_the_relabel_config_drops_the_sdk_attributes_and_keeps_the_instance() -> None:
    """telemetry_sdk_* are dropped; the kept resource labels match no labeldrop regex."""
    config = victoria.relabel_config(load_spec(default_spec_path()))
    drops = [r["regex"] for r in config if r["action"] == "labeldrop"]
    assert drops == [victoria.DROPPED_RESOURCE_LABELS]
    for label in ("telemetry_sdk_language", "telemetry_sdk_name", "telemetry_sdk_version"):
        assert re.fullmatch(drops[0], label)
    for label in victoria.KEPT_RESOURCE_LABELS:
        assert not re.fullmatch(drops[0], label)
    assert victoria.KEPT_RESOURCE_LABELS == ("service_name", "service_instance_id")


def test_vmalert_gets_every_rule_file_and_the_notifier(tmp_path: Path) -> None:
    """One -rule per file, datasource and remote write on VictoriaMetrics, no group label."""
    files = [tmp_path / "a.yaml", tmp_path / "b.yaml"]
    argv = victoria.vmalert_argv(
        "vmalert", "127.0.0.1:1", "http://127.0.0.1:2", files, notifier="127.0.0.1:3"
    )
    assert [a for a in argv if a.startswith("-rule=")] == [f"-rule={f.resolve()}" for f in files]
    assert "-datasource.url=http://127.0.0.1:2" in argv
    assert "-remoteWrite.url=http://127.0.0.1:2" in argv
    assert "-notifier.url=http://127.0.0.1:3" in argv
    assert "-disableAlertgroupLabel" in argv
    assert f"-rule.evalDelay={victoria.TEST_LATENCY_OFFSET}" in argv
    silent = victoria.vmalert_argv("vmalert", "a", "http://b", files, notifier=None)
    assert "-notifier.blackhole" in silent and not any("notifier.url" in a for a in silent)


def test_victoria_metrics_takes_otlp_with_prometheus_names(tmp_path: Path) -> None:
    """The naming flag, the lowered latency offset and the relabel file are on the command line."""
    argv = victoria.victoria_metrics_argv(
        "victoria-metrics", "127.0.0.1:1", tmp_path, relabel=tmp_path / "r.yaml"
    )
    assert "-opentelemetry.usePrometheusNaming" in argv
    assert f"-search.latencyOffset={victoria.TEST_LATENCY_OFFSET}" in argv
    assert f"-relabelConfig={tmp_path / 'r.yaml'}" in argv


def test_agent_only_series_are_recognised_in_names_and_expressions() -> None:
    """The agent's percentiles, objectives and health are agent-only; application series are not."""
    for name in agent_series.PERCENTILE_METRICS.values():
        assert victoria.is_agent_only(name)
        assert victoria.mentions_agent_only(f'max by (quantile) ({name}{{window="1m"}})')
    assert victoria.is_agent_only(agent_series.RECEIVED_POINTS)
    assert victoria.mentions_agent_only(f"rate({agent_series.RECEIVED_POINTS}[1m])")
    for signal in S.INSTRUMENTATION_SIGNALS:
        assert not victoria.is_agent_only(signal.prometheus)
        assert not victoria.mentions_agent_only(f"rate({signal.prometheus}_count[1m])")
    twins = (S.OPERATION_DURATION_EXPONENTIAL, S.TIME_TO_FIRST_CHUNK_EXPONENTIAL)
    assert tuple(s.prometheus for s in twins) == victoria.VMRANGE_HISTOGRAMS
