"""Benchmark: what the spec's workload selectors cost the agent at ingest.

Run: ``.venv/bin/python bench/selectors_ingest.py`` (a few seconds; ``--points``,
``--rounds``). Prints figures and ratios; asserts nothing (the machine is shared).

Three stores ingest the same cumulative exports, interleaved round by round in a rotating
order (so that drift on a noisy machine hits all three alike):

* ``baseline``: a spec without ``select:`` (the selectors' fast path: nothing is done);
* ``no match``: a spec whose selectors do not match the resource (one cached lookup per
  resource, then nothing per point);
* ``relabel``: a spec whose selector matches, so every point is relabelled (a cached
  lookup per label set) and each duration point also feeds the derived calls counter.

Every export holds ``--points`` duration-histogram points shaped like the official
instrumentation's (no gemini_slo attributes; 10 models, within a workload's allowance of
unlisted models, and fewer series than its reserve, so that no point overflows), each
round's counts one higher than the last.
"""

from __future__ import annotations

import argparse
import statistics
import time

from gemini_slo.agent.store import Store
from gemini_slo.agent.testing import histogram_metric, otlp_request
from gemini_slo.contract import signals as S
from gemini_slo.contract.spec import SloSpec, parse_spec
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

SERVICE = "chat-api"
BOUNDS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]


def _spec(select: str) -> SloSpec:
    text = "version: gemini-slo/v1\nworkloads:\n  - name: chat\n    mode: latency\n" + select
    return parse_spec(text)


SPECS = {
    "baseline": _spec(""),
    "no match": _spec("    select:\n      - resource: {service.name: other-app}\n"),
    "relabel": _spec(f"    select:\n      - resource: {{service.name: {SERVICE}}}\n"),
}


def _request(points: int, round_: int) -> ExportMetricsServiceRequest:
    metrics = []
    for i in range(points):
        attributes = {
            "gen_ai.operation.name": "generate_content",
            "gen_ai.provider.name": "gemini",
            "gen_ai.request.model": f"model-{i % 10}",
            "server.address": f"host-{i // 10}",
        }
        counts = [0] * (len(BOUNDS) + 1)
        counts[5] = round_ + 1
        metrics.append(
            histogram_metric(
                S.OPERATION_DURATION.name,
                attributes,
                BOUNDS,
                counts,
                0.3 * (round_ + 1),
                time_=round_ + 2,
            )
        )
    return otlp_request(metrics, service=SERVICE)


def main() -> None:
    """Print microseconds per point for each store, and the ratios to the baseline."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    requests = [_request(args.points, r) for r in range(args.rounds + 1)]
    stores = {name: Store(spec=spec) for name, spec in SPECS.items()}
    times: dict[str, list[float]] = {name: [] for name in stores}
    names = list(stores)
    for r, request in enumerate(requests):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            started = time.perf_counter()
            result = stores[name].ingest(request)
            took = time.perf_counter() - started
            assert result.rejected == 0, result.error_message()
            if r:  # round 0 creates the series: a warm-up, not kept
                times[name].append(took / args.points * 1e6)
    base = statistics.median(times["baseline"])
    print(f"{args.points} duration points per export, {args.rounds} rounds, median us/point:")
    for name in names:
        median = statistics.median(times[name])
        print(f"  {name:9s} {median:6.2f} us/point  ratio {median / base:5.2f}")
    for name, store in stores.items():
        assert store.overflow_series_count() == 0, f"{name}: points overflowed"
    calls = stores["relabel"].families[S.CALLS.prometheus]
    total = sum(series.value for series in calls.series.values())
    print(f"  relabel store: {len(calls.series)} derived calls series, {total:.0f} calls counted")


if __name__ == "__main__":
    main()
