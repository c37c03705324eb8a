"""The latency/throughput trade-off on the emulator: what one pool serving both workloads costs.

One emulator whose chat model (gemini-2.5-flash) and batch model (gemini-2.5-flash-lite)
share one pool of ``--capacity`` requests in flight (``gemini_slo.emulator.capacity``), and
the two reference workloads of the load generator (``gemini_slo.lab.load``):

1. **chat alone**: Poisson arrivals of short streamed chats (``--chat-rate`` per second, no admission queue: a naive hybrid);
2. **batch alone**: ``--batch-concurrency`` workers generating long answers back to back
   (14 of a capacity of 16 by default: the 80-90% utilization throughput-first runs at);
3. **mixed**: both at once, in the one pool (a hybrid set-up).

Each phase lasts ``--phase-seconds``; then the calls in flight finish. Printed: chat p95
latency and p95 time to first token, chat timeouts, batch generated tokens/s, and the mixed
phase's figures as ratios of the alone phases measured in the same run. The figures come
from the load generator's own record of every call (not the instrumentation).

    .venv/bin/python bench/tradeoff.py [--phase-seconds 20] [--capacity 16] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from gemini_slo.emulator.capacity import Pool
from gemini_slo.emulator.profile import load_profile, with_pools
from gemini_slo.emulator.testing import running_emulator
from gemini_slo.lab.load import LoadConfig, Summary, run_load_async

CHAT_MODEL = "gemini-2.5-flash"
BATCH_MODEL = "gemini-2.5-flash-lite"


def _configs(args: argparse.Namespace, url: str) -> tuple[LoadConfig, LoadConfig]:
    common: dict[str, Any] = {
        "emulator": url,
        "duration_s": args.phase_seconds,
        "instrument": False,  # the trade-off of the pool, not the instrumentation's cost
        "seed": args.seed,
    }
    chat = LoadConfig(
        mode="latency",
        workload="chat",
        model=CHAT_MODEL,
        rate=args.chat_rate,
        # Generous: a deadline would cut the tail this bench is about (timeouts are counted).
        deadline_s=args.chat_deadline,
        **common,
    )
    batch = LoadConfig(
        mode="throughput",
        workload="batch",
        model=BATCH_MODEL,
        concurrency=args.batch_concurrency,
        **common,
    )
    return chat, batch


async def _phase(configs: list[LoadConfig]) -> list[Summary]:
    return list(await asyncio.gather(*(run_load_async(c) for c in configs)))


def _chat_figures(summary: Summary) -> dict[str, Any]:
    timeouts = summary.outcomes.get("timeout", 0)
    return {
        "calls": summary.calls,
        "p95_s": summary.latency_p95_s,
        "ttft_p95_s": summary.ttft_p95_s,
        "timeout_share": timeouts / summary.calls if summary.calls else None,
    }


def _batch_figures(summary: Summary) -> dict[str, Any]:
    return {"calls": summary.calls, "tokens_per_s": summary.generated_tokens_per_s}


def _ratio(mixed: float | None, alone: float | None) -> float | None:
    return None if mixed is None or not alone else mixed / alone


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the three phases; return every figure (and print them)."""
    pool = Pool("shared", capacity=args.capacity)
    profile = with_pools(
        load_profile(), {"shared": pool}, {CHAT_MODEL: "shared", BATCH_MODEL: "shared"}
    )
    started = time.monotonic()
    with running_emulator(
        seed=args.seed, profile=profile, time_scale=args.time_scale, quotas=False
    ) as emu:
        chat, batch = _configs(args, emu.url)
        (chat_alone,) = asyncio.run(_phase([chat]))
        (batch_alone,) = asyncio.run(_phase([batch]))
        chat_mixed, batch_mixed = asyncio.run(_phase([chat, batch]))
        peak = emu.stats()["pools"]["shared"]["peak_in_flight"]
    result: dict[str, Any] = {
        "pool": {"capacity": pool.capacity, "knee": pool.knee, "peak_in_flight": peak},
        "settings": {
            "phase_seconds": args.phase_seconds,
            "time_scale": args.time_scale,
            "chat_rate": args.chat_rate,
            "batch_concurrency": args.batch_concurrency,
        },
        "chat_alone": _chat_figures(chat_alone),
        "batch_alone": _batch_figures(batch_alone),
        "mixed": {"chat": _chat_figures(chat_mixed), "batch": _batch_figures(batch_mixed)},
    }
    result["mixed_vs_alone"] = {
        "chat_p95": _ratio(chat_mixed.latency_p95_s, chat_alone.latency_p95_s),
        "chat_ttft_p95": _ratio(chat_mixed.ttft_p95_s, chat_alone.ttft_p95_s),
        "batch_tokens_per_s": _ratio(
            batch_mixed.generated_tokens_per_s, batch_alone.generated_tokens_per_s
        ),
    }
    result["elapsed_s"] = round(time.monotonic() - started, 1)
    return result


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:,.0f} ms"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _change(value: float | None) -> str:
    return "-" if value is None else f"x{value:.2f} ({(value - 1) * 100:+.0f}%)"


def report(result: dict[str, Any]) -> str:
    """The printed table."""
    a, b, m, r = (
        result["chat_alone"],
        result["batch_alone"],
        result["mixed"],
        result["mixed_vs_alone"],
    )
    pool = result["pool"]
    settings = result["settings"]
    lines = [
        f"one pool of capacity {pool['capacity']:g} (knee {pool['knee']:g}) serving "
        f"{CHAT_MODEL} (chat, {settings['chat_rate']:g}/s streamed) and {BATCH_MODEL} "
        f"(batch, {settings['batch_concurrency']} workers); {settings['phase_seconds']:g} s "
        f"per phase, time scale {settings['time_scale']:g}, peak {pool['peak_in_flight']} in flight",
        "",
        f"{'phase':<12}{'chat p95':>12}{'chat TTFT p95':>16}{'chat timeouts':>16}{'batch tokens/s':>17}",
        f"{'chat alone':<12}{_ms(a['p95_s']):>12}{_ms(a['ttft_p95_s']):>16}"
        f"{_pct(a['timeout_share']):>16}{'-':>17}",
        f"{'batch alone':<12}{'-':>12}{'-':>16}{'-':>16}{b['tokens_per_s']:>17,.0f}",
        f"{'mixed':<12}{_ms(m['chat']['p95_s']):>12}{_ms(m['chat']['ttft_p95_s']):>16}"
        f"{_pct(m['chat']['timeout_share']):>16}{m['batch']['tokens_per_s']:>17,.0f}",
        "",
        f"mixed vs alone: chat p95 {_change(r['chat_p95'])}, chat TTFT p95 "
        f"{_change(r['chat_ttft_p95'])}, batch tokens/s {_change(r['batch_tokens_per_s'])}",
        f"({result['elapsed_s']:.0f} s in all)",
    ]
    return "\n".join(lines)


def main() -> None:
    """Parse the flags, run, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase-seconds", type=float, default=20.0)
    parser.add_argument("--capacity", type=float, default=16)
    parser.add_argument("--chat-rate", type=float, default=10.0)
    parser.add_argument("--chat-deadline", type=float, default=10.0)
    parser.add_argument("--batch-concurrency", type=int, default=14)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    result = run(args)
    print(report(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
