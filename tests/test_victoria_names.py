"""Scale-out path 1: VictoriaMetrics stores the same series names and labels as the agent exposes.

The rules and the dashboards are written once, against the agent's names. For them to work
unchanged when the apps export straight to VictoriaMetrics (``-opentelemetry.usePrometheusNaming``),
the same traffic must give the same metric names and, per metric, the same label names,
and the same ``le`` values the rules match. So both workloads run through the real
instrumentation, with errors injected (so that ``error_type`` appears), and an OTLP tee
sends every export request, byte for byte, to the agent and to VictoriaMetrics. Then:

* metric names: equal, but for what each side adds by design, derived from the contract:
  the series only the agent computes (``lab.victoria.AGENT_ONLY_SERIES`` and its own
  ``gemini_slo_agent_*`` health) and the exponential twins, which VictoriaMetrics keeps as
  ``vmrange`` histograms (``lab.victoria.VMRANGE_HISTOGRAMS``);
* label names per metric: equal, but for the resource attributes VictoriaMetrics keeps as
  labels (``lab.victoria.KEPT_RESOURCE_LABELS``: present on every series); the SDK's
  ``telemetry_sdk_*`` are dropped by the relabeling flag (docs/scaling.md);
* ``le`` values per histogram: equal (VictoriaMetrics writes ``1`` where the agent writes
  ``1.0``: the relabeling flag rewrites them);
* call and token totals: equal (the same bytes went to both);
* percentiles: ``histogram_quantile`` over the ``vmrange`` twin in VictoriaMetrics agrees
  with the agent's exact percentile of the same calls (so percentiles need no agent).

Any other difference fails.
"""

from __future__ import annotations

import json
import math
import time
import urllib.parse
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from gemini_slo.contract import agent_series
from gemini_slo.contract import signals as S
from gemini_slo.contract.spec import default_spec_path, load_spec
from gemini_slo.emulator.testing import RemoteEmulator
from gemini_slo.lab import stack as st
from gemini_slo.lab import victoria
from gemini_slo.lab.otlp_tee import OtlpTee
from prometheus_client.parser import text_string_to_metric_families

pytestmark = [pytest.mark.slow, pytest.mark.victoria, pytest.mark.timeout(300)]

LOAD_S = 12.0
PERCENTILES = (0.5, 0.95)
#: vmrange buckets are 2^(1/32) wide (2.2%) and VictoriaMetrics interpolates inside one;
#: the agent is within 1% of the exact value.
PERCENTILE_TOLERANCE = 0.03
SYNC_TIMEOUT_S = 60.0
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

Labels = dict[str, set[str]]


def _agent_series(metrics_url: str) -> tuple[Labels, dict[str, set[str]]]:
    """Label names per sample name, and ``le`` values per ``_bucket`` name, from /metrics."""
    text = st.http_get(metrics_url).decode()
    labels: Labels = defaultdict(set)
    le: dict[str, set[str]] = defaultdict(set)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels[sample.name] |= set(sample.labels)
            if "le" in sample.labels:
                le[sample.name].add(sample.labels["le"])
    return dict(labels), dict(le)


def _victoria_series(url: str, since: float) -> tuple[Labels, dict[str, set[str]]]:
    """The same from VictoriaMetrics' series API (every series since ``since``)."""
    params = urllib.parse.urlencode({"match[]": '{__name__!=""}', "start": f"{since:.0f}"})
    data = st.http_json(f"{url}/api/v1/series?{params}")
    labels: Labels = defaultdict(set)
    le: dict[str, set[str]] = defaultdict(set)
    for series in data["data"]:
        name = series.pop("__name__")
        labels[name] |= set(series)
        if "le" in series:
            le[name].add(series["le"])
    return dict(labels), dict(le)


def _agent_totals(metrics_url: str, signal: S.Signal, by: str) -> dict[tuple[str, str], float]:
    text = st.http_get(metrics_url).decode()
    out: dict[tuple[str, str], float] = defaultdict(float)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == signal.prometheus:
                out[(sample.labels[S.LABEL_WORKLOAD], sample.labels[by])] += sample.value
    return dict(out)


