"""The scenario suite: production windows, detection times as bounds, silence for days.

For the example spec, a spec with 99.9% targets (tests/golden/nines) and the golden 28-day
spec with a p90 objective (shortened fast windows), the generated test files carry
scenario groups (gemini_slo.alerts.scenarios). Here:

* the simulated detection times meet the issue's requirements (a total regression pages
  within 10 minutes, a sustained 2x-4x burn tickets within 3 hours, a 20x throughput error
  burn pages within the hour) and agree with the closed-form arithmetic;
* promtool agrees with the simulation: the fast and low-traffic groups (seconds), the
  multi-day groups (about half a minute each: marked slow);
* the checks can fail: rules without the reachability cap miss the 10-minute page, rules
  without minimum evidence alert on a single bad call at low traffic.

The detection figures are printed (``[scenario]`` lines) and kept in the JUnit XML.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
from gemini_slo.alerts import rules, scenarios
from gemini_slo.alerts.scenarios import Kind
from gemini_slo.alerts.testing import of_kinds, promtool_test, select
from gemini_slo.cli.artifacts import ALERT_RULES, RECORDING_RULES, artifacts, write
from gemini_slo.cli.render import to_yaml
from gemini_slo.contract import burn_windows
from gemini_slo.contract.spec import SloSpec, default_spec_path, load_spec

ROOT = Path(__file__).resolve().parents[1]
SPECS = {
    "example": default_spec_path(),
    "nines": ROOT / "tests" / "golden" / "nines" / "slo.yaml",
    "golden_28d": ROOT / "tests" / "golden" / "minimal" / "slo.yaml",
}

RequireBinary = Callable[[str], str]


def _report(request: pytest.FixtureRequest, line: str) -> None:
    """Show a line in the terminal even without -s (and keep it in the JUnit XML)."""
    plugins = request.config.pluginmanager
    reporter = plugins.getplugin("terminalreporter")
    capture = plugins.getplugin("capturemanager")
    if reporter is None or capture is None:  # pragma: no cover - plugins turned off
        print(f"[scenario] {line}")
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(f"[scenario] {line}")


@pytest.mark.parametrize("which", sorted(SPECS))
def test_detections_meet_the_requirements(
    which: str, request: pytest.FixtureRequest, record_property: Callable[[str, object], None]
) -> None:
    """Every detection of every case fires within its requirement, near the arithmetic.

    The simulated time is the first evaluation (every 2 minutes) at or after the closed-form
    crossing, so it is at most one evaluation plus one sample later, and never earlier.
    """
    spec = load_spec(SPECS[which])
    step = scenarios.evaluation(spec)
    found = scenarios.findings(spec)
    assert found
    for f in found:
        _report(request, f"{which}: {f.describe()}")
        assert f.fires_after is not None, f.describe()
        record_property(
            f"{which}:{f.detection.alert}:{f.detection.objective}:{f.detection.policy}",
            f.fires_after,
        )
        assert f.fires_after <= f.detection.within, f.describe()
        assert f.bound is not None
        assert f.bound - step <= f.fires_after <= f.bound + 2 * step, f.describe()


def test_the_issues_failing_cases_are_covered() -> None:
    """The cases the issue found silent (or loud) are all in the example's suite."""
    spec = load_spec(SPECS["example"])
    found = {
        (f.detection.alert, f.detection.objective, f.detection.policy.value)
        for f in scenarios.findings(spec)
    }
    assert ("GeminiSloLatencyBurnRate", "latency_p95", "page") in found  # total regression
    assert ("GeminiSloLatencyBurnRate", "latency_p99", "page") in found
    assert ("GeminiSloTimeToFirstTokenBurnRate", "ttft_p95", "page") in found
    assert ("GeminiSloLatencyBurnRate", "latency_p95", "ticket") in found  # 20% slow for days
    assert ("GeminiSloAvailabilityBurnRate", "availability", "ticket") in found  # 1.5% failures
    assert ("GeminiSloErrorBudgetBurn", "error_ratio", "page") in found  # throughput 20x
    kinds = {c.kind for w in spec.workloads for c in scenarios.cases(spec, w)}
    assert kinds == set(Kind)


