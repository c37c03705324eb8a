"""What a down, silent, failing or slow agent costs the app: latency, CPU and throughput.

For each state of the app's OTLP endpoint

* ``healthy``: a real agent (``gemini-slo agent``, its own process);
* ``closed``: a port nothing listens on (connection refused);
* ``never-reads``: a socket that accepts connections into its backlog and never reads;
* ``503``: an endpoint answering every export with 503 at once;
* ``slow``: an endpoint that reads the export and answers 200 after 0.8 s;

worker processes call the real google-genai SDK against ``gemini-slo emulate`` (its own
process, ``--time-scale 0``, non-streamed ``generate_content``): one **bare** client, and
per state a client patched with ``instrument()`` whose process runs ``configure()`` to that
endpoint (export every 1 s, five times the default rate, so that the exporter's state
shows). All of them are alive at once and run in rounds, one worker at a time, in an order
rotated every round, so that drift and the machine's other load affect them alike; each
in its own process, so that an exporter thread's CPU lands on its own app only: CPU per
call is the worker's whole process CPU (its exporter thread included, over its rounds and
the others') divided by its calls. Latency is the median and p99 of every call's wall
time; throughput is calls per second of wall time within the rounds. Last, every worker
idles for 5 s at once: its process CPU per second then is what its exporter thread costs
on its own ("idle CPU").

Printed: every worker's figures and the instrumented ones' ratios to the bare client's,
then each state against the healthy agent: the goal is every state within 5% of healthy
(a dead agent must cost the app nothing more than a live one). A second bare client, timed
the same way, is the A/A control: how far apart two identical workers come out in this run
(on a loaded machine the p99 and calls/s differ by more than 5% even then).

    .venv/bin/python bench/agent_down.py [--rounds 40] [--calls 50] [--states closed,503]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
EXE = Path(sys.executable).parent / "gemini-slo"
STATES = ("healthy", "closed", "never-reads", "503", "slow")
SLOW_ANSWER_S = 0.8
EXPORT_INTERVAL_S = 1.0
GOAL = 0.05
IDLE_S = 5.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---- endpoint servers (each in its own process: none of their work is the app's) ----


def serve(kind: str, port: int) -> None:
    """Serve one endpoint state on 127.0.0.1:``port`` until killed."""
    if kind == "never-reads":
        listener = socket.socket()
        listener.bind(("127.0.0.1", port))
        listener.listen(1024)  # the kernel completes the handshakes; nobody ever reads
        print("ready", flush=True)
        while True:
            time.sleep(3600)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if kind == "slow":
                time.sleep(SLOW_ANSWER_S)
            self.send_response(503 if kind == "503" else 200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print("ready", flush=True)
    server.serve_forever()


def _wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextmanager
def endpoint(state: str) -> Iterator[str]:
    """The OTLP base URL of ``state``, with whatever serves it running."""
    port = free_port()
    if state == "closed":
        yield f"http://127.0.0.1:{port}"
        return
    if state == "healthy":
        command = [
            str(EXE),
            "agent",
            "--otlp",
            f"127.0.0.1:{port}",
            "--metrics",
            f"127.0.0.1:{free_port()}",
        ]
    else:
        command = [sys.executable, str(HERE), "--serve", state, "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if state != "never-reads":
            _wait_port(port)
        else:
            time.sleep(1.0)  # probing it would use a backlog slot
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


# ---- workers: one bare app, one instrumented app, each its own process ----


def worker(kind: str, emulator: str, otlp: str | None) -> None:
    """Answer ``run N`` lines with the wall times of N calls and the process CPU so far."""
    from google import genai
    from google.genai import types

    client = genai.Client(api_key="bench", http_options=types.HttpOptions(base_url=emulator))
    if kind == "instrumented":
        from gemini_slo.instrumentation import configure, instrument

        configure(
            endpoint=otlp,
            service_name="agent-down-bench",
            export_interval=EXPORT_INTERVAL_S,
            exit_timeout=0.5,
        )
        instrument(client, workload="bench", mode="latency")
    config = types.GenerateContentConfig(
        max_output_tokens=64, thinking_config=types.ThinkingConfig(thinking_budget=0)
    )
    prompt = "Tell me about SLOs [[emulator:output_tokens=64]]"

    def call() -> None:
        client.models.generate_content(model="gemini-2.5-flash", contents=prompt, config=config)

    perf = time.perf_counter
    print("ready", flush=True)
    for line in sys.stdin:
        command = line.split()
        if not command or command[0] == "quit":
            break
        if command[0] == "idle":  # no calls: what the exporter thread costs on its own
            cpu, wall = time.process_time(), perf()
            time.sleep(float(command[1]))
            rate = (time.process_time() - cpu) / (perf() - wall)
            print(json.dumps({"cpu_per_s": rate}), flush=True)
            continue
        walls = []
        for _ in range(int(command[1])):
            started = perf()
            call()
            walls.append(perf() - started)
        print(json.dumps({"walls": walls, "cpu": time.process_time()}), flush=True)


class Worker:
    """A worker process driven over its stdin/stdout."""

    def __init__(self, kind: str, emulator: str, otlp: str | None) -> None:
        command = [sys.executable, str(HERE), "--worker", kind, "--emulator", emulator]
        if otlp:
            command += ["--otlp", otlp]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # the exit warning of the states that lose calls
            text=True,
        )
        assert self.process.stdout is not None and self.process.stdin is not None
        self._out, self._in = self.process.stdout, self.process.stdin
        if self._out.readline().strip() != "ready":
            raise RuntimeError(f"worker {kind} did not start")

    def run(self, calls: int) -> tuple[list[float], float]:
        self._in.write(f"run {calls}\n")
        self._in.flush()
        answer = json.loads(self._out.readline())
        return answer["walls"], answer["cpu"]

    def idle_start(self, seconds: float) -> None:
        self._in.write(f"idle {seconds}\n")
        self._in.flush()

    def idle_result(self) -> float:
        """CPU seconds per second of the idle worker (its exporter thread's work)."""
        return float(json.loads(self._out.readline())["cpu_per_s"])

    def close(self) -> None:
        try:
            self._in.write("quit\n")
            self._in.flush()
            self.process.wait(timeout=15)
        except Exception:
            self.process.kill()
            self.process.wait()


Figures = dict[str, float]


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def measure(
    emulator: str, endpoints: dict[str, str], rounds: int, calls: int, idle_s: float = IDLE_S
) -> dict[str, Figures]:
    """Rounds of the bare worker and of one instrumented worker per endpoint state, all
    alive at once, in an order rotated every round; each worker's figures."""
    workers = {"bare": Worker("bare", emulator, None)}
    try:
        workers["control"] = Worker("bare", emulator, None)  # A/A: the noise floor
        for state, otlp in endpoints.items():
            workers[state] = Worker("instrumented", emulator, otlp)
        for w in workers.values():  # warm-up: connections, imports, the first exports
            w.run(calls)
        time.sleep(EXPORT_INTERVAL_S * 1.5)  # let the exporters reach their steady state
        names = list(workers)
        walls: dict[str, list[float]] = {name: [] for name in names}
        cpu0 = {name: w.run(1)[1] for name, w in workers.items()}
        for r in range(rounds):
            k = r % len(names)
            for name in names[k:] + names[:k]:
                times, _ = workers[name].run(calls)
                walls[name].extend(times)
        cpu1 = {name: w.run(1)[1] for name, w in workers.items()}
        for w in workers.values():  # all idle at once
            w.idle_start(idle_s)
        idle = {name: w.idle_result() for name, w in workers.items()}
    finally:
        for w in workers.values():
            w.close()
    out: dict[str, Figures] = {}
    for name, times in walls.items():
        n = len(times) + 1  # the 1-call probe after the rounds is in the CPU window
        out[name] = {
            "median": statistics.median(times) * 1e6,
            "p99": _p99(times) * 1e6,
            "cpu": (cpu1[name] - cpu0[name]) / n * 1e6,
            "throughput": len(times) / sum(times),
            "idle": idle[name] * 1e3,
        }
    return out


COMPARED = ("median", "p99", "cpu", "throughput")


def ratio(a: Figures, b: Figures) -> Figures:
    """``a / b`` for each compared figure."""
    return {k: a[k] / b[k] for k in COMPARED}


def _worse(rel: Figures) -> list[str]:
    """The figures more than GOAL worse (slower, more CPU, fewer calls/s)."""
    return [k for k, v in rel.items() if (v < 1 - GOAL if k == "throughput" else v > 1 + GOAL)]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--calls", type=int, default=50, help="calls per worker per round")
    parser.add_argument("--states", default=",".join(STATES))
    parser.add_argument("--idle", type=float, default=IDLE_S, help="seconds of the idle measure")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--emulator", help=argparse.SUPPRESS)
    parser.add_argument("--otlp", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return 0
    if args.worker:
        worker(args.worker, args.emulator, args.otlp)
        return 0

    states = [s for s in args.states.split(",") if s and s != "healthy"]
    states.insert(0, "healthy")
    port = free_port()
    emulator = subprocess.Popen(
        [str(EXE), "emulate", "--port", str(port), "--time-scale", "0", "--no-quotas"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ},
    )
    started = time.monotonic()
    try:
        from gemini_slo.emulator.testing import RemoteEmulator

        url = f"http://127.0.0.1:{port}"
        RemoteEmulator(url).wait_ready()
        with ExitStack() as stack:
            endpoints = {state: stack.enter_context(endpoint(state)) for state in states}
            figures = measure(url, endpoints, args.rounds, args.calls, args.idle)
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)

    print(
        f"app cost per endpoint state: {args.rounds} rounds x {args.calls} calls per worker,"
        f" every worker's rounds interleaved (order rotated), non-streamed generate_content"
        f" on the emulator, export every {EXPORT_INTERVAL_S:g} s"
    )
    header = f"{'median us':>10} {'p99 us':>9} {'CPU us/call':>12} {'calls/s':>8} {'idle CPU':>9}"
    print(
        f"  {'worker':<12} {header} | vs bare: {'median':>6} {'p99':>6} {'CPU':>6} {'calls/s':>7}"
    )
    bare = figures["bare"]
    for name, f in figures.items():
        row = (
            f"  {name:<12} {f['median']:10.1f} {f['p99']:9.1f} {f['cpu']:12.1f}"
            f" {f['throughput']:8.1f} {f['idle']:5.2f}ms/s"
        )
        if name != "bare":
            r = ratio(f, bare)
            added = f["median"] - bare["median"]
            row += (
                f" |          {r['median']:6.3f} {r['p99']:6.3f} {r['cpu']:6.3f}"
                f" {r['throughput']:7.3f}  (median {added:+.1f} us,"
                f" CPU {f['cpu'] - bare['cpu']:+.1f} us/call)"
            )
        print(row)
    ok = True
    print(f"against the healthy agent (instrumented / instrumented; goal: within {GOAL:.0%}):")
    print(f"  {'state':<12} {'median':>8} {'p99':>8} {'CPU':>8} {'calls/s':>8}  verdict")
    for state in states[1:]:
        rel = ratio(figures[state], figures["healthy"])
        worse = _worse(rel)
        ok &= not worse
        verdict = "met" if not worse else "NOT met (" + ", ".join(worse) + ")"
        print(
            f"  {state:<12} {rel['median']:8.3f} {rel['p99']:8.3f} {rel['cpu']:8.3f}"
            f" {rel['throughput']:8.3f}  {verdict}"
        )
    noise = ratio(figures["control"], bare)
    print(
        f"  {'A/A control':<12} {noise['median']:8.3f} {noise['p99']:8.3f} {noise['cpu']:8.3f}"
        f" {noise['throughput']:8.3f}  (a second bare client against the first: the noise floor)"
    )
    print(f"total {time.monotonic() - started:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
