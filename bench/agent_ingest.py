"""Benchmark of the collector agent: ingest rate, scrape latency, percentile accuracy, memory.

Run: ``.venv/bin/python bench/agent_ingest.py`` (about a minute; ``--quick`` for a smoke run).
Prints figures; asserts nothing about time (the machine is shared and noisy).

1. Ingest. The agent runs as ``gemini-slo agent`` in its own process, pinned to CPU 0
   when the machine has more than one (``os.sched_setaffinity``); exporter processes are
   pinned to the other CPUs. Each exporter process builds the OpenTelemetry SDK with the
   real ``OTLPMetricExporter`` and calls its ``export()`` as fast as the agent answers,
   with MetricsData collected beforehand from the SDK (so that the exporters' own
   recording does not limit the rate; encoding and HTTP are the real exporter's). A second
   run sends the bodies the exporter's encoder produced beforehand through the exporter's
   own HTTP client (``exporter._client.export``): on this 2-CPU machine the exporters'
   Python encoding, not the agent, is the limit of the first run.
   Reported: data points/s and export requests/s at the agent (from its self-metrics,
   wall clock), and points per CPU-second of the agent process (its capacity on one core).
2. Scrape: ``/metrics`` median latency with 10,000 active series (a mix shaped like the
   instrumentation's: counters, gauges and classic histograms).
3. Percentile accuracy: 4 app processes (``gemini_slo.lab.sdk_app``) send 200k calls of
   a heavy-tailed latency (lognormal plus a Pareto tail); the agent's p50/p95/p99/p99.9
   (5m window) are compared with the exact values, beside ``histogram_quantile`` over the
   classic buckets (signals.LATENCY_DURATION_BUCKETS and the semconv ones) for the same data.
4. Memory per active series: the agent's RSS before and after the 10,000 series.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from gemini_slo.contract import agent_series, signals

ROOT = Path(__file__).resolve().parent.parent
EXE = str(Path(sys.executable).with_name("gemini-slo"))
CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]

EXPORTER = r"""
import json, sys, time, random
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.metrics.view import View, ExplicitBucketHistogramAggregation, ExponentialBucketHistogramAggregation
from opentelemetry.sdk.resources import Resource
from gemini_slo.contract import signals as s

cfg = json.loads(sys.argv[1])
reader = InMemoryMetricReader()
views = [View(instrument_name=s.OPERATION_DURATION.name,
              aggregation=ExplicitBucketHistogramAggregation(list(s.LATENCY_DURATION_BUCKETS))),
         View(instrument_name=s.OPERATION_DURATION_EXPONENTIAL.name,
              aggregation=ExponentialBucketHistogramAggregation(max_size=s.EXPONENTIAL_MAX_BUCKETS, max_scale=s.EXPONENTIAL_SCALE))]
provider = MeterProvider(resource=Resource.create({"service.name": "bench", "service.instance.id": cfg["instance"]}),
                         metric_readers=[reader], views=views)
meter = provider.get_meter("bench")
calls = meter.create_counter(s.CALLS.name, unit=s.CALLS.unit)
tokens = meter.create_counter(s.TOKENS.name, unit=s.TOKENS.unit)
duration = meter.create_histogram(s.OPERATION_DURATION.name, unit="s")
duration_exp = meter.create_histogram(s.OPERATION_DURATION_EXPONENTIAL.name, unit="s")
rng = random.Random(1)
attrs = [{s.ATTR_WORKLOAD: "w%d" % (i % 4), s.ATTR_MODE: "latency", s.ATTR_OPERATION: "generate_content",
          s.ATTR_PROVIDER: "gcp.gemini", s.ATTR_REQUEST_MODEL: "model-%d" % i} for i in range(cfg["models"])]
