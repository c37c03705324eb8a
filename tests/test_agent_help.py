"""The sender's HELP (OTLP description) is what the agent exposes for foreign metrics."""

from __future__ import annotations

from gemini_slo.agent.exposition import StoreCollector
from gemini_slo.agent.store import Store
from gemini_slo.agent.testing import histogram_metric, otlp_request
from gemini_slo.contract import signals as S
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

#: What opentelemetry-instrumentation-google-genai sends for a metric the contract has not.
NAME = "gen_ai.client.operation.time_per_output_chunk"
DESCRIPTION = "Time per output chunk, recorded for each chunk received after the first one."


def _helps(store: Store) -> dict[str, str]:
    """HELP per family, from the agent's fast renderer and from prometheus_client's."""
    collector = StoreCollector(store)
    fast = {
        f.name: f.documentation for f in text_string_to_metric_families(collector.render().decode())
    }
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    slow = {
        f.name: f.documentation
        for f in text_string_to_metric_families(generate_latest(registry).decode())
    }
    assert fast == slow
    return fast


def test_foreign_metric_keeps_the_senders_help() -> None:
    """A metric outside the contract is exposed with its own description, newlines escaped."""
    store = Store()
    metric = histogram_metric(NAME, {}, [0.1], [1, 0], 0.05)
    metric.description = DESCRIPTION + "\nSecond line."
    store.ingest(otlp_request([metric]))
    helps = _helps(store)
    assert helps[S.prometheus_name(NAME, "s", S.Kind.HISTOGRAM)] == DESCRIPTION + "\nSecond line."


def test_contract_metric_keeps_the_contracts_help() -> None:
    """A contract signal has one HELP whoever sends it first (the official emitter's
    "Duration of GenAI client operation" does not replace it): exposition is deterministic."""
    store = Store()
    metric = histogram_metric(S.OPERATION_DURATION.name, {}, [0.1], [1, 0], 0.05)
    metric.description = "Duration of GenAI client operation"
    store.ingest(otlp_request([metric]))
    assert _helps(store)[S.OPERATION_DURATION.prometheus] == S.OPERATION_DURATION.description


def test_foreign_metric_without_description_gets_a_placeholder() -> None:
    """No description: a HELP naming the OTLP metric, never an empty line."""
    store = Store()
    store.ingest(otlp_request([histogram_metric("app.thing", {}, [0.1], [1, 0], 0.05)]))
    assert _helps(store)["app_thing_seconds"] == "OTLP metric app.thing"