def _victoria_totals(url: str, signal: S.Signal, by: str) -> dict[tuple[str, str], float]:
    expr = f"sum by ({S.LABEL_WORKLOAD}, {by}) (last_over_time({signal.prometheus}[10m]))"
    return {
        (r["metric"][S.LABEL_WORKLOAD], r["metric"][by]): float(r["value"][1])
        for r in st.query(url, expr)
    }


def _agent_percentile(metrics_url: str, workload: str, q: float) -> float:
    """The agent's percentile of successful calls of ``workload`` over its 1m window."""
    text = st.http_get(metrics_url).decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == agent_series.AGENT_DURATION_PERCENTILE
                and labels.get(S.LABEL_WORKLOAD) == workload
                and labels.get(agent_series.LABEL_WINDOW) == agent_series.AGENT_WINDOWS[0]
                and float(labels[agent_series.LABEL_QUANTILE]) == q
            ):
                return float(sample.value)
    raise AssertionError(f"no p{q * 100:g} of {workload} behind the agent")


def _victoria_percentile(url: str, workload: str, q: float) -> float:
    """``histogram_quantile`` over the vmrange twin: the same calls (no error_type)."""
    selector = (
        f'{S.OPERATION_DURATION_EXPONENTIAL.prometheus}_bucket{{{S.LABEL_WORKLOAD}="{workload}",'
        f'{S.LABEL_ERROR_TYPE}=""}}'
    )
    expr = (
        f"histogram_quantile({q}, sum by ({victoria.VMRANGE_LABEL}) "
        f"(last_over_time({selector}[10m])))"
    )
    result = st.query(url, expr)
    assert result, f"no {expr} in VictoriaMetrics"
    return float(result[0]["value"][1])


def _same_totals(a: dict[Any, float], b: dict[Any, float]) -> bool:
    return a.keys() == b.keys() and all(math.isclose(a[k], b[k], rel_tol=1e-9) for k in a)