snapshots = []
for r in range(cfg["snapshots"]):
    for a in attrs:
        for _ in range(2):
            d = rng.lognormvariate(-1.2, 0.5)
            calls.add(1, {**a, s.ATTR_OUTCOME: "ok"})
            tokens.add(100, {**a, s.ATTR_TOKEN_TYPE: "output"})
            tokens.add(300, {**a, s.ATTR_TOKEN_TYPE: "input"})
            duration.record(d, a)
            duration_exp.record(d, a)
    snapshots.append(reader.get_metrics_data())
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.sdk.metrics.export import MetricExportResult
if cfg.get("grpc"):
    # The SDK's OTLP/gRPC exporter (its channel and stub); the requests its encoder built
    # beforehand, as the HTTP run sends the bodies (gRPC serializes them in C++).
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcExporter
    exporter = GrpcExporter(endpoint=cfg["endpoint"], insecure=True)
    requests = [encode_metrics(m) for m in snapshots]
    def send(i):
        try:
            exporter._client.Export(requests[i], timeout=10)
            return True
        except Exception:
            return False
else:
    exporter = OTLPMetricExporter(endpoint=cfg["endpoint"])
    bodies = [encode_metrics(m).SerializeToString() for m in snapshots]
    def send(i):
        return getattr(exporter._client.export(bodies[i]), "success", True)
# Data points per snapshot, so that a receiver without self-metrics of its own can be rated.
sizes = [sum(len(m.data.data_points) for rm in md.resource_metrics for sm in rm.scope_metrics
             for m in sm.metrics) for md in snapshots]
sys.stdout.write("ready\n"); sys.stdout.flush()
sys.stdin.readline()
deadline = time.monotonic() + cfg["seconds"]
n = points = failed = 0
while time.monotonic() < deadline:
    i = n % len(snapshots)
    if cfg["transport"]:
        # The exporter's own HTTP client (session, headers, retries) with the bodies its
        # encoder produced beforehand: the exporter's CPU goes to sending, not encoding.
        ok = send(i)
    else:
        ok = exporter.export(snapshots[i]) is MetricExportResult.SUCCESS
    points += sizes[i] if ok else 0
    failed += 0 if ok else 1
    n += 1
sys.stdout.write(json.dumps({"exports": n, "points": points, "failed": failed}) + "\n")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AgentProcess:
    """``gemini-slo agent`` on free ports, pinned to one CPU."""

    def __init__(self, *extra: str) -> None:
        self.otlp = f"http://127.0.0.1:{free_port()}"
        self.metrics = f"http://127.0.0.1:{free_port()}"
        self.grpc = f"http://127.0.0.1:{free_port()}"  # OTLP/gRPC (plaintext)
        self.proc = subprocess.Popen(
            [
                EXE,
                "--log-level",
                "warning",
                "agent",
                "--otlp",
                self.otlp.removeprefix("http://"),
                "--metrics",
                self.metrics.removeprefix("http://"),
                "--grpc",
                self.grpc.removeprefix("http://"),
                "--max-series-per-metric",
                "20000",
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if len(CPUS) > 1:
            os.sched_setaffinity(self.proc.pid, {CPUS[0]})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.metrics + "/readyz", timeout=1)
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("agent did not start")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_bytes(self) -> int:
        match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{self.proc.pid}/status").read_text())
        return int(match.group(1)) * 1024 if match else 0

    def scrape(self) -> str:
        with urllib.request.urlopen(self.metrics + "/metrics", timeout=30) as response:
            return str(response.read().decode())

    def self_metric(self, name: str) -> float:
        total = 0.0
        for line in self.scrape().splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)


