"""``gemini-slo load``: run a reference latency or throughput workload, instrumented.

    gemini-slo load --mode latency --workload chat --rate 10 --duration 60 --emulator URL
    gemini-slo load --mode throughput --workload batch --concurrency 64 --duration 600
    gemini-slo load --mode throughput --workload batch --batch 100 --job-every 30

``--batch N`` submits Batch API jobs of N inline requests instead of online calls, one
every ``--job-every`` seconds, and polls them (lab/batch_load.py).

Signals go to the agent over OTLP (``--agent``, default ``$OTEL_EXPORTER_OTLP_ENDPOINT`` or
``http://127.0.0.1:4318``). Without ``--emulator`` it calls real Gemini with
``GEMINI_API_KEY``. On a terminal a live table shows the last 10 seconds and the whole run;
otherwise a plain line is printed every ``--progress-every`` seconds. The final summary
(p50/p95/p99, TTFT, tokens/s, cost, outcomes) is printed at the end, and written as JSON
with ``--json FILE`` (``-`` for stdout).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from gemini_slo.cli.errors import reports_errors
from gemini_slo.cli.inputs import load_spec_file
from gemini_slo.instrumentation import configure, shutdown
from gemini_slo.lab.batch_load import BatchLoadConfig, BatchSummary, run_batch_load_async
from gemini_slo.lab.load import (
    LoadConfig,
    LoadError,
    LoadMode,
    LoadRecorder,
    Summary,
    run_load_async,
)
from rich.console import Console
from rich.live import Live
from rich.table import Table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``gemini-slo load``."""
    parser.add_argument("--mode", required=True, choices=["latency", "throughput"])
    parser.add_argument("--workload", default="", help="workload name (default chat / batch)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--rate", type=float, default=None, help="latency: arrivals/s (default 5)")
    group.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="throughput: parallel calls (default 32)",
    )
    parser.add_argument(
        "--queue-slots", type=int, default=None, help="latency: admission queue slots (16)"
    )
    parser.add_argument("--duration", type=float, default=60.0, help="seconds (default 60)")
    parser.add_argument("--requests", type=int, default=None, help="throughput: batch size")
    parser.add_argument("--model", default="", help="default gemini-2.5-flash / -flash-lite")
    parser.add_argument("--emulator", default=None, help="emulator base URL (else real Gemini)")
    parser.add_argument(
        "--agent",
        default=os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
        help="OTLP/HTTP endpoint of the agent",
    )
    parser.add_argument("--no-export", action="store_true", help="do not export signals")
    parser.add_argument(
        "--spec", default=None, help="slo.yaml whose thresholds become bucket boundaries"
    )
    parser.add_argument("--service-name", default="", help="default gemini-slo-load-<workload>")
    parser.add_argument("--export-interval", type=float, default=1.0, help="seconds (default 1)")
    parser.add_argument("--max-output-tokens", type=int, default=0, help="default 32 / 2048")
    parser.add_argument("--deadline", type=float, default=2.0, help="latency: deadline, seconds")
    parser.add_argument(
        "--max-queue-wait", type=float, default=0.25, help="latency: shed beyond this wait, s"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="throughput: call timeout, s")
    parser.add_argument("--stream", action="store_true", help="throughput: stream the generations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--batch",
        type=int,
        default=0,
        metavar="N",
        help="throughput: submit Batch API jobs of N inline requests instead of online calls",
    )
    parser.add_argument("--job-every", type=float, default=10.0, help="--batch: seconds per job")
    parser.add_argument("--poll-every", type=float, default=1.0, help="--batch: poll, seconds")
    parser.add_argument("--progress-every", type=float, default=10.0, help="plain output, seconds")
    parser.add_argument("--json", default=None, help="write the summary as JSON ('-' = stdout)")
    parser.add_argument("--quiet", action="store_true", help="no progress, summary only")


