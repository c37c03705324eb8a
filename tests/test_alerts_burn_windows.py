"""The burn-rate window pairs: the Workbook's table as data, the thresholds derived from it
(reachability cap, floor, shortened windows), the minimum-evidence rule, the detection
arithmetic, and the docs' table that shows them.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from gemini_slo.alerts import rules
from gemini_slo.alerts.detection import detection_table, first_detection
from gemini_slo.contract import alert_names as names
from gemini_slo.contract.burn_windows import (
    BURN_WINDOWS,
    EVIDENCE_FALSE_ALARM,
    EVIDENCE_REFERENCE_BURN,
    MIN_EVIDENCE,
    WORKBOOK,
    Policy,
    conditions,
    default_min_bad_events,
    poisson_tail,
    windows_for,
)
from gemini_slo.contract.spec import SloSpec, SpecError, default_spec_path, load_spec, parse_spec
from hypothesis import given
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
DAYS_30 = 30 * 86400.0
MINUTE = 60.0
HOUR = 3600.0


@pytest.fixture(scope="module")
def spec() -> SloSpec:
    """The packaged example spec."""
    return load_spec(default_spec_path())


# ---- the Workbook's table ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "expected"),
    [(30, (14.4, 6.0, 3.0, 1.0)), (28, (13.44, 5.6, 2.8, 0.933333))],
)
def test_workbook_table_is_kept_as_data(days: int, expected: tuple[float, ...]) -> None:
    """burn = budget fraction x period / long window: the Workbook's factors for 30 days."""
    assert tuple(row.burn_rate(days * 86400) for row in WORKBOOK) == expected
    for row in WORKBOOK:
        assert row.short * 12 == row.long  # short window = 1/12 of the long one


def test_generated_pairs_derive_from_the_table() -> None:
    """Pages take the Workbook's fast rows; tickets its 3d/6h row and a 6h/30m at burn 1."""
    page = windows_for(Policy.PAGE)
    ticket = windows_for(Policy.TICKET)
    assert [w.row for w in page] == [WORKBOOK[0], WORKBOOK[1]]
    assert [w.cap for w in page] == [pytest.approx(1 / 12), pytest.approx(1 / 6)]
    assert [(w.name, w.burn_rate(DAYS_30)) for w in ticket] == [("6h/30m", 1.0), ("3d/6h", 1.0)]
    assert ticket[1].row is WORKBOOK[3]
    assert all(w.short * 12 == w.long for w in BURN_WINDOWS)


# ---- thresholds -------------------------------------------------------------------------


def test_tight_budgets_keep_the_workbook_thresholds() -> None:
    """For 99.9% the cap does not bind: 14.4 x 0.1% = 1.44%, 6 x 0.1% = 0.6%."""
    fast, slow, ticket, three_days = conditions(0.001, DAYS_30)
    assert (fast.threshold, fast.long, fast.short) == (0.0144, HOUR, 5 * MINUTE)
    assert (slow.threshold, slow.long) == (0.006, 6 * HOUR)
    assert ticket.threshold == three_days.threshold == 0.001


def test_p95_fast_page_is_capped_to_stay_reachable() -> None:
    """5% budget: 14.4x would need 72% bad; capped at 1/12 (1.67x), 6x capped at 1/6."""
    fast, slow, ticket, _ = conditions(0.05, DAYS_30)
    assert fast.threshold == pytest.approx(1 / 12, rel=1e-6)
    assert fast.burn_factor == pytest.approx(5 / 3, rel=1e-6)
    assert slow.threshold == pytest.approx(1 / 6, rel=1e-5)  # six significant digits
    assert ticket.threshold == 0.05


def test_large_budgets_shorten_the_fast_windows_instead() -> None:
    """p90 (10%): the floor 1.5x (15%) is above 1/12, so the 1h window shrinks to 33m."""
    fast, slow, _, _ = conditions(0.10, DAYS_30)
    assert fast.threshold == pytest.approx(0.15)
    assert (fast.long, fast.short, fast.name) == (33 * MINUTE, 165.0, "33m/165s")
    assert slow.long == 6 * HOUR  # 1/6 is still above 15%
    assert fast.threshold * fast.long <= 5 * MINUTE


@given(st.floats(min_value=1e-5, max_value=0.66))
def test_every_budget_keeps_the_bounds(budget: float) -> None:
    """For any budget: a total regression fires each fast pair within its detection bound,
    no page pair fires below 1.5x the budget, no ticket below 1x, and every threshold is
    reachable (at most 100%, and then inclusive)."""
    for c in conditions(budget, DAYS_30):
        assert 0 < c.threshold <= 1.0
        assert c.threshold >= c.window.min_burn * budget * (1 - 1e-5)
        assert c.short == round(c.long / 12) or c.long == c.window.long
        if c.window.detection_bound is not None:
            detection = c.detection_seconds(1.0)
            assert detection is not None
            assert detection <= c.window.detection_bound * (1 + 1e-5), (budget, c)
        assert c.min_bad_events >= MIN_EVIDENCE


