"""The one writer: every artifact of a spec, as relative path -> text, then to disk.

:func:`artifacts` is pure (same spec, same bytes): the rules, the Alertmanager config,
the promtool tests, the runbook, the dashboards and Grafana's provisioning files.
:func:`write` puts them under an output directory (``DIR/alerts/...``,
``DIR/dashboards/...``); :func:`stale` lists the files under a directory that differ from
what the spec generates, for ``gemini-slo generate --check`` and the tests.
"""

from __future__ import annotations

from pathlib import Path

from gemini_slo.alerts import alertmanager, promtool_tests, rules, runbook
from gemini_slo.cli.render import to_json, to_yaml
from gemini_slo.contract.artifacts import (
    ALERT_RULES,
    ALERTMANAGER,
    DASHBOARDS_DIR,
    PROVISIONING_DIR,
    RECORDING_RULES,
    RUNBOOK,
    TESTS_DIR,
)
from gemini_slo.contract.spec import SloSpec
from gemini_slo.dashboards import build as dashboards


def artifacts(spec: SloSpec) -> dict[str, str]:
    """Every generated file, relative path -> content, in a stable order."""
    src = spec.source
    out = {
        RECORDING_RULES: to_yaml(rules.recording_rules(spec), src),
        ALERT_RULES: to_yaml(rules.alerting_rules(spec), src),
        ALERTMANAGER: to_yaml(alertmanager.alertmanager_config(spec), src),
        RUNBOOK: runbook.runbook_markdown(spec),
    }
    # Test files live one level below the rules; promtool resolves rule_files from there.
    rule_files = [f"../{Path(RECORDING_RULES).name}", f"../{Path(ALERT_RULES).name}"]
    for w in spec.workloads:
        tests = promtool_tests.workload_tests(spec, w, rule_files)
        if tests["tests"]:
            out[f"{TESTS_DIR}/{w.name}.test.yaml"] = to_yaml(tests, src)
    for name, model in dashboards.dashboards(spec).items():
        out[f"{DASHBOARDS_DIR}/{name}"] = to_json(model)
    for name, content in dashboards.provisioning(spec).items():
        out[f"{PROVISIONING_DIR}/{name}"] = to_yaml(content, src)
    return out


def write(files: dict[str, str], out: Path) -> list[Path]:
    """Write ``files`` under ``out``; returns the paths written."""
    written = []
    for rel, text in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def stale(files: dict[str, str], out: Path) -> list[str]:
    """Relative paths under ``out`` that are missing or differ from ``files``."""
    bad = []
    for rel, text in files.items():
        path = out / rel
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            bad.append(rel)
    return bad
