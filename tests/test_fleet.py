"""Many agents, one fleet (scale-out path 3): two agents, one Prometheus 2.53, one rule set.

Four app processes on the real OpenTelemetry SDK (``lab.sdk_app``: its OTLP exporters, HTTP
to one agent and gRPC to the other, its
base-2 exponential histograms at the contract's scale 5), two per agent: different
instances, the same workload. Prometheus 2.53 with native histograms scrapes both agents
over protobuf and evaluates the committed recording rules; VictoriaMetrics scrapes the
same two agents. Asserted:

* the fleet's p50/p95/p99/p99.9 from ``histogram_quantile`` over
  ``sum(rate(native[...]))`` across both agents are within 1% of the exact percentiles of
  every call the apps made (the durations they wrote down). At scale 5 a bucket spans a
  factor 2**(1/32) = 1.0219, so any estimate inside the right bucket is within 2.2%; the
  1% comes from the data (interpolation inside the bucket), not from the layout;
  (The rate starts at each series' first scrape, after the apps' 5 warm-up calls; an app
  whose warm-up lands after that scrape adds its 5 to the rate: at most 20 of 10,020
  calls, a rank or two at p99.9.)
* calls and tokens summed over the agents equal what the apps recorded (nothing counted
  twice, nothing lost), in Prometheus and in VictoriaMetrics alike;
* the recording rule ``gemini_slo:calls:rate5m`` is one series per workload, the sum of
  both agents' rates.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from gemini_slo.agent.testing import AgentHandle, running_agent
from gemini_slo.contract import alert_names as n
from gemini_slo.contract import signals as S
from gemini_slo.lab import tools, victoria
from gemini_slo.lab.native import NativeStack
from gemini_slo.lab.stack import ManagedProcess, free_port, query, write_yaml

pytestmark = [pytest.mark.slow, pytest.mark.victoria]

ROOT = Path(__file__).resolve().parents[1]
QUANTILES = (0.5, 0.95, 0.99, 0.999)
CALLS_PER_APP = 2500
WARMUP = 5
TWIN = S.OPERATION_DURATION_EXPONENTIAL.prometheus
CHAT = f'{S.LABEL_WORKLOAD}="chat"'


def exact_quantile(values: list[float], q: float) -> float:
    """The nearest-rank percentile: the smallest value with at least q of all at or below."""
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


def _wait(predicate: Callable[[], Any], timeout: float = 90.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _apps(agents: list[AgentHandle], tmp_path: Path) -> list[float]:
    """Two app processes per agent; returns every recorded duration of the measured part."""
    procs, files = [], []
    for a, agent in enumerate(agents):
        for k in range(2):
            path = tmp_path / f"durations-{a}-{k}.txt"
            cfg = {
                "endpoint": agent.otlp_url + "/v1/metrics",
                "instance": f"app-{a}-{k}",
                **_grpc(agent),
                "seed": 10 * a + k + 1,
                "calls": CALLS_PER_APP,
                "warmup": WARMUP,
                "warmup_pause": 8,
                "durations_file": str(path),
            }
            argv = [sys.executable, "-m", "gemini_slo.lab.sdk_app", json.dumps(cfg)]
            procs.append(subprocess.Popen(argv, stderr=subprocess.PIPE))
            files.append(path)
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err.decode()[-2000:]
    return [float(x) for f in files for x in f.read_text().split()]


def _grpc(agent: AgentHandle) -> dict[str, str]:
    """An agent with a gRPC listener gets its apps' exports over OTLP/gRPC."""
    port = agent.agent.grpc_port
    return {} if port is None else {"protocol": "grpc", "endpoint": f"http://127.0.0.1:{port}"}


def _victoria(tmp_path: Path, targets: list[str]) -> tuple[ManagedProcess, str]:
    """VictoriaMetrics scraping the agents itself (its Prometheus-compatible scraper)."""
    binary = tools.find_tool("victoria-metrics")
    assert binary is not None
    config = {
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [
            {"job_name": "agents", "honor_labels": True, "static_configs": [{"targets": targets}]}
        ],
    }
    path = write_yaml(tmp_path / "vm-scrape.yml", config)
    storage = tmp_path / "vm-data"
    storage.mkdir()
    address = f"127.0.0.1:{free_port()}"
    argv = [*victoria.victoria_metrics_argv(binary, address, storage), f"-promscrape.config={path}"]
    proc = ManagedProcess(
        "victoria-metrics", argv, tmp_path / "vm.log", ready_url=f"http://{address}/health"
    )
    return proc, f"http://{address}"


