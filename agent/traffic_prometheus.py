"""Prometheus as the advisor's source: the same :class:`~gemini_slo.agent.traffic.Observed`, from PromQL.

For ``gemini-slo advise --prometheus URL``, when the series live in Prometheus (behind the
agent, an OpenTelemetry Collector or Prometheus' own OTLP receiver) and the window is
longer than the agent keeps. Instant queries at the window's end give each shape's
increases and histograms over ``[window]``; range queries over the window with ``step``
give the per-step calls, in-flight, limit and p95 the agent's recorder keeps in its
frames. Series without ``gemini_slo_workload`` (another instrumentation) are grouped by
``job`` (the service, behind a collector) and model, as the agent groups them.

Every name and label comes from ``contract/signals.py``; percentiles are computed here from
the bucket counts with the same interpolation as the agent's, so that both sources give
the rules the same figures.
"""

from __future__ import annotations

import json
import math
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from gemini_slo.agent.traffic import (
    MIN_STEP_CALLS,
    Extras,
    Hist,
    Observed,
    ShapeKey,
    Step,
    Tally,
    WorkloadInput,
    foreign_name,
)
from gemini_slo.contract import signals as S
from gemini_slo.contract.durations import format_duration
from gemini_slo.contract.signals import Outcome

WL, MODE, MODEL, OP = S.LABEL_WORKLOAD, S.LABEL_MODE, S.LABEL_MODEL, S.LABEL_OPERATION
JOB = "job"
SHAPE = f"{WL}, {MODE}, {MODEL}, {OP}, {JOB}"
_OK = f'{S.LABEL_ERROR_TYPE}=""'

Query = Callable[[str, dict[str, str]], Any]


class PrometheusError(RuntimeError):
    """Prometheus could not be queried, or answered an error."""


def http_query(base_url: str, timeout: float = 30.0) -> Query:
    """A function calling Prometheus' HTTP API (``/api/v1/<endpoint>``) at ``base_url``."""

    def call(endpoint: str, params: dict[str, str]) -> Any:
        url = f"{base_url.rstrip('/')}/api/v1/{endpoint}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                body = json.loads(response.read())
        except (OSError, ValueError) as exc:
            raise PrometheusError(f"{url}: {exc}") from exc
        if body.get("status") != "success":
            raise PrometheusError(f"{url}: {body.get('error', body)}")
        return body["data"]["result"]

    return call


def _shape(labels: dict[str, str]) -> ShapeKey:
    workload = labels.get(WL, "")
    return ShapeKey(
        workload,
        labels.get(MODE, ""),
        labels.get(MODEL, ""),
        labels.get(OP, ""),
        "" if workload else labels.get(JOB, ""),
    )


def _owner(labels: dict[str, str]) -> str:
    workload = labels.get(WL, "")
    return workload or foreign_name(labels.get(JOB, ""), labels.get(MODEL, ""))


def _value(sample: dict[str, Any]) -> float:
    v = float(sample["value"][1])
    return v if math.isfinite(v) else 0.0


class _Reader:
    def __init__(self, query: Query, window: str, step: str, now: float, seconds: float) -> None:
        self.query = query
        self.window = window
        self.step = step
        self.now = now
        self.seconds = seconds

    def instant(self, expr: str) -> list[dict[str, Any]]:
        return list(self.query("query", {"query": expr, "time": f"{self.now:.3f}"}))

    def series(self, expr: str) -> list[dict[str, Any]]:
        return list(
            self.query(
                "query_range",
                {
                    "query": expr,
                    "start": f"{self.now - self.seconds:.3f}",
                    "end": f"{self.now:.3f}",
                    "step": self.step,
                },
            )
        )

    def by_shape(self, expr: str, sub: str | None = None) -> dict[ShapeKey, dict[str, float]]:
        out: dict[ShapeKey, dict[str, float]] = {}
        for sample in self.instant(expr):
            labels = sample["metric"]
            key = labels.get(sub, "") if sub else ""
            into = out.setdefault(_shape(labels), {})
            into[key] = into.get(key, 0.0) + _value(sample)
        return out

    def buckets(self, metric: str, matchers: str, by: str) -> dict[Any, dict[float, float]]:
        expr = f"sum by ({by}, le) (increase({metric}_bucket{{{matchers}}}[{self.window}]))"
        out: dict[Any, dict[float, float]] = {}
        for sample in self.instant(expr):
            labels = sample["metric"]
            key = _shape(labels) if by == SHAPE else labels.get(by, "")
            le = float(labels["le"])
            cumulative = out.setdefault(key, {})
            cumulative[le] = cumulative.get(le, 0.0) + _value(sample)
        return {k: _decumulate(v) for k, v in out.items()}


