"""What one OTLP export may hold, agreed between the app's exporter and the agent.

The agent refuses a request over these whole (413); the app's exporter splits a collection
into bodies below them, so both sides read the numbers from here and cannot drift apart.
The reasons for each value are in docs/agent.md (the agent's limits) and
docs/instrumentation.md (how the app keeps below them).
"""

from __future__ import annotations

__all__ = ["CARDINALITY_LIMIT", "MAX_REQUEST_BYTES", "MAX_REQUEST_POINTS"]

MAX_REQUEST_BYTES = 8 * 1024 * 1024
"""Largest request body, uncompressed (and so also the most a gzip body may inflate to)."""

MAX_REQUEST_POINTS = 50_000
"""Most data points in one request: the OpenTelemetry SDK's default cardinality limit
(:data:`CARDINALITY_LIMIT`) times the contract's signals, with room to spare."""

CARDINALITY_LIMIT = 2_000
"""Distinct attribute sets a metric keeps before folding the rest into an overflow series
(``otel.metric.overflow=true``): the OpenTelemetry SDK's default cardinality limit."""
