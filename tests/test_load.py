"""The load generator: both workload shapes against the emulator, its figures, its CLI.

The figures the generator prints must agree with the emulator's ground truth and with
what the instrumentation recorded: the generator is the yardstick of the demo and of
bench/e2e.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from gemini_slo.contract import signals
from gemini_slo.emulator.testing import EmulatorHandle, running_emulator
from gemini_slo.instrumentation import Usage, testing
from gemini_slo.instrumentation.pricing import cost_usd, default_table
from gemini_slo.lab.load import (
    CallResult,
    LoadConfig,
    LoadError,
    LoadMode,
    LoadRecorder,
    _Workload,
    make_client,
    percentile,
    run_load,
)
from google.genai import types


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


class _FakeModels:
    """``client.aio.models`` answering from a script: a stream of ``chunks`` (then, with
    ``hold``, a wait until it is set) and ``reply`` for the non-streamed call."""

    def __init__(self) -> None:
        self.chunks: list[types.GenerateContentResponse] = []
        self.hold: asyncio.Event | None = None  # set: the stream waits for it after its chunks
        self.streaming = asyncio.Event()
        self.reply = testing.response()

    async def generate_content_stream(self, **_: Any) -> AsyncIterator[Any]:
        async def stream() -> AsyncIterator[Any]:
            for chunk in self.chunks:
                yield chunk
            self.streaming.set()
            if self.hold is not None:
                await self.hold.wait()

        return stream()

    async def generate_content(self, **_: Any) -> types.GenerateContentResponse:
        return self.reply


def _workload(mode: LoadMode, models: _FakeModels, **options: Any) -> _Workload:
    async def aclose() -> None:
        pass

    client: Any = SimpleNamespace(aio=SimpleNamespace(models=models, aclose=aclose))
    config = LoadConfig(mode=mode, emulator="http://127.0.0.1:9", **options).resolved()
    return _Workload(config, LoadRecorder(config), client=client)


def _assert_recorded_alike(result: CallResult, rec: testing.InMemoryRecorder) -> None:
    """The load generator's record of one call equals the instrumentation's series."""
    (series,) = rec.series(signals.CALLS)
    assert series[signals.ATTR_OUTCOME] == result.outcome
    assert series.get(signals.ATTR_ERROR_TYPE, "") == result.error_type
    recorded = Usage(*(rec.value(signals.TOKENS, token_type=t.value) for t in signals.TokenType))
    assert recorded == result.usage
    assert rec.value(signals.COST) == result.cost_usd


def test_load_generator_counts_calls_as_the_instrumentation_does() -> None:
    """A shed call, a cancelled one, a blocked answer whose reason is not SAFETY and tool-use
    tokens: the generator's outcome, error type, usage and cost equal the recorded series."""
    blocked = [testing.response(output=4), testing.response(output=9, finish="PROHIBITED_CONTENT")]
    models = _FakeModels()

    async def scenarios() -> list[tuple[CallResult, testing.InMemoryRecorder]]:
        work = _workload("latency", models, concurrency=1, max_queue_wait_s=0.0)
        out = []
        models.chunks, models.hold = [testing.response(output=3, thoughts=2)], asyncio.Event()
        with testing.capture() as holder_rec:
            holder = asyncio.create_task(work.one_chat())  # holds the only slot, then hangs
            await models.streaming.wait()
        with testing.capture() as shed_rec:
            await work.one_chat()  # no slot, no wait allowed: shed at once
        out.append((work.recorder.results[-1], shed_rec))
        holder.cancel()
        with pytest.raises(asyncio.CancelledError):
            await holder
        out.append((work.recorder.results[-1], holder_rec))
        models.chunks, models.hold = blocked, None
        with testing.capture() as blocked_rec:
            await work.one_chat()
        out.append((work.recorder.results[-1], blocked_rec))
        work_batch = _workload("throughput", models)
        models.reply = testing.response(prompt=1200, output=300, thoughts=40, tool_use=800)
        with testing.capture() as tool_rec:
            await work_batch.one_generation(0)
        out.append((work_batch.recorder.results[-1], tool_rec))
        return out

    (shed, shed_rec), (cancelled, cancelled_rec), (filtered, filtered_rec), (tools, tools_rec) = (
        asyncio.run(scenarios())
    )
    assert (shed.outcome, shed.error_type) == (
        "rejected",
        "gemini_slo.instrumentation.QueueRejected",
    )
    assert (cancelled.outcome, cancelled.error_type) == (
        "timeout",
        "asyncio.exceptions.CancelledError",
    )
    assert cancelled.usage == Usage(10, 3, 2)  # the usage seen before the cancellation
    assert filtered.outcome == "blocked"
    assert tools.tool_use_tokens == 800 and tools.cost_usd > 0
    pico = default_table().cost_pico("gemini-2.5-flash-lite", Usage(1200, 300, 40, 0, 800))
    assert pico is not None and tools.cost_usd == cost_usd(pico)
    for result, rec in (
        (shed, shed_rec),
        (cancelled, cancelled_rec),
        (filtered, filtered_rec),
        (tools, tools_rec),
    ):
        _assert_recorded_alike(result, rec)


def _truth_tokens(emu: EmulatorHandle, model: str) -> dict[str, int]:
    tokens: dict[str, int] = emu.stats()["tokens"].get(model, {})
    return {k: tokens.get(k, 0) for k in ("input", "output", "thoughts", "cached", "tool_use")}


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
