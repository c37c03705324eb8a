"""Rules generated from the spec: table-driven expected rules, golden spec-in/rules-out
files, regenerate-and-diff against the committed artifacts, and the CLI.

The other concerns have their own modules: test_alerts_burn_windows.py (the window pairs,
thresholds and evidence), test_alerts_promtool.py (promtool on the rules),
test_alerts_scenarios.py (the production-window scenario suite), test_alerts_routing.py
(Alertmanager and the runbook).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest
from gemini_slo.alerts import rules
from gemini_slo.alerts.promtool_tests import go_humanize
from gemini_slo.cli.artifacts import (
    ALERT_RULES,
    ALERTMANAGER,
    RECORDING_RULES,
    artifacts,
    stale,
)
from gemini_slo.cli.generate import add_arguments, run
from gemini_slo.contract import alert_names as names
from gemini_slo.contract import promql, signals
from gemini_slo.contract.burn_windows import Policy, windows_for
from gemini_slo.contract.spec import SloSpec, default_spec_path, load_spec

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden" / "minimal"
UPDATE_GOLDEN = os.environ.get("GEMINI_SLO_UPDATE_GOLDEN") == "1"


@pytest.fixture(scope="module")
def spec() -> SloSpec:
    """The packaged example spec."""
    return load_spec(default_spec_path())


def _scaled(spec: SloSpec, scale: float, scrape: float) -> SloSpec:
    alerting = dataclasses.replace(spec.alerting, window_scale=scale, scrape_interval=scrape)
    return dataclasses.replace(spec, alerting=alerting)


def _alerts(spec: SloSpec) -> list[dict[str, Any]]:
    return [r for g in rules.alerting_rules(spec)["groups"] for r in g["rules"]]


def _records(spec: SloSpec) -> list[dict[str, Any]]:
    return [r for g in rules.recording_rules(spec)["groups"] for r in g["rules"]]


# ---- table-driven expected rules ---------------------------------------------------------


@pytest.mark.parametrize(
    ("alert", "workload", "objective", "severity", "burn_window", "expr_contains", "hold"),
    [
        # p95: the Workbook's 14.4x (72% bad) capped at 1/12, the 6x at 1/6.
        (names.LATENCY_BURN, "chat", "latency_p95", "critical", "1h/5m", "ratio_rate1h{gemini_slo_workload=\"chat\",objective=\"latency_p95\"} > 0.0833333", None),
        (names.LATENCY_BURN, "chat", "latency_p95", "critical", "6h/30m", "ratio_rate30m{gemini_slo_workload=\"chat\",objective=\"latency_p95\"} > 0.166667", None),
        (names.LATENCY_BURN, "chat", "latency_p95", "warning", "6h/30m", "ratio_rate6h{gemini_slo_workload=\"chat\",objective=\"latency_p95\"} > 0.05", None),
        (names.LATENCY_BURN, "chat", "latency_p95", "warning", "3d/6h", "increase3d{gemini_slo_workload=\"chat\",objective=\"latency_p95\"} >= 16", None),
        (names.LATENCY_BURN, "chat", "latency_p99", "critical", "6h/30m", "ratio_rate30m{gemini_slo_workload=\"chat\",objective=\"latency_p99\"} > 0.06", None),
        (names.LATENCY_BURN, "chat", "latency_p95", "critical", "1h/5m", "increase1h{gemini_slo_workload=\"chat\",objective=\"latency_p95\"} >= 7", None),
        (names.TTFT_BURN, "chat", "ttft_p95", "critical", "1h/5m", "> 0.0833333", None),
        (names.TTFT_BURN, "chat", "ttft_p95", "warning", "3d/6h", "ratio_rate3d{gemini_slo_workload=\"chat\",objective=\"ttft_p95\"} > 0.05", None),
        # 99.5%: 14.4x is reachable (7.2% < 1/12): the Workbook's threshold stands.
        (names.AVAILABILITY_BURN, "chat", "availability", "critical", "1h/5m", "> 0.072", None),
        (names.AVAILABILITY_BURN, "chat", "availability", "warning", "6h/30m", "> 0.005", None),
        (names.TIMEOUT_SPIKE, "chat", "timeout_ratio", "warning", "1h/5m", "> 0.0144", None),
        (names.SHED_SPIKE, "chat", "shed_ratio", "warning", "6h/30m", "> 0.01", None),
        (names.QUEUE_SATURATED, "chat", "queue_wait_p95", "warning", None, "ratio_rate5m{gemini_slo_workload=\"chat\",objective=\"queue_wait_p95\"} > 0.05", "10m"),
        (names.HEADROOM_LOW, "chat", "headroom", "warning", None, "gemini_slo:utilization:ratio_avg5m{gemini_slo_workload=\"chat\"} > 0.6", "15m"),
        (names.TOKEN_THROUGHPUT_LOW, "batch", "tokens_per_second", "warning", None, "gemini_slo:tokens_generated:rate5m{gemini_slo_workload=\"batch\"} < 10000", "15m"),
        (names.COST_HIGH, "batch", "cost_per_million_tokens", "warning", None, "gemini_slo:cost_usd_per_million_tokens:rate1h{gemini_slo_workload=\"batch\"} > 0.5", "15m"),
        (names.UTILIZATION_LOW, "batch", "utilization", "warning", None, "gemini_slo:utilization:ratio_avg1h{gemini_slo_workload=\"batch\"} < 0.8", "30m"),
        (names.RATE_LIMIT_STORM, "batch", "rate_limited_ratio", "warning", None, "> 0.05", "5m"),
        (names.ERROR_BUDGET_BURN, "batch", "error_ratio", "critical", "1h/5m", "ratio_rate1h{gemini_slo_workload=\"batch\",objective=\"error_ratio\"} > 0.0833333", None),
        (names.ERROR_BUDGET_BURN, "batch", "error_ratio", "warning", "3d/6h", "ratio_rate6h{gemini_slo_workload=\"batch\",objective=\"error_ratio\"} > 0.01", None),
        (names.STALLED, "batch", "stall", "critical", None, "unless on (gemini_slo_workload)", "1m"),
    ],
)  # fmt: skip
def test_expected_rule(
    spec: SloSpec,
    alert: str,
    workload: str,
    objective: str,
    severity: str,
    burn_window: str | None,
    expr_contains: str,
    hold: str | None,
) -> None:
    """Each alert of the example exists with its severity, labels, expression and hold.

    Burn-rate rules have no ``for:`` (the short window already waits for a current burn).
    """
    found = [
        r
        for r in _alerts(spec)
        if r["alert"] == alert
        and r["labels"]["objective"] == objective
        and r["labels"].get(names.LABEL_BURN_WINDOW) == burn_window
        and r["labels"][names.LABEL_SEVERITY] == severity
    ]
    assert len(found) == 1, found
    rule = found[0]
    labels = rule["labels"]
    assert labels[names.LABEL_SEVERITY] == severity
    assert labels[signals.LABEL_WORKLOAD] == workload
    assert labels[signals.LABEL_MODE] == spec.workload(workload).mode.value
    assert labels["team"] == "genai-platform"
    assert expr_contains in rule["expr"]
    assert rule.get("for") == hold
    annotations = rule["annotations"]
    assert set(annotations) == {"summary", "description", "runbook_url"}
    assert "$value" in annotations["description"]
    assert annotations["runbook_url"].endswith("#" + alert.lower())


def test_modes_get_their_own_alerts(spec: SloSpec) -> None:
    """Latency mode pages on fast burns; throughput mode pages on a stall and a fast error burn.

    Every page comes from a fast pair (or the stall); every slow pair opens a ticket.
    """
    by_mode: dict[str, set[tuple[str, str]]] = {}
    for r in _alerts(spec):
        mode = r["labels"][signals.LABEL_MODE]
        by_mode.setdefault(mode, set()).add((r["alert"], r["labels"]["severity"]))
    assert {a for a, sev in by_mode["throughput"] if sev == "critical"} == {
        names.STALLED,
        names.ERROR_BUDGET_BURN,
    }
    assert {a for a, sev in by_mode["latency"] if sev == "critical"} == {
        names.LATENCY_BURN,
        names.TTFT_BURN,
        names.AVAILABILITY_BURN,
    }
    for r in _alerts(spec):
        window = r["labels"].get(names.LABEL_BURN_WINDOW)
        if window is None:
            continue
        assert "for" not in r
        if r["labels"]["severity"] == "critical":
            assert window in {w.name for w in windows_for(Policy.PAGE)}, r["labels"]
    assert rules.alert_names(spec) == names.ALERT_NAMES  # the example exercises every alert


def test_every_alert_name_is_prefixed_camel_case() -> None:
    """A common CamelCase prefix, so routes and silences can match them all."""
    for name in names.ALERT_NAMES:
        assert name.startswith("GeminiSlo") and name.isalnum(), name


@pytest.mark.parametrize("which", ["example", "golden"])
def test_sli_recordings_cover_every_alert_window(spec: SloSpec, which: str) -> None:
    """Every recorded series an alert reads exists: both windows' ratios, the long one's count.

    The golden spec's p90 has shortened windows (33m/165s): they are recorded too.
    """
    use = spec if which == "example" else load_spec(GOLDEN / "slo.yaml")
    recorded = {(r["record"], r["labels"].get("objective")) for r in _records(use)}
    for r in _alerts(use):
        window = r["labels"].get(names.LABEL_BURN_WINDOW)
        if window is None:
            continue
        long, short = window.split("/")
        objective = r["labels"]["objective"]
        for key in (
            (names.windowed(names.SLI_ERROR, long), objective),
            (names.windowed(names.SLI_ERROR, short), objective),
            (names.windowed(names.SLI_BAD_EVENTS, long), objective),
        ):
            assert key in recorded, key
            assert key[0] in r["expr"]


def test_latency_sli_reads_the_bucket_at_the_threshold(spec: SloSpec) -> None:
    """Compliance is counted from the bucket whose le is the threshold, never interpolated."""
    exprs = [
        r["expr"]
        for r in _records(spec)
        if r["record"] == "gemini_slo:sli_error:ratio_rate5m"
        and r["labels"]["objective"] == "latency_p99"
    ]
    assert len(exprs) == 1
    assert 'le="0.8"' in exprs[0]
    assert signals.OPERATION_DURATION.prometheus + "_bucket" in exprs[0]
    assert promql.le_matcher(1.0) == 'le=~"1|1\\\\.0"'  # both spellings of a whole number


def test_every_raw_query_sums_by_workload(spec: SloSpec) -> None:
    """Raw metrics are always aggregated by workload: no reliance on job/instance."""
    for r in _records(spec):
        expr = r["expr"]
        if "rate(" in expr or "in_flight" in expr:
            assert "sum by (gemini_slo_workload" in expr, expr
        assert "instance" not in expr and "job" not in expr


def test_window_scale_shortens_windows_and_holds(spec: SloSpec) -> None:
    """window_scale divides windows and `for`; rate windows stay >= 4 scrape intervals."""
    scaled = _scaled(spec, 60.0, 2.0)
    headroom = next(r for r in _alerts(scaled) if r["alert"] == names.HEADROOM_LOW)
    assert headroom["for"] == "15s"
    fast = [
        r["expr"]
        for r in _records(scaled)
        if r["labels"].get("objective") == "latency_p95" and r["record"].endswith("rate1h")
    ]
    assert "[1m]" in fast[0]
    short = [
        r["expr"]
        for r in _records(scaled)
        if r["labels"].get("objective") == "latency_p95" and r["record"].endswith("rate5m")
    ]
    assert "[8s]" in short[0]  # 5m / 60 = 5s, clamped to 4 x 2s
    # names stay nominal, so dashboards and alerts do not depend on the scale
    assert {r["record"] for r in _records(scaled)} == {r["record"] for r in _records(spec)}


def test_severity_override_and_labels_from_spec() -> None:
    """Overrides change the severity label; workload labels reach the alerts."""
    golden = load_spec(GOLDEN / "slo.yaml")
    headroom = next(r for r in _alerts(golden) if r["alert"] == names.HEADROOM_LOW)
    assert headroom["labels"]["severity"] == "critical"
    assert headroom["labels"]["service"] == "assistant-api"
    assert headroom["labels"]["team"] == "search"
    assert headroom["annotations"]["runbook_url"] == (
        "https://runbooks.example.com/gemini-slo.md#geminisloheadroomlow"
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0"), (100, "100"), (20000, "20k"), (0.5, "500m"), (1234567, "1.235M")],
)
def test_go_humanize(value: float, text: str) -> None:
    """The promtool tests render $value as Prometheus' humanize does."""
    assert go_humanize(value) == text


