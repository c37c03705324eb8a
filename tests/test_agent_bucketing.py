"""No bucket at the threshold: the agent, the page and `gemini-slo status` say so, never a zero."""

from __future__ import annotations

import io
from typing import Any

import pytest
from gemini_slo.agent import page
from gemini_slo.agent.history import History
from gemini_slo.agent.slo_status import STATE_UNBUCKETED, SloStatus
from gemini_slo.agent.store import Store
from gemini_slo.agent.testing import histogram_metric, otlp_request
from gemini_slo.cli import status as status_cli
from gemini_slo.contract import agent_series
from gemini_slo.contract import signals as S
from gemini_slo.contract.spec import parse_spec
from rich.console import Console

SPEC = parse_spec(
    """\
version: gemini-slo/v1
workloads:
  - name: chat
    mode: latency
    select:
      - resource: {service.name: official-app}
    objectives:
      latency:
        - {percentile: 95, threshold: 500ms}
      ttft: {percentile: 95, threshold: 300ms}
      availability: 99%
"""
)
#: The official instrumentation's default duration buckets (opentelemetry-util-genai).
OFFICIAL_BOUNDS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24]
OFFICIAL = {"gen_ai.request.model": "gemini-2.5-flash", "gen_ai.provider.name": "gemini"}


def _store(bounds: list[float]) -> Store:
    store = Store(spec=SPEC)
    counts = [0] * (len(bounds) + 1)
    counts[1] = 4
    metric = histogram_metric(S.OPERATION_DURATION.name, OFFICIAL, bounds, counts, 1.6)
    assert store.ingest(otlp_request([metric], service="official-app")).rejected == 0
    return store


def _objectives(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["name"]: o for o in status["workloads"][0]["objectives"]}


def _unbucketed_series(slo: SloStatus) -> dict[str, float]:
    return {
        s.labels[agent_series.LABEL_OBJECTIVE]: s.value
        for m in slo.metrics()
        if m.name == agent_series.AGENT_OBJECTIVE_THRESHOLD_UNBUCKETED
        for s in m.samples
    }


def test_official_buckets_are_reported_unbucketed() -> None:
    """Official buckets: latency_p95 says 'no bucket at the threshold' in /api/slo and /metrics."""
    slo = SloStatus(SPEC, _store(OFFICIAL_BOUNDS))
    objectives = _objectives(slo.status())
    latency = objectives["latency_p95"]
    assert latency["threshold_bucketed"] is False
    assert latency["state"] == STATE_UNBUCKETED
    assert latency["value"] is None  # not a made-up number
    # No TTFT histogram arrived: nothing to judge, and availability is not a histogram SLI.
    assert objectives["ttft_p95"]["threshold_bucketed"] is None
    assert objectives["availability"]["threshold_bucketed"] is None
    assert _unbucketed_series(slo) == {"latency_p95": 1.0}


def test_buckets_with_the_threshold_are_reported_bucketed() -> None:
    """With the threshold a boundary (otel_views), the series reads 0 and the state is not flagged."""
    slo = SloStatus(SPEC, _store(sorted({*OFFICIAL_BOUNDS, 0.5})))
    latency = _objectives(slo.status())["latency_p95"]
    assert latency["threshold_bucketed"] is True
    assert latency["state"] != STATE_UNBUCKETED
    assert _unbucketed_series(slo) == {"latency_p95": 0.0}


@pytest.mark.parametrize(("bounds", "shown"), [(OFFICIAL_BOUNDS, True), ([0.5, 1.0], False)])
def test_status_command_and_page_show_it(bounds: list[float], shown: bool) -> None:
    """`gemini-slo status` prints the state; the SLO page marks the objective's row."""
    slo = SloStatus(SPEC, _store(bounds))
    out = io.StringIO()
    status_cli.render(slo.status(), Console(file=out, width=200))
    latency_row = next(line for line in out.getvalue().splitlines() if "latency_p95" in line)
    assert (STATE_UNBUCKETED in latency_row) is shown
    history = History(slo, clock=lambda: 1000.0)
    html = page.render(slo, history, now=1000.0)
    row = html[html.index('data-objective="latency_p95"') :].split("</tr>", 1)[0]
    assert (STATE_UNBUCKETED in row) is shown