def bench_ingest(seconds: float, exporters: int, models: int, transport: bool) -> None:
    how = "pre-encoded bodies through the exporter's HTTP client" if transport else "export()"
    print(f"== ingest: {exporters} exporter processes x {models} models, {seconds:.0f}s, {how}")
    agent = AgentProcess()
    try:
        cfg = {
            "endpoint": agent.otlp + "/v1/metrics",
            "models": models,
            "snapshots": 8,
            "seconds": seconds,
            "transport": transport,
        }
        procs = []
        for i in range(exporters):
            proc = subprocess.Popen(
                [sys.executable, "-c", EXPORTER, json.dumps({**cfg, "instance": f"bench-{i}"})],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            if len(CPUS) > 1:
                os.sched_setaffinity(proc.pid, set(CPUS[1:]))
            procs.append(proc)
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        points0 = agent.self_metric("gemini_slo_agent_received_points_total")
        requests0 = agent.self_metric("gemini_slo_agent_received_requests_total")
        cpu0, t0 = agent.cpu_seconds(), time.monotonic()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        for proc in procs:
            proc.wait(seconds + 120)
        elapsed = time.monotonic() - t0
        cpu = agent.cpu_seconds() - cpu0
        points = agent.self_metric("gemini_slo_agent_received_points_total") - points0
        requests = agent.self_metric("gemini_slo_agent_received_requests_total") - requests0
        rejected = agent.self_metric("gemini_slo_agent_rejected_points_total")
        pinned = f"agent pinned to CPU {CPUS[0]}" if len(CPUS) > 1 else "single CPU, not pinned"
        print(f"   {pinned}; points per request {points / max(requests, 1):.0f}")
        print(f"   points/s (wall):           {points / elapsed:12,.0f}")
        print(f"   export requests/s (wall):  {requests / elapsed:12,.1f}")
        print(f"   agent CPU busy:            {cpu / elapsed * 100:11.0f}%")
        print(f"   points per agent CPU-s:    {points / max(cpu, 1e-9):12,.0f}")
        print(f"   rejected points:           {rejected:12,.0f}")
    finally:
        agent.stop()


def series_request(models: int, instance: str, prefix: str = "model") -> bytes:
    """One export with 10 series per model, shaped like the instrumentation's."""
    from gemini_slo.agent.testing import histogram_metric, otlp_request, sum_metric

    metrics = []
    bounds = list(signals.LATENCY_DURATION_BUCKETS)
    for m in range(models):
        base = {
            signals.ATTR_WORKLOAD: f"w{m % 8}",
            signals.ATTR_MODE: "latency",
            signals.ATTR_OPERATION: "generate_content",
            signals.ATTR_PROVIDER: "gcp.gemini",
            signals.ATTR_REQUEST_MODEL: f"{prefix}-{m}",
        }
        metrics.append(
            sum_metric(
                signals.CALLS.name,
                [({**base, signals.ATTR_OUTCOME: o}, 10.0) for o in ("ok", "error", "timeout")],
            )
        )
        metrics.append(
            sum_metric(
                signals.TOKENS.name,
                [({**base, signals.ATTR_TOKEN_TYPE: t}, 100.0) for t in ("input", "output")],
                unit="{token}",
            )
        )
        metrics.append(sum_metric(signals.COST.name, [(base, 0.1)], unit="{USD}"))
        metrics.append(
            sum_metric(
                signals.REQUESTS_IN_FLIGHT.name, [(base, 2.0)], unit="{request}", monotonic=False
            )
        )
        counts = [1] * (len(bounds) + 1)
        metrics.append(histogram_metric(signals.OPERATION_DURATION.name, base, bounds, counts, 9.0))
        for t in ("input", "output"):
            metrics.append(
                histogram_metric(
                    signals.TOKEN_USAGE.name,
                    {**base, signals.ATTR_TOKEN_TYPE: t},
                    list(signals.TOKEN_USAGE_BUCKETS),
                    [1] * 15,
                    500.0,
                    unit="{token}",
                )
            )
    return otlp_request(metrics, instance=instance).SerializeToString()


def bench_scrape_and_memory(series: int, scrapes: int) -> None:
    print(f"== scrape latency and memory with {series:,} active series")
    agent = AgentProcess()
    try:
        from gemini_slo.agent.testing import post_otlp

        post_otlp(agent.otlp + "/v1/metrics", series_request(10, "warm-up", "warm"))
        warm = agent.self_metric("gemini_slo_agent_series")
        time.sleep(0.5)
        rss0 = agent.rss_bytes()
        models = series // 10
        chunk = 100
        for start in range(0, models, chunk):
            body = series_request(min(chunk, models - start), f"mem-{start}", f"m{start}")
            status, _, _ = post_otlp(agent.otlp + "/v1/metrics", body)
            assert status == 200, status
        time.sleep(0.5)
        rss1 = agent.rss_bytes()  # before any scrape: a 16 MB scrape leaves its own garbage
        active = agent.self_metric("gemini_slo_agent_series")
        latencies = []
        size = 0
        for _ in range(scrapes):
            t = time.perf_counter()
            size = len(agent.scrape())
            latencies.append(time.perf_counter() - t)
        print(
            f"   active series (agent):     {active:12,.0f}  ({size / 1e6:.1f} MB of text per scrape)"
        )
        print(
            f"   /metrics median latency:   {statistics.median(latencies) * 1000:12.1f} ms"
            f"  (p90 {sorted(latencies)[int(len(latencies) * 0.9)] * 1000:.1f} ms, {scrapes} scrapes)"
        )
        print(
            f"   RSS growth per series:     {(rss1 - rss0) / max(active - warm, 1):12,.0f} bytes"
            f"  (RSS {rss0 / 1e6:.0f} -> {rss1 / 1e6:.0f} MB)"
        )
    finally:
        agent.stop()


def histogram_quantile(q: float, bounds: tuple[float, ...], values: list[float]) -> float:
    """Prometheus' histogram_quantile over classic buckets holding ``values``."""
    import bisect

    counts = [0] * (len(bounds) + 1)
    for v in values:
        counts[bisect.bisect_left(bounds, v)] += 1
    rank = q * len(values)
    seen = 0
    for i, c in enumerate(counts):
        if seen + c >= rank and c:
            if i == len(bounds):
                return bounds[-1]
            lower = bounds[i - 1] if i else 0.0
            return lower + (bounds[i] - lower) * (rank - seen) / c
        seen += c
    return bounds[-1]


def bench_accuracy(calls: int, apps: int) -> None:
    print(f"== percentile accuracy: {calls:,} heavy-tailed calls from {apps} app processes")
    agent = AgentProcess()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            files = [Path(tmp) / f"d{i}.txt" for i in range(apps)]
            procs = [
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "gemini_slo.lab.sdk_app",
                        json.dumps(
                            {
                                "endpoint": agent.otlp + "/v1/metrics",
                                "instance": f"acc-{i}",
                                "calls": calls // apps,
                                "seed": 100 + i,
                                "distribution": "heavy",
                                "durations_file": str(f),
                            }
                        ),
                    ],
                    stdout=subprocess.DEVNULL,
                )
                for i, f in enumerate(files)
            ]
            for proc in procs:
                assert proc.wait(300) == 0
            values = sorted(float(x) for f in files for x in f.read_text().split())
        got = {}
        for line in agent.scrape().splitlines():
            if (
                line.startswith(agent_series.AGENT_DURATION_PERCENTILE + "{")
                and 'window="5m"' in line
            ):
                q = re.search(r'quantile="([^"]+)"', line)
                assert q is not None
                got[q.group(1)] = float(line.rsplit(" ", 1)[1])
        print(
            f"   {'quantile':>8} {'exact':>9} {'agent':>9} {'error':>8}   "
            f"{'classic SLO buckets':>20}   {'semconv buckets':>16}"
        )
        worst = 0.0
        for q in ("0.5", "0.95", "0.99", "0.999"):
            exact = values[max(math.ceil(float(q) * len(values)) - 1, 0)]
            err = (got[q] - exact) / exact
            worst = max(worst, abs(err))
            classic = histogram_quantile(float(q), signals.LATENCY_DURATION_BUCKETS, values)
            semconv = histogram_quantile(float(q), signals.SEMCONV_DURATION_BUCKETS, values)
            print(
                f"   {'p' + str(float(q) * 100).rstrip('0').rstrip('.'):>8} {exact:9.4f} {got[q]:9.4f}"
                f" {err * 100:+7.2f}%   {classic:9.4f} ({(classic - exact) / exact * 100:+6.1f}%)"
                f"   {semconv:9.4f} ({(semconv - exact) / exact * 100:+6.1f}%)"
            )
        print(f"   worst agent error: {worst * 100:.2f}% (target: within 1%)")
    finally:
        agent.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {len(CPUS)} CPUs available")
    if args.quick:
        bench_ingest(seconds=5, exporters=3, models=1000, transport=False)
        bench_ingest(seconds=5, exporters=3, models=1000, transport=True)
        bench_scrape_and_memory(series=2000, scrapes=5)
        bench_accuracy(calls=20_000, apps=4)
    else:
        bench_ingest(seconds=15, exporters=4, models=1000, transport=False)
        bench_ingest(seconds=15, exporters=4, models=1000, transport=True)
        bench_scrape_and_memory(series=10_000, scrapes=21)
        bench_accuracy(calls=200_000, apps=4)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
