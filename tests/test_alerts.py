"""Rules, routes, runbook and promtool tests generated from the spec.

Three ways, as DESIGN.md asks: table-driven expected rules, golden spec-in/rules-out
files, and promtool/amtool on the output (check rules, test rules, check-config). Plus
regenerate-and-diff against the committed artifacts and the CLI.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from gemini_slo.alerts import alertmanager, rules, runbook
from gemini_slo.alerts.promtool_tests import go_humanize
from gemini_slo.cli.artifacts import (
    ALERT_RULES,
    ALERTMANAGER,
    RECORDING_RULES,
    artifacts,
    stale,
    write,
)
from gemini_slo.cli.generate import add_arguments, run
from gemini_slo.contract import alert_names as names
from gemini_slo.contract import promql, signals
from gemini_slo.contract.burn_windows import BURN_WINDOWS, Policy, windows_for
from gemini_slo.contract.spec import SloSpec, default_spec_path, load_spec

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden" / "minimal"
UPDATE_GOLDEN = os.environ.get("GEMINI_SLO_UPDATE_GOLDEN") == "1"

RequireBinary = Callable[[str], str]


@pytest.fixture(scope="module")
def spec() -> SloSpec:
    """The packaged example spec."""
    return load_spec(default_spec_path())


@pytest.fixture(scope="module")
def generated(spec: SloSpec, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example's artifacts, written to a temporary directory."""
    out = tmp_path_factory.mktemp("generated")
    write(artifacts(spec), out)
    return out


def _scaled(spec: SloSpec, scale: float, scrape: float) -> SloSpec:
    alerting = dataclasses.replace(spec.alerting, window_scale=scale, scrape_interval=scrape)
    return dataclasses.replace(spec, alerting=alerting)


def _alerts(spec: SloSpec) -> list[dict[str, Any]]:
    return [r for g in rules.alerting_rules(spec)["groups"] for r in g["rules"]]


def _records(spec: SloSpec) -> list[dict[str, Any]]:
    return [r for g in rules.recording_rules(spec)["groups"] for r in g["rules"]]


# ---- burn-rate windows as data -----------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "expected"),
    [(30, (14.4, 6.0, 3.0, 1.0)), (28, (13.44, 5.6, 2.8, 0.933333))],
)
def test_burn_rates_follow_the_workbook(days: int, expected: tuple[float, ...]) -> None:
    """burn = budget fraction x period / long window: the workbook's table for 30 days."""
    assert tuple(w.burn_rate(days * 86400) for w in BURN_WINDOWS) == expected
    assert [w.name for w in BURN_WINDOWS] == ["1h/5m", "6h/30m", "1d/2h", "3d/6h"]
    for w in BURN_WINDOWS:
        assert w.short * 12 == w.long  # short window = 1/12 of the long one


# ---- table-driven expected rules ---------------------------------------------------------


