"""Scale-out path 1: no agent. Apps export OTLP straight to VictoriaMetrics; vmalert runs the rules.

What this runs, on free 127.0.0.1 ports, every process a child of ours (see
``docs/scaling.md`` for the flags and why):

* **VictoriaMetrics** (single node, a temp storage dir) receiving OTLP/HTTP at
  ``/opentelemetry/v1/metrics`` with ``-opentelemetry.usePrometheusNaming``, so that the
  series get the same names as behind the agent (``gemini_slo_client_calls_total``,
  ``gen_ai_client_operation_duration_seconds_bucket``, ...). The exponential twins arrive
  as VictoriaMetrics' ``vmrange`` histograms. ``-search.latencyOffset`` is lowered from
  30s (which hides the newest 30 s of data) to :data:`TEST_LATENCY_OFFSET`.
* **vmalert** evaluating the rules ``gemini-slo generate`` wrote, unchanged, against it,
  writing the recorded series (and ``ALERTS``) back into it, and notifying the real
  Alertmanager with the generated routes (:class:`gemini_slo.lab.stack.Stack` runs it).

Two normalizations at ingestion, in one ``-relabelConfig`` file (:func:`relabel_config`):

* **``le`` values as the Prometheus clients write them.** VictoriaMetrics formats an OTLP
  bucket bound with Go's ``FormatFloat(b, 'f', -1)`` (``1``, ``1048576``); the agent, the
  apps' ``/metrics`` and the rules' ``le`` matchers use ``signals.format_le`` (``1.0``,
  ``1.048576e+06``). Without this, an objective at ``1s`` would match no bucket.
* **The SDK's resource attributes dropped** (:data:`DROPPED_RESOURCE_LABELS`:
  ``telemetry_sdk_language``, ``_name``, ``_version``). :data:`KEPT_RESOURCE_LABELS`
  (``service_name``, ``service_instance_id``) stay: they keep the instances of a workload
  apart, as ``job``/``instance`` do under Prometheus, and every rule and panel aggregates
  them away.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from gemini_slo.contract import agent_series
from gemini_slo.contract import signals as S
from gemini_slo.contract.spec import SloSpec, load_spec
from gemini_slo.lab import tools
from gemini_slo.lab.stack import (
    FAST_ROUTE_TIMERS,
    FullStack,
    Generated,
    ManagedProcess,
    Stack,
    StackError,
    free_port,
    query,
    write_yaml,
)

#: Where VictoriaMetrics takes OTLP: the exporter appends ``/v1/metrics`` to this base.
OTLP_PATH = "/opentelemetry"
#: VictoriaMetrics' default is 30s: a test with 5 s windows cannot wait that long.
TEST_LATENCY_OFFSET = "1s"
#: Resource attributes VictoriaMetrics turns into labels that stay (instance identity).
KEPT_RESOURCE_LABELS: tuple[str, ...] = (
    S.prometheus_label(S.RESOURCE_SERVICE_NAME),
    S.prometheus_label(S.RESOURCE_SERVICE_INSTANCE),
)
#: The OpenTelemetry SDK's own resource attributes (``telemetry.sdk.*``), dropped.
DROPPED_RESOURCE_LABELS = "telemetry_sdk_.*"
#: VictoriaMetrics' label for the bucket ranges of a histogram it stores as vmrange buckets.
VMRANGE_LABEL = "vmrange"
#: Series only the agent computes (sliding-window percentiles, the spec's objectives as
#: series, the mode advisor's verdicts); with the agent's own health (``gemini_slo_agent_*``) they are absent here.
AGENT_ONLY_SERIES: tuple[str, ...] = (
    *agent_series.PERCENTILE_METRICS.values(),
    agent_series.AGENT_OBJECTIVE_TARGET,
    agent_series.AGENT_OBJECTIVE_THRESHOLD,
    agent_series.AGENT_OBJECTIVE_MET,
    agent_series.AGENT_ERROR_BUDGET_REMAINING,
    agent_series.AGENT_OBJECTIVE_THRESHOLD_UNBUCKETED,
    agent_series.ADVICE_MODE,
    agent_series.ADVICE_SCORE,
    agent_series.ADVICE_MISMATCH,
)
#: The exponential twins, which the agent turns into percentiles and VictoriaMetrics keeps
#: as ``vmrange`` histograms (``_bucket``, ``_sum``, ``_count``) of these families.
VMRANGE_HISTOGRAMS: tuple[str, ...] = tuple(
    s.prometheus for s in S.INSTRUMENTATION_SIGNALS if s.kind is S.Kind.EXPONENTIAL_HISTOGRAM
)


def is_agent_only(name: str) -> bool:
    """Whether series ``name`` exists only behind the agent (computed by it, or its health)."""
    return name in AGENT_ONLY_SERIES or name.startswith(agent_series.AGENT_PREFIX)


def mentions_agent_only(expr: str) -> bool:
    """Whether a PromQL expression reads a series of :data:`AGENT_ONLY_SERIES`."""
    names = [re.escape(n) for n in AGENT_ONLY_SERIES] + [
        re.escape(agent_series.AGENT_PREFIX) + r"\w+"
    ]
    return any(re.search(rf"\b{n}\b", expr) for n in names)


def go_format_f(bound: float) -> str:
    """``strconv.FormatFloat(bound, 'f', -1, 64)``: how VictoriaMetrics writes an OTLP bound.

    The shortest decimal that reads back as ``bound``, never with an exponent:
    ``1.0`` -> ``'1'``, ``0.5`` -> ``'0.5'``, ``1048576.0`` -> ``'1048576'``.
    """
    if math.isinf(bound):
        return "+Inf" if bound > 0 else "-Inf"
    text = format(Decimal(repr(bound)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def spec_bounds(spec: SloSpec) -> tuple[float, ...]:
    """Every explicit bucket bound the apps can export for ``spec``, sorted.

    The contract's layouts plus every objective's threshold (latency and TTFT thresholds
    become bounds; the others are harmless here).
    """
    bounds = {b for signal in S.INSTRUMENTATION_SIGNALS for b in signal.buckets}
    bounds |= set(S.LATENCY_DURATION_BUCKETS) | set(S.THROUGHPUT_DURATION_BUCKETS)
    bounds |= {o.threshold for w in spec.workloads for o in w.objectives}
    return tuple(sorted(b for b in bounds if math.isfinite(b)))


#: Integral bounds below 1e6: Go writes ``N``, the Prometheus clients ``N.0`` (one rule).
_SMALL_INTEGER = "[0-9]{1,6}"


def _le_rule(regex: str, replacement: str) -> dict[str, Any]:
    return {
        "action": "replace",
        "source_labels": ["le"],
        "regex": regex,
        "target_label": "le",
        "replacement": replacement,
    }


def le_relabel_rules(bounds: Sequence[float]) -> list[dict[str, Any]]:
    """Relabeling rules that rewrite VictoriaMetrics' ``le`` of each bound to ``format_le``'s.

    One rule for every integral bound under a million (``1`` -> ``1.0``), then one per
    remaining bound whose spellings differ (``1048576`` -> ``1.048576e+06``); the others
    (``0.5``) are spelled the same already. Relabeling costs VictoriaMetrics CPU per sample
    and per rule, hence few rules.
    """
    rules = [_le_rule(f"({_SMALL_INTEGER})", "${1}.0")]
    for bound in bounds:
        theirs, ours = go_format_f(bound), S.format_le(bound)
        if theirs != ours and not re.fullmatch(_SMALL_INTEGER, theirs):
            rules.append(_le_rule(re.escape(theirs), ours))
    return rules


def relabel_config(spec: SloSpec) -> list[dict[str, Any]]:
    """The ``-relabelConfig`` for ``spec``: ``le`` as the rules match it, SDK attributes dropped."""
    return [
        *le_relabel_rules(spec_bounds(spec)),
        {"action": "labeldrop", "regex": DROPPED_RESOURCE_LABELS},
    ]


def victoria_metrics_argv(
    binary: str,
    address: str,
    storage: Path,
    *,
    relabel: Path | None = None,
    latency_offset: str = TEST_LATENCY_OFFSET,
) -> list[str]:
    """The command line of a single-node VictoriaMetrics taking OTLP with Prometheus names."""
    argv = [
        binary,
        f"-httpListenAddr={address}",
        f"-storageDataPath={storage}",
        # OTLP names translated as the agent and the Collector do (units, _total).
        "-opentelemetry.usePrometheusNaming",
        f"-search.latencyOffset={latency_offset}",
        "-loggerLevel=WARN",
    ]
    if relabel is not None:
        argv.append(f"-relabelConfig={relabel}")
    return argv


def vmalert_argv(
    binary: str,
    address: str,
    victoria_url: str,
    rule_files: Sequence[Path],
    *,
    notifier: str | None,
    interval: str = "1s",
    eval_delay: str = TEST_LATENCY_OFFSET,
) -> list[str]:
    """The command line of vmalert evaluating ``rule_files`` against VictoriaMetrics."""
    argv = [
        binary,
        f"-httpListenAddr={address}",
        f"-datasource.url={victoria_url}",
        # Recorded series and ALERTS go back into the same VictoriaMetrics, where the
        # alerting rules and the dashboards read them.
        f"-remoteWrite.url={victoria_url}",
        "-remoteWrite.flushInterval=1s",
        f"-evaluationInterval={interval}",
        # Ask for data as of now - latencyOffset: the newest points are not visible before.
        f"-rule.evalDelay={eval_delay}",
        # Prometheus adds no group label to alerts and recorded series; neither do we, so
        # that series recorded in one group match series recorded in another.
        "-disableAlertgroupLabel",
        "-loggerLevel=WARN",
    ]
    argv += [f"-rule={p.resolve()}" for p in rule_files]
    argv += [f"-notifier.url=http://{notifier}"] if notifier else ["-notifier.blackhole"]
    return argv


def start_victoria_metrics(
    workdir: Path,
    *,
    relabel: Sequence[Mapping[str, Any]] | None = None,
    latency_offset: str = TEST_LATENCY_OFFSET,
    name: str = "victoria-metrics",
    env: Mapping[str, str] | None = None,
) -> tuple[ManagedProcess, str]:
    """Start VictoriaMetrics on a free port with its storage in ``workdir``; returns it and its URL."""
    binary = tools.find_tool("victoria-metrics")
    if binary is None:
        raise StackError(f"victoria-metrics not found: {tools.INSTALL_HINT}")
    workdir.mkdir(parents=True, exist_ok=True)
    storage = workdir / f"{name}-data"
    storage.mkdir(exist_ok=True)
    relabel_path = None
    if relabel is not None:
        relabel_path = write_yaml(workdir / f"{name}-relabel.yaml", list(relabel))
    address = f"127.0.0.1:{free_port()}"
    url = f"http://{address}"
    argv = victoria_metrics_argv(
        binary, address, storage, relabel=relabel_path, latency_offset=latency_offset
    )
    proc = ManagedProcess(name, argv, workdir / f"{name}.log", ready_url=f"{url}/health", env=env)
    return proc, url


class VictoriaStack(Stack):
    """Webhook + Alertmanager + VictoriaMetrics + vmalert, in place of Prometheus.

    ``prometheus_url`` is VictoriaMetrics' (its Prometheus query API, for :meth:`query`);
    ``rules_url`` is vmalert's (its ``/api/v1/alerts`` and ``/api/v1/rules``); apps export
    to :attr:`otlp_url`.
    """

    def __init__(
        self,
        *,
        rule_files: Sequence[Path] = (),
        alertmanager_yaml: Path | Mapping[str, Any] | None = None,
        alertmanager: bool = True,
        relabel: Sequence[Mapping[str, Any]] | None = None,
        workdir: Path | None = None,
        keep: bool = False,
        interval: str = "1s",
        route_timers: Mapping[str, str] = FAST_ROUTE_TIMERS,
        latency_offset: str = TEST_LATENCY_OFFSET,
    ) -> None:
        super().__init__(
            [],
            rule_files=rule_files,
            alertmanager_yaml=alertmanager_yaml,
            alertmanager=alertmanager,
            workdir=workdir,
            keep=keep,
            interval=interval,
            route_timers=route_timers,
        )
        self._relabel = relabel
        self._latency_offset = latency_offset
        self.victoria: ManagedProcess | None = None
        self.vmalert: ManagedProcess | None = None

    @property
    def otlp_url(self) -> str:
        """The OTLP/HTTP base URL for ``configure(endpoint=...)`` (``/v1/metrics`` is appended)."""
        return f"{self.prometheus_url}{OTLP_PATH}"

    def _find_engines(self) -> None:
        for name in ("victoria-metrics", "vmalert"):
            if tools.find_tool(name) is None:
                raise StackError(f"{name} not found: {tools.INSTALL_HINT}")

    def _start_engines(self, alertmanager: str | None, timeout: float) -> None:
        self.victoria, self.prometheus_url = start_victoria_metrics(
            self.workdir, relabel=self._relabel, latency_offset=self._latency_offset
        )
        self.victoria.wait_ready(timeout)  # vmalert's first evaluation needs its datasource
        binary = tools.find_tool("vmalert")
        if binary is None:
            raise StackError(f"vmalert not found: {tools.INSTALL_HINT}")
        address = f"127.0.0.1:{free_port()}"
        self.rules_url = f"http://{address}"
        argv = vmalert_argv(
            binary,
            address,
            self.prometheus_url,
            self.rule_files,
            notifier=alertmanager,
            interval=self._interval,
            eval_delay=self._latency_offset,
        )
        self.vmalert = ManagedProcess(
            "vmalert", argv, self.workdir / "vmalert.log", ready_url=f"{self.rules_url}/health"
        )

    def _engine_processes(self) -> list[ManagedProcess | None]:
        return [self.vmalert, self.victoria]


class VictoriaFullStack(FullStack):
    """The demo's system without the agent: emulator, loads exporting to VictoriaMetrics, vmalert.

    Same spec handling, generated rules and loads as :class:`FullStack`; ``stack`` is a
    :class:`VictoriaStack` (its ``webhook``, ``query``, ``alerts``, ``rules`` as usual) and
    ``agent`` stays None.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        spec: Path | None = None,
        window_scale: float = 60.0,
        time_scale: float = 0.3,
        seed: int = 1,
    ) -> None:
        super().__init__(
            workdir,
            spec=spec,
            window_scale=window_scale,
            time_scale=time_scale,
            seed=seed,
            monitoring=True,
        )

    def _start_pipeline(self, generated: Generated, timeout: float) -> None:
        stack = VictoriaStack(
            rule_files=generated.rule_files,
            alertmanager_yaml=generated.alertmanager_yaml,
            relabel=relabel_config(load_spec(self.spec_path)),
            workdir=self.workdir / "monitoring",
        )
        self.stack = stack
        stack.start(timeout)
        self.otlp_url = stack.otlp_url

    def _watched(self) -> list[ManagedProcess | None]:
        stack = self.stack if isinstance(self.stack, VictoriaStack) else None
        engines = [stack.victoria, stack.vmalert, stack.alertmanager] if stack else []
        return [self.emulator, *engines, *self.loads]

    def _workloads_with_ok_calls(self, workloads: Sequence[str]) -> set[str]:
        if self.stack is None:
            return set()
        expr = (
            f"count by ({S.LABEL_WORKLOAD}) "
            f'({S.CALLS.prometheus}{{{S.LABEL_OUTCOME}="{S.Outcome.OK}"}})'
        )
        found = {r["metric"].get(S.LABEL_WORKLOAD) for r in query(self.stack.prometheus_url, expr)}
        return {w for w in workloads if w in found}