def test_same_traffic_gives_the_same_names_and_labels(
    require_binary: Any, tmp_path: Path, record_property: Any
) -> None:
    """Agent and VictoriaMetrics, fed the same bytes: same names, labels, ``le``, totals."""
    require_binary("victoria-metrics")
    spec_path = default_spec_path()
    spec = load_spec(spec_path)
    chat = spec.by_mode(S.Mode.LATENCY)[0]
    batch = spec.by_mode(S.Mode.THROUGHPUT)[0]
    started = time.time() - 60
    procs: list[st.ManagedProcess] = []
    try:
        emulator, emulator_url = st.start_emulator(tmp_path, time_scale=0.3)
        procs.append(emulator)
        agent, agent_otlp, agent_metrics = st.start_agent(tmp_path, spec=spec_path)
        procs.append(agent)
        vm, vm_url = victoria.start_victoria_metrics(
            tmp_path, relabel=victoria.relabel_config(spec)
        )
        procs.append(vm)
        for proc in procs:
            proc.wait_ready(60)
        metrics_url = f"http://{agent_metrics}/metrics"
        # Some failed calls, so that error_type is among the labels compared.
        RemoteEmulator(emulator_url).set_fault(
            "error_rate", model=chat.models[0], status=503, rate=0.2
        )
        targets = [f"{agent_otlp}/v1/metrics", f"{vm_url}{victoria.OTLP_PATH}/v1/metrics"]
        with OtlpTee(targets) as tee:
            loads = [
                st.ManagedProcess(
                    f"load-{w.name}",
                    st.cli_argv(
                        "--log-level", "warning", "load", "--mode", w.mode.value,
                        "--workload", w.name, "--model", w.models[0],
                        "--emulator", emulator_url, "--agent", tee.url, "--spec", str(spec_path),
                        "--duration", f"{LOAD_S:g}", "--quiet",
                        *(("--rate", "10") if w.mode is S.Mode.LATENCY else ("--concurrency", "8")),
                    ),
                    tmp_path / f"load-{w.name}.log",
                )
                for w in (chat, batch)
            ]  # fmt: skip
            procs += loads
            for load in loads:
                assert load.process.wait(LOAD_S + 60) == 0, load.log_tail()
            assert not tee.failures, f"a receiver refused exports: {tee.failures}"
            record_property("exports_per_receiver", json.dumps(tee.forwarded))

        # The same bytes went to both: wait until VictoriaMetrics shows the agent's totals.
        deadline = time.monotonic() + SYNC_TIMEOUT_S
        while True:
            calls = (
                _agent_totals(metrics_url, S.CALLS, S.LABEL_OUTCOME),
                _victoria_totals(vm_url, S.CALLS, S.LABEL_OUTCOME),
            )
            tokens = (
                _agent_totals(metrics_url, S.TOKENS, S.LABEL_TOKEN_TYPE),
                _victoria_totals(vm_url, S.TOKENS, S.LABEL_TOKEN_TYPE),
            )
            if _same_totals(*calls) and _same_totals(*tokens):
                break
            assert time.monotonic() < deadline, f"totals differ:\n{calls}\n{tokens}"
            time.sleep(1)
        assert any(outcome != S.Outcome.OK for _, outcome in calls[0]), "no failed call"

        agent_labels, agent_le = _agent_series(metrics_url)
        vm_labels, vm_le = _victoria_series(vm_url, started)
        percentiles = {
            q: (
                _agent_percentile(metrics_url, chat.name, q),
                _victoria_percentile(vm_url, chat.name, q),
            )
            for q in PERCENTILES
        }
    finally:
        for proc in reversed(procs):
            proc.stop()

    # 1. Metric names: equal but for what each side adds by design.
    only_agent = {n for n in agent_labels if n not in vm_labels}
    unexpected_agent = sorted(n for n in only_agent if not victoria.is_agent_only(n))
    assert not unexpected_agent, f"only behind the agent: {unexpected_agent}"
    assert {n for n in only_agent if n in victoria.AGENT_ONLY_SERIES}, "no agent percentiles?"
    vmrange = {f + s for f in victoria.VMRANGE_HISTOGRAMS for s in _HISTOGRAM_SUFFIXES}
    only_vm = {n for n in vm_labels if n not in agent_labels}
    assert only_vm == vmrange, (
        f"only in VictoriaMetrics, unexpected: {sorted(only_vm - vmrange)}; "
        f"missing exponential twins: {sorted(vmrange - only_vm)}"
    )
    for family in victoria.VMRANGE_HISTOGRAMS:
        assert victoria.VMRANGE_LABEL in vm_labels[family + "_bucket"]

    # 2. Label names per metric: equal but for the resource labels kept, on every series.
    kept = set(victoria.KEPT_RESOURCE_LABELS)
    differences = {}
    for name in sorted(set(agent_labels) & set(vm_labels)):
        extra, missing = vm_labels[name] - agent_labels[name], agent_labels[name] - vm_labels[name]
        if extra != kept or missing:
            differences[name] = {
                "only VictoriaMetrics": sorted(extra),
                "only agent": sorted(missing),
            }
    assert not differences, "label names differ:\n" + json.dumps(differences, indent=1)
    dropped = sorted(
        {label for ls in vm_labels.values() for label in ls if "telemetry_sdk" in label}
    )
    assert not dropped, f"the relabeling should have dropped {dropped}"

    # 3. The le values the rules match.
    assert agent_le, "no classic histogram behind the agent"
    le_differences = {
        name: {"agent": sorted(agent_le[name] - vm_le.get(name, set())),
               "VictoriaMetrics": sorted(vm_le.get(name, set()) - agent_le[name])}
        for name in agent_le
        if name in vm_labels and agent_le[name] != vm_le.get(name)
    }  # fmt: skip
    assert not le_differences, "le values differ:\n" + json.dumps(le_differences, indent=1)
    integral = [le for values in agent_le.values() for le in values if le.endswith(".0")]
    assert integral, "no integral bound was compared (1.0 vs 1): the check above proves nothing"

    # 4. Percentiles from the vmrange twin, without the agent.
    record_property("percentiles_agent_vs_victoria", json.dumps(percentiles))
    for q, (exact, approximated) in percentiles.items():
        assert abs(approximated - exact) <= PERCENTILE_TOLERANCE * exact, (q, exact, approximated)