# ---- golden files ------------------------------------------------------------------------


@pytest.mark.parametrize("rel", [RECORDING_RULES, ALERT_RULES, ALERTMANAGER])
def test_golden(rel: str) -> None:
    """The golden spec generates exactly the golden files (GEMINI_SLO_UPDATE_GOLDEN=1 rewrites)."""
    files = artifacts(load_spec(GOLDEN / "slo.yaml"))
    path = GOLDEN / rel
    if UPDATE_GOLDEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[rel], encoding="utf-8")
    assert files[rel] == path.read_text(encoding="utf-8")


# ---- committed artifacts and the CLI -----------------------------------------------------


def test_committed_artifacts_are_up_to_date(spec: SloSpec) -> None:
    """The committed alerts/ and dashboards/ match the example spec (run `make generate`)."""
    assert stale(artifacts(spec), ROOT) == []


def test_generation_is_deterministic(spec: SloSpec) -> None:
    """Same spec, same bytes."""
    assert artifacts(spec) == artifacts(load_spec(default_spec_path()))


def _cli(*argv: str) -> int:
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return run(parser.parse_args(list(argv)))


def test_cli_writes_and_checks(tmp_path: Path) -> None:
    """generate --out writes DIR/alerts and DIR/dashboards; --check then passes, fails when stale."""
    assert _cli("--out", str(tmp_path)) == 0
    assert (tmp_path / ALERT_RULES).is_file()
    assert (tmp_path / "dashboards" / "latency.json").is_file()
    assert _cli("--check", "--out", str(tmp_path)) == 0
    (tmp_path / ALERT_RULES).write_text("stale\n")
    assert _cli("--check", "--out", str(tmp_path)) == 1


def test_cli_window_scale_override(tmp_path: Path) -> None:
    """--window-scale and --scrape-interval override the spec's alerting options."""
    assert _cli("--window-scale", "60", "--scrape-interval", "1s", "--out", str(tmp_path)) == 0
    text = (tmp_path / RECORDING_RULES).read_text()
    assert "[4s]" in text and "[1m]" in text


def test_cli_bad_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad spec exits 2 with the file, line and field."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: gemini-slo/v1\nworkloads:\n  - {name: x, mode: latency, objectives: {availability: 2}}\n"
    )
    assert _cli("--spec", str(bad), "--out", str(tmp_path)) == 2
    assert "bad.yaml:3: workloads[0].objectives.availability" in capsys.readouterr().err