def _decumulate(cumulative: dict[float, float]) -> dict[float, float]:
    out: dict[float, float] = {}
    previous = 0.0
    for le in sorted(cumulative):
        out[le] = max(0.0, cumulative[le] - previous)
        previous = max(previous, cumulative[le])
    return out


def observe(
    query: Query,
    window: str,
    *,
    seconds: float,
    step: float | None = None,
    now: float | None = None,
) -> Observed:
    """What Prometheus holds over the last ``window`` (``seconds`` long)."""
    step_s = step or max(15.0, seconds / 60)
    r = _Reader(query, window, format_duration(round(step_s)), now or time.time(), seconds)
    w = window
    calls = r.by_shape(f"sum by ({SHAPE}, {S.LABEL_OUTCOME}) (increase({S.CALLS.prometheus}[{w}]))",
                       S.LABEL_OUTCOME)  # fmt: skip
    # Other instrumentations have no calls counter: their duration histogram counts calls.
    for sample in r.instant(
        f"sum by ({SHAPE}, {S.LABEL_ERROR_TYPE}) "
        f'(increase({S.OPERATION_DURATION.prometheus}_count{{{WL}=""}}[{w}]))'
    ):
        error = sample["metric"].get(S.LABEL_ERROR_TYPE, "")
        outcome = (
            Outcome.OK if not error else Outcome.RATE_LIMITED if error == "429" else Outcome.ERROR
        )
        into = calls.setdefault(_shape(sample["metric"]), {})
        into[outcome.value] = into.get(outcome.value, 0.0) + _value(sample)
    tokens = r.by_shape(
        f"sum by ({SHAPE}, {S.LABEL_TOKEN_TYPE}) (increase({S.TOKENS.prometheus}[{w}]))",
        S.LABEL_TOKEN_TYPE,
    )
    foreign_tokens = r.by_shape(
        f"sum by ({SHAPE}, {S.LABEL_TOKEN_TYPE}) "
        f'(increase({S.TOKEN_USAGE.prometheus}_sum{{{WL}=""}}[{w}]))',
        S.LABEL_TOKEN_TYPE,
    )
    cost = r.by_shape(f"sum by ({SHAPE}) (increase({S.COST.prometheus}[{w}]))")
    duration = r.buckets(S.OPERATION_DURATION.prometheus, _OK, SHAPE)
    duration_sum = r.by_shape(
        f"sum by ({SHAPE}) (increase({S.OPERATION_DURATION.prometheus}_sum{{{_OK}}}[{w}]))"
    )
    ttft = r.buckets(S.TIME_TO_FIRST_CHUNK.prometheus, "", SHAPE)
    ttft_sum = r.by_shape(
        f"sum by ({SHAPE}) (increase({S.TIME_TO_FIRST_CHUNK.prometheus}_sum[{w}]))"
    )
    usage = {
        t: r.buckets(S.TOKEN_USAGE.prometheus, f'{S.LABEL_TOKEN_TYPE}="{t}"', SHAPE)
        for t in ("input", "output")
    }
    flight = f"(sum by ({SHAPE}) ({S.REQUESTS_IN_FLIGHT.prometheus}))[{w}:{r.step}]"
    mean = r.by_shape(f"avg_over_time({flight})")
    peak = r.by_shape(f"max_over_time({flight})")
    shapes = set(calls) | set(duration)
    tallies: dict[str, list[Tally]] = {}
    for key in sorted(shapes):
        name = key.workload or foreign_name(key.service, key.model)
        tallies.setdefault(name, []).append(
            Tally(
                key=key,
                calls=calls.get(key, {}),
                tokens={**foreign_tokens.get(key, {}), **tokens.get(key, {})},
                cost_usd=sum(cost.get(key, {}).values()),
                duration=_hist(duration.get(key), duration_sum.get(key)),
                ttft=_hist(ttft.get(key), ttft_sum.get(key)),
                input_tokens=_hist(usage["input"].get(key), None),
                output_tokens=_hist(usage["output"].get(key), None),
                in_flight_mean=mean.get(key, {}).get(""),
                in_flight_peak=peak.get(key, {}).get(""),
            )
        )
    limits = {
        s["metric"].get(WL, ""): _value(s)
        for s in r.instant(f"max by ({WL}) (max_over_time({S.CONCURRENCY_LIMIT.prometheus}[{w}]))")
    }
    queue = r.buckets(S.QUEUE_WAIT.prometheus, "", WL)
    shed = {
        s["metric"].get(WL, ""): _value(s)
        for s in r.instant(f"sum by ({WL}) (increase({S.QUEUE_SHED.prometheus}[{w}]))")
    }
    steps = _steps(r, step_s)
    workloads = []
    for name, group in sorted(tallies.items()):
        if not any(sum(t.calls.values()) for t in group):
            continue
        modes: dict[str, float] = {}
        for t in group:
            modes[t.key.mode] = modes.get(t.key.mode, 0.0) + sum(t.calls.values())
        foreign = not group[0].key.workload
        extras = Extras(
            concurrency_limit=limits.get(name) if not foreign else None,
            queue_wait=Hist(queue[name]) if name in queue and any(queue[name].values()) else None,
            shed=shed.get(name, 0.0),
            steps=steps.get(name, ()),
        )
        declared = max(modes, key=lambda m: modes[m]) or None
        workloads.append(WorkloadInput(name, declared, foreign, tuple(group), extras))
    return Observed("prometheus", seconds, tuple(workloads))


