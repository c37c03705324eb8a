"""Emulator throughput: concurrent streams and aggregate output tokens/s, latency model on.

Starts ``gemini-slo emulate`` in its own process (default profile, quotas off: the point is
serving capacity, not the quota model), then drives it from this process with ``aiohttp``:
``--concurrency`` workers, each streaming ``streamGenerateContent?alt=sse`` back to back for
``--duration`` seconds. Prints the peak number of streams open at once (client side and as
the emulator counted them) and the aggregate output tokens/s (from the last chunk of each
stream, which carries the cumulative usage), checked against the emulator's ground truth.

    .venv/bin/python bench/emulator_throughput.py [--concurrency 500] [--duration 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
from gemini_slo.emulator.testing import RemoteEmulator


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Tally:
    def __init__(self) -> None:
        self.open = 0
        self.peak_open = 0
        self.streams = 0
        self.errors = 0
        self.tokens = 0
        self.ttft: list[float] = []


async def worker(session: aiohttp.ClientSession, url: str, body: bytes, tally: Tally) -> None:
    """Stream back to back until cancelled; a cancelled stream counts what it received."""
    headers = {"x-goog-api-key": "bench", "Content-Type": "application/json"}
    while True:
        started = time.monotonic()
        tally.open += 1
        tally.peak_open = max(tally.peak_open, tally.open)
        last = b""
        try:
            async with session.post(url, data=body, headers=headers) as response:
                if response.status != 200:
                    tally.errors += 1
                    await response.read()
                    continue
                first = True
                async for line in response.content:
                    if line.startswith(b"data: "):
                        if first:
                            tally.ttft.append(time.monotonic() - started)
                            first = False
                        last = line  # usage is cumulative: only the last event matters
                tally.streams += 1
        except (aiohttp.ClientError, ValueError, KeyError):
            tally.errors += 1
        finally:
            tally.open -= 1
            if last:
                usage = json.loads(last[len(b"data: ") :])["usageMetadata"]
                tally.tokens += usage.get("candidatesTokenCount", 0)


async def drive(base: str, model: str, concurrency: int, duration: float) -> dict[str, float]:
    url = f"{base}/v1beta/models/{model}:streamGenerateContent?alt=sse"
    body = json.dumps({"contents": [{"role": "user", "parts": [{"text": "benchmark"}]}]}).encode()
    tally = Tally()
    remote = RemoteEmulator(base)
    connector = aiohttp.TCPConnector(limit=0)
    peak_server = 0
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.monotonic()
        tasks = [asyncio.create_task(worker(session, url, body, tally)) for _ in range(concurrency)]
        # Sample the server's own count of open requests while the load runs.
        while time.monotonic() - started < duration:
            await asyncio.sleep(0.5)
            stats = await asyncio.to_thread(remote.stats)
            peak_server = max(peak_server, int(stats["in_flight"]))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        elapsed = time.monotonic() - started
        await asyncio.sleep(0.5)  # let the server record the streams cut at the end
    truth = remote.stats()["tokens"].get(model, {}).get("output", 0)
    ttft = sorted(tally.ttft) or [0.0]
    return {
        "elapsed_s": elapsed,
        "peak_open_client": tally.peak_open,
        "peak_in_flight_server": peak_server,
        "streams": tally.streams,
        "errors": tally.errors,
        "tokens": tally.tokens,
        "tokens_truth": truth,
        "tokens_per_s": tally.tokens / elapsed,
        "ttft_p50": statistics.median(ttft),
        "ttft_p95": ttft[int(0.95 * (len(ttft) - 1))],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--model", default="gemini-2.5-flash")
    args = parser.parse_args()

    port = free_port()
    exe = Path(sys.executable).with_name("gemini-slo")
    server = subprocess.Popen(
        [str(exe), "--log-format", "json", "emulate", "--port", str(port), "--no-quotas"],
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        RemoteEmulator(base).wait_ready(timeout_s=30)
        result = asyncio.run(drive(base, args.model, args.concurrency, args.duration))
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()

    print(f"emulator throughput ({args.model}, default latency model, {os.cpu_count()} CPUs)")
    print(
        f"  concurrent streams:   {result['peak_in_flight_server']:.0f} in flight on the server "
        f"(client: {result['peak_open_client']:.0f} open, {args.concurrency} workers)"
    )
    print(
        f"  output tokens/s:      {result['tokens_per_s']:,.0f} aggregate "
        f"({result['tokens']:,.0f} tokens in {result['streams']:,.0f} streams, "
        f"{result['elapsed_s']:.1f} s; ground truth {result['tokens_truth']:,.0f})"
    )
    print(
        f"  time to first chunk:  p50 {result['ttft_p50'] * 1000:.0f} ms, "
        f"p95 {result['ttft_p95'] * 1000:.0f} ms (client side)"
    )
    print(f"  errors:               {result['errors']:.0f}")
    ok = result["peak_in_flight_server"] >= 500 and result["tokens_per_s"] >= 20000
    if args.concurrency >= 500 and not ok:
        print("  BELOW TARGET (>= 500 concurrent streams, >= 20,000 output tokens/s)")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
