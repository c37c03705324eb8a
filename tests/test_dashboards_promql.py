"""Every PromQL expression of every generated dashboard returns data from a real Prometheus.

A dashboard whose query names a series nobody exports, a label nobody sets or a recording
rule nobody defines draws an empty panel, and nobody notices until the incident. So: run
both reference workloads through the instrumentation and the agent, let Prometheus scrape
the agent and evaluate the generated recording and alerting rules (short windows, from
``alerting.window_scale``), then run each panel's expression (template variables
substituted per workload) as an instant query and require a non-empty result.

A panel that cannot have data after a short healthy run must be listed in
``ALLOWED_EMPTY`` with the reason; the list is reviewed like code and is empty today.

The same check runs with VictoriaMetrics as the datasource (scale-out path 1: the apps
export straight to it, vmalert records the rules; no agent). There, the queries of the
series only the agent computes (its exact percentiles: ``lab.victoria.AGENT_ONLY_SERIES``)
must be the empty ones and no other, and no result may carry a resource label
VictoriaMetrics keeps (``service_name``, ``service_instance_id``): every panel and every
recorded series aggregates them away.

The native-histogram panels (``lab.native.mentions_native``) have data only where the
datasource has native histograms: they must be empty behind Debian 12's Prometheus 2.42
and VictoriaMetrics, and have data, with every other panel, behind Prometheus 2.53 with
``--enable-feature=native-histograms`` scraping the agent over protobuf.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from gemini_slo.contract import signals as S
from gemini_slo.contract.spec import load_spec
from gemini_slo.dashboards.build import PanelQuery, queries
from gemini_slo.lab import native, victoria
from gemini_slo.lab import stack as st

pytestmark = [pytest.mark.slow]

#: (dashboard uid, panel title) -> why that panel may be empty after a short healthy run.
ALLOWED_EMPTY: dict[tuple[str, str], str] = {}

#: Grafana's $__rate_interval for a 1s scrape interval is 4s; a little more is steadier.
RATE_INTERVAL = "15s"
LOAD_S = 40.0
DATA_TIMEOUT_S = 120.0


def _results(stack: st.Stack, items: list[PanelQuery]) -> dict[PanelQuery, list[dict[str, Any]]]:
    """Each query's result now (a PromQL error fails the test at once)."""
    out = {}
    for item in items:
        try:
            out[item] = stack.query(item.expr)
        except st.StackError as exc:
            pytest.fail(f"{item.dashboard_uid} / {item.panel_title}: invalid PromQL: {exc}")
    return out


def _empty(stack: st.Stack, items: list[PanelQuery]) -> list[PanelQuery]:
    """The queries that return nothing now (a PromQL error fails the test at once)."""
    return [item for item, result in _results(stack, items).items() if not result]


@pytest.mark.prometheus
def test_every_dashboard_query_returns_data(require_binary: Any, tmp_path: Path) -> None:
    """After a load run through agent and Prometheus, no panel query comes back empty."""
    require_binary("prometheus")
    with st.FullStack(tmp_path, window_scale=60, time_scale=0.3, monitoring=True) as full:
        spec = load_spec(full.spec_path)
        natives = _native_queries(spec)
        _check_every_query(full, without=natives)
        assert full.stack is not None
        assert not [i for i in natives if full.stack.query(i.expr)]


def _native_queries(spec: Any) -> list[PanelQuery]:
    natives = [
        i for i in queries(spec, rate_interval=RATE_INTERVAL) if native.mentions_native(i.expr)
    ]
    assert len(natives) >= 8, "the native-histogram panels are gone: update this test"
    return natives


@pytest.mark.victoria
def test_every_dashboard_query_returns_data_with_native_histograms(
    require_binary: Any, tmp_path: Path
) -> None:
    """Agent -> Prometheus 2.53 with native histograms: every panel has data, the
    native-histogram percentiles included."""
    require_binary("prometheus-2.53")
    with native.NativeFullStack(tmp_path, window_scale=60, time_scale=0.3) as full:
        spec = load_spec(full.spec_path)
        results = _check_every_query(full)
        for item in _native_queries(spec):
            assert results[item], item.panel_title