def _hist(counts: dict[float, float] | None, total: dict[str, float] | None) -> Hist | None:
    if not counts or not any(counts.values()):
        return None
    return Hist(counts, sum((total or {}).values()))


def _steps(r: _Reader, step_s: float) -> dict[str, tuple[Step, ...]]:
    """Per-step figures per owner: a workload, or job and model for other instrumentations.

    Rates and increases are taken over two steps (counts halved), so that each rests on at
    least two scrapes even when the step is one scrape interval.
    """
    s = format_duration(2 * round(step_s))
    duration, ttft = S.OPERATION_DURATION.prometheus, S.TIME_TO_FIRST_CHUNK.prometheus
    queries: dict[str, tuple[str, str]] = {
        # what: (expression for our workloads, for other instrumentations' series)
        "calls": (
            f"sum by ({WL}) (increase({S.CALLS.prometheus}[{s}])) / 2",
            f'sum by ({JOB}, {MODEL}) (increase({duration}_count{{{WL}=""}}[{s}])) / 2',
        ),
        "timed": (
            f'sum by ({WL}) (increase({duration}_count{{{WL}!="", {_OK}}}[{s}]))',
            f'sum by ({JOB}, {MODEL}) (increase({duration}_count{{{WL}="", {_OK}}}[{s}]))',
        ),
        "in_flight": (f"sum by ({WL}) ({S.REQUESTS_IN_FLIGHT.prometheus})", ""),
        "limit": (f"sum by ({WL}) ({S.CONCURRENCY_LIMIT.prometheus})", ""),
        "p95": (
            f'histogram_quantile(0.95, sum by ({WL}, le) (rate({duration}_bucket{{{WL}!="", {_OK}}}[{s}])))',
            f'histogram_quantile(0.95, sum by ({JOB}, {MODEL}, le) (rate({duration}_bucket{{{WL}="", {_OK}}}[{s}])))',
        ),
        "ttft": (
            f'histogram_quantile(0.95, sum by ({WL}, le) (rate({ttft}_bucket{{{WL}!=""}}[{s}])))',
            f'histogram_quantile(0.95, sum by ({JOB}, {MODEL}, le) (rate({ttft}_bucket{{{WL}=""}}[{s}])))',
        ),
    }  # fmt: skip
    start = r.now - r.seconds
    values: dict[str, dict[str, dict[float, float]]] = {}
    for what, exprs in queries.items():
        for expr in exprs:
            if not expr:
                continue
            for series in r.series(expr):
                into = values.setdefault(_owner(series["metric"]), {}).setdefault(what, {})
                for t, v in series["values"]:
                    x = float(v)
                    if math.isfinite(x):
                        at = round(float(t) - start, 3)
                        into[at] = into.get(at, 0.0) + x
    out: dict[str, tuple[Step, ...]] = {}
    for owner, by in values.items():
        times = sorted({t for series in by.values() for t in series})
        steps = []
        for t in times:
            enough = by.get("timed", {}).get(t, 0.0) >= MIN_STEP_CALLS
            steps.append(
                Step(
                    end=t,
                    seconds=step_s,
                    calls=by.get("calls", {}).get(t, 0.0),
                    in_flight=by.get("in_flight", {}).get(t),
                    p95_s=by.get("p95", {}).get(t) if enough else None,
                    ttft_p95_s=by.get("ttft", {}).get(t) if enough else None,
                    limit=by.get("limit", {}).get(t),
                )
            )
        out[owner] = tuple(steps)
    return out
