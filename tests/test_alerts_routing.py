"""Alertmanager routes and inhibition, and the runbook, generated from the spec.

Routes are checked with amtool; inhibition by applying the generated ``inhibit_rules`` to
the labels of the generated alerts, the way Alertmanager does (a target alert is muted
while a source alert with the same values of the ``equal`` labels fires).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from gemini_slo.alerts import alertmanager, rules, runbook
from gemini_slo.cli.artifacts import ALERTMANAGER, artifacts, write
from gemini_slo.contract import alert_names as names
from gemini_slo.contract import signals
from gemini_slo.contract.spec import SloSpec, default_spec_path, load_spec

GOLDEN = Path(__file__).parent / "golden" / "minimal"

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


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)


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
    ("alert", "objective", "severity", "receiver"),
    [
        (names.LATENCY_BURN, "latency_p95", "critical", alertmanager.PAGE_RECEIVER),
        (names.LATENCY_BURN, "latency_p95", "warning", alertmanager.TICKET_RECEIVER),
        (names.ERROR_BUDGET_BURN, "error_ratio", "critical", alertmanager.PAGE_RECEIVER),
        (names.ERROR_BUDGET_BURN, "error_ratio", "warning", alertmanager.TICKET_RECEIVER),
        (names.STALLED, "stall", "critical", alertmanager.PAGE_RECEIVER),
        (names.HEADROOM_LOW, "headroom", "warning", alertmanager.TICKET_RECEIVER),
    ],
)
def test_amtool_routes(
    require_binary: RequireBinary,
    spec: SloSpec,
    generated: Path,
    alert: str,
    objective: str,
    severity: str,
    receiver: str,
) -> None:
    """Each generated alert goes where its severity says: pages page, tickets ticket."""
    amtool = require_binary("amtool")
    labels = next(
        r["labels"]
        for r in _alerts(spec)
        if r["alert"] == alert
        and r["labels"]["objective"] == objective
        and r["labels"]["severity"] == severity
    )
    argv = [amtool, "config", "routes", "test", f"--config.file={generated / ALERTMANAGER}"]
    result = _run([*argv, f"alertname={alert}", *(f"{k}={v}" for k, v in labels.items())])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == receiver


def _alerts(spec: SloSpec) -> list[dict[str, Any]]:
    return [r for g in rules.alerting_rules(spec)["groups"] for r in g["rules"]]


def _matches(matcher: str, labels: dict[str, str]) -> bool:
    name, op, value = re.fullmatch(r'(\w+)(=~|=)"(.*)"', matcher).groups()  # type: ignore[union-attr]
    actual = labels.get(name, "")
    return re.fullmatch(value, actual) is not None if op == "=~" else actual == value


def _inhibited(
    config: dict[str, Any], target: dict[str, str], firing: list[dict[str, str]]
) -> bool:
    for rule in config["inhibit_rules"]:
        if not all(_matches(m, target) for m in rule["target_matchers"]):
            continue
        for source in firing:
            if source is target or not all(_matches(m, source) for m in rule["source_matchers"]):
                continue
            if all(source.get(k, "") == target.get(k, "") for k in rule["equal"]):
                return True
    return False


def _labels(
    spec: SloSpec, alert: str, workload: str, severity: str, window: str | None = None
) -> dict[str, str]:
    for r in _alerts(spec):
        labels = r["labels"]
        if (
            r["alert"] == alert
            and labels[signals.LABEL_WORKLOAD] == workload
            and labels["severity"] == severity
            and (window is None or labels.get(names.LABEL_BURN_WINDOW) == window)
        ):
            return {"alertname": alert, **labels}
    raise AssertionError((alert, workload, severity, window))


def test_a_page_inhibits_its_objectives_ticket_and_its_symptoms(spec: SloSpec) -> None:
    """A page mutes the same objective's ticket and listed symptoms, nothing else.

    Another objective's ticket (p99 while p95 pages, availability while latency pages)
    still reaches the ticket receiver: it is a second problem, not the same one.
    """
    config = alertmanager.alertmanager_config(spec)
    p95_page = _labels(spec, names.LATENCY_BURN, "chat", "critical", "1h/5m")
    p95_ticket = _labels(spec, names.LATENCY_BURN, "chat", "warning", "6h/30m")
    p99_ticket = {
        **_labels(spec, names.LATENCY_BURN, "chat", "warning", "3d/6h"),
        "objective": "latency_p99",
    }
    availability_page = _labels(spec, names.AVAILABILITY_BURN, "chat", "critical", "1h/5m")
    availability_ticket = _labels(spec, names.AVAILABILITY_BURN, "chat", "warning", "6h/30m")
    timeout = _labels(spec, names.TIMEOUT_SPIKE, "chat", "warning", "1h/5m")
    headroom = _labels(spec, names.HEADROOM_LOW, "chat", "warning")
    stall = _labels(spec, names.STALLED, "batch", "critical")
    tokens = _labels(spec, names.TOKEN_THROUGHPUT_LOW, "batch", "warning")
    errors = _labels(spec, names.ERROR_BUDGET_BURN, "batch", "warning", "6h/30m")

    firing = [p95_page, availability_page, stall]
    for muted in (p95_ticket, availability_ticket, timeout, tokens):
        assert _inhibited(config, muted, [*firing, muted]), muted
    for heard in (p99_ticket, headroom, errors):
        assert not _inhibited(config, heard, [*firing, heard]), heard
    for page in firing:
        assert not _inhibited(config, page, firing)
    # Without the page, the ticket is heard.
    assert not _inhibited(config, p95_ticket, [p95_ticket, stall])


def test_receivers_and_grouping(spec: SloSpec) -> None:
    """Grouped by alert and workload; PagerDuty pages, Slack tickets, the webhook gets both."""
    config = alertmanager.alertmanager_config(spec)
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


def test_runbook_lists_each_objectives_pairs(spec: SloSpec) -> None:
    """Each burn-rate section says, per objective, which pairs page and which ticket, at what."""
    text = runbook.runbook_markdown(spec)
    section = text.split(f"## {names.LATENCY_BURN}\n", 1)[1].split("\n## ", 1)[0]
    assert "Severity: critical, warning." in section
    line = next(x for x in section.splitlines() if x.startswith("- `chat` / `latency_p95`"))
    for rule in rules.burn_rules_of(spec, spec.workload("chat").objective("latency_p95")):
        c = rule.condition
        assert f"{c.name} above {c.threshold * 100:.4g}% ({c.min_bad_events}+ bad events)" in line
    timeouts = text.split(f"## {names.TIMEOUT_SPIKE}\n", 1)[1].split("\n## ", 1)[0]
    assert "Severity: warning." in timeouts
