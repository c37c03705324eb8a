"""The official OpenTelemetry instrumentation gets the same latency dashboard and SLIs as ours.

One stack (emulator, agent, Prometheus with the generated rules) and a spec with three
latency workloads of the same objectives:

* ``chat``: the project's own instrumentation (``gemini-slo load``, a child process);
* ``chat-otel``: the official ``GoogleGenAiSdkInstrumentor`` in this process, on an SDK
  MeterProvider with the OTLP HTTP exporter and ``otel_views(spec, exponential=True)``,
  resource ``service.name=chat-otel-app``: no gemini_slo attribute at all, the spec's
  selector on ``service.name`` makes it ``chat-otel``;
* ``chat-noviews``: the same official instrumentation afterwards, without the views.

Every query of the latency dashboard that returns data for ``chat`` must return data for
``chat-otel`` (the count is printed, e.g. ``31/31``), except the queries of signals the
official instrumentation has no equivalent of (the admission queue and the concurrency
limit: ``NOT_EMITTED``), which must be exactly the ones missing. The latency and
availability SLI recording rules must be populated for ``chat-otel``. Without the views,
the agent, /api/slo and Prometheus show "no bucket at the threshold" for the latency
objectives, and their SLI is absent, never a silent zero.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from gemini_slo.contract import agent_series
from gemini_slo.contract import alert_names as n
from gemini_slo.contract import signals as S
from gemini_slo.contract.spec import SloSpec, load_spec, parse_spec
from gemini_slo.dashboards.build import queries, substitute
from gemini_slo.dashboards.common import uid
from gemini_slo.instrumentation import otel_views
from gemini_slo.lab import stack as st

pytestmark = [pytest.mark.slow, pytest.mark.prometheus, pytest.mark.timeout(900)]

OBJECTIVES = """\
    objectives:
      latency:
        - {percentile: 95, threshold: 500ms}
        - {percentile: 99, threshold: 800ms}
      ttft: {percentile: 95, threshold: 300ms}
      availability: 99.5%
      timeout_ratio: 0.1%
      shed_ratio: 1%
      queue_wait: {percentile: 95, threshold: 100ms}
      headroom: {max_utilization: 60%}
"""
#: workload -> the service.name its selector matches (None: the project's own, no selector).
WORKLOADS = {"chat": None, "chat-otel": "chat-otel-app", "chat-noviews": "chat-noviews-app"}


def _workload(name: str, service: str | None) -> str:
    select = f"    select:\n      - resource: {{service.name: {service}}}\n" if service else ""
    return (
        f"  - name: {name}\n    mode: latency\n    models: [gemini-2.5-flash]\n{select}{OBJECTIVES}"
    )


SPEC = "version: gemini-slo/v1\nworkloads:\n" + "".join(
    _workload(name, service) for name, service in WORKLOADS.items()
)
MODEL = "gemini-2.5-flash"
RATE_INTERVAL = "15s"
LOAD_S = 40.0
DATA_TIMEOUT_S = 120.0

#: Series the official instrumentation has no equivalent of: the project's admission
#: queue (depth, wait) and its concurrency limit (utilization = in flight / limit).
NOT_EMITTED = (
    S.QUEUE_DEPTH.prometheus,
    S.QUEUE_WAIT.prometheus,
    S.REQUESTS_IN_FLIGHT.prometheus,
    S.CONCURRENCY_LIMIT.prometheus,
    n.UTILIZATION,
    n.UTILIZATION_AVG.split("{", 1)[0],
)


def _not_emitted(expr: str) -> bool:
    return any(name in expr for name in NOT_EMITTED)


@contextmanager
def _official(otlp_url: str, service: str, views: list[Any] | None) -> Iterator[Any]:
    """The official instrumentor on its own MeterProvider exporting OTLP/HTTP every second."""
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.instrumentation.google_genai import GoogleGenAiSdkInstrumentor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource

    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"{otlp_url}/v1/metrics"), export_interval_millis=1000
    )
    provider = MeterProvider(
        metric_readers=[reader],
        resource=Resource.create({S.RESOURCE_SERVICE_NAME: service}),
        views=views or (),
    )
    instrumentor = GoogleGenAiSdkInstrumentor()
    instrumentor.instrument(skip_dep_check=True, meter_provider=provider)
    try:
        yield provider
    finally:
        instrumentor.uninstrument()
        provider.shutdown()


@contextmanager
def _calls(emulator_url: str, threads: int = 4) -> Iterator[list[int]]:
    """Real google-genai calls (plain and streamed) in the background until the block ends."""
    from google import genai
    from google.genai import types

    client = genai.Client(api_key="test", http_options=types.HttpOptions(base_url=emulator_url))
    stop = threading.Event()
    done = [0]

    def loop(i: int) -> None:
        while not stop.is_set():
            try:
                if (done[0] + i) % 2:
                    for _ in client.models.generate_content_stream(model=MODEL, contents="hi"):
                        pass
                else:
                    client.models.generate_content(model=MODEL, contents="hi")
            except Exception:  # the emulator's injected errors are part of the traffic
                pass
            done[0] += 1

    with ThreadPoolExecutor(threads) as pool:
        for i in range(threads):
            pool.submit(loop, i)
        try:
            yield done
        finally:
            stop.set()


def _wait(check: Callable[[], list[str]], timeout: float, alive: Callable[[], None]) -> list[str]:
    """Poll ``check`` (what is still missing) until it is empty or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        missing = check()
        if not missing or time.monotonic() > deadline:
            return missing
        alive()
        time.sleep(3)


