"""The load generator: both workload shapes against the emulator, its figures, its CLI.

The figures the generator prints must agree with the emulator's ground truth and with
what the instrumentation recorded: the generator is the yardstick of the demo and of
bench/e2e.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from gemini_slo.contract import signals
from gemini_slo.emulator.testing import EmulatorHandle, running_emulator
from gemini_slo.instrumentation import Usage, testing
from gemini_slo.instrumentation.pricing import cost_usd, default_table
from gemini_slo.lab.load import (
    LoadConfig,
    LoadError,
    make_client,
    percentile,
    run_load,
)


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorHandle]:
    """One emulator for the module, at a third of the profile's latencies (fast tests)."""
    with running_emulator(seed=7, time_scale=0.3) as emu:
        yield emu


def test_percentile_interpolates() -> None:
    """Linear interpolation between order statistics; None for no data."""
    assert percentile([], 0.5) is None
    assert percentile([3.0], 0.99) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 0.5) == 3.0
    assert percentile([0.0, 10.0], 0.95) == pytest.approx(9.5)


def test_config_defaults_and_validation() -> None:
    """Each mode gets its reference defaults; nonsense is refused with a clear error."""
    latency = LoadConfig(mode="latency").resolved()
    assert (latency.workload, latency.model, latency.max_output_tokens) == (
        "chat",
        "gemini-2.5-flash",
        32,
    )
    batch = LoadConfig(mode="throughput").resolved()
    assert (batch.workload, batch.model, batch.concurrency) == (
        "batch",
        "gemini-2.5-flash-lite",
        32,
    )
    with pytest.raises(LoadError, match="mode"):
        LoadConfig(mode="bursty").resolved()  # type: ignore[arg-type]
    with pytest.raises(LoadError, match="rate"):
        LoadConfig(mode="latency", rate=0).resolved()


def test_real_gemini_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --emulator the generator calls real Gemini, which needs GEMINI_API_KEY."""
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    with pytest.raises(LoadError, match="GEMINI_API_KEY"):
        make_client(LoadConfig(mode="latency").resolved())
    monkeypatch.setenv("GEMINI_API_KEY", "k")
    assert make_client(LoadConfig(mode="latency").resolved()) is not None


def _truth_tokens(emu: EmulatorHandle, model: str) -> dict[str, int]:
    tokens: dict[str, int] = emu.stats()["tokens"].get(model, {})
    return {k: tokens.get(k, 0) for k in ("input", "output", "thoughts", "cached")}


def test_latency_mode_streams_and_matches_ground_truth(emulator: EmulatorHandle) -> None:
    """Poisson streaming chats: every call ok, tokens equal the emulator's and the signals'."""
    emulator.reset_stats()
    with testing.capture() as rec:
        summary = run_load(
            LoadConfig(mode="latency", emulator=emulator.url, rate=20, duration_s=3, seed=1)
        )
    assert summary.calls >= 20
    assert summary.outcomes == {"ok": summary.calls}
    assert summary.ttft_p50_s is not None and summary.latency_p95_s is not None
    assert summary.ttft_p50_s <= summary.latency_p95_s
    assert summary.tokens == _truth_tokens(emulator, "gemini-2.5-flash")
    assert summary.tokens["thoughts"] == 0  # chat turns run without thinking
    assert rec.value(signals.CALLS, workload="chat", mode="latency", outcome="ok") == summary.calls
    assert (
        rec.value(signals.TOKENS, workload="chat", token_type="output") == summary.tokens["output"]
    )
    assert rec.value(signals.TIME_TO_FIRST_CHUNK, workload="chat") == summary.calls


def test_throughput_mode_runs_a_batch_and_prices_it(emulator: EmulatorHandle) -> None:
    """A batch of N long generations: N calls, tokens and cost equal the ground truth."""
    emulator.reset_stats()
    model = "gemini-2.5-flash-lite"
    with testing.capture() as rec:
        summary = run_load(
            LoadConfig(
                mode="throughput",
                emulator=emulator.url,
                concurrency=8,
                requests=24,
                duration_s=60,
                max_output_tokens=512,
            )
        )
    assert summary.calls == 24
    assert summary.outcomes == {"ok": 24}
    truth = _truth_tokens(emulator, model)
    assert summary.tokens == truth
    assert truth["output"] >= 24 * 512 // 4  # the length marker asks for long answers
    pico = default_table().cost_pico(
        model,
        Usage(
            input=truth["input"],
            output=truth["output"],
            thoughts=truth["thoughts"],
            cached=truth["cached"],
        ),
    )
    assert pico is not None
    assert summary.cost_usd == pytest.approx(cost_usd(pico), rel=1e-9)
    assert rec.value(signals.CALLS, workload="batch", mode="throughput") == 24
    assert rec.value(signals.CONCURRENCY_LIMIT, workload="batch") == 8


def test_throughput_mode_can_stream(emulator: EmulatorHandle) -> None:
    """--stream: each generation streamed, usage from its final chunk, counted once."""
    emulator.reset_stats()
    with testing.capture() as rec:
        summary = run_load(
            LoadConfig(
                mode="throughput",
                emulator=emulator.url,
                concurrency=4,
                requests=8,
                max_output_tokens=256,
                stream=True,
            )
        )
    assert summary.outcomes == {"ok": 8}
    assert summary.tokens == _truth_tokens(emulator, "gemini-2.5-flash-lite")
    assert (
        rec.value(signals.TOKENS, workload="batch", token_type="output") == summary.tokens["output"]
    )


def test_latency_mode_sheds_and_times_out(emulator: EmulatorHandle) -> None:
    """A one-slot queue sheds bursts at once; a deadline cuts slow calls: both are counted."""
    emulator.reset_stats()
    fault = emulator.set_fault("extra_delay", model="gemini-2.5-flash", seconds=0.6)
    try:
        summary = run_load(
            LoadConfig(
                mode="latency",
                emulator=emulator.url,
                rate=30,
                duration_s=2,
                concurrency=1,
                max_queue_wait_s=0.05,
                deadline_s=0.4,
            )
        )
    finally:
        emulator.clear_fault(fault)
    assert summary.outcomes.get("rejected", 0) > 0
    assert summary.outcomes.get("timeout", 0) > 0
    assert summary.latency_p50_s is None  # no call succeeded


def test_cli_plain_output_and_json(emulator: EmulatorHandle) -> None:
    """``gemini-slo load`` off a terminal prints plain lines and the JSON summary."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gemini_slo.cli.main",
            "load",
            "--mode",
            "throughput",
            "--requests",
            "6",
            "--concurrency",
            "3",
            "--max-output-tokens",
            "64",
            "--no-export",
            "--emulator",
            emulator.url,
            "--json",
            "-",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    head, _, tail = result.stdout.partition("{")
    assert "batch (throughput) on gemini-2.5-flash-lite: 6 calls" in head
    assert "generated tokens/s" in head
    data = json.loads("{" + tail)
    assert data["calls"] == 6 and data["outcomes"] == {"ok": 6}


def test_cli_refuses_to_run_without_a_target() -> None:
    """No emulator and no API key: exit status 2 and a message saying what to do."""
    env = {k: v for k, v in os.environ.items() if k != "GEMINI_API_KEY"}
    result = subprocess.run(
        [sys.executable, "-m", "gemini_slo.cli.main", "load", "--mode", "latency", "--no-export"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 2
    assert "GEMINI_API_KEY" in result.stderr
