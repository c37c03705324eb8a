"""VictoriaMetrics' ingest of an OTLP load beside the agent's, in one run (scale-out path 1).

Run: ``.venv/bin/python bench/victoria_ingest.py`` (about 35 s; ``--seconds``, ``--models``).
Prints figures; asserts nothing about time (the machine is shared and noisy).

The load is bench/agent_ingest.py's: exporter processes build MetricsData with the
OpenTelemetry SDK (calls, tokens, the classic and the exponential duration histogram, for
``--models`` series sets) and send the bodies its encoder produced beforehand through the
real exporter's HTTP client, as fast as the receiver answers. The same load goes to
``gemini-slo agent`` and then to VictoriaMetrics (single node, OTLP at
``/opentelemetry/v1/metrics``, ``-opentelemetry.usePrometheusNaming`` and the relabeling of
``gemini_slo.lab.victoria``), each pinned to CPU 0 (VictoriaMetrics with ``GOMAXPROCS=1``),
the exporters on the other CPUs, after a warm-up that creates every series. The agent also
takes the same requests over OTLP/gRPC (the SDK's gRPC exporter and stub), its HTTP and
gRPC runs alternating ``--rounds`` times so that the machine's noise hits both. Reported per
receiver: OTLP data points/s accepted (wall clock, counted by the exporters from the 2xx
answers), the receiver's CPU use, and points per receiver CPU-second; for VictoriaMetrics
also the samples it stored (a histogram point becomes one sample per bucket plus ``_sum``
and ``_count``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import agent_ingest as ai
from gemini_slo.contract.spec import default_spec_path, load_spec
from gemini_slo.lab import tools, victoria
from gemini_slo.lab.stack import http_get

#: Not measured: both receivers first create every series (an index entry in
#: VictoriaMetrics, a store entry in the agent), which the steady state does not repeat.
WARM_UP_S = 2.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (every thread), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drive(
    endpoint: str,
    cpu: Callable[[], float],
    seconds: float,
    exporters: int,
    models: int,
    grpc: bool = False,
) -> dict[str, float]:
    """Run the exporters against ``endpoint`` (OTLP/gRPC with ``grpc``); points sent and
    accepted, wall time, receiver CPU."""
    cfg = {
        "endpoint": endpoint,
        "models": models,
        "snapshots": 8,
        "seconds": seconds,
        "transport": True,
        "grpc": grpc,
    }
    procs = []
    for i in range(exporters):
        proc = subprocess.Popen(
            [sys.executable, "-c", ai.EXPORTER, json.dumps({**cfg, "instance": f"bench-{i}"})],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        if len(ai.CPUS) > 1:
            os.sched_setaffinity(proc.pid, set(ai.CPUS[1:]))
        procs.append(proc)
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    cpu0, t0 = cpu(), time.monotonic()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        assert proc.stdout is not None
        results.append(json.loads(proc.stdout.readline()))
        proc.wait(seconds + 120)
    elapsed = time.monotonic() - t0
    return {
        "points": sum(r["points"] for r in results),
        "failed": sum(r["failed"] for r in results),
        "elapsed": elapsed,
        "cpu": cpu() - cpu0,
    }


def report(name: str, figures: dict[str, float]) -> None:
    """The figures of one receiver, as lines."""
    elapsed, cpu = figures["elapsed"], max(figures["cpu"], 1e-9)
    print(f"   {name}")
    print(f"     points/s accepted (wall):  {figures['points'] / elapsed:12,.0f}")
    print(f"     receiver CPU busy:         {cpu / elapsed * 100:11.0f}%")
    print(f"     points per receiver CPU-s: {figures['points'] / cpu:12,.0f}")
    print(f"     failed exports:            {figures['failed']:12,.0f}")


def victoria_samples(url: str) -> float:
    """Samples VictoriaMetrics stored from OTLP (its own self-metric)."""
    total = 0.0
    for line in http_get(f"{url}/metrics").decode().splitlines():
        if line.startswith("vm_rows_inserted_total") and 'type="opentelemetry"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="per receiver (default 6)")
    parser.add_argument("--exporters", type=int, default=3)
    parser.add_argument("--models", type=int, default=500, help="series sets per export")
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternations of the agent's HTTP and gRPC runs"
    )
    parser.add_argument(
        "--no-relabel", action="store_true", help="VictoriaMetrics without -relabelConfig"
    )
    args = parser.parse_args()
    binary = tools.find_tool("victoria-metrics")
    if binary is None:
        print(f"victoria-metrics not found ({tools.INSTALL_HINT}): skipped")
        return 0
    version = tools.unpacked_version("victoria-metrics") or "on PATH"
    print(f"python {sys.version.split()[0]}, {len(ai.CPUS)} CPUs; victoria-metrics {version}")
    print(
        f"== OTLP ingest: {args.exporters} exporter processes x {args.models} models, "
        f"{args.seconds:.0f}s per receiver, pre-encoded bodies"
    )
    pin = {ai.CPUS[0]} if len(ai.CPUS) > 1 else None

    agent = ai.AgentProcess()
    http_url = agent.otlp + "/v1/metrics"
    runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    try:
        drive(http_url, agent.cpu_seconds, WARM_UP_S, args.exporters, args.models)
        # OTLP/HTTP and OTLP/gRPC alternate, same payloads: the machine's noise hits both.
        for _ in range(args.rounds):
            for grpc in (False, True):
                url = agent.grpc if grpc else http_url
                runs[grpc].append(
                    drive(url, agent.cpu_seconds, args.seconds / args.rounds,
                          args.exporters, args.models, grpc=grpc)
                )  # fmt: skip
    finally:
        agent.stop()
    agent_figures, grpc_figures = (
        {k: sum(r[k] for r in runs[grpc]) for k in runs[grpc][0]} for grpc in (False, True)
    )

    with tempfile.TemporaryDirectory(prefix="gemini-slo-bench-vm-") as tmp:
        vm, url = victoria.start_victoria_metrics(
            Path(tmp),
            relabel=None
            if args.no_relabel
            else victoria.relabel_config(load_spec(default_spec_path())),
            # One core, as the agent: Go would size its scheduler for every CPU it sees.
            env={"GOMAXPROCS": "1"} if pin else None,
        )
        try:
            vm.wait_ready(60)
            if pin:
                os.sched_setaffinity(vm.pid, pin)
            warm_up = (f"{url}{victoria.OTLP_PATH}/v1/metrics", lambda: cpu_seconds(vm.pid))
            drive(*warm_up, WARM_UP_S, args.exporters, args.models)
            samples0 = victoria_samples(url)
            vm_figures = drive(
                f"{url}{victoria.OTLP_PATH}/v1/metrics", lambda: cpu_seconds(vm.pid),
                args.seconds, args.exporters, args.models,
            )  # fmt: skip
            time.sleep(1)  # its ingestion buffers flush every second
            samples = victoria_samples(url) - samples0
        finally:
            vm.stop()

    where = f"pinned to CPU {ai.CPUS[0]}" if pin else "single CPU, not pinned"
    print(f"   receivers {where}; exporters on the other CPUs")
    report("gemini-slo agent, OTLP/HTTP (protobuf)", agent_figures)
    report("gemini-slo agent, OTLP/gRPC", grpc_figures)
    grpc_ratio = (grpc_figures["points"] / max(grpc_figures["cpu"], 1e-9)) / max(
        agent_figures["points"] / max(agent_figures["cpu"], 1e-9), 1e-9
    )
    print(f"   agent gRPC / HTTP, points per CPU-second: {grpc_ratio:.2f}x")
    relabeled = "without relabeling" if args.no_relabel else "with the le/SDK relabeling"
    report(f"VictoriaMetrics (single node, {relabeled}, OTLP/HTTP)", vm_figures)
    print(f"     samples stored/s (wall):   {samples / vm_figures['elapsed']:12,.0f}")
    ratio = (vm_figures["points"] / max(vm_figures["cpu"], 1e-9)) / max(
        agent_figures["points"] / max(agent_figures["cpu"], 1e-9), 1e-9
    )
    print(f"   VictoriaMetrics / agent (HTTP), points per CPU-second: {ratio:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