def config_from_args(args: argparse.Namespace) -> LoadConfig:
    """The LoadConfig the options describe."""
    mode: LoadMode = args.mode
    concurrency = args.concurrency or args.queue_slots or 0
    return LoadConfig(
        mode=mode,
        workload=args.workload,
        model=args.model,
        duration_s=args.duration,
        rate=args.rate if args.rate is not None else 5.0,
        concurrency=concurrency,
        requests=args.requests,
        max_output_tokens=args.max_output_tokens,
        deadline_s=args.deadline,
        max_queue_wait_s=args.max_queue_wait,
        timeout_s=args.timeout,
        emulator=args.emulator,
        seed=args.seed,
        stream=args.stream,
    ).resolved()


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f} ms"


def _outcomes(summary: Summary) -> str:
    if not summary.outcomes:
        return "-"
    text = " ".join(f"{k}={v}" for k, v in sorted(summary.outcomes.items()))
    if summary.errors:
        top = sorted(summary.errors.items(), key=lambda kv: -kv[1])[:3]
        text += " (" + ", ".join(f"{k}: {v}" for k, v in top) + ")"
    return text


def _rows(summary: Summary) -> list[tuple[str, str]]:
    cpm = summary.cost_per_million_tokens
    rows = [
        ("calls/s", f"{summary.calls_per_s:.1f}"),
        ("outcomes", _outcomes(summary)),
        ("in flight", str(summary.in_flight)),
        (
            "latency p50/p95/p99",
            f"{_ms(summary.latency_p50_s)} / {_ms(summary.latency_p95_s)} / {_ms(summary.latency_p99_s)}",
        ),
    ]
    if summary.mode == "latency":
        rows.append(
            (
                "TTFT p50/p95/p99",
                f"{_ms(summary.ttft_p50_s)} / {_ms(summary.ttft_p95_s)} / {_ms(summary.ttft_p99_s)}",
            )
        )
    rows += [
        ("generated tokens/s", f"{summary.generated_tokens_per_s:,.0f}"),
        (
            "tokens in/out/thoughts",
            "{input:,} / {output:,} / {thoughts:,}".format(**summary.tokens),
        ),
        ("cost", f"${summary.cost_usd:.6f}" + ("" if cpm is None else f" (${cpm:.3f} per 1M)")),
    ]
    return rows


def progress_table(recorder: LoadRecorder) -> Table:
    """The live display: the last 10 seconds beside the whole run."""
    config = recorder.config
    recent, total = recorder.window(), recorder.total()
    title = (
        f"gemini-slo load: {config.workload} ({config.mode}) on {config.model}, "
        f"{recorder.elapsed():.0f}s / {config.duration_s:.0f}s"
    )
    table = Table(title=title, title_justify="left")
    table.add_column("")
    table.add_column("last 10 s", justify="right")
    table.add_column("whole run", justify="right")
    for (name, now), (_, whole) in zip(_rows(recent), _rows(total), strict=True):
        table.add_row(name, now, whole)
    return table


def summary_table(summary: Summary) -> Table:
    """The final summary as a rich table."""
    table = Table(
        title=f"{summary.workload} ({summary.mode}) on {summary.model}: "
        f"{summary.calls} calls in {summary.elapsed_s:.1f}s",
        title_justify="left",
    )
    table.add_column("")
    table.add_column("value", justify="right")
    for name, value in _rows(summary):
        if name != "in flight":
            table.add_row(name, value)
    return table


def summary_lines(summary: Summary) -> list[str]:
    """The final summary as plain lines."""
    head = (
        f"{summary.workload} ({summary.mode}) on {summary.model}: "
        f"{summary.calls} calls in {summary.elapsed_s:.1f}s"
    )
    return [head] + [f"  {name}: {value}" for name, value in _rows(summary) if name != "in flight"]


def _plain_line(recorder: LoadRecorder) -> str:
    recent = recorder.window()
    return (
        f"[{recorder.elapsed():5.0f}s] {recorder.config.workload}: "
        f"{recent.calls_per_s:.1f} calls/s, p95 {_ms(recent.latency_p95_s)}, "
        f"{recent.generated_tokens_per_s:,.0f} tok/s, in flight {recent.in_flight}, "
        f"{_outcomes(recent)}"
    )