def test_28_days_floors_the_three_day_ticket_at_burn_1() -> None:
    """The Workbook's 3d/6h is 0.93x over 28 days; a ticket never fires within budget."""
    three_days = conditions(0.01, 28 * 86400.0)[3]
    assert WORKBOOK[3].burn_rate(28 * 86400) < 1
    assert three_days.threshold == 0.01


# ---- minimum evidence -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("burn", "expected"), [(14.4, 2), (8.33333, 2), (6, 3), (1.66667, 7), (1, 16)]
)
def test_minimum_evidence_rule(burn: float, expected: int) -> None:
    """The smallest N that a workload at half its budget reaches by chance in at most 1%
    of the windows where N events would cross the threshold: fewer is not enough."""
    n = default_min_bad_events(burn)
    assert n == expected
    mean = EVIDENCE_REFERENCE_BURN / burn
    assert poisson_tail(n * mean, n) <= EVIDENCE_FALSE_ALARM
    if n > MIN_EVIDENCE:
        assert poisson_tail((n - 1) * mean, n - 1) > EVIDENCE_FALSE_ALARM


def test_poisson_tail() -> None:
    """P(X >= k) of a Poisson variable, against the closed forms for k = 1 and 2."""
    for mean in (0.01, 0.5, 3.0):
        assert poisson_tail(mean, 1) == pytest.approx(1 - math.exp(-mean))
        assert poisson_tail(mean, 2) == pytest.approx(1 - math.exp(-mean) * (1 + mean))


def test_min_bad_events_from_the_spec(spec: SloSpec) -> None:
    """alerting.min_bad_events replaces the rule for every pair; it must be a whole number >= 1."""
    text = (
        default_spec_path()
        .read_text()
        .replace("  window_scale: 1 ", "  min_bad_events: 5\n  window_scale: 1 ")
    )
    custom = parse_spec(text)
    assert custom.alerting.min_bad_events == 5
    for o in custom.workload("chat").objectives:
        for rule in rules.burn_rules_of(custom, o):
            assert rule.condition.min_bad_events == 5
    default = {
        r.condition.min_bad_events
        for r in rules.burn_rules_of(spec, spec.workload("chat").objective("latency_p95"))
    }
    assert default == {7, 4, 16}
    for bad in ("0", "1.5", "many"):
        with pytest.raises(SpecError, match="min_bad_events"):
            parse_spec(text.replace("min_bad_events: 5", f"min_bad_events: {bad}"))


# ---- detection arithmetic and the docs' table -------------------------------------------


def test_detection_arithmetic() -> None:
    """A step to r crosses T over L after L x (T - h) / (r - h); never when r <= T."""
    fast = conditions(0.05, DAYS_30)[0]
    assert fast.detection_seconds(1.0) == pytest.approx(5 * MINUTE, rel=1e-5)
    assert fast.detection_seconds(0.15) == pytest.approx(HOUR * fast.threshold / 0.15)
    h = 0.024
    assert fast.detection_seconds(1.0, h) == pytest.approx(HOUR * (fast.threshold - h) / (1 - h))
    assert fast.detection_seconds(0.08) is None
    ticket = conditions(0.05, DAYS_30)[2]
    # A sustained breach at 2x-4x from half the budget: 2h, 72m, ~51m.
    assert [ticket.detection_seconds(k * 0.05, 0.025) for k in (2, 3, 4)] == pytest.approx(
        [2 * HOUR, 72 * MINUTE, 6 * HOUR / 7]
    )


def test_total_regressions_page_within_ten_minutes_for_any_target(spec: SloSpec) -> None:
    """Every paging objective of the example, the 99.9% spec and the golden p90 pages a
    total regression within 10 minutes (arithmetic, from a perfect history)."""
    for path in (
        default_spec_path(),
        ROOT / "tests/golden/nines/slo.yaml",
        ROOT / "tests/golden/minimal/slo.yaml",
    ):
        use = load_spec(path)
        for w in use.workloads:
            for o in w.objectives:
                if not any(
                    r.severity is names.Severity.CRITICAL for r in rules.burn_rules_of(use, o)
                ):
                    continue
                d = first_detection(use, o, 1.0, names.Severity.CRITICAL)
                assert d is not None and d.seconds <= 10 * MINUTE, (path.name, o.name, d)


def test_docs_table_is_the_generated_one(spec: SloSpec) -> None:
    """docs/slo-spec.md shows exactly what detection_table computes for the example."""
    assert detection_table(spec) in (ROOT / "docs" / "slo-spec.md").read_text(encoding="utf-8")
