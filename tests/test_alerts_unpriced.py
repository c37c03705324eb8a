"""GeminiSloUnpricedCalls with promtool: a ticket for a workload with a cost objective when
more than UNPRICED_SHARE_MAX of its calls are unpriced, quiet below it, and no such rule for a
workload without a cost objective."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from gemini_slo.alerts import promtool_tests as pt
from gemini_slo.alerts import rules
from gemini_slo.alerts import traffic as tr
from gemini_slo.alerts.testing import promtool_test
from gemini_slo.cli.artifacts import artifacts, write
from gemini_slo.contract import alert_names as names
from gemini_slo.contract.spec import (
    ObjectiveKind,
    SloSpec,
    default_spec_path,
    format_duration,
    load_spec,
)

RequireBinary = Callable[[str], str]
STEP = 60.0
HOURS = 2


@pytest.fixture(scope="module")
def spec() -> SloSpec:
    """The packaged example spec: 'batch' has a cost objective, 'chat' (latency) none."""
    return load_spec(default_spec_path())


def _group(spec: SloSpec, share: float, expect: list[dict[str, Any]]) -> dict[str, Any]:
    batch = next(w for w in spec.workloads if w.name == "batch")
    traffic = pt.healthy_traffic(batch, STEP).but(unpriced_share=share)
    series = tr.input_series(batch, [tr.Phase(HOURS * 3600 + STEP, traffic)], STEP)
    return {
        "name": f"{share:.1%} unpriced",
        "interval": format_duration(STEP),
        "input_series": [s.promtool() for s in series],
        "alert_rule_test": [
            {
                "eval_time": format_duration(HOURS * 3600),
                "alertname": names.UNPRICED_CALLS,
                "exp_alerts": expect,
            }
        ],
    }


def test_only_a_workload_with_a_cost_objective_gets_the_rule(spec: SloSpec) -> None:
    """The rule exists for each workload with a cost objective and no other."""
    with_rule = {
        g["name"]
        for g in rules.alerting_rules(spec)["groups"]
        if any(r["alert"] == names.UNPRICED_CALLS for r in g["rules"])
    }
    expected = {
        f"gemini-slo-{w.name}-alerts"
        for w in spec.workloads
        if w.first(ObjectiveKind.COST_PER_MILLION_TOKENS) is not None
    }
    assert with_rule == expected == {"gemini-slo-batch-alerts"}


@pytest.mark.prometheus
def test_fires_above_the_share_and_stays_quiet_below(
    require_binary: RequireBinary, spec: SloSpec, tmp_path: Path
) -> None:
    """Half the allowed share of unpriced calls for two hours: quiet. Ten times it: the
    ticket, with the share in its description."""
    promtool = require_binary("promtool")
    write(artifacts(spec), tmp_path)
    rule = next(
        r
        for g in rules.alerting_rules(spec)["groups"]
        for r in g["rules"]
        if r["alert"] == names.UNPRICED_CALLS
    )
    limit = names.UNPRICED_SHARE_MAX
    healthy = pt.healthy_traffic(next(w for w in spec.workloads if w.name == "batch"), STEP)
    high = 10 * limit
    fired = {
        "exp_labels": dict(rule["labels"]),
        "exp_annotations": {
            k: pt.render(v, high * healthy.ok_share) for k, v in rule["annotations"].items()
        },
    }
    doc = {
        "rule_files": ["alerts/recording_rules.yaml", "alerts/alert_rules.yaml"],
        "evaluation_interval": format_duration(STEP),
        "group_eval_order": pt.group_eval_order(spec),
        "tests": [_group(spec, limit / 2, []), _group(spec, high, [fired])],
    }
    result = promtool_test(promtool, tmp_path, {"unpriced.test.yaml": yaml.safe_dump(doc)})
    assert result.returncode == 0, result.stdout + result.stderr
