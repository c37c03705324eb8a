"""Dashboards: structure (refIds, grid, datasources, queries), variables, uids, provisioning.

Running every panel's PromQL against a real Prometheus after a load is the end-to-end
test's job (tests/test_dashboards_promql*.py); here every expression is at least parsed by
promtool, as a recording rule.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from gemini_slo.contract import agent_series, signals
from gemini_slo.contract.spec import (
    ObjectiveKind,
    SloSpec,
    default_spec_path,
    load_spec,
    parse_spec,
)
from gemini_slo.dashboards.build import PanelQuery, dashboards, provisioning, queries, substitute

GOLDEN_SPEC = Path(__file__).parent / "golden" / "minimal" / "slo.yaml"


@pytest.fixture(scope="module")
def spec() -> SloSpec:
    """The packaged example spec."""
    return load_spec(default_spec_path())


@pytest.fixture(scope="module")
def models(spec: SloSpec) -> dict[str, dict[str, Any]]:
    """The example's dashboards."""
    return dashboards(spec)


def _panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in model["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def test_the_three_dashboards_with_deterministic_uids(models: dict[str, dict[str, Any]]) -> None:
    """Overview, latency and throughput, with fixed uids and the gemini-slo tag."""
    assert sorted(models) == ["latency.json", "overview.json", "throughput.json"]
    for name, model in models.items():
        assert model["uid"] == f"gemini-slo-{name.removesuffix('.json')}"
        assert "gemini-slo" in model["tags"]
        assert "do not edit" in model["description"]


@pytest.mark.parametrize("name", ["overview.json", "latency.json", "throughput.json"])
def test_structure(models: dict[str, dict[str, Any]], name: str) -> None:
    """Unique refIds per panel, unique panel ids, no overlapping grid, datasource and query."""
    model = models[name]
    cells: dict[tuple[int, int], str] = {}
    ids = set()
    for panel in _panels(model):
        assert panel["id"] not in ids
        ids.add(panel["id"])
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        targets = panel["targets"]
        assert targets, panel["title"]
        ref_ids = [t["refId"] for t in targets]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for t in targets:
            assert t["expr"].strip(), panel["title"]
            assert t["datasource"]["uid"] == "${datasource}"


def test_variables(models: dict[str, dict[str, Any]]) -> None:
    """Mode dashboards have datasource, job, workload and model variables; the overview a
    datasource. Workload and model come from label_values over the duration histogram (which
    the official instrumentation sends too), the spec's first workload the default."""
    for name, expected in [
        ("latency.json", ["datasource", "job", "workload", "model"]),
        ("throughput.json", ["datasource", "job", "workload", "model"]),
        ("overview.json", ["datasource"]),
    ]:
        variables = models[name]["templating"]["list"]
        assert [v["name"] for v in variables] == expected
    for name, mode, first in [
        ("latency.json", "latency", "chat"),
        ("throughput.json", "throughput", "batch"),
    ]:
        job, workload, model = models[name]["templating"]["list"][1:]
        source = "gen_ai_client_operation_duration_seconds_count"
        assert job["query"]["query"] == f"label_values({source}, job)"
        assert job["current"]["value"] == "$__all" and job["allValue"] == ".*"
        assert workload["query"]["query"] == (
            f'label_values({source}{{job=~"$job",gemini_slo_mode="{mode}"}}, gemini_slo_workload)'
        )
        assert workload["current"]["value"] == first
        assert model["query"]["query"] == (
            f'label_values({source}{{gemini_slo_workload=~"$workload",job=~"$job"}}, '
            "gen_ai_request_model)"
        )


def test_units_and_thresholds_from_the_spec(models: dict[str, dict[str, Any]]) -> None:
    """Thresholds come from the spec: the latency ceiling, the tokens/s floor, the cost ceiling."""

    def steps(model: dict[str, Any], title: str) -> list[Any]:
        panel = next(p for p in _panels(model) if p["title"].startswith(title))
        return [s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]

    assert steps(models["latency.json"], "End-to-end latency p50/p95/p99 (agent") == [None, 0.5]
    assert steps(models["latency.json"], "Time to first token p50/p95/p99 (agent") == [None, 0.3]
    assert steps(models["throughput.json"], "Sustained generated tokens/s") == [None, 10000]
    assert steps(models["throughput.json"], "Cost per 1M tokens against") == [None, 0.5]
    units = {
        p["title"]: p["fieldConfig"]["defaults"].get("unit")
        for p in _panels(models["latency.json"])
        if p["type"] != "row"
    }
    assert units["Queue wait p95/p99"] == "s"
    assert units["Shed and timeout ratio"] == "percentunit"


def test_overview_links_every_workload(spec: SloSpec, models: dict[str, dict[str, Any]]) -> None:
    """One state panel per workload, linking to its mode's dashboard."""
    links = [link["url"] for p in _panels(models["overview.json"]) for link in p.get("links", [])]
    for w in spec.workloads:
        assert any(
            u.startswith(f"/d/gemini-slo-{w.mode.value}?var-workload={w.name}") for u in links
        )


def test_mode_dashboards_only_for_modes_in_the_spec() -> None:
    """A spec with only latency workloads gets no throughput dashboard."""
    only = parse_spec("version: gemini-slo/v1\nworkloads: [{name: a, mode: latency}]\n")
    assert sorted(dashboards(only)) == ["latency.json", "overview.json"]


def test_queries_lists_every_expression(spec: SloSpec, models: dict[str, dict[str, Any]]) -> None:
    """queries() gives (uid, panel title, expr) for every target, variables substituted."""
    raw = queries(spec, expand=False)
    n_targets = sum(len(p.get("targets", [])) for m in models.values() for p in _panels(m))
    assert len(raw) == n_targets
    expanded = queries(spec, rate_interval="30s")
    assert all(isinstance(q, PanelQuery) for q in expanded)
    for q in expanded:
        assert "$" not in q.expr, q
    uid, title, expr = expanded[-1]  # a plain 3-tuple too
    assert uid.startswith("gemini-slo-") and title and expr
    assert substitute('x{a=~"$workload",b=~"${model}"}[$__rate_interval]', "chat") == (
        'x{a=~"chat",b=~".*"}[1m]'
    )


def test_queries_use_contract_names_and_sum_by_workload(spec: SloSpec) -> None:
    """Raw metrics are summed by workload; metric names come from the contract."""
    contract = {s.prometheus for s in signals.INSTRUMENTATION_SIGNALS}
    for q in queries(spec):
        if "rate(" in q.expr and "gemini_slo:" not in q.expr.split("rate(")[1][:12]:
            assert "by (gemini_slo_workload" in q.expr, q
        assert any(name in q.expr for name in contract) or "gemini_slo" in q.expr, q


@pytest.mark.prometheus
@pytest.mark.parametrize("which", ["example", "golden"])
def test_every_query_parses(
    require_binary: Callable[[str], str], tmp_path: Path, which: str
) -> None:
    """promtool parses every panel expression (wrapped as recording rules)."""
    promtool = require_binary("promtool")
    use = load_spec(default_spec_path() if which == "example" else GOLDEN_SPEC)
    rules = [{"record": f"panel:query:{i}", "expr": q.expr} for i, q in enumerate(queries(use))]
    path = tmp_path / "panels.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_provisioning(spec: SloSpec) -> None:
    """A file provider for the dashboards and a Prometheus datasource with the scrape interval."""
    files = provisioning(spec)
    provider = files["dashboards/gemini-slo.yaml"]["providers"][0]
    assert provider["type"] == "file" and provider["options"]["path"]
    (ds,) = files["datasources/gemini-slo-prometheus.yaml"]["datasources"]
    assert ds["type"] == "prometheus" and ds["uid"] == "gemini-slo-prometheus"
    assert ds["jsonData"]["timeInterval"] == "15s"


def _extra_series(spec: SloSpec, steps: int) -> list[dict[str, str]]:
    """Series only the agent or an admission queue exposes: percentiles, queue depth, verdicts."""
    out = []
    for w in spec.workloads:
        base = f'gemini_slo_workload="{w.name}",gemini_slo_mode="{w.mode.value}"'
        model = w.models[0] if w.models else "gemini-2.5-flash"
        for metric in (agent_series.AGENT_DURATION_PERCENTILE, agent_series.AGENT_TTFT_PERCENTILE):
            for quantile in ("0.5", "0.95", "0.99"):
                labels = f'{base},gen_ai_request_model="{model}",quantile="{quantile}",window="1m"'
                out.append({"series": f"{metric}{{{labels}}}", "values": f"0.2+0x{steps}"})
        depth = signals.QUEUE_DEPTH.prometheus
        labels = f'{base},gemini_slo_queue="default",job="gemini-slo",instance="app-0"'
        out.append({"series": f"{depth}{{{labels}}}", "values": f"3+0x{steps}"})
        workload = f'gemini_slo_workload="{w.name}"'
        verdict = f'{workload},declared="{w.mode.value}",observed="{w.mode.value}"'
        out.append({"series": f"{agent_series.ADVICE_MODE}{{{verdict}}}", "values": f"1+0x{steps}"})
        for metric in (agent_series.ADVICE_SCORE, agent_series.ADVICE_MISMATCH):
            out.append({"series": f"{metric}{{{workload}}}", "values": f"0+0x{steps}"})
        for o in w.objectives:  # the agent's bucket check of histogram objectives
            if o.kind in (ObjectiveKind.LATENCY, ObjectiveKind.TTFT):
                labels = f'{base},objective="{o.name}"'
                unbucketed = agent_series.AGENT_OBJECTIVE_THRESHOLD_UNBUCKETED
                out.append({"series": f"{unbucketed}{{{labels}}}", "values": f"0+0x{steps}"})
    return out


@pytest.mark.prometheus
def test_every_query_returns_data_on_healthy_traffic(
    require_binary: Callable[[str], str], spec: SloSpec, tmp_path: Path
) -> None:
    """On the promtool tests' healthy traffic (plus agent series), no panel query is empty.

    Each query is wrapped as ``count(expr) > bool 0`` and expected to be 1: an empty result
    (a wrong label, a missing recording rule) fails with the panel's title in the output.
    """
    from gemini_slo.alerts.promtool_tests import healthy_traffic, input_series
    from gemini_slo.cli.artifacts import artifacts, write

    promtool = require_binary("promtool")
    write(artifacts(spec), tmp_path)
    steps = 120
    series = [s for w in spec.workloads for s in input_series(w, healthy_traffic(w), 60.0, steps)]
    series += _extra_series(spec, steps)
    checks = [
        {
            "expr": f"count(\n{q.expr}\n) > bool 0",
            "eval_time": "100m",
            "exp_samples": [{"labels": "{}", "value": 1}],
        }
        for q in queries(spec, rate_interval="5m")
    ]
    doc = {
        "rule_files": ["alerts/recording_rules.yaml", "alerts/alert_rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": checks}],
    }
    path = tmp_path / "panels.test.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = subprocess.run(
        [promtool, "test", "rules", path.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr


def test_package_exports_queries(spec: SloSpec) -> None:
    """``gemini_slo.dashboards.queries`` is the same function, imported lazily."""
    import gemini_slo.dashboards as pkg

    assert pkg.queries is queries
    assert pkg.queries(spec) == queries(spec)
