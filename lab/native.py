"""Prometheus 2.53 with native histograms, scraping one or more agents (scale-out path 2/3).

:class:`NativeStack` is the lab's :class:`~gemini_slo.lab.stack.Stack` with trixie's
Prometheus 2.53 (``tools/``, :mod:`gemini_slo.lab.tools`) run with
``--enable-feature=native-histograms``, so that it asks the agents for the protobuf
exposition and stores their merged exponential histograms as native histograms.
``scrape_protocols`` (Prometheus' own names, e.g. ``["OpenMetricsText1.0.0"]``) pins the
format a scrape asks for; None leaves Prometheus' default order.

Each agent is a scrape target of its own, so its series carry its ``instance`` (the
target address): one agent per host or cluster, one Prometheus, one rule set, and
``sum by (...)`` over the agents in every rule and panel.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gemini_slo.contract import signals
from gemini_slo.contract.signals import Kind
from gemini_slo.lab import tools
from gemini_slo.lab.stack import (
    FullStack,
    Generated,
    Stack,
    StackError,
    free_port,
    start_agent,
)

#: The feature flag of Prometheus 2.x that turns native histograms on.
NATIVE_HISTOGRAMS_FLAG = "--enable-feature=native-histograms"
#: The series that exist only as native histograms (the exponential twins' names).
NATIVE_SERIES: tuple[str, ...] = tuple(
    sig.prometheus
    for sig in signals.INSTRUMENTATION_SIGNALS
    if sig.kind is Kind.EXPONENTIAL_HISTOGRAM
)


def mentions_native(expr: str) -> bool:
    """Whether a PromQL expression reads a native histogram (the bare name, no suffix)."""
    return any(re.search(rf"\b{re.escape(name)}\b", expr) for name in NATIVE_SERIES)


class NativeStack(Stack):
    """Prometheus 2.53 with native histograms (and Alertmanager when asked)."""

    def __init__(
        self,
        scrape_targets: Sequence[str],
        *,
        scrape_protocols: Sequence[str] | None = None,
        **options: Any,
    ) -> None:
        options.setdefault("alertmanager", False)
        super().__init__(scrape_targets, **options)
        self.scrape_protocols = list(scrape_protocols) if scrape_protocols else None

    def _find_engines(self) -> None:
        if tools.find_tool("prometheus-2.53") is None:
            raise StackError(f"prometheus 2.53 not found: {tools.INSTALL_HINT}")

    def _start_engines(self, alertmanager: str | None, timeout: float) -> None:
        binary = tools.find_tool("prometheus-2.53")
        if binary is None:
            raise StackError(f"prometheus 2.53 not found: {tools.INSTALL_HINT}")
        self._start_prometheus(binary, alertmanager)

    def _prometheus_config(self, alertmanager: str | None) -> dict[str, Any]:
        config = super()._prometheus_config(alertmanager)
        if self.scrape_protocols:
            for job in config["scrape_configs"]:
                job["scrape_protocols"] = self.scrape_protocols
        return config

    def _prometheus_flags(self) -> list[str]:
        return [NATIVE_HISTOGRAMS_FLAG]


class NativeFullStack(FullStack):
    """The lab's full system with Prometheus 2.53 and native histograms in place of 2.42.

    Emulator, agent, loads and the generated rules as in :class:`FullStack`; the agent is
    scraped over protobuf, so the dashboards' native-histogram panels have data.
    """

    def __init__(self, workdir: Path, **options: Any) -> None:
        options["monitoring"] = True
        super().__init__(workdir, **options)

    def _start_pipeline(self, generated: Generated, timeout: float) -> None:
        prometheus_port = free_port()
        self.agent, self.otlp_url, self.metrics_address = start_agent(
            self.workdir,
            spec=self.spec_path,
            prometheus_url=f"http://127.0.0.1:{prometheus_port}",
        )
        self.stack = NativeStack(
            [self.metrics_address],
            rule_files=generated.rule_files,
            workdir=self.workdir / "monitoring",
            prometheus_port=prometheus_port,
        )
        self.stack.start(timeout)
        self.agent.wait_ready(timeout)