def _latency_templates(spec: SloSpec) -> list[tuple[str, str]]:
    """(panel title, expression template) of every latency-dashboard query."""
    return [
        (q.panel_title, q.expr)
        for q in queries(spec, expand=False)
        if q.dashboard_uid == uid("latency")
    ]


def test_official_instrumentation_fills_the_latency_dashboard_and_slis(
    require_binary: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every latency query with data for our instrumentation has data for the official one."""
    require_binary("prometheus")
    source = tmp_path / "spec.yaml"
    source.write_text(SPEC)
    spec = parse_spec(SPEC)
    with st.FullStack(tmp_path / "stack", spec=source, window_scale=60, time_scale=0.3) as full:
        assert full.stack is not None
        prom = full.stack
        scaled = load_spec(full.spec_path)
        templates = _latency_templates(scaled)
        assert templates, "the latency dashboard has no queries"

        def empty(workload: str, items: list[tuple[str, str]]) -> list[str]:
            return [
                f"{title}: {expr}"
                for title, expr in items
                if not prom.query(substitute(expr, workload, rate_interval=RATE_INTERVAL))
            ]

        full.start_load(
            "latency", "--workload", "chat", "--rate", "10", "--model", MODEL,
            name="chat", duration=LOAD_S + 2 * DATA_TIMEOUT_S,
        )  # fmt: skip
        views = otel_views(spec, "chat-otel", exponential=True)
        with (
            _official(full.otlp_url, WORKLOADS["chat-otel"] or "", views),
            _calls(full.emulator_url) as done,
        ):
            time.sleep(LOAD_S)
            _wait(lambda: empty("chat", templates), DATA_TIMEOUT_S, full.check_alive)
            own = [
                t
                for t in templates
                if prom.query(substitute(t[1], "chat", rate_interval=RATE_INTERVAL))
            ]
            assert own, "no latency query has data for the project's own instrumentation"
            expected = [t for t in own if not _not_emitted(t[1])]
            missing = _wait(lambda: empty("chat-otel", expected), DATA_TIMEOUT_S, full.check_alive)
            not_emitted = [t for t in own if _not_emitted(t[1])]
            official_calls = done[0]
        have = len(expected) - len(missing)
        with capsys.disabled():
            print(
                f"\nlatency dashboard: {have}/{len(expected)} queries with data for the "
                f"project's instrumentation have data for the official one "
                f"({official_calls} official calls; {len(not_emitted)} more read the admission "
                f"queue or the concurrency limit, which the official instrumentation has not; "
                f"{len(templates)} queries in all)"
            )
        assert not missing, "no data for the official instrumentation:\n" + "\n".join(missing)
        # Those the official instrumentation cannot have are indeed empty (the list is exact).
        assert empty("chat-otel", not_emitted) == [f"{t}: {e}" for t, e in not_emitted]

        # The latency and availability SLIs are recorded for the official workload.
        sli = n.windowed(n.SLI_ERROR, "5m")
        for objective in ("latency_p95", "latency_p99", "ttft_p95", "availability"):
            where = f'{S.LABEL_WORKLOAD}="chat-otel",{agent_series.LABEL_OBJECTIVE}="{objective}"'
            result = prom.query(f"{sli}{{{where}}}")
            assert result, f"{sli} not recorded for chat-otel {objective}"
            value = float(result[0]["value"][1])
            assert 0.0 <= value <= 1.0, (objective, value)

        # Without the views: the agent says "no bucket at the threshold", the SLI is absent.
        with (
            _official(full.otlp_url, WORKLOADS["chat-noviews"] or "", None),
            _calls(full.emulator_url),
        ):
            unbucketed = agent_series.AGENT_OBJECTIVE_THRESHOLD_UNBUCKETED
            where = f'{S.LABEL_WORKLOAD}="chat-noviews"'

            def flagged() -> list[str]:
                found = {
                    r["metric"][agent_series.LABEL_OBJECTIVE]
                    for r in prom.query(f"{unbucketed}{{{where}}} == 1")
                }
                return sorted({"latency_p95", "latency_p99", "ttft_p95"} - found)

            assert not _wait(flagged, DATA_TIMEOUT_S, full.check_alive)
            status = st.http_json(f"{full.agent_url}/api/slo")
        (noviews,) = [w for w in status["workloads"] if w["name"] == "chat-noviews"]
        states = {o["name"]: (o["state"], o["threshold_bucketed"]) for o in noviews["objectives"]}
        for objective in ("latency_p95", "latency_p99", "ttft_p95"):
            assert states[objective] == (agent_series.UNBUCKETED_STATE, False), states
        # The official buckets (0.01 ... 81.92 s) have 0.32 and 0.64, not 0.5: no SLI, no zero.
        latency = f'{where},{agent_series.LABEL_OBJECTIVE}="latency_p95"'
        assert prom.query(f"{sli}{{{latency}}}") == []
        assert prom.query(f'{sli}{{{where},{agent_series.LABEL_OBJECTIVE}="availability"}}')
        # Our own workloads are bucketed.
        ours = prom.query(f'{unbucketed}{{{S.LABEL_WORKLOAD}=~"chat|chat-otel"}}')
        assert ours and all(float(r["value"][1]) == 0.0 for r in ours)
