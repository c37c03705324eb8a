"""Names of the series the agent computes itself, beside the application signals it merges.

The application signals are in :mod:`gemini_slo.contract.signals`; these are the agent's:
sliding-window percentiles, the spec's objectives as series, and its own health
(``gemini_slo_agent_*``). They are Prometheus names already (no OTLP translation applies),
and the dashboards, the rules and ``/api/slo`` read them from here.
"""

from __future__ import annotations

from gemini_slo.contract import signals

# Sliding-window percentiles and objectives.

#: Label of the agent's percentile gauges: "0.5", "0.9", "0.95", "0.99", "0.999".
LABEL_QUANTILE = "quantile"
#: Label of the agent's sliding windows: "1m", "5m".
LABEL_WINDOW = "window"
#: Label naming an objective of the spec (see gemini_slo.contract.spec).
LABEL_OBJECTIVE = "objective"

AGENT_QUANTILES: tuple[float, ...] = (0.5, 0.9, 0.95, 0.99, 0.999)
AGENT_WINDOWS: tuple[str, ...] = ("1m", "5m")

#: Percentiles of end-to-end duration per workload and model, from the merged exponential
#: histograms of every instance. Labels: workload, mode, request model, quantile, window.
AGENT_DURATION_PERCENTILE = "gemini_slo_client_operation_duration_percentile_seconds"
#: Percentiles of time to first chunk, same labels.
AGENT_TTFT_PERCENTILE = "gemini_slo_client_operation_time_to_first_chunk_percentile_seconds"
#: Per objective of the spec: the target ratio (e.g. 0.95 for "95% under 500 ms"; 1 for
#: floor/ceiling objectives). Labels: workload, mode, objective.
AGENT_OBJECTIVE_TARGET = "gemini_slo_objective_target_ratio"
#: Per objective: its threshold in the objective's own unit (seconds, tokens/s, USD per 1M
#: tokens, a utilization ratio). Labels: workload, mode, objective.
AGENT_OBJECTIVE_THRESHOLD = "gemini_slo_objective_threshold"
#: Per objective: 1 when currently met, 0 when not. Labels: workload, mode, objective.
AGENT_OBJECTIVE_MET = "gemini_slo_objective_met"
#: Per objective with an error budget: the fraction of the period's budget left (may go
#: negative). Labels: workload, mode, objective.
AGENT_ERROR_BUDGET_REMAINING = "gemini_slo_error_budget_remaining_ratio"
#: Per latency/TTFT objective whose histogram has arrived: 1 when the incoming explicit
#: buckets have no boundary at its threshold (the SLI cannot be counted: a foreign emitter
#: without gemini_slo.instrumentation.otel_views), 0 when they have. Labels: workload,
#: mode, objective.
AGENT_OBJECTIVE_THRESHOLD_UNBUCKETED = "gemini_slo_objective_threshold_unbucketed"
#: How the agent's /api/slo, its page, `gemini-slo status` and the dashboard name that state.
UNBUCKETED_STATE = "no bucket at the threshold"

#: Exponential histograms the agent turns into percentile gauges: OTel name -> gauge name.
PERCENTILE_METRICS: dict[str, str] = {
    signals.OPERATION_DURATION_EXPONENTIAL.name: AGENT_DURATION_PERCENTILE,
    signals.TIME_TO_FIRST_CHUNK_EXPONENTIAL.name: AGENT_TTFT_PERCENTILE,
}
#: The HELP text of each percentile gauge.
PERCENTILE_HELP: dict[str, str] = {
    AGENT_DURATION_PERCENTILE: "Percentiles of end-to-end GenAI call duration per "
    "workload and model over a sliding window, from the merged exponential histograms of "
    "every instance (calls without error.type).",
    AGENT_TTFT_PERCENTILE: "Percentiles of time to first chunk per workload and model "
    "over a sliding window, from the merged exponential histograms (calls without error.type).",
}

# The mode advisor (gemini_slo.agent.advice; /api/advice, gemini-slo advise).

#: Label of the advisor's series: the mode the workload declares (spec, else its mode label).
LABEL_DECLARED = "declared"
#: Label of the advisor's series: the verdict (latency, throughput, hybrid, unknown).
LABEL_OBSERVED = "observed"
#: The window the agent's advisor series are computed over.
ADVICE_WINDOW = "1h"
#: 1 per observed workload, with its declared and observed mode as labels.
#: Labels: workload, declared, observed.
ADVICE_MODE = "gemini_slo_advice_mode"
#: The verdict's score: -1 (every figure says latency) to +1 (every one says throughput).
#: Labels: workload.
ADVICE_SCORE = "gemini_slo_advice_score"
#: 1 when the declared mode contradicts the verdict (a hybrid contradicts both), else 0.
#: Labels: workload.
ADVICE_MISMATCH = "gemini_slo_advice_mismatch"

# The agent's own health.
AGENT_PREFIX = "gemini_slo_agent_"

RECEIVED_REQUESTS = AGENT_PREFIX + "received_requests_total"
"""Export requests received, by ``encoding`` (protobuf, json) and ``outcome``."""
RECEIVED_POINTS = AGENT_PREFIX + "received_points_total"
"""Data points received (accepted or not), by ``encoding``."""
REJECTED_REQUESTS = AGENT_PREFIX + "rejected_requests_total"
"""Export requests refused as a whole, by ``reason`` (malformed, too_large, ...)."""
REJECTED_POINTS = AGENT_PREFIX + "rejected_points_total"
"""Data points refused inside an accepted request (partial success), by ``reason``."""
OVERFLOW_POINTS = AGENT_PREFIX + "overflow_points_total"
"""Points folded into a metric's overflow series (cardinality limit), by ``metric``."""
OVERFLOW_SERIES = AGENT_PREFIX + "overflow_series"
"""Distinct label sets currently folded into overflow series."""
SERIES = AGENT_PREFIX + "series"
"""Active merged series in the store."""
INSTANCES = AGENT_PREFIX + "instances"
"""Active per-instance states (series x instances) behind the merged series."""
EXPIRED_SERIES = AGENT_PREFIX + "expired_series_total"
"""Merged series dropped after stale_after without updates."""
SCRAPE_DURATION = AGENT_PREFIX + "scrape_duration_seconds"
"""Time spent producing /metrics (histogram; the current scrape is not in it yet)."""
CONNECTIONS = AGENT_PREFIX + "connections"
"""Open client connections, by ``listener`` (otlp, metrics)."""
REFUSED_CONNECTIONS = AGENT_PREFIX + "refused_connections_total"
"""Connections answered 503 and closed at once: the listener held its cap, by ``listener``."""
TRUNCATED_LABELS = AGENT_PREFIX + "truncated_labels_total"
"""Label sets cut to the limits: names or values to their length (once per distinct label
set), or a point's attributes beyond 128 dropped (each point)."""
WINDOW_GROUPS = AGENT_PREFIX + "window_groups"
"""Aggregates the 1m/5m windows track, by ``kind`` (histogram, counter)."""
WINDOW_UNTRACKED = AGENT_PREFIX + "window_untracked_increments_total"
"""Increments the 1m/5m windows could not track (their group limit reached), by ``kind``."""
STATE_WRITES = AGENT_PREFIX + "state_writes_total"
"""Writes of the ``--state-file``, by ``outcome`` (ok, error)."""
SUPPRESSED_LOG_LINES = AGENT_PREFIX + "suppressed_log_lines_total"
"""Log lines not written because their kind was rate-limited (a storm of errors)."""

SCRAPE_BUCKETS: tuple[float, ...] = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
