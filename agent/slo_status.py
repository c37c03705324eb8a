"""Each workload's objectives, measured from what the agent has merged.

Two time frames, both documented in docs/agent.md:

* **met / current values**: the last 5 minutes (``CURRENT_WINDOW``, the agent's
  ``current_window``) of the agent's sliding windows (percentiles from the merged
  exponential histograms, ratios and rates from the merged counters), or the current value
  of gauges (utilization);
* **error budget remaining**: the agent's lifetime, ``1 - bad_fraction / budget``, i.e.
  the share of the budget left if the period went on as the agent has seen it so far.

A workload with no call finished in the current window and none in flight has **no
traffic**: its objectives are neither met nor failed (``met`` is ``None``, ``state`` is
``"no traffic"``), because a rate or a utilization of an idle workload measures the
absence of work, not the service it gets.

The agent is not a time-series database: Prometheus recording rules over the exposed
series are the source of truth for burn rates and the period's budget; these are a
quick, dependency-free view (``gemini-slo status``) and series dashboards can show.
A value that cannot be measured (no calls yet) is ``None`` in JSON and absent from
``/metrics``, never a made-up 0.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import Any

from gemini_slo.agent.batch_status import batch_counts, batch_objectives
from gemini_slo.agent.bucketing import threshold_bucketed
from gemini_slo.agent.display import UNBUCKETED
from gemini_slo.agent.exponential import ExpHistogram
from gemini_slo.agent.store import Store
from gemini_slo.agent.windows import percentile_or_nan
from gemini_slo.contract import agent_series, signals
from gemini_slo.contract.alert_names import UNPRICED_SHARE_MAX
from gemini_slo.contract.durations import parse_duration
from gemini_slo.contract.signals import Kind, Mode, Outcome
from gemini_slo.contract.spec import Objective, ObjectiveKind, SloSpec, Workload
from prometheus_client.metrics_core import Metric

#: The default time frame of current values and ``met``.
CURRENT_WINDOW = "5m"

#: An objective's ``state`` in /api/slo, beside ``met``.
STATE_MET = "met"
STATE_NOT_MET = "not met"
STATE_NO_DATA = "no data"  # the workload has traffic, this objective has nothing to measure
STATE_NO_TRAFFIC = "no traffic"  # the workload is idle: neither met nor failed
#: The incoming histogram has no bucket boundary at the objective's threshold and the agent
#: cannot measure it otherwise: the SLI cannot be counted (agent/bucketing.py).
STATE_UNBUCKETED = UNBUCKETED
#: A cost objective while more than alert_names.UNPRICED_SHARE_MAX of the calls are unpriced:
#: those calls cost $0, so the objective is neither met nor failed (never met by $0).
STATE_UNPRICED = "unpriced calls"

_CALLS = signals.CALLS.name
_TOKENS = signals.TOKENS.name
_COST = signals.COST.name
_UNPRICED = signals.UNPRICED_CALLS.name
_DURATION = signals.OPERATION_DURATION_EXPONENTIAL.name
_TTFT = signals.TIME_TO_FIRST_CHUNK_EXPONENTIAL.name

_HELP = {
    agent_series.AGENT_OBJECTIVE_TARGET: "Target ratio of an SLO objective (1 for floors and ceilings).",
    agent_series.AGENT_OBJECTIVE_THRESHOLD: "Threshold of an SLO objective in its own unit "
    "(seconds, ratio, tokens/s, USD per 1M tokens).",
    agent_series.AGENT_OBJECTIVE_MET: "1 when the objective is met over the agent's current "
    "window (5m by default), 0 when not; absent without data and while the workload has no traffic.",
    agent_series.AGENT_ERROR_BUDGET_REMAINING: "Share of the error budget left at the bad-event rate "
    "the agent has seen since it started (may go negative); Prometheus rules are the source "
    "of truth over the SLO period.",
    agent_series.AGENT_OBJECTIVE_THRESHOLD_UNBUCKETED: "1 when the incoming histogram of a "
    "latency or TTFT objective has no bucket boundary at its threshold (its SLI cannot be "
    "counted: use gemini_slo.instrumentation.otel_views), 0 when it has; absent before data.",
}

_RATIO_OUTCOMES: dict[ObjectiveKind, tuple[Outcome, ...]] = {
    ObjectiveKind.AVAILABILITY: signals.FAILED_OUTCOMES,  # measured as 1 - this share
    ObjectiveKind.ERROR_RATIO: signals.FAILED_OUTCOMES,
    ObjectiveKind.TIMEOUT_RATIO: (Outcome.TIMEOUT,),
    ObjectiveKind.SHED_RATIO: (Outcome.REJECTED,),
    ObjectiveKind.RATE_LIMITED_RATIO: (Outcome.RATE_LIMITED,),
}


def _finite(value: float | None) -> float | None:
    if value is None or math.isnan(value) or math.isinf(value):
        return None
    return value


class SloStatus:
    """Evaluates a spec against a store (``spec=None``: no workloads, empty status).

    ``window`` is the time frame of current values and ``met``; it must fit in the
    store's sliding windows (at most the longest of them).
    """

    def __init__(self, spec: SloSpec | None, store: Store, window: str = CURRENT_WINDOW) -> None:
        if parse_duration(window) > store.windows.longest:
            raise ValueError(
                f"current window {window} is longer than the agent keeps "
                f"({', '.join(store.windows.windows)})"
            )
        self.spec = spec
        self.store = store
        self.window = window
        self.started = time.time()

    # ---- measurements -----------------------------------------------------------------

    def _histogram(self, metric: str, workload: str, window: str | None) -> ExpHistogram:
        windows = self.store.windows
        merged = ExpHistogram(20)
        with self.store.lock:
            for key in windows.groups():
                if key[0] == metric and key[1] == workload:
                    part = (
                        windows.lifetime_histogram(key)
                        if window is None
                        else windows.histogram(key, window)
                    )
                    if part.count:
                        merged.merge(part, windows.max_buckets)
        return merged

    def _counter(
        self, metric: str, workload: str, window: str | None, subs: Iterable[str] | None = None
    ) -> float:
        windows = self.store.windows
        wanted = None if subs is None else set(subs)
        total = 0.0
        with self.store.lock:
            for key in windows.counter_keys():
                if key[0] == metric and key[1] == workload and (wanted is None or key[3] in wanted):
                    total += windows.counter(key, window)
        return total

    def percentile(self, metric: str, workload: str, q: float, window: str | None = None) -> float:
        """A percentile (seconds) over a window (default: the current one), across models; NaN if no data."""
        return percentile_or_nan(self._histogram(metric, workload, window or self.window), q)

    def percentiles(
        self, metric: str, workload: str, qs: Iterable[float], window: str | None = None
    ) -> tuple[float, ...]:
        """Several percentiles from one merge of the workload's histograms (NaN if no data)."""
        hist = self._histogram(metric, workload, window or self.window)
        return tuple(hist.quantile(q) if hist.count else math.nan for q in qs)

    def has_traffic(self, workload: str, window: str | None = None) -> bool:
        """True when a call finished in the window (default: the current one) or is in flight."""
        if self._counter(_CALLS, workload, window or self.window) > 0:
            return True
        in_flight = self.store.gauge_total(signals.REQUESTS_IN_FLIGHT.name, workload)
        return bool(in_flight and in_flight > 0)

    def call_ratio(self, workload: str, outcomes: Iterable[str], window: str | None) -> float:
        """Share of calls with one of ``outcomes``; NaN without calls."""
        total = self._counter(_CALLS, workload, window)
        if total <= 0:
            return math.nan
        return self._counter(_CALLS, workload, window, outcomes) / total

    def calls_per_second(self, workload: str, window: str) -> float:
        """Calls finished per second over a window; NaN before the window has a length."""
        elapsed = self.store.windows.elapsed(window)
        return self._counter(_CALLS, workload, window) / elapsed if elapsed > 0 else math.nan

    def tokens_per_second(self, workload: str, window: str) -> float:
        """Generated (output + thoughts) tokens per second over a window; NaN before data."""
        generated = self._counter(
            _TOKENS, workload, window, [t.value for t in signals.GENERATED_TOKEN_TYPES]
        )
        elapsed = self.store.windows.elapsed(window)
        return generated / elapsed if elapsed > 0 else math.nan

    def cost_per_million(self, workload: str, window: str | None) -> float:
        """USD per 1M billable tokens over a window; NaN without tokens."""
        tokens = self._counter(
            _TOKENS, workload, window, [t.value for t in signals.BILLABLE_TOKEN_TYPES]
        )
        if tokens <= 0:
            return math.nan
        return self._counter(_COST, workload, window) / tokens * 1e6

    def unpriced(self, workload: str, window: str | None) -> dict[str, float]:
        """Share of the workload's calls that were unpriced, per request model (models
        with none left out); empty without calls."""
        total = self._counter(_CALLS, workload, window)
        if total <= 0:
            return {}
        windows = self.store.windows
        by_model: dict[str, float] = {}
        with self.store.lock:
            for key in windows.counter_keys():
                if key[0] == _UNPRICED and key[1] == workload:
                    n = windows.counter(key, window)
                    if n > 0:
                        by_model[key[3]] = by_model.get(key[3], 0.0) + n / total
        return dict(sorted(by_model.items(), key=lambda kv: -kv[1]))

    def cost_unjudged(self, workload: Workload, objective: Objective, window: str | None) -> bool:
        """True for a cost objective while too many calls are unpriced to judge it."""
        if objective.kind is not ObjectiveKind.COST_PER_MILLION_TOKENS:
            return False
        return sum(self.unpriced(workload.name, window).values()) > UNPRICED_SHARE_MAX

    def utilization(self, workload: str) -> float:
        """Current in-flight / concurrency limit, summed over instances; NaN if unknown."""
        in_flight = self.store.gauge_total(signals.REQUESTS_IN_FLIGHT.name, workload)
        limit = self.store.gauge_total(signals.CONCURRENCY_LIMIT.name, workload)
        if in_flight is None or not limit:
            return math.nan
        return in_flight / limit

    def stall_seconds(self, workload: str) -> float:
        """Seconds since generated tokens last grew while calls are in flight (0 when idle)."""
        in_flight = self.store.gauge_total(signals.REQUESTS_IN_FLIGHT.name, workload) or 0.0
        if in_flight <= 0:
            return 0.0
        windows = self.store.windows
        with self.store.lock:
            last = max(
                (
                    t
                    for k, t in windows.changed.items()
                    if k[0] == _TOKENS
                    and k[1] == workload
                    and k[3] in {x.value for x in signals.GENERATED_TOKEN_TYPES}
                ),
                default=windows.started,
            )
        return windows.clock() - last

    def _queue_wait_buckets(self, workload: str) -> dict[float, int]:
        """The merged classic queue-wait histogram (agent lifetime): count by upper bound."""
        buckets: dict[float, int] = {}
        with self.store.lock:
            for family in self.store.families.values():
                if family.otel_name != signals.QUEUE_WAIT.name or family.kind is not Kind.HISTOGRAM:
                    continue
                for labels, series in family.series.items():
                    if dict(labels).get(signals.LABEL_WORKLOAD) != workload or not series.bounds:
                        continue
                    for bound, c in zip((*series.bounds, math.inf), series.buckets, strict=True):
                        buckets[bound] = buckets.get(bound, 0) + c
        return buckets

    def queue_wait_percentile(self, workload: str, q: float) -> float:
        """Queue-wait percentile from the merged classic histogram (agent lifetime)."""
        return _classic_quantile(self._queue_wait_buckets(workload), q)

    def measure(self, workload: Workload, objective: Objective, window: str | None) -> float:
        """The value ``objective.is_met`` is applied to (see contract/spec.py's table)."""
        kind = objective.kind
        name = workload.name
        q = objective.percentile or 0.0
        if kind is ObjectiveKind.LATENCY:
            return self.percentile(_DURATION, name, q, window)
        if kind is ObjectiveKind.TTFT:
            return self.percentile(_TTFT, name, q, window)
        if kind is ObjectiveKind.QUEUE_WAIT:
            return self.queue_wait_percentile(name, q)
        if kind in _RATIO_OUTCOMES:
            bad = self.call_ratio(name, _RATIO_OUTCOMES[kind], window)
            return 1.0 - bad if kind is ObjectiveKind.AVAILABILITY else bad
        if kind in (ObjectiveKind.HEADROOM, ObjectiveKind.UTILIZATION):
            return self.utilization(name)
        if kind is ObjectiveKind.TOKENS_PER_SECOND:
            return self.tokens_per_second(name, window or self.window)
        if kind is ObjectiveKind.COST_PER_MILLION_TOKENS:
            return self.cost_per_million(name, window)
        if kind is ObjectiveKind.STALL:
            return self.stall_seconds(name)
        return math.nan

    def events(self, workload: Workload, objective: Objective) -> tuple[float, float] | None:
        """(bad, all) events of an event-ratio objective over the agent's lifetime.

        None for objectives that are not event ratios (floors and ceilings). Latency and
        TTFT count calls above the threshold in the merged exponential histograms; queue
        waits count the classic histogram's buckets above the threshold (a boundary).
        """
        kind = objective.kind
        if kind in (ObjectiveKind.LATENCY, ObjectiveKind.TTFT):
            metric = _DURATION if kind is ObjectiveKind.LATENCY else _TTFT
            hist = self._histogram(metric, workload.name, None)
            total = float(hist.count)
            if not total:
                return 0.0, 0.0
            return total * (1.0 - hist.fraction_at_or_below(objective.threshold)), total
        if kind is ObjectiveKind.QUEUE_WAIT:
            buckets = self._queue_wait_buckets(workload.name)
            total = float(sum(buckets.values()))
            good = sum(c for b, c in buckets.items() if b <= objective.threshold * (1 + 1e-9))
            return total - good, total
        if kind in _RATIO_OUTCOMES:
            total = self._counter(_CALLS, workload.name, None)
            return self._counter(_CALLS, workload.name, None, _RATIO_OUTCOMES[kind]), total
        return None

    def budget_remaining(self, workload: Workload, objective: Objective) -> float:
        """``1 - bad_fraction / budget`` over the agent's lifetime; NaN without data."""
        budget = objective.budget
        counted = self.events(workload, objective)
        if budget is None or budget <= 0 or counted is None or counted[1] <= 0:
            return math.nan
        bad, total = counted
        return 1.0 - max(bad / total, 0.0) / budget

    # ---- outputs ----------------------------------------------------------------------

    def current(self, workload: Workload, objective: Objective, active: bool) -> float:
        """The objective's current value; NaN when ``active`` is False (no traffic)."""
        return self.measure(workload, objective, self.window) if active else math.nan

    def metrics(self) -> list[Metric]:
        """The gemini_slo_objective_* and error-budget series (for the collector)."""
        if self.spec is None:
            return []
        families = {name: Metric(name, help_text, "gauge") for name, help_text in _HELP.items()}
        for workload in self.spec.workloads:
            active = self.has_traffic(workload.name)
            for objective in workload.objectives:
                labels = {
                    signals.LABEL_WORKLOAD: workload.name,
                    signals.LABEL_MODE: workload.mode.value,
                    agent_series.LABEL_OBJECTIVE: objective.name,
                }
                families[agent_series.AGENT_OBJECTIVE_TARGET].add_sample(
                    agent_series.AGENT_OBJECTIVE_TARGET, labels, objective.target
                )
                families[agent_series.AGENT_OBJECTIVE_THRESHOLD].add_sample(
                    agent_series.AGENT_OBJECTIVE_THRESHOLD, labels, objective.threshold
                )
                value = self.current(workload, objective, active)
                if not math.isnan(value) and not self.cost_unjudged(
                    workload, objective, self.window
                ):
                    families[agent_series.AGENT_OBJECTIVE_MET].add_sample(
                        agent_series.AGENT_OBJECTIVE_MET, labels, float(objective.is_met(value))
                    )
                remaining = self.budget_remaining(workload, objective)
                if not math.isnan(remaining):
                    families[agent_series.AGENT_ERROR_BUDGET_REMAINING].add_sample(
                        agent_series.AGENT_ERROR_BUDGET_REMAINING, labels, remaining
                    )
                bucketed = threshold_bucketed(self.store, workload.name, objective)
                if bucketed is not None:
                    families[agent_series.AGENT_OBJECTIVE_THRESHOLD_UNBUCKETED].add_sample(
                        agent_series.AGENT_OBJECTIVE_THRESHOLD_UNBUCKETED,
                        labels,
                        0.0 if bucketed else 1.0,
                    )
        return [m for m in families.values() if m.samples]

    def workload_status(self, workload: Workload) -> dict[str, Any]:
        """One workload's JSON status."""
        name = workload.name
        window = self.window
        active = self.has_traffic(name)
        out: dict[str, Any] = {
            "name": name,
            "mode": workload.mode.value,
            "models": list(workload.models),
            "window": window,
            "traffic": active,
        }
        failed = [o.value for o in signals.FAILED_OUTCOMES]
        bad = self.call_ratio(name, failed, window)
        out["availability"] = _finite(1.0 - bad)
        out["error_ratio"] = _finite(bad)
        out["timeout_ratio"] = _finite(self.call_ratio(name, [Outcome.TIMEOUT.value], window))
        out["calls_per_second"] = _finite(self.calls_per_second(name, window))
        if workload.mode is Mode.LATENCY:
            p50, p95, p99 = self.percentiles(_DURATION, name, (0.5, 0.95, 0.99))
            out["latency_seconds"] = {"p50": _finite(p50), "p95": _finite(p95), "p99": _finite(p99)}
            out["ttft_seconds"] = {"p95": _finite(self.percentile(_TTFT, name, 0.95))}
        else:
            out["tokens_per_second"] = {
                w: _finite(self.tokens_per_second(name, w)) if active else None
                for w in agent_series.AGENT_WINDOWS
            }
            out["cost_per_million_tokens"] = _finite(self.cost_per_million(name, window))
        unpriced = self.unpriced(name, window)
        out["unpriced"] = {"share": sum(unpriced.values()), "models": unpriced}
        out["utilization"] = _finite(self.utilization(name))
        objectives = []
        for objective in workload.objectives:
            value = self.current(workload, objective, active)
            met = None if math.isnan(value) else objective.is_met(value)
            bucketed = threshold_bucketed(self.store, name, objective)
            unjudged = active and self.cost_unjudged(workload, objective, window)
            if unjudged:
                met = None
            if not active:
                state = STATE_NO_TRAFFIC
            elif unjudged:
                state = STATE_UNPRICED
            elif met is None:
                state = STATE_UNBUCKETED if bucketed is False else STATE_NO_DATA
            else:
                state = STATE_MET if met else STATE_NOT_MET
            objectives.append(
                {
                    "name": objective.name,
                    "kind": objective.kind.value,
                    "summary": objective.summary,
                    "target": objective.target,
                    "threshold": objective.threshold,
                    "unit": objective.unit.value,
                    "comparison": objective.comparison.value,
                    "value": _finite(value),
                    "met": met,
                    "state": state,
                    "error_budget_remaining": _finite(self.budget_remaining(workload, objective)),
                    # False: no bucket boundary at the threshold in the incoming histogram
                    # (the rules cannot count it); None: not a histogram objective, or no data.
                    "threshold_bucketed": bucketed,
                }
            )
        out["objectives"] = objectives
        # Batch objectives: their own list (agent lifetime, their own "no batch jobs"
        # state), so that existing readers of "objectives" see what they always saw.
        batch: list[dict[str, Any]] = []
        if workload.batch is not None:
            batch = batch_objectives(
                workload.batch,
                batch_counts(self.store, name),
                met_state=STATE_MET,
                not_met_state=STATE_NOT_MET,
                no_data_state=STATE_NO_DATA,
            )
        out["batch"] = batch
        known = [o["met"] for o in (*objectives, *batch) if o["met"] is not None]
        out["healthy"] = all(known) if known else None
        return out

    def status(self) -> dict[str, Any]:
        """GET /api/slo."""
        return {
            "agent": {
                "uptime_seconds": round(time.time() - self.started, 3),
                "series": self.store.series_count(),
                "window": self.window,
                "budget_frame": "agent lifetime",
            },
            "spec": None
            if self.spec is None
            else {"source": self.spec.source, "period_days": self.spec.period_days},
            "workloads": []
            if self.spec is None
            else [self.workload_status(w) for w in self.spec.workloads],
        }


def _classic_quantile(buckets: dict[float, int], q: float) -> float:
    """histogram_quantile over classic buckets (non-cumulative counts by upper bound)."""
    total = sum(buckets.values())
    if total <= 0:
        return math.nan
    rank = q * total
    seen = 0
    lower = 0.0
    for bound in sorted(buckets):
        c = buckets[bound]
        if c and seen + c >= rank:
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * (rank - seen) / c
        seen += c
        lower = bound if not math.isinf(bound) else lower
    return lower