def _value(url: str, expr: str, at: float | None = None) -> float | None:
    result = query(url, expr, at)
    return float(result[0]["value"][1]) if result else None


def test_two_agents_one_fleet(require_binary: Callable[[str], str], tmp_path: Path) -> None:
    """Fleet percentiles from native histograms over two agents within 1% of the exact
    ones; calls and tokens exact in Prometheus and VictoriaMetrics; one rule series."""
    require_binary("prometheus-2.53")
    require_binary("victoria-metrics")
    # Agent b takes its apps' exports over OTLP/gRPC: the transports merge alike.
    with running_agent() as a, running_agent(grpc_port=0) as b:
        targets = [h.metrics_url.removeprefix("http://").removesuffix("/metrics") for h in (a, b)]
        rules = [ROOT / "alerts" / "recording_rules.yaml"]
        vm, vm_url = _victoria(tmp_path, targets)
        with vm, NativeStack(targets, rule_files=rules, workdir=tmp_path / "prom") as stack:
            vm.wait_ready(60)
            stack.wait_scraped()
            durations = _apps([a, b], tmp_path)
            apps = 4
            calls = apps * (CALLS_PER_APP + WARMUP)
            assert len(durations) == apps * CALLS_PER_APP
            calls_expr = f"sum({S.CALLS.prometheus})"
            _wait(lambda: stack.query_value(calls_expr) == calls, what="Prometheus totals")
            # Each agent holds exactly its own apps' calls: nothing is counted twice.
            per_agent = {
                r["metric"]["instance"]: float(r["value"][1])
                for r in stack.query(f"sum by (instance) ({S.CALLS.prometheus})")
            }
            assert sorted(per_agent.values()) == [calls / 2, calls / 2]
            output = f'sum({S.TOKENS.prometheus}{{{S.LABEL_TOKEN_TYPE}="output"}})'
            assert stack.query_value(output) == 100 * calls
            time.sleep(3)  # a few more scrapes: the last one surely holds everything

            errors = {}
            for q in QUANTILES:
                expr = f"histogram_quantile({q}, sum(rate({TWIN}{{{CHAT}}}[5m])))"
                got = stack.query_value(expr)
                exact = exact_quantile(durations, q)
                assert got is not None, expr
                errors[q] = got / exact - 1
            assert all(abs(e) < 0.01 for e in errors.values()), errors
            print("fleet percentile relative errors:", {q: f"{e:+.4%}" for q, e in errors.items()})

            rule = n.windowed(n.CALLS_RATE, "5m")
            recorded = _wait(lambda: stack.query(f"{rule}{{{CHAT}}}"), what=rule)
            assert len(recorded) == 1 and "instance" not in recorded[0]["metric"]
            # The rule's own sample: its value and when it was evaluated.
            at = stack.query_value(f"timestamp({rule}{{{CHAT}}})")
            value = stack.query_value(f"{rule}{{{CHAT}}}")
            assert at is not None and value is not None
            by_agent = [
                float(r["value"][1])
                for r in stack.query(
                    f"sum by (instance) (rate({S.CALLS.prometheus}{{{CHAT}}}[5m]))", at=at
                )
            ]
            # The sum of the two agents' rates (a scrape appended just after the rule ran
            # may move the extrapolation a little), each agent about half of it.
            assert len(by_agent) == 2
            assert math.isclose(value, sum(by_agent), rel_tol=0.02), (value, by_agent)
            assert all(math.isclose(r, value / 2, rel_tol=0.05) for r in by_agent), by_agent

            _wait(lambda: _value(vm_url, calls_expr) == calls, what="VictoriaMetrics totals")
            assert _value(vm_url, output) == 100 * calls