@pytest.mark.victoria
def test_every_dashboard_query_returns_data_from_victoria_metrics(
    require_binary: Any, tmp_path: Path
) -> None:
    """Apps -> VictoriaMetrics, vmalert recording: every panel has data but the agent's own."""
    require_binary("victoria-metrics")
    require_binary("vmalert")
    with victoria.VictoriaFullStack(tmp_path, window_scale=60, time_scale=0.3) as full:
        assert full.stack is not None
        spec = load_spec(full.spec_path)
        agent_only = [
            i
            for i in queries(spec, rate_interval=RATE_INTERVAL)
            if victoria.mentions_agent_only(i.expr)
        ]
        assert agent_only, "no panel reads the agent's percentiles: update this test"
        natives = _native_queries(spec)
        results = _check_every_query(full, without=[*agent_only, *natives])
        assert not [i for i in natives if full.stack.query(i.expr)]
        # Without the agent, its percentile gauges do not exist (and nothing else stands in).
        assert not [i for i in agent_only if full.stack.query(i.expr)]
        # The resource labels VictoriaMetrics keeps are aggregated away by every panel...
        leaked = {
            (i.dashboard_uid, i.panel_title, label)
            for i, result in results.items()
            for series in result
            for label in victoria.KEPT_RESOURCE_LABELS
            if label in series["metric"]
        }
        assert not leaked, f"panels showing a resource label: {sorted(leaked)}"
        # ... and by every recorded series, which the alerts compare with each other.
        recorded = full.stack.query('{__name__=~"gemini_slo:.+"}')
        assert recorded, "vmalert recorded nothing"
        leaked_rules = {
            (r["metric"]["__name__"], label)
            for r in recorded
            for label in victoria.KEPT_RESOURCE_LABELS
            if label in r["metric"]
        }
        assert not leaked_rules, f"recorded series with a resource label: {sorted(leaked_rules)}"


def _check_every_query(
    full: st.FullStack, without: Sequence[PanelQuery] = ()
) -> dict[PanelQuery, list[dict[str, Any]]]:
    """Run both workloads, wait for every panel query (but ``without``) to have data.

    Returns the last result of each query that was checked.
    """
    assert full.stack is not None
    spec = load_spec(full.spec_path)
    items = [i for i in queries(spec, rate_interval=RATE_INTERVAL) if i not in without]
    assert items, "the dashboards have no queries"
    for workload in spec.workloads:
        if workload.mode is S.Mode.LATENCY:
            full.start_load(
                "latency", "--workload", workload.name, "--rate", "10",
                "--model", workload.models[0], name=workload.name, duration=LOAD_S + DATA_TIMEOUT_S,
            )  # fmt: skip
        else:
            full.start_load(
                "throughput", "--workload", workload.name, "--concurrency", "16",
                "--model", workload.models[0], name=workload.name, duration=LOAD_S + DATA_TIMEOUT_S,
            )  # fmt: skip
        if workload.batch is not None:  # the Batch row: Batch API jobs of the same workload
            full.start_load(
                "throughput", "--workload", workload.name, "--batch", "4", "--job-every", "3",
                "--model", workload.models[0], name=f"{workload.name}-jobs",
                duration=LOAD_S + DATA_TIMEOUT_S,
            )  # fmt: skip
    time.sleep(LOAD_S)
    # Windows fill at different speeds: poll until every query has data or time is up.
    deadline = time.monotonic() + DATA_TIMEOUT_S
    pending = [i for i in items if (i.dashboard_uid, i.panel_title) not in ALLOWED_EMPTY]
    while True:
        pending = _empty(full.stack, pending)
        if not pending or time.monotonic() > deadline:
            break
        for proc in full.loads:
            assert proc.running(), f"{proc.name} exited:\n{proc.log_tail()}"
        time.sleep(3)
    detail = "\n".join(f"  {i.dashboard_uid} / {i.panel_title}:\n    {i.expr}" for i in pending)
    assert not pending, f"{len(pending)} of {len(items)} panel queries returned no data:\n{detail}"
    # The allow-list must not rot: an allowed panel that has data should leave the list.
    allowed = [i for i in items if (i.dashboard_uid, i.panel_title) in ALLOWED_EMPTY]
    stale = {(i.dashboard_uid, i.panel_title) for i in allowed} - {
        (i.dashboard_uid, i.panel_title) for i in _empty(full.stack, allowed)
    }
    assert not stale, f"remove from ALLOWED_EMPTY, these panels have data now: {stale}"
    return _results(full.stack, [i for i in items if i not in allowed])