@pytest.mark.parametrize(
    ("alert", "workload", "objective", "severity", "burn_window", "expr_contains", "hold"),
    [
        (names.LATENCY_BURN, "chat", "latency_p95", "critical", "1h/5m", "ratio_rate1h{gemini_slo_workload=\"chat\",objective=\"latency_p95\"} > 0.72", "2m"),
        (names.LATENCY_BURN, "chat", "latency_p99", "critical", "6h/30m", "ratio_rate30m{gemini_slo_workload=\"chat\",objective=\"latency_p99\"} > 0.06", "15m"),
        (names.TTFT_BURN, "chat", "ttft_p95", "critical", "1h/5m", "> 0.72", "2m"),
        (names.AVAILABILITY_BURN, "chat", "availability", "critical", "1h/5m", "> 0.072", "2m"),
        (names.TIMEOUT_SPIKE, "chat", "timeout_ratio", "warning", "1h/5m", "> 0.0144", "2m"),
        (names.SHED_SPIKE, "chat", "shed_ratio", "warning", "6h/30m", "> 0.06", "15m"),
        (names.QUEUE_SATURATED, "chat", "queue_wait_p95", "warning", None, "ratio_rate5m{gemini_slo_workload=\"chat\",objective=\"queue_wait_p95\"} > 0.05", "10m"),
        (names.HEADROOM_LOW, "chat", "headroom", "warning", None, "gemini_slo:utilization:ratio_avg5m{gemini_slo_workload=\"chat\"} > 0.6", "15m"),
        (names.TOKEN_THROUGHPUT_LOW, "batch", "tokens_per_second", "warning", None, "gemini_slo:tokens_generated:rate5m{gemini_slo_workload=\"batch\"} < 10000", "15m"),
        (names.COST_HIGH, "batch", "cost_per_million_tokens", "warning", None, "gemini_slo:cost_usd_per_million_tokens:rate1h{gemini_slo_workload=\"batch\"} > 0.5", "15m"),
        (names.UTILIZATION_LOW, "batch", "utilization", "warning", None, "gemini_slo:utilization:ratio_avg1h{gemini_slo_workload=\"batch\"} < 0.8", "30m"),
        (names.RATE_LIMIT_STORM, "batch", "rate_limited_ratio", "warning", None, "> 0.05", "5m"),
        (names.ERROR_BUDGET_BURN, "batch", "error_ratio", "warning", "1d/2h", "ratio_rate1d{gemini_slo_workload=\"batch\",objective=\"error_ratio\"} > 0.03", "1h"),
        (names.ERROR_BUDGET_BURN, "batch", "error_ratio", "warning", "3d/6h", "ratio_rate6h{gemini_slo_workload=\"batch\",objective=\"error_ratio\"} > 0.01", "3h"),
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
    hold: str,
) -> None:
    """Each alert of the example exists with its severity, labels, expression and hold."""
    found = [
        r
        for r in _alerts(spec)
        if r["alert"] == alert
        and r["labels"]["objective"] == objective
        and r["labels"].get(names.LABEL_BURN_WINDOW) == burn_window
    ]
    assert len(found) == 1, found
    rule = found[0]
    labels = rule["labels"]
    assert labels[names.LABEL_SEVERITY] == severity
    assert labels[signals.LABEL_WORKLOAD] == workload
    assert labels[signals.LABEL_MODE] == spec.workload(workload).mode.value
    assert labels["team"] == "genai-platform"
    assert expr_contains in rule["expr"]
    assert rule["for"] == hold
    annotations = rule["annotations"]
    assert set(annotations) == {"summary", "description", "runbook_url"}
    assert "$value" in annotations["description"]
    assert annotations["runbook_url"].endswith("#" + alert.lower())


def test_modes_get_their_own_alerts(spec: SloSpec) -> None:
    """Latency mode pages on burn rates; throughput mode tickets and pages only on a stall."""
    by_mode: dict[str, set[tuple[str, str]]] = {}
    for r in _alerts(spec):
        mode = r["labels"][signals.LABEL_MODE]
        by_mode.setdefault(mode, set()).add((r["alert"], r["labels"]["severity"]))
    assert {a for a, sev in by_mode["throughput"] if sev == "critical"} == {names.STALLED}
    assert {a for a, sev in by_mode["latency"] if sev == "critical"} == {
        names.LATENCY_BURN,
        names.TTFT_BURN,
        names.AVAILABILITY_BURN,
    }
    assert rules.alert_names(spec) == names.ALERT_NAMES  # the example exercises every alert


def test_every_alert_name_is_prefixed_camel_case() -> None:
    """A common CamelCase prefix, so routes and silences can match them all."""
    for name in names.ALERT_NAMES:
        assert name.startswith("GeminiSlo") and name.isalnum(), name


def test_sli_recordings_cover_every_alert_window(spec: SloSpec) -> None:
    """Every recorded window an alert reads exists, for every budgeted objective."""
    recorded = {(r["record"], r["labels"].get("objective")) for r in _records(spec)}
    for r in _alerts(spec):
        window = r["labels"].get(names.LABEL_BURN_WINDOW)
        if window is None:
            continue
        for w in window.split("/"):
            key = (names.windowed(names.SLI_ERROR, w), r["labels"]["objective"])
            assert key in recorded, key


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
    page = next(r for r in _alerts(scaled) if r["alert"] == names.LATENCY_BURN)
    assert page["for"] == "2s"
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


# ---- promtool and amtool -----------------------------------------------------------------


def _run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=300, check=False)


