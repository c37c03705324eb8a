"""Every PromQL expression of every generated dashboard returns data from a real Prometheus.

A dashboard whose query names a series nobody exports, a label nobody sets or a recording
rule nobody defines draws an empty panel, and nobody notices until the incident. So: run
both reference workloads through the instrumentation and the agent, let Prometheus scrape
the agent and evaluate the generated recording and alerting rules (short windows, from
``alerting.window_scale``), then run each panel's expression (template variables
substituted per workload) as an instant query and require a non-empty result.

A panel that cannot have data after a short healthy run must be listed in
``ALLOWED_EMPTY`` with the reason; the list is reviewed like code and is empty today.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from gemini_slo.contract import signals as S
from gemini_slo.contract.spec import load_spec
from gemini_slo.dashboards.build import PanelQuery, queries
from gemini_slo.lab import stack as st

pytestmark = [pytest.mark.slow, pytest.mark.prometheus]

#: (dashboard uid, panel title) -> why that panel may be empty after a short healthy run.
ALLOWED_EMPTY: dict[tuple[str, str], str] = {}

#: Grafana's $__rate_interval for a 1s scrape interval is 4s; a little more is steadier.
RATE_INTERVAL = "15s"
LOAD_S = 40.0
DATA_TIMEOUT_S = 120.0


def _empty(stack: st.Stack, items: list[PanelQuery]) -> list[PanelQuery]:
    """The queries that return nothing now (a PromQL error fails the test at once)."""
    empty = []
    for item in items:
        try:
            result = stack.query(item.expr)
        except st.StackError as exc:
            pytest.fail(f"{item.dashboard_uid} / {item.panel_title}: invalid PromQL: {exc}")
        if not result:
            empty.append(item)
    return empty


def test_every_dashboard_query_returns_data(require_binary: Any, tmp_path: Path) -> None:
    """After a load run through agent and Prometheus, no panel query comes back empty."""
    require_binary("prometheus")
    with st.FullStack(tmp_path, window_scale=60, time_scale=0.3, monitoring=True) as full:
        assert full.stack is not None
        spec = load_spec(full.spec_path)
        items = queries(spec, rate_interval=RATE_INTERVAL)
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
        assert not pending, (
            f"{len(pending)} of {len(items)} panel queries returned no data:\n{detail}"
        )
        # The allow-list must not rot: an allowed panel that has data should leave the list.
        allowed = [i for i in items if (i.dashboard_uid, i.panel_title) in ALLOWED_EMPTY]
        stale = {(i.dashboard_uid, i.panel_title) for i in allowed} - {
            (i.dashboard_uid, i.panel_title) for i in _empty(full.stack, allowed)
        }
        assert not stale, f"remove from ALLOWED_EMPTY, these panels have data now: {stale}"
