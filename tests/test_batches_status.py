"""Batch objectives in the agent's SLO status (``/api/slo``'s ``batch`` list), on the SLO page
and in ``gemini-slo status``: computed from the batch series the agent merged, with a
"no batch jobs" state for a workload whose instrumentation never reported one."""

from __future__ import annotations

import argparse
import urllib.request
from typing import Any

import pytest
from gemini_slo.agent.batch_status import STATE_NO_BATCH_JOBS
from gemini_slo.agent.slo_status import STATE_MET, STATE_NO_DATA, STATE_NOT_MET
from gemini_slo.agent.testing import (
    AgentHandle,
    gauge_metric,
    histogram_metric,
    otlp_request,
    post_otlp,
    running_agent,
    sum_metric,
)
from gemini_slo.cli import status as status_cli
from gemini_slo.contract import signals as S
from gemini_slo.contract.batch_spec import FAILURE_RATIO, QUEUE_TIME
from gemini_slo.contract.spec import load_spec

WORKLOAD = "batch"  # the example spec's throughput workload: p95 within 24h, 1%, 6h
MODEL = "gemini-2.5-flash-lite"
HOUR = 3600.0
BOUNDS = list(S.BATCH_DURATION_BUCKETS)


def _attrs(**extra: str) -> dict[str, str]:
    return {
        S.ATTR_WORKLOAD: WORKLOAD,
        S.ATTR_MODE: "throughput",
        S.ATTR_PROVIDER: S.PROVIDER_GEMINI,
        S.ATTR_REQUEST_MODEL: MODEL,
        **extra,
    }


def _counts(jobs: dict[float, int]) -> list[int]:
    """Non-cumulative bucket counts: ``jobs`` maps a bucket's upper bound (inf last) to jobs."""
    return [jobs.get(b, 0) for b in [*BOUNDS, float("inf")]]


def _send(
    agent: AgentHandle, durations: dict[str, dict[float, int]], oldest_pending: float
) -> None:
    """One app's cumulative batch series: job durations by terminal state, the finished
    counter that matches them, and the oldest pending job's age."""
    metrics = [
        histogram_metric(
            S.BATCH_JOB_DURATION.name,
            _attrs(**{S.ATTR_BATCH_STATE: state}),
            BOUNDS,
            _counts(jobs),
            sum(b * n for b, n in jobs.items() if b != float("inf")),
        )
        for state, jobs in durations.items()
    ]
    metrics.append(
        sum_metric(
            S.BATCH_JOBS_FINISHED.name,
            [
                (_attrs(**{S.ATTR_BATCH_STATE: state}), float(sum(jobs.values())))
                for state, jobs in durations.items()
            ],
            unit="{batch}",
        )
    )
    metrics.append(gauge_metric(S.BATCH_QUEUE_OLDEST.name, [(_attrs(), oldest_pending)], unit="s"))
    status, body, _ = post_otlp(
        f"{agent.otlp_url}/v1/metrics", otlp_request(metrics).SerializeToString()
    )
    assert status == 200, body


def _batch(agent: AgentHandle) -> dict[str, dict[str, Any]]:
    (workload,) = [w for w in agent.slo()["workloads"] if w["name"] == WORKLOAD]
    return {o["name"]: o for o in workload["batch"]}


COMPLETION = load_spec("contract/slo.yaml").workload(WORKLOAD).batch.completion_name  # type: ignore[union-attr]


