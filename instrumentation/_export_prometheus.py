"""Export path 2: the registry as a Prometheus ``/metrics`` served by the app itself (no agent).

A prometheus_client collector reads the same registry at scrape time. Names are
``signal.prometheus`` and labels ``prometheus_label(attribute)``: exactly what the standard
OTLP-to-Prometheus translation gives behind the agent, so the same rules and dashboards
work. Only classic histograms are exposed: the exponential twins are left out (Prometheus
2.42 ingests native histograms only over protobuf scrapes).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gemini_slo.contract import signals as S
from gemini_slo.instrumentation._registry import Registry, group_by_signal
from gemini_slo.instrumentation._values import HistogramPoint
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

_TYPES = {
    S.Kind.COUNTER: "counter",
    S.Kind.UP_DOWN_COUNTER: "gauge",
    S.Kind.GAUGE: "gauge",
    S.Kind.HISTOGRAM: "histogram",
}


class RegistryCollector(Collector):
    """A prometheus_client collector over a gemini-slo :class:`Registry`.

    Register it into your own ``CollectorRegistry`` to expose the signals from an existing
    ``/metrics`` endpoint; ``serve()`` does it for you on a port of its own.
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def describe(self) -> list[Metric]:
        # No static description: the series appear with the first calls.
        return []

    def collect(self) -> Iterator[Metric]:
        for signal, points in group_by_signal(self.registry.collect()).items():
            typ = _TYPES.get(signal.kind)
            if typ is None:  # exponential histograms: not exposed here
                continue
            name = signal.prometheus
            family = Metric(
                name.removesuffix("_total") if typ == "counter" else name, signal.description, typ
            )
            for point in points:
                labels = {S.prometheus_label(k): v for k, v in point.attributes}
                value = point.value
                if isinstance(value, HistogramPoint):
                    for bound, cumulative in value.cumulative():
                        family.add_sample(
                            f"{name}_bucket", {**labels, "le": S.format_le(bound)}, cumulative
                        )
                    family.add_sample(f"{name}_count", labels, value.count)
                    family.add_sample(f"{name}_sum", labels, value.sum)
                elif typ == "counter":
                    family.add_sample(f"{family.name}_total", labels, float(value))  # type: ignore[arg-type]
                else:
                    family.add_sample(name, labels, float(value))  # type: ignore[arg-type]
            yield family


class PrometheusServer:
    """``/metrics`` on ``host:port`` for one registry (a daemon thread)."""

    def __init__(self, registry: Registry, port: int, host: str = "127.0.0.1") -> None:
        self.collector_registry = CollectorRegistry(auto_describe=False)
        self.collector_registry.register(RegistryCollector(registry))
        server: Any
        server, self._thread = start_http_server(port, addr=host, registry=self.collector_registry)
        self._server = server
        self.host = host
        self.port: int = server.server_address[1]

    def shutdown(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