def _rules(spec: SloSpec) -> dict[str, str]:
    """Only the rule files of a spec (its test files would assert its own behaviour)."""
    return {
        RECORDING_RULES: to_yaml(rules.recording_rules(spec), spec.source),
        ALERT_RULES: to_yaml(rules.alerting_rules(spec), spec.source),
    }


def _promtool(require_binary: RequireBinary, spec: SloSpec, root: Path, *kinds: Kind) -> str:
    promtool = require_binary("promtool")
    files = artifacts(spec)
    write(files, root)
    tests = select(files, of_kinds(*kinds))
    assert tests, kinds
    result = promtool_test(promtool, root, tests)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    return result.stdout


@pytest.mark.prometheus
@pytest.mark.parametrize("which", sorted(SPECS))
def test_promtool_agrees_fast_and_low_traffic(
    require_binary: RequireBinary, tmp_path: Path, which: str
) -> None:
    """The hours-long groups: total regressions, the 20x error burn, very low traffic."""
    _promtool(require_binary, load_spec(SPECS[which]), tmp_path, Kind.FAST, Kind.LOW_TRAFFIC)


@pytest.mark.prometheus
@pytest.mark.slow
@pytest.mark.parametrize("which", ["example", "nines"])
def test_promtool_agrees_over_days(
    require_binary: RequireBinary, tmp_path: Path, which: str
) -> None:
    """Three healthy days (a restart, a traffic stop) stay silent; sustained burns ticket."""
    _promtool(require_binary, load_spec(SPECS[which]), tmp_path, Kind.DAYS)


@pytest.mark.prometheus
def test_without_the_cap_a_total_regression_pages_late(
    require_binary: RequireBinary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Workbook's thresholds as they are (no cap) fail the 10-minute requirement.

    The simulation finds the p95 page at about 43 minutes, and promtool, given rules
    without the cap, fails the committed total-regression checks.
    """
    spec = load_spec(SPECS["example"])
    files = artifacts(spec)
    uncapped = tuple(
        dataclasses.replace(w, detection_bound=None) for w in burn_windows.BURN_WINDOWS
    )
    monkeypatch.setattr(burn_windows, "BURN_WINDOWS", uncapped)
    late = {
        f.detection.objective: f.fires_after
        for f in scenarios.findings(spec)
        if f.detection.within == scenarios.PAGE_WITHIN
    }
    p95 = late["latency_p95"]
    assert p95 is not None and p95 > 40 * 60
    broken = artifacts(spec)
    write(
        {**files, RECORDING_RULES: broken[RECORDING_RULES], ALERT_RULES: broken[ALERT_RULES]},
        tmp_path,
    )
    monkeypatch.undo()
    result = promtool_test(require_binary("promtool"), tmp_path, select(files, of_kinds(Kind.FAST)))
    assert result.returncode != 0
    assert "latency_p95" in result.stdout + result.stderr


@pytest.mark.prometheus
def test_without_evidence_one_bad_call_alerts(
    require_binary: RequireBinary, tmp_path: Path
) -> None:
    """With alerting.min_bad_events: 1 the low-traffic checks fail: one bad call alerts.

    So the silence the suite asserts at a call every 250 s is the evidence's doing, not
    an accident of the ratios.
    """
    spec = load_spec(SPECS["example"])
    files = artifacts(spec)
    one = dataclasses.replace(spec, alerting=dataclasses.replace(spec.alerting, min_bad_events=1))
    write({**files, **_rules(one)}, tmp_path)
    result = promtool_test(
        require_binary("promtool"), tmp_path, select(files, of_kinds(Kind.LOW_TRAFFIC))
    )
    assert result.returncode != 0
    assert "exp:[]" in (result.stdout + result.stderr).replace(" ", "")