@pytest.mark.prometheus
def test_promtool_check_rules(require_binary: RequireBinary, generated: Path) -> None:
    """promtool accepts the generated rule files."""
    promtool = require_binary("promtool")
    result = _run(
        [promtool, "check", "rules", str(generated / RECORDING_RULES), str(generated / ALERT_RULES)]
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.prometheus
@pytest.mark.slow
@pytest.mark.parametrize("variant", ["example", "window_scale_60", "golden_28d"])
def test_promtool_test_rules(
    require_binary: RequireBinary, spec: SloSpec, tmp_path: Path, variant: str
) -> None:
    """Every alert fires on its scenario and stays silent on a healthy one (also when scaled)."""
    promtool = require_binary("promtool")
    use = {
        "example": spec,
        "window_scale_60": _scaled(spec, 60.0, 1.0),
        "golden_28d": load_spec(GOLDEN / "slo.yaml"),
    }[variant]
    files = artifacts(use)
    write(files, tmp_path)
    tests = sorted(p for p in files if p.startswith("alerts/tests/"))
    assert {Path(t).name for t in tests} == {f"{w.name}.test.yaml" for w in use.workloads}
    covered = set()
    for t in tests:
        doc = yaml.safe_load(files[t])
        for group in doc["tests"]:
            for check in group["alert_rule_test"]:
                if check["exp_alerts"]:
                    covered.add(check["alertname"])
    assert covered == set(rules.alert_names(use))
    result = _run([promtool, "test", "rules", *tests], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.prometheus
def test_promtool_tests_catch_a_broken_rule(
    require_binary: RequireBinary, spec: SloSpec, tmp_path: Path
) -> None:
    """The generated tests are not vacuous: a rule with the wrong threshold fails them."""
    promtool = require_binary("promtool")
    files = artifacts(spec)
    files[ALERT_RULES] = files[ALERT_RULES].replace("< 10000", "< 1")  # tokens floor broken
    write(files, tmp_path)
    result = _run([promtool, "test", "rules", "alerts/tests/batch.test.yaml"], cwd=tmp_path)
    assert result.returncode != 0
    assert names.TOKEN_THROUGHPUT_LOW in result.stdout + result.stderr


@pytest.mark.alertmanager
@pytest.mark.parametrize("which", ["example", "golden"])
def test_amtool_check_config(require_binary: RequireBinary, tmp_path: Path, which: str) -> None:
    """amtool accepts the Alertmanager config."""
    amtool = require_binary("amtool")
    use = load_spec(default_spec_path() if which == "example" else GOLDEN / "slo.yaml")
    path = tmp_path / "alertmanager.yaml"
    path.write_text(artifacts(use)[ALERTMANAGER], encoding="utf-8")
    result = _run([amtool, "check-config", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.alertmanager
@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        ({"severity": "critical", "gemini_slo_workload": "chat"}, alertmanager.PAGE_RECEIVER),
        ({"severity": "warning", "gemini_slo_workload": "batch"}, alertmanager.TICKET_RECEIVER),
    ],
)
def test_amtool_routes(
    require_binary: RequireBinary, generated: Path, labels: dict[str, str], receiver: str
) -> None:
    """Pages go to the paging receiver, tickets to the ticket receiver."""
    amtool = require_binary("amtool")
    argv = [amtool, "config", "routes", "test", f"--config.file={generated / ALERTMANAGER}"]
    result = _run([*argv, *(f"{k}={v}" for k, v in labels.items())])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == receiver


def test_alertmanager_inhibits_warnings_of_a_paged_workload(spec: SloSpec) -> None:
    """A critical alert silences the same workload's warnings; receivers are ready."""
    config = alertmanager.alertmanager_config(spec)
    (rule,) = config["inhibit_rules"]
    assert rule["source_matchers"] == ['severity="critical"']
    assert rule["target_matchers"] == ['severity="warning"']
    assert rule["equal"] == [signals.LABEL_WORKLOAD]
    assert config["route"]["group_by"] == ["alertname", signals.LABEL_WORKLOAD]
    receivers = {r["name"]: r for r in config["receivers"]}
    assert "pagerduty_configs" in receivers["page"]
    assert "slack_configs" in receivers["ticket"]
    for r in receivers.values():
        assert r["webhook_configs"][0]["url"] == "http://127.0.0.1:9095/alerts"


# ---- runbook -----------------------------------------------------------------------------


def test_runbook_has_a_section_per_alert(spec: SloSpec) -> None:
    """Every runbook_url anchor exists, with meaning, confirmation and actions."""
    text = runbook.runbook_markdown(spec)
    headings = {line[3:] for line in text.splitlines() if line.startswith("## ")}
    assert headings == set(names.ALERT_NAMES)
    for alert in names.ALERT_NAMES:
        section = text.split(f"## {alert}\n", 1)[1].split("\n## ", 1)[0]
        assert "How to confirm:" in section and "What to do:" in section


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


def test_policies_cover_page_and_ticket() -> None:
    """Both window policies have their two pairs."""
    assert len(windows_for(Policy.PAGE)) == 2 and len(windows_for(Policy.TICKET)) == 2


@pytest.mark.prometheus
def test_stall_pages_after_stall_after_not_twice_that(
    require_binary: RequireBinary, spec: SloSpec, tmp_path: Path
) -> None:
    """GeminiSloStalled pages once there were no tokens for `stall.after` with calls in flight.

    Tokens flow for 20m, then stop while 900 calls stay in flight (stall.after is 5m). The
    page must be firing 7m after the last token (5m + a 1m hold + one evaluation of lag); a
    rule that waits for a 5m rate to reach zero and then holds another 5m fires only at
    ~29m, twice the documented time. It must stay silent 3m after the stop, 3m after
    calls start on an idle workload, and on a process whose first calls take 4m (calls in
    flight for less than `after`).
    """
    promtool = require_binary("promtool")
    write(artifacts(spec), tmp_path)
    labels = 'gemini_slo_workload="batch", gemini_slo_mode="throughput", job="j", instance="i"'
    tokens = f'gemini_slo_client_tokens_total{{{labels}, gen_ai_token_type="output"}}'
    in_flight = f"gemini_slo_client_requests_in_flight{{{labels}}}"
    limit = f"gemini_slo_client_concurrency_limit{{{labels}}}"
    stalled_labels = {
        "severity": "critical",
        "gemini_slo_workload": "batch",
        "gemini_slo_mode": "throughput",
        "objective": "stall",
        "team": "genai-platform",
    }
    stall_rule = next(r for r in _alerts(spec) if r["alert"] == names.STALLED)
    annotations = {
        key: value.replace("{{ $value }}", "900")
        for key, value in stall_rule["annotations"].items()
    }
    doc = {
        "rule_files": ["alerts/recording_rules.yaml", "alerts/alert_rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": tokens, "values": "0+60000x20 1200000+0x20"},
                    {"series": in_flight, "values": "900+0x40"},
                    {"series": limit, "values": "1000+0x40"},
                ],
                "alert_rule_test": [
                    {"eval_time": "23m", "alertname": names.STALLED, "exp_alerts": []},
                    {
                        "eval_time": "27m",
                        "alertname": names.STALLED,
                        "exp_alerts": [
                            {"exp_labels": stalled_labels, "exp_annotations": annotations}
                        ],
                    },
                ],
            },
            {
                "interval": "1m",
                "input_series": [
                    {"series": tokens, "values": "0+0x40"},
                    {"series": in_flight, "values": "0+0x20 900+0x20"},
                    {"series": limit, "values": "1000+0x40"},
                ],
                "alert_rule_test": [
                    {"eval_time": "23m", "alertname": names.STALLED, "exp_alerts": []},
                ],
            },
            {
                "interval": "1m",
                "input_series": [
                    {"series": tokens, "values": "0x3 60000+60000x20"},
                    {"series": in_flight, "values": "900+0x24"},
                    {"series": limit, "values": "1000+0x24"},
                ],
                "alert_rule_test": [
                    {"eval_time": "3m", "alertname": names.STALLED, "exp_alerts": []},
                    {"eval_time": "10m", "alertname": names.STALLED, "exp_alerts": []},
                ],
            },
        ],
    }
    (tmp_path / "stall.test.yaml").write_text(yaml.safe_dump(doc))
    result = _run([promtool, "test", "rules", "stall.test.yaml"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.prometheus
def test_idle_spell_does_not_poison_the_error_budget(
    require_binary: RequireBinary, spec: SloSpec, tmp_path: Path
) -> None:
    """Five idle minutes (no calls) leave the period's error budget a number, not NaN.

    An idle window makes every 5m ratio 0/0; recorded as NaN, it turns the period's
    ``avg_over_time`` (and error_budget_remaining, on the dashboards) into NaN for the whole
    SLO period. With no traffic the ratio must have no sample instead.
    """
    promtool = require_binary("promtool")
    write(artifacts(spec), tmp_path)
    labels = 'gemini_slo_workload="chat", gemini_slo_mode="latency", job="j", instance="i"'
    calls = f'gemini_slo_client_calls_total{{{labels}, gemini_slo_outcome="ok"}}'
    bucket = "gen_ai_client_operation_duration_seconds_bucket"
    series = [
        {"series": calls, "values": "0+60x10 600+0x15 600+60x20"},
        {"series": f'{bucket}{{{labels}, le="0.5"}}', "values": "0+60x10 600+0x15 600+60x20"},
        {
            "series": f"gen_ai_client_operation_duration_seconds_count{{{labels}}}",
            "values": "0+60x10 600+0x15 600+60x20",
        },
    ]
    remaining = "gemini_slo:error_budget_remaining:ratio"
    checks = [
        {
            "expr": f'{remaining}{{gemini_slo_workload="chat",objective="{objective}"}}',
            "eval_time": "40m",
            "exp_samples": [
                {
                    "labels": f'{remaining}{{gemini_slo_workload="chat", '
                    f'gemini_slo_mode="latency", objective="{objective}"}}',
                    "value": 1,
                }
            ],
        }
        for objective in ("latency_p95", "availability")
    ]
    doc = {
        "rule_files": ["alerts/recording_rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": checks}],
    }
    (tmp_path / "idle.test.yaml").write_text(yaml.safe_dump(doc))
    result = _run([promtool, "test", "rules", "idle.test.yaml"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