async def _run(config: LoadConfig, args: argparse.Namespace) -> Summary:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Ctrl-C / SIGTERM: stop starting calls, let those in flight finish, print the summary.
        loop.add_signal_handler(sig, stop.set)
    console = Console()
    live_view = console.is_terminal and not args.quiet
    if live_view:
        with Live(console=console, refresh_per_second=4, transient=True) as live:
            return await run_load_async(
                config, stop=stop, on_progress=lambda r: live.update(progress_table(r))
            )
    last = [time.monotonic()]

    def plain(recorder: LoadRecorder) -> None:
        if args.quiet or time.monotonic() - last[0] < args.progress_every:
            return
        last[0] = time.monotonic()
        print(_plain_line(recorder), flush=True)

    return await run_load_async(config, stop=stop, on_progress=plain)


def _configure_export(args: argparse.Namespace, config: LoadConfig) -> None:
    configure(
        service_name=args.service_name or f"gemini-slo-load-{config.workload}",
        endpoint=args.agent,
        export_interval=args.export_interval,
        spec=args.spec,
    )


def _flush_export() -> None:
    # The last export: without it the calls of the final interval never reach the agent.
    shutdown()


@reports_errors("load")
def run(args: argparse.Namespace) -> int:
    """Run the load; 0 when it ran, 2 on bad options, a bad spec or a missing API key."""
    if args.spec is not None:
        # Read here so that a bad spec is one line; configure() reads it again for its
        # thresholds, and would fail with a traceback.
        load_spec_file(args.spec)
    try:
        config = config_from_args(args)
    except LoadError as exc:
        print(f"gemini-slo load: {exc}", file=sys.stderr)
        return 2
    if args.batch:
        return _run_batch(args, config)
    if not args.no_export:
        _configure_export(args, config)
    try:
        summary = asyncio.run(_run(config, args))
    except LoadError as exc:
        print(f"gemini-slo load: {exc}", file=sys.stderr)
        return 2
    finally:
        if not args.no_export:
            _flush_export()
    write_summary(summary, args.json, quiet=args.quiet and args.json == "-")
    return 0


def _run_batch(args: argparse.Namespace, config: LoadConfig) -> int:
    """``--batch N``: Batch API jobs (lab/batch_load.py); the summary is its own."""
    if config.mode != "throughput":
        print("gemini-slo load: --batch is a throughput-mode shape", file=sys.stderr)
        return 2
    try:
        shape = BatchLoadConfig(args.batch, args.job_every, args.poll_every)
    except LoadError as exc:
        print(f"gemini-slo load: {exc}", file=sys.stderr)
        return 2
    if not args.no_export:
        _configure_export(args, config)

    async def main() -> BatchSummary:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await run_batch_load_async(config, shape, stop)

    try:
        summary = asyncio.run(main())
    except LoadError as exc:
        print(f"gemini-slo load: {exc}", file=sys.stderr)
        return 2
    finally:
        if not args.no_export:
            _flush_export()
    if args.json:
        text = json.dumps(summary.to_json(), indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n", encoding="utf-8")
    if not (args.quiet and args.json == "-"):
        print("\n".join(summary.lines()))
    return 0


def write_summary(summary: Summary, json_path: str | None, quiet: bool = False) -> None:
    """Print the summary (a table on a terminal) and write it as JSON when asked."""
    if not quiet:
        console = Console()
        if console.is_terminal:
            console.print(summary_table(summary))
        else:
            print("\n".join(summary_lines(summary)), flush=True)
    if json_path:
        data: dict[str, Any] = summary.to_json()
        data["cpu_s"] = round(time.process_time(), 2)  # this process: the client's cost
        text = json.dumps(data, indent=2)
        if json_path == "-":
            print(text, flush=True)
        else:
            Path(json_path).write_text(text + "\n")