def test_batch_objectives_not_met_are_measured_exactly_from_the_buckets() -> None:
    """20 succeeded jobs (17 within 1h, 1 within 24h, 2 over it), 1 failed within 1h, 2
    cancelled after 2 days (left out), a job pending for 7h: the completion share is 19/21
    (< 95%), the failure ratio 1/21 (> 1%), the oldest pending 7h (> 6h): all not met."""
    with running_agent() as agent:
        _send(
            agent,
            {
                "succeeded": {HOUR: 17, 24 * HOUR: 1, 48 * HOUR: 2},
                "failed": {HOUR: 1},
                "cancelled": {float("inf"): 2},
            },
            oldest_pending=7 * HOUR,
        )
        got = _batch(agent)
    assert set(got) == {COMPLETION, FAILURE_RATIO, QUEUE_TIME}
    completion, failure, queue = got[COMPLETION], got[FAILURE_RATIO], got[QUEUE_TIME]
    assert completion["value"] == pytest.approx(19 / 21)
    assert completion["jobs"] == 21
    assert (completion["met"], completion["state"]) == (False, STATE_NOT_MET)
    assert completion["target"] == pytest.approx(0.95)
    assert completion["threshold"] == 24 * HOUR
    assert completion["error_budget_remaining"] == pytest.approx(1 - (2 / 21) / 0.05)
    assert failure["value"] == pytest.approx(1 / 21)
    assert (failure["met"], failure["state"]) == (False, STATE_NOT_MET)
    assert failure["error_budget_remaining"] == pytest.approx(1 - (1 / 21) / 0.01)
    assert queue["value"] == 7 * HOUR
    assert (queue["met"], queue["state"]) == (False, STATE_NOT_MET)


def test_batch_objectives_met_and_the_workload_stays_healthy() -> None:
    """100 succeeded jobs, 96 of them within 24h (the boundary itself counts as within),
    none failed, none pending: every batch objective is met."""
    with running_agent() as agent:
        _send(agent, {"succeeded": {12 * HOUR: 50, 24 * HOUR: 46, 48 * HOUR: 4}}, 0.0)
        got = _batch(agent)
    assert got[COMPLETION]["value"] == pytest.approx(0.96)
    assert all(o["state"] == STATE_MET and o["met"] is True for o in got.values())
    assert got[FAILURE_RATIO]["value"] == 0.0
    assert got[QUEUE_TIME]["value"] == 0.0


def test_no_batch_jobs_and_pending_jobs_only() -> None:
    """Without any batch series every batch objective reads 'no batch jobs' (neither met
    nor failed); with a job pending and none finished, completion and failure read
    'no data' while the queue objective is measured."""
    with running_agent() as agent:
        idle = _batch(agent)
        assert all(o["state"] == STATE_NO_BATCH_JOBS and o["met"] is None for o in idle.values())
        assert all(o["value"] is None for o in idle.values())
        _send(agent, {}, oldest_pending=HOUR)
        pending = _batch(agent)
    assert pending[COMPLETION]["state"] == STATE_NO_DATA
    assert pending[FAILURE_RATIO]["state"] == STATE_NO_DATA
    assert (pending[QUEUE_TIME]["state"], pending[QUEUE_TIME]["value"]) == (STATE_MET, HOUR)


def test_status_cli_and_page_show_the_batch_objectives(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`gemini-slo status` prints a batch table with each objective's state and exits 1
    with --check when one is not met; the SLO page lists them as objective rows."""
    monkeypatch.setenv("COLUMNS", "200")  # rich would cut long names at 80 columns
    with running_agent() as agent:
        _send(agent, {"succeeded": {HOUR: 10}, "failed": {HOUR: 1}}, oldest_pending=0.0)
        args = argparse.Namespace(
            agent=agent.base_url, token_file=None, json=False, check=True, timeout=5.0
        )
        code = status_cli.run(args)
        with urllib.request.urlopen(agent.base_url + "/", timeout=10) as response:
            page = response.read().decode()
    out = capsys.readouterr().out
    assert code == 1  # the failure ratio (1/11) is above 1%
    assert "batch jobs" in out
    for name in (COMPLETION, FAILURE_RATIO, QUEUE_TIME):
        assert name in out
        assert f'data-objective="{name}"' in page
    assert f'data-objective="{FAILURE_RATIO}" data-state="{STATE_NOT_MET}"' in page
