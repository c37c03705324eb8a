"""promtool on the generated rules: they load, every alert fires on its case, nothing on
healthy traffic, and a few behaviours checked by hand-written series (the stall, an idle
spell). The scenario suite has its own module (test_alerts_scenarios.py).
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from gemini_slo.alerts import rules
from gemini_slo.alerts.testing import groups, of_kinds, promtool_test, select
from gemini_slo.cli.artifacts import ALERT_RULES, RECORDING_RULES, artifacts, write
from gemini_slo.contract import alert_names as names
from gemini_slo.contract.spec import SloSpec, default_spec_path, load_spec

GOLDEN = Path(__file__).parent / "golden" / "minimal"

RequireBinary = Callable[[str], str]


@pytest.fixture(scope="module")
def spec() -> SloSpec:
    """The packaged example spec."""
    return load_spec(default_spec_path())


def _scaled(spec: SloSpec, scale: float, scrape: float) -> SloSpec:
    alerting = dataclasses.replace(spec.alerting, window_scale=scale, scrape_interval=scrape)
    return dataclasses.replace(spec, alerting=alerting)


def _alerts(spec: SloSpec) -> list[dict[str, Any]]:
    return [r for g in rules.alerting_rules(spec)["groups"] for r in g["rules"]]


def _run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=300, check=False)


@pytest.mark.prometheus
def test_promtool_check_rules(require_binary: RequireBinary, spec: SloSpec, tmp_path: Path) -> None:
    """promtool accepts the generated rule files."""
    promtool = require_binary("promtool")
    write(artifacts(spec), tmp_path)
    result = _run(
        [promtool, "check", "rules", str(tmp_path / RECORDING_RULES), str(tmp_path / ALERT_RULES)]
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.prometheus
@pytest.mark.parametrize("variant", ["example", "window_scale_60", "golden_28d"])
def test_every_alert_fires_on_its_case(
    require_binary: RequireBinary, spec: SloSpec, tmp_path: Path, variant: str
) -> None:
    """Every alert fires on its case and none on healthy traffic (also scaled, and at 28d).

    The per-alert and healthy groups of the generated test files; the scenario groups run
    in test_alerts_scenarios.py.
    """
    promtool = require_binary("promtool")
    use = {
        "example": spec,
        "window_scale_60": _scaled(spec, 60.0, 1.0),
        "golden_28d": load_spec(GOLDEN / "slo.yaml"),
    }[variant]
    files = artifacts(use)
    write(files, tmp_path)
    assert {Path(t).name for t in files if t.startswith("alerts/tests/")} == {
        f"{w.name}.test.yaml" for w in use.workloads
    }
    tests = select(files, of_kinds(None))
    covered = {
        check["alertname"]
        for group in groups(tests)
        for check in group["alert_rule_test"]
        if check["exp_alerts"]
    }
    assert covered == set(rules.alert_names(use))
    result = promtool_test(promtool, tmp_path, tests)
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
    tests = {
        k: v for k, v in select(files, of_kinds(None)).items() if k.endswith("batch.test.yaml")
    }
    result = promtool_test(promtool, tmp_path, tests)
    assert result.returncode != 0
    assert names.TOKEN_THROUGHPUT_LOW in result.stdout + result.stderr


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
