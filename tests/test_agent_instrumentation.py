"""The instrumentation's own OTLP exporter (gemini_slo.instrumentation.configure) through the agent.

An app process uses the public API (``configure``, ``observe``) exactly as a user would,
with the agent's URL as endpoint; the agent's scrape must show the contract's series with
the counts the app recorded, and the percentile series computed from its exponential
histograms.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from gemini_slo.agent.testing import running_agent
from gemini_slo.contract import agent_series, signals
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.slow

APP = textwrap.dedent(
    """
    import sys, time
    from gemini_slo.instrumentation import configure, flush, observe, shutdown

    configure(service_name="inst-app", endpoint=sys.argv[1], export_interval=60)

    @observe("chat", "latency", model="gemini-2.5-flash")
    def call(i):
        time.sleep(0.002 + (i % 5) * 0.001)
        if i % 10 == 9:
            raise TimeoutError("slow")
        return i

    for i in range(30):
        try:
            call(i)
        except TimeoutError:
            pass
    assert flush()
    shutdown()
    """
)


def test_instrumentation_exports_through_the_agent() -> None:
    """30 observed calls (3 timeouts) arrive as the contract's series, merged, with percentiles."""
    with running_agent() as agent:
        result = subprocess.run(
            [sys.executable, "-c", APP, agent.otlp_url + "/v1/metrics"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        text = agent.scrape()
        rejected = agent.store.self_metrics.rejected_points
    assert sum(rejected.values()) == 0, rejected
    calls: dict[str, float] = {}
    percentiles = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == signals.CALLS.prometheus:
                outcome = sample.labels[signals.LABEL_OUTCOME]
                calls[outcome] = calls.get(outcome, 0) + sample.value
                assert sample.labels[signals.LABEL_WORKLOAD] == "chat"
                assert sample.labels[signals.LABEL_MODE] == "latency"
            if sample.name == agent_series.AGENT_DURATION_PERCENTILE:
                percentiles.append(sample)
    assert calls == {"ok": 27, "timeout": 3}
    assert signals.OPERATION_DURATION.prometheus + "_bucket" in text
    assert percentiles, "no percentile series from the exponential histograms"
    p50 = next(
        s.value for s in percentiles if s.labels["quantile"] == "0.5" and s.labels["window"] == "5m"
    )
    assert 0.002 <= p50 < 0.05
