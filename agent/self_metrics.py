"""The agent's own health, exposed beside the merged series on ``/metrics``.

The names (``gemini_slo_agent_*``) are in :mod:`gemini_slo.contract.agent_series` (rules and
dashboards read the application signals from :mod:`gemini_slo.contract.signals`).
Plain counters in a mutable object rather than prometheus_client metrics: the agent's
collector emits them at scrape time with everything else, and there are no ``_created``
samples or global registries to worry about.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from gemini_slo.contract.agent_series import SCRAPE_BUCKETS


@dataclass(slots=True)
class SelfMetrics:
    """Mutable counters, each written by one thread only: the event loop (refusals), an
    ingest worker under the store's lock (points), or the read worker (scrapes, state)."""

    requests: Counter[tuple[str, str]] = field(default_factory=Counter)  # (encoding, outcome)
    points: Counter[str] = field(default_factory=Counter)  # encoding
    rejected_requests: Counter[str] = field(default_factory=Counter)  # reason
    rejected_points: Counter[str] = field(default_factory=Counter)  # reason
    overflow_points: Counter[str] = field(default_factory=Counter)  # metric
    expired_series: int = 0
    state_writes: Counter[str] = field(default_factory=Counter)  # outcome
    # Refreshed by the server before each scrape (from its listeners and log limiter).
    connections: dict[str, int] = field(default_factory=dict)  # listener
    refused_connections: dict[str, int] = field(default_factory=dict)  # listener
    suppressed_log_lines: int = 0
    scrape_buckets: list[int] = field(default_factory=lambda: [0] * (len(SCRAPE_BUCKETS) + 1))
    scrape_sum: float = 0.0

    def observe_scrape(self, seconds: float) -> None:
        """Record one /metrics scrape duration."""
        self.scrape_sum += seconds
        for i, bound in enumerate(SCRAPE_BUCKETS):
            if seconds <= bound:
                self.scrape_buckets[i] += 1
                return
        self.scrape_buckets[-1] += 1
