"""End-to-end benchmark: >= 10,000 tokens/s through instrumented calls, totals checked exactly.

    .venv/bin/python bench/e2e.py [--duration 600] [--concurrency 64] [--time-scale 1.0] [--stream]

Runs, each in its own process on 127.0.0.1: the emulator (the default latency profile,
time scale 1), the agent, Prometheus scraping the agent every second, and the throughput
workload (``gemini-slo load --mode throughput``: long non-streamed generations on
gemini-2.5-flash-lite, ``--concurrency`` in parallel, every call decorated with ``observe``
and exported over OTLP). When the load has ended and flushed its last export, Prometheus is
scraped once more and its totals are compared with the emulator's ground truth:

* tokens by type (input, output, thoughts, cached): must be equal, exactly;
* cost in USD: must equal the instrumentation's price table applied to the ground truth
  (to 1e-9 relative: Prometheus stores float64).

Also printed: generated tokens/s over the run and the lowest 1-minute rate after the first
minute (from Prometheus), calls and outcomes, and the CPU each process used. Exit status 1
when a total differs or the sustained rate is under 10,000 tokens/s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gemini_slo.contract import signals
from gemini_slo.instrumentation import Usage
from gemini_slo.instrumentation.pricing import cost_usd, default_table
from gemini_slo.lab import stack as st

TARGET_TOKENS_PER_S = 10_000
TOKEN_TYPES = ("input", "output", "thoughts", "cached")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (and its reaped children), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    # After the command: state is field 3; utime, stime, cutime, cstime are 14-17.
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / CLK_TCK


def prometheus_tokens(stack: st.Stack, workload: str) -> dict[str, int]:
    """Token totals per type as Prometheus has them now."""
    by_type = (
        f"sum by ({signals.LABEL_TOKEN_TYPE}) "
        f'({signals.TOKENS.prometheus}{{{signals.LABEL_WORKLOAD}="{workload}"}})'
    )
    out = dict.fromkeys(TOKEN_TYPES, 0)
    for item in stack.query(by_type):
        kind = item["metric"].get(signals.LABEL_TOKEN_TYPE, "")
        if kind in out:
            out[kind] = round(float(item["value"][1]))
    return out


def wait_totals_settle(stack: st.Stack, workload: str, truth: dict[str, int]) -> dict[str, int]:
    """Poll until Prometheus' totals equal the truth or stop changing for 10 scrapes."""
    last: dict[str, int] = {}
    stable_since = time.monotonic()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = prometheus_tokens(stack, workload)
        if now == truth:
            return now
        if now != last:
            last, stable_since = now, time.monotonic()
        elif time.monotonic() - stable_since > 10:
            return now
        time.sleep(1)
    return last


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the figures; 0 when every check holds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load (600)")
    parser.add_argument("--concurrency", type=int, default=64, help="parallel calls (64)")
    parser.add_argument("--max-output-tokens", type=int, default=2048)
    parser.add_argument("--time-scale", type=float, default=1.0, help="emulator latency scale")
    parser.add_argument("--workload", default="batch")
    parser.add_argument("--model", default="gemini-2.5-flash-lite")
    parser.add_argument(
        "--stream", action="store_true", help="stream the generations (16-token chunks)"
    )
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args(argv)
    if not st.find_binary(st.PROMETHEUS_BINARIES):
        print(f"prometheus is not on PATH: {st.INSTALL_HINT}")
        return 1

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="gemini-slo-bench-e2e-"))
    workdir.mkdir(parents=True, exist_ok=True)
    full = st.FullStack(workdir, window_scale=1.0, time_scale=args.time_scale, monitoring=False)
    with st.sigterm_as_exit():
        try:
            full.start()
            assert full.emulator is not None and full.agent is not None
            with st.Stack(
                [full.metrics_address], alertmanager=False, workdir=workdir / "prom"
            ) as stack:
                return _bench(args, full, stack)
        finally:
            full.stop()


