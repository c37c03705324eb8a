"""An agent restart mid-run: Prometheus' ``increase()`` equals the emulator's ground truth.

Issue #16: the agent kept the totals of apps that had exited in memory only, so after a
restart ``increase()`` over the run was 17% short (no reset seen) or 5-6% over (a reset
seen, the live apps' totals counted twice). With ``--state-file`` the restarted agent
comes back with the same merged values and each instance's last point, so the next
exports are same-incarnation increments and Prometheus sees one unbroken counter.

The run, all on 127.0.0.1: the emulator, the agent (``--state-file``), Prometheus scraping
it every second, and three instrumented load processes on the batch workload: a trickle
from the start to the end, a short one that exits before the restart (its totals live
only in the agent), and a long one that runs across it. The agent gets SIGTERM mid-run
and is started again on the same ports a few seconds later.

Why ``increase()`` can equal the truth exactly: evaluated at the timestamp of the last
sample there is no extrapolation at the end, and when the first sample is small against
the growth (the trickle alone is running then), Prometheus extrapolates the start exactly
down to zero (``durationToZero``), which adds back the first sample: the result is the
last value, the ground truth. The test checks that condition, so that a failure of it
reads as such and not as a lost count.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from gemini_slo.contract import signals
from gemini_slo.lab import stack as st

pytestmark = [pytest.mark.slow, pytest.mark.prometheus, pytest.mark.timeout(400)]

WORKLOAD = "batch"
MODEL = "gemini-2.5-flash-lite"
TOKEN_TYPES = ("input", "output")


def _load(
    emulator: str, otlp: str, workdir: Path, name: str, concurrency: int, duration: float
) -> st.ManagedProcess:
    argv = st.cli_argv(
        "--log-level", "warning", "load", "--mode", "throughput", "--workload", WORKLOAD,
        "--model", MODEL, "--emulator", emulator, "--agent", otlp,
        "--concurrency", str(concurrency), "--max-output-tokens", "16",
        "--duration", f"{duration:g}", "--export-interval", "1", "--quiet",
    )  # fmt: skip
    return st.ManagedProcess(f"load-{name}", argv, workdir / f"load-{name}.log")


def _wait_exit(proc: st.ManagedProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while proc.running() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not proc.running(), f"{proc.name} still running:\n{proc.log_tail()}"
    assert proc.process.returncode == 0, f"{proc.name} failed:\n{proc.log_tail()}"


def _selector(name: str, **labels: str) -> str:
    matchers = {signals.LABEL_WORKLOAD: WORKLOAD, **labels}
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in matchers.items()) + "}"


def _increase_at_last_sample(stack: st.Stack, selector: str) -> tuple[float, dict[str, Any]]:
    """``increase(selector[10m])`` at the last sample's timestamp, and the raw samples."""
    last = stack.query(f"max(timestamp({selector}))")
    assert last, f"no samples for {selector}"
    at = float(last[0]["value"][1])
    value = st.query(stack.prometheus_url, f"sum(increase({selector}[10m]))", at=at)
    raw = st.query(stack.prometheus_url, f"{selector}[10m]", at=at)
    resets = st.query(stack.prometheus_url, f"sum(resets({selector}[10m]))", at=at)
    assert len(raw) == 1, f"one series expected for {selector}: {[r['metric'] for r in raw]}"
    samples = [(float(t), float(v)) for t, v in raw[0]["values"]]
    info = {"samples": samples, "resets": float(resets[0]["value"][1])}
    return float(value[0]["value"][1]), info


def test_an_agent_restart_mid_run_keeps_increase_equal_to_the_truth(
    require_binary: Any, tmp_path: Path
) -> None:
    """SIGTERM the agent mid-run, start it again with the same --state-file: Prometheus'
    increase() of calls and tokens over the run equals the emulator's ground truth."""
    require_binary("prometheus")
    os.environ.update(st.local_env())
    state = tmp_path / "agent-state.json"
    otlp_port, metrics_port = st.free_port(), st.free_port()
    agent_args = ("--state-file", str(state), "--state-interval", "1")
    emulator, emulator_url = st.start_emulator(tmp_path, time_scale=0.3)
    procs: list[st.ManagedProcess] = [emulator]
    try:
        emulator.wait_ready()
        agent, otlp, metrics = st.start_agent(
            tmp_path, otlp_port=otlp_port, metrics_port=metrics_port, extra=agent_args
        )
        procs.append(agent)
        agent.wait_ready()
        with st.Stack([metrics], alertmanager=False, workdir=tmp_path / "prom") as stack:
            stack.wait_scraped()
            trickle = _load(emulator_url, otlp, tmp_path, "trickle", 1, 50)
            procs.append(trickle)
            calls = _selector(signals.CALLS.prometheus, **{signals.LABEL_OUTCOME: "ok"})
            deadline = time.monotonic() + 60
            while not stack.query(calls) and time.monotonic() < deadline:
                time.sleep(0.5)
            assert stack.query(calls), "the trickle's calls never reached Prometheus"
            short = _load(emulator_url, otlp, tmp_path, "short", 6, 10)
            long_ = _load(emulator_url, otlp, tmp_path, "long", 6, 28)
            procs += [short, long_]
            _wait_exit(short, 60)
            time.sleep(2.5)  # its last export merged and scraped
            assert agent.stop(timeout=20) == 0, agent.log_tail()
            assert state.is_file()
            time.sleep(2.0)  # down: exports and scrapes fail meanwhile
            agent, _, _ = st.start_agent(
                tmp_path, otlp_port=otlp_port, metrics_port=metrics_port, extra=agent_args,
                log_name="agent-2.log",
            )  # fmt: skip
            procs.append(agent)
            agent.wait_ready()
            _wait_exit(long_, 90)
            _wait_exit(trickle, 90)
            time.sleep(3.0)  # the last exports merged and scraped
            truth = st.http_json(f"{emulator_url}/_emulator/stats")

            # Each load process first warms up with one countTokens request: the emulator
            # counts it among its requests, and it is not a call.
            loads = 3
            expected_calls = sum(truth["requests"][MODEL].values()) - loads
            measured, info = _increase_at_last_sample(stack, calls)
            samples = info["samples"]
            first, last = samples[0][1], samples[-1][1]
            span = samples[-1][0] - samples[0][0]
            average = span / (len(samples) - 1)
            # The extrapolation condition (module docstring); the trickle keeps it easily.
            assert span * first / (last - first) < 1.1 * average, info
            assert info["resets"] == 0, info
            assert last == expected_calls, (last, truth["requests"])
            assert measured == pytest.approx(expected_calls, rel=1e-9), (measured, info)
            for kind in TOKEN_TYPES:
                tokens = _selector(signals.TOKENS.prometheus, **{signals.LABEL_TOKEN_TYPE: kind})
                measured, info = _increase_at_last_sample(stack, tokens)
                assert info["resets"] == 0, (kind, info)
                assert measured == pytest.approx(truth["tokens"][MODEL][kind], rel=1e-9), (
                    kind,
                    measured,
                    truth["tokens"][MODEL][kind],
                )
    finally:
        for proc in reversed(procs):
            proc.stop()
