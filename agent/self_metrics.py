"""The agent's own health, exposed beside the merged series on ``/metrics``.

Names carry the ``gemini_slo_agent_`` prefix; they are the agent's alone (rules and
dashboards read the application signals from :mod:`gemini_slo.instrumentation.signals`).
Plain counters in a mutable object rather than prometheus_client metrics: the agent's
collector emits them at scrape time with everything else, and there are no ``_created``
samples or global registries to worry about.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

PREFIX = "gemini_slo_agent_"

RECEIVED_REQUESTS = PREFIX + "received_requests_total"
"""Export requests received, by ``encoding`` (protobuf, json) and ``outcome``."""
RECEIVED_POINTS = PREFIX + "received_points_total"
"""Data points received (accepted or not), by ``encoding``."""
REJECTED_REQUESTS = PREFIX + "rejected_requests_total"
"""Export requests refused as a whole, by ``reason`` (malformed, too_large, ...)."""
REJECTED_POINTS = PREFIX + "rejected_points_total"
"""Data points refused inside an accepted request (partial success), by ``reason``."""
OVERFLOW_POINTS = PREFIX + "overflow_points_total"
"""Points folded into a metric's overflow series (cardinality limit), by ``metric``."""
OVERFLOW_SERIES = PREFIX + "overflow_series"
"""Distinct label sets currently folded into overflow series."""
SERIES = PREFIX + "series"
"""Active merged series in the store."""
INSTANCES = PREFIX + "instances"
"""Active per-instance states (series x instances) behind the merged series."""
EXPIRED_SERIES = PREFIX + "expired_series_total"
"""Merged series dropped after stale_after without updates."""
SCRAPE_DURATION = PREFIX + "scrape_duration_seconds"
"""Time spent producing /metrics (histogram; the current scrape is not in it yet)."""

SCRAPE_BUCKETS: tuple[float, ...] = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass(slots=True)
class SelfMetrics:
    """Mutable counters; updated under the store's lock or from the event loop thread."""

    requests: Counter[tuple[str, str]] = field(default_factory=Counter)  # (encoding, outcome)
    points: Counter[str] = field(default_factory=Counter)  # encoding
    rejected_requests: Counter[str] = field(default_factory=Counter)  # reason
    rejected_points: Counter[str] = field(default_factory=Counter)  # reason
    overflow_points: Counter[str] = field(default_factory=Counter)  # metric
    expired_series: int = 0
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