def _bench(args: argparse.Namespace, full: st.FullStack, stack: st.Stack) -> int:
    assert full.emulator is not None and full.agent is not None and stack.prometheus is not None
    stack.wait_scraped()
    print(
        f"load: {args.workload} (throughput) on {args.model}, concurrency {args.concurrency}, "
        f"{args.duration:.0f}s, emulator time scale {args.time_scale:g}"
        + (", streamed" if args.stream else ", not streamed"),
        flush=True,
    )
    started = time.time()
    load = full.start_load(
        "throughput",
        "--workload",
        args.workload,
        "--model",
        args.model,
        "--concurrency",
        str(args.concurrency),
        "--max-output-tokens",
        str(args.max_output_tokens),
        "--progress-every",
        "30",
        *(["--stream"] if args.stream else []),
        name="bench",
        duration=args.duration,
    )
    while load.running():
        time.sleep(1)
    ended = time.time()
    if load.process.returncode != 0:
        print(f"load failed:\n{load.log_tail()}")
        return 1
    cpu = {
        "emulator": cpu_seconds(full.emulator.pid),
        "agent": cpu_seconds(full.agent.pid),
        "prometheus": cpu_seconds(stack.prometheus.pid),
    }
    summary: dict[str, Any] = json.loads((full.workdir / "load-bench.json").read_text())
    stats = st.http_json(f"{full.emulator_url}/_emulator/stats")
    truth_raw = stats["tokens"].get(args.model, {})
    truth = {k: int(truth_raw.get(k, 0)) for k in TOKEN_TYPES}
    measured = wait_totals_settle(stack, args.workload, truth)
    cost_query = f'sum({signals.COST.prometheus}{{{signals.LABEL_WORKLOAD}="{args.workload}"}})'
    measured_cost = stack.query_value(cost_query) or 0.0
    pico = default_table().cost_pico(
        args.model,
        Usage(
            input=truth["input"],
            output=truth["output"],
            thoughts=truth["thoughts"],
            cached=truth["cached"],
        ),
    )
    truth_cost = cost_usd(pico or 0)

    generated = f'{signals.LABEL_TOKEN_TYPE}=~"output|thoughts"'
    rate_1m = (
        f"sum(rate({signals.TOKENS.prometheus}{{{signals.LABEL_WORKLOAD}="
        f'"{args.workload}",{generated}}}[1m]))'
    )
    span = int(args.duration - 60)
    lowest: float | None = None
    if span >= 10:
        # Evaluated at the end of the load, the subquery covers minute 1 to the end.
        result = st.query(stack.prometheus_url, f"min_over_time(({rate_1m})[{span}s:5s])", at=ended)
        lowest = float(result[0]["value"][1]) if result else None
    elapsed = ended - started
    generated_total = truth["output"] + truth["thoughts"]

    print()
    print(f"calls: {summary['calls']} {summary['outcomes']} in {summary['elapsed_s']:.0f}s")
    print(
        f"generated tokens/s: {generated_total / summary['elapsed_s']:,.0f} average "
        f"(load generator's clock); lowest 1m rate after the first minute (Prometheus): "
        f"{'n/a' if lowest is None else f'{lowest:,.0f}'}"
    )
    print(f"{'':10}{'emulator (truth)':>20}{'Prometheus':>20}")
    ok = True
    for kind in TOKEN_TYPES:
        same = truth[kind] == measured[kind]
        ok &= same
        print(
            f"{kind:10}{truth[kind]:>20,}{measured[kind]:>20,}  {'equal' if same else 'DIFFERENT'}"
        )
    cost_ok = abs(measured_cost - truth_cost) <= 1e-9 * max(truth_cost, 1e-12)
    ok &= cost_ok
    print(
        f"{'cost USD':10}{truth_cost:>20.9f}{measured_cost:>20.9f}  "
        f"{'equal' if cost_ok else 'DIFFERENT'} (price table applied to the truth)"
    )
    print(
        "CPU seconds over "
        f"{elapsed:.0f}s: "
        + ", ".join(f"{name} {sec:.0f} ({sec / elapsed:.0%})" for name, sec in cpu.items())
        + f", load {summary.get('cpu_s', 'n/a')}"
    )
    sustained = generated_total / summary["elapsed_s"]
    if lowest is not None:
        sustained = min(sustained, lowest)
    if sustained < TARGET_TOKENS_PER_S:
        print(f"FAIL: sustained {sustained:,.0f} tokens/s < {TARGET_TOKENS_PER_S:,}")
        ok = False
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
