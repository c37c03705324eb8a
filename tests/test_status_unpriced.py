"""Unpriced calls in the agent's SLO status and in ``gemini-slo status``: named per model,
and a cost objective is never met by calls that cost $0 because nobody priced them."""

from __future__ import annotations

import argparse

import pytest
from gemini_slo.agent.slo_status import STATE_MET, STATE_UNPRICED
from gemini_slo.agent.testing import AgentHandle, otlp_request, post_otlp, running_agent, sum_metric
from gemini_slo.cli import status as status_cli
from gemini_slo.contract import signals as S

WORKLOAD = "batch"  # the example spec's throughput workload, with a cost objective
PRICED = "gemini-2.5-flash-lite"
UNPRICED = "gemini-9-ultra-preview-tts"


def _attrs(model: str, **extra: str) -> dict[str, str]:
    return {
        S.ATTR_WORKLOAD: WORKLOAD,
        S.ATTR_MODE: "throughput",
        S.ATTR_OPERATION: S.OPERATION_GENERATE,
        S.ATTR_PROVIDER: S.PROVIDER_GEMINI,
        S.ATTR_REQUEST_MODEL: model,
        **extra,
    }


def _send(agent: AgentHandle, unpriced_calls: int, time_: int) -> None:
    """Cumulative counters of one app: 80 priced calls and ``unpriced_calls`` unpriced ones,
    cheap enough that the cost objective (<= 0.5 USD per 1M tokens) is met."""
    total = 80 + unpriced_calls
    metrics = [
        sum_metric(
            S.CALLS.name,
            [(_attrs(PRICED, **{S.ATTR_OUTCOME: "ok"}), 80.0)]
            + (
                [(_attrs(UNPRICED, **{S.ATTR_OUTCOME: "ok"}), float(unpriced_calls))]
                if unpriced_calls
                else []
            ),
            time_=time_,
        ),
        sum_metric(
            S.TOKENS.name,
            [(_attrs(PRICED, **{S.ATTR_TOKEN_TYPE: "input"}), 1000.0 * total)],
            unit="{token}",
            time_=time_,
        ),
        sum_metric(S.COST.name, [(_attrs(PRICED), 80 * 1000 * 0.1e-6)], unit="USD", time_=time_),
        sum_metric(
            S.UNPRICED_CALLS.name,
            [(_attrs(PRICED), 0.0), (_attrs(UNPRICED), float(unpriced_calls))],
            time_=time_,
        ),
    ]
    status, body, _ = post_otlp(
        f"{agent.otlp_url}/v1/metrics", otlp_request(metrics).SerializeToString()
    )
    assert status == 200, body


def _cost_objective(status: dict[str, object]) -> dict[str, object]:
    (workload,) = [w for w in status["workloads"] if w["name"] == WORKLOAD]  # type: ignore[attr-defined]
    (objective,) = [o for o in workload["objectives"] if o["kind"] == "cost_per_million_tokens"]
    return {"workload": workload, "objective": objective}


def test_a_share_of_unpriced_calls_is_named_and_blocks_the_cost_objective(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """20 of 100 calls to an unknown model: status says 20% of calls are unpriced for it,
    the cost objective reads 'unpriced calls' (neither met nor failed) and the agent does not
    export it as met; `gemini-slo status` prints the line."""
    with running_agent() as agent:
        _send(agent, 20, time_=2)
        found = _cost_objective(agent.slo())
        workload, objective = found["workload"], found["objective"]
        assert workload["unpriced"]["models"] == {UNPRICED: pytest.approx(0.2)}  # type: ignore[index]
        assert objective["met"] is None  # type: ignore[index]
        assert objective["state"] == STATE_UNPRICED  # type: ignore[index]
        met = [
            line
            for line in agent.scrape().splitlines()
            if line.startswith("gemini_slo_objective_met") and "cost_per_million" in line
        ]
        assert met == []
        parser = argparse.ArgumentParser()
        status_cli.add_arguments(parser)
        assert status_cli.run(parser.parse_args(["--agent", agent.base_url])) == 0
        out = capsys.readouterr().out
        assert f"20% of calls unpriced for model {UNPRICED}" in " ".join(out.split())


def test_priced_calls_leave_the_cost_objective_judged() -> None:
    """No unpriced call: no model named, and the cheap cost objective is met."""
    with running_agent() as agent:
        _send(agent, 0, time_=2)
        found = _cost_objective(agent.slo())
        assert found["workload"]["unpriced"] == {"share": 0, "models": {}}  # type: ignore[index]
        assert found["objective"]["state"] == STATE_MET  # type: ignore[index]
