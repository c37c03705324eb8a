"""The fleet-percentile error of scale-out path 3: two agents, one Prometheus 2.53.

Run: ``.venv/bin/python bench/fleet_percentiles.py`` (about 40 s; ``--calls``,
``--distribution lognormal|heavy``). Prints figures; asserts nothing.

Four app processes (``gemini_slo.lab.sdk_app``, the real OpenTelemetry SDK) send their
calls to two agents, two each; Prometheus 2.53 with native histograms scrapes both. For
p50/p95/p99/p99.9 of every call, beside the exact value (nearest rank over all the
durations the apps wrote down), in the same run:

* the fleet estimate: ``histogram_quantile(q, sum(rate(native[5m])))`` over both agents'
  native histograms (the exponential twin, scale 5 unless the data's range forced less);
* the baseline a fleet had before: ``histogram_quantile`` over the summed classic buckets
  (``gen_ai_client_operation_duration_seconds_bucket``, the SLO-aligned layout);
* and what the agents' own percentile gauges say (each agent alone: they cannot be
  merged, so the fleet would read the larger of the two).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gemini_slo.agent.testing import running_agent
from gemini_slo.contract import agent_series
from gemini_slo.contract import signals as S
from gemini_slo.lab import tools
from gemini_slo.lab.native import NativeStack

QUANTILES = (0.5, 0.95, 0.99, 0.999)
TWIN = S.OPERATION_DURATION_EXPONENTIAL.prometheus
CLASSIC = S.OPERATION_DURATION.prometheus
CHAT = f'{S.LABEL_WORKLOAD}="chat"'


def exact(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    return values[max(math.ceil(q * len(values)) - 1, 0)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000, help="per app (4 apps)")
    parser.add_argument("--distribution", default="heavy", choices=("lognormal", "heavy"))
    args = parser.parse_args()
    if tools.find_tool("prometheus-2.53") is None:
        print(f"prometheus 2.53 not found ({tools.INSTALL_HINT}): skipped")
        return 0
    version = tools.unpacked_version("prometheus") or "on PATH"
    print(f"python {sys.version.split()[0]}; prometheus {version}, native histograms on")
    print(f"== fleet percentiles: 2 agents x 2 apps x {args.calls:,} {args.distribution} calls")
    with (
        tempfile.TemporaryDirectory(prefix="gemini-slo-fleet-") as tmp,
        running_agent() as a,
        running_agent() as b,
    ):
        targets = [h.metrics_url.removeprefix("http://").removesuffix("/metrics") for h in (a, b)]
        with NativeStack(targets, workdir=Path(tmp) / "prom") as stack:
            stack.wait_scraped()
            procs, files = [], []
            for i, agent in enumerate((a, a, b, b)):
                path = Path(tmp) / f"d{i}.txt"
                cfg = {
                    "endpoint": agent.otlp_url + "/v1/metrics",
                    "instance": f"fleet-{i}",
                    "seed": 200 + i,
                    "calls": args.calls,
                    "distribution": args.distribution,
                    "warmup": 5,
                    "warmup_pause": 8,
                    "durations_file": str(path),
                }
                argv = [sys.executable, "-m", "gemini_slo.lab.sdk_app", json.dumps(cfg)]
                procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL))
                files.append(path)
            for proc in procs:
                assert proc.wait(300) == 0
            values = sorted(float(x) for f in files for x in f.read_text().split())
            total = 4 * (args.calls + 5)
            deadline = time.monotonic() + 60
            while stack.query_value(f"sum({S.CALLS.prometheus})") != total:
                assert time.monotonic() < deadline, "Prometheus did not get every call"
                time.sleep(0.5)
            time.sleep(3)
            scales = set()
            for handle in (a, b):
                with handle.store.lock:
                    family = handle.store.families.get(TWIN)
                    assert family is not None
                    scales |= {s.exp.scale for s in family.series.values() if s.exp}
            gauges: dict[str, float] = {}
            for handle in (a, b):
                for line in handle.scrape().splitlines():
                    if line.startswith(agent_series.AGENT_DURATION_PERCENTILE + "{") and (
                        'window="5m"' in line and 'gemini_slo_workload="chat"' in line
                    ):
                        q = line.split('quantile="', 1)[1].split('"', 1)[0]
                        gauges[q] = max(gauges.get(q, 0.0), float(line.rsplit(" ", 1)[1]))
            print(f"   native histogram scale(s): {sorted(scales)}; {len(values):,} calls")
            print(
                f"   {'quantile':>8} {'exact':>9} {'native fleet':>13} {'error':>8}   "
                f"{'classic fleet':>13} {'error':>8}   {'max agent gauge':>15} {'error':>8}"
            )
            for q in QUANTILES:
                true = exact(values, q)
                native = stack.query_value(
                    f"histogram_quantile({q}, sum(rate({TWIN}{{{CHAT}}}[5m])))"
                )
                classic = stack.query_value(
                    f"histogram_quantile({q}, sum by (le) (rate({CLASSIC}_bucket{{{CHAT}}}[5m])))"
                )
                gauge = gauges.get(f"{q:g}", math.nan)
                cells = []
                for got in (native, classic, gauge):
                    value = math.nan if got is None else got
                    cells.append((value, value / true - 1))
                print(
                    f"   {q:>8g} {true:9.4f} {cells[0][0]:13.4f} {cells[0][1]:+8.2%}   "
                    f"{cells[1][0]:13.4f} {cells[1][1]:+8.2%}   "
                    f"{cells[2][0]:15.4f} {cells[2][1]:+8.2%}"
                )
            base = 2 ** (2 ** -min(scales))
            print(
                f"   bucket width at scale {min(scales)}: x{base:.4f} "
                f"(an estimate in the right bucket is within {base - 1:.2%})"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
