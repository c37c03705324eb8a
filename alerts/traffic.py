"""Synthetic traffic for the generated promtool tests: phases of steady rates -> input series.

A workload's traffic is a list of :class:`Phase` (how long, at which :class:`Traffic`),
sampled every ``step`` seconds into the series the instrumentation exports: the contract's
metric names and labels, plus ``job``/``instance`` as the OTLP translation adds them.
Counters accumulate and start again from 0 after an app restart (``Phase.restart``); gauges
hold their level. :func:`input_series` returns the sample values themselves, so the same
numbers are written in promtool's expanding notation (``a+bxn``) and read by
:mod:`gemini_slo.alerts.simulate`, which predicts what the generated rules compute.

:func:`healthy` is the reference healthy traffic of a workload, derived from its spec:
every budgeted objective at about half its budget (the example spec's chat: 2.4% of calls
over 500 ms, 0.48% over 800 ms, 0.2% failures), utilization and tokens inside their bounds.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gemini_slo.contract import promql as q
from gemini_slo.contract import signals as s
from gemini_slo.contract.signals import Mode, Outcome
from gemini_slo.contract.spec import Objective, ObjectiveKind, Workload

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0

LIMIT = 1000  # concurrency limit of the synthetic workloads: fine resolution for utilization
#: Share of its error budget a healthy workload spends on percentile objectives ...
HEALTHY_BURN = 0.48
#: ... and on failures (the example: 0.2% failures against a 0.5% availability budget).
HEALTHY_FAILURE_BURN = 0.4
#: Healthy calls per second: the issue's realistic chat traffic.
HEALTHY_CALLS_PER_S = {Mode.LATENCY: 20.0, Mode.THROUGHPUT: 2.0}
#: Healthy generated tokens per second, as a multiple of the workload's floor (12k for 10k).
HEALTHY_TOKENS_OVER_FLOOR = 1.2
#: Healthy cost per 1M billable tokens, as a share of the ceiling.
HEALTHY_COST_OF_CEILING = 0.5


@dataclass(frozen=True)
class Traffic:
    """Steady rates of one workload: calls, how they end and how slow they are, gauges.

    ``failed`` maps a failed outcome to its share of calls (the rest are ``ok``); ``slow``,
    ``slow_ttft`` and ``slow_queue`` map a histogram threshold (seconds) to the share of
    calls above it.
    """

    calls_per_s: float = 1.0
    failed: Mapping[Outcome, float] = field(default_factory=dict)
    slow: Mapping[float, float] = field(default_factory=dict)
    slow_ttft: Mapping[float, float] = field(default_factory=dict)
    slow_queue: Mapping[float, float] = field(default_factory=dict)
    in_flight: float = 0.0
    output_tokens_per_s: float = 0.0
    input_tokens_per_s: float = 0.0
    cost_per_s: float = 0.0
    unpriced_share: float = 0.0  # share of ok calls to a model the price table does not know

    def but(self, **changes: Any) -> Traffic:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    @property
    def ok_share(self) -> float:
        """Share of calls that end ``ok``."""
        return max(0.0, 1.0 - sum(self.failed.values()))


@dataclass(frozen=True)
class Phase:
    """``traffic`` for ``seconds``; ``restart``: the app restarted as the phase began."""

    seconds: float
    traffic: Traffic
    restart: bool = False


@dataclass(frozen=True)
class Series:
    """One input series: its metric, labels and one value per step (counters cumulative)."""

    metric: str
    labels: tuple[tuple[str, str], ...]
    values: tuple[float, ...]
    counter: bool

    @property
    def text(self) -> str:
        """``metric{label="value", ...}`` as promtool reads it."""
        inner = ", ".join(f'{k}="{v}"' for k, v in self.labels)
        return f"{self.metric}{{{inner}}}"

    def label(self, name: str) -> str | None:
        """The value of one label, or None."""
        return dict(self.labels).get(name)

    def promtool(self) -> dict[str, str]:
        """The ``input_series`` entry."""
        return {"series": self.text, "values": expanding(self.values)}


def _number(value: float) -> str:
    # repr is the shortest text that reads back as the same float (Go parses it exactly).
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def expanding(values: Sequence[float]) -> str:
    """Values in promtool's expanding notation: runs of equal steps as ``a+bxn``."""
    out: list[str] = []
    i = 0
    while i < len(values):
        j = i
        step = values[i + 1] - values[i] if i + 1 < len(values) else 0.0
        while j + 1 < len(values) and values[j + 1] - values[j] == step:
            j += 1
        if j == i:
            out.append(_number(values[i]))
        else:
            out.append(f"{_number(values[i])}+{_number(step)}x{j - i}")
        i = j + 1
    return " ".join(out)


def _base_labels(workload: Workload) -> dict[str, str]:
    model = workload.models[0] if workload.models else "gemini-2.5-flash"
    return {
        s.LABEL_WORKLOAD: workload.name,
        s.LABEL_MODE: workload.mode.value,
        s.LABEL_OPERATION: s.OPERATION_GENERATE,
        s.LABEL_PROVIDER: s.PROVIDER_GEMINI,
        s.LABEL_MODEL: model,
        "job": "gemini-slo",
        "instance": "app-0",
    }


def _short_labels(workload: Workload, **extra: str) -> dict[str, str]:
    base = {
        s.LABEL_WORKLOAD: workload.name,
        s.LABEL_MODE: workload.mode.value,
        "job": "gemini-slo",
        "instance": "app-0",
    }
    return {**base, **extra}


def _samples(phases: Sequence[Phase], step: float) -> list[tuple[Traffic, bool]]:
    """(traffic, restarted) of each sample after the first: the interval ending at it."""
    out: list[tuple[Traffic, bool]] = []
    for phase in phases:
        n = round(phase.seconds / step)
        if not math.isclose(n * step, phase.seconds):
            raise ValueError(f"phase of {phase.seconds}s is not a whole number of {step}s steps")
        out += [(phase.traffic, phase.restart and k == 0) for k in range(n)]
    return out


def _counter(
    samples: list[tuple[Traffic, bool]], per_second: Any, step: float
) -> tuple[float, ...]:
    values = [0.0]
    for traffic, restarted in samples:
        values.append(0.0 if restarted else values[-1] + per_second(traffic) * step)
    return tuple(values)


def _gauge(samples: list[tuple[Traffic, bool]], level: Any) -> tuple[float, ...]:
    first = level(samples[0][0]) if samples else 0.0
    return (first, *(level(t) for t, _ in samples))


def input_series(workload: Workload, phases: Sequence[Phase], step: float) -> list[Series]:
    """Every input series of one workload under ``phases``, one sample per ``step`` seconds.

    Only series some phase needs are written (a failure outcome, a token type, a histogram
    with thresholds), so that promtool reads no series of zeros.
    """
    samples = _samples(phases, step)
    traffics = [t for t, _ in samples] or [p.traffic for p in phases]
    out: list[Series] = []

    def add(metric: str, labels: dict[str, str], rate: Any, counter: bool = True) -> None:
        values = _counter(samples, rate, step) if counter else _gauge(samples, rate)
        out.append(Series(metric, tuple(labels.items()), values, counter))

    base = _base_labels(workload)
    failed = sorted({o for t in traffics for o, share in t.failed.items() if share > 0})
    for outcome in (Outcome.OK, *failed):
        labels = {**base, s.LABEL_OUTCOME: outcome.value}
        if outcome is Outcome.OK:
            add(q.CALLS, labels, lambda t: t.calls_per_s * t.ok_share)
        else:
            add(q.CALLS, labels, lambda t, o=outcome: t.calls_per_s * t.failed.get(o, 0.0))
    histograms = (
        (q.DURATION, base, workload.latency_thresholds, "slow"),
        (q.TTFT, base, workload.ttft_thresholds, "slow_ttft"),
        (
            q.QUEUE_WAIT,
            _short_labels(workload, **{s.LABEL_QUEUE: "default"}),
            tuple(o.threshold for o in workload.of_kind(ObjectiveKind.QUEUE_WAIT)),
            "slow_queue",
        ),
    )
    for metric, labels, thresholds, attr in histograms:
        if not thresholds:
            continue
        for t_le in thresholds:
            add(
                f"{metric}_bucket",
                {**labels, "le": s.format_le(t_le)},
                lambda t, x=t_le, a=attr: t.calls_per_s * (1.0 - getattr(t, a).get(x, 0.0)),
            )
        add(f"{metric}_bucket", {**labels, "le": "+Inf"}, lambda t: t.calls_per_s)
        add(f"{metric}_count", labels, lambda t: t.calls_per_s)
    for token_type, attr in (
        (s.TokenType.OUTPUT, "output_tokens_per_s"),
        (s.TokenType.INPUT, "input_tokens_per_s"),
    ):
        if any(getattr(t, attr) for t in traffics):
            add(
                q.TOKENS,
                {**base, s.LABEL_TOKEN_TYPE: token_type.value},
                lambda t, a=attr: getattr(t, a),
            )
    if any(t.cost_per_s for t in traffics):
        add(q.COST, base, lambda t: t.cost_per_s)
    # The instrumentation writes the unpriced counter beside the cost counter, zero or not.
    if any(t.cost_per_s or t.unpriced_share for t in traffics):
        add(q.UNPRICED, base, lambda t: t.calls_per_s * t.ok_share * t.unpriced_share)
    add(q.IN_FLIGHT, base, lambda t: t.in_flight, counter=False)
    add(q.CONCURRENCY_LIMIT, _short_labels(workload), lambda t: LIMIT, counter=False)
    return out


# ======================================================================================
# Reference traffic
# ======================================================================================


def _budget(workload: Workload, kind: ObjectiveKind) -> float:
    found = workload.first(kind)
    return (found.budget or 0.0) if found is not None else 0.0


def slow_shares(thresholds: Mapping[float, float]) -> dict[float, float]:
    """Shares above each threshold made consistent: never more above a higher threshold."""
    out: dict[float, float] = {}
    ceiling = 1.0
    for t in sorted(thresholds):
        ceiling = min(ceiling, thresholds[t])
        out[t] = ceiling
    return out


def _percentile_shares(objectives: Sequence[Objective], burn: float) -> dict[float, float]:
    return slow_shares({o.threshold: burn * (o.budget or 0.0) for o in objectives})


def healthy_failures(workload: Workload) -> dict[Outcome, float]:
    """Failure shares of a healthy workload: 40% of its failure budget, spread over outcomes.

    Timeouts, sheds and 429s take a quarter each at most (and 40% of their own budget at
    most); plain errors take the rest.
    """
    if workload.mode is Mode.LATENCY:
        total = HEALTHY_FAILURE_BURN * _budget(workload, ObjectiveKind.AVAILABILITY)
        parts = {
            Outcome.TIMEOUT: ObjectiveKind.TIMEOUT_RATIO,
            Outcome.REJECTED: ObjectiveKind.SHED_RATIO,
        }
    else:
        total = HEALTHY_FAILURE_BURN * _budget(workload, ObjectiveKind.ERROR_RATIO)
        parts = {Outcome.RATE_LIMITED: ObjectiveKind.RATE_LIMITED_RATIO}
    out: dict[Outcome, float] = {}
    for outcome, kind in parts.items():
        own = workload.first(kind)
        limit = HEALTHY_FAILURE_BURN * (own.budget or own.threshold) if own else total / 4
        out[outcome] = round(min(total / 4, limit), 12)
    out[Outcome.ERROR] = round(max(0.0, total - sum(out.values())), 12)
    return {o: v for o, v in out.items() if v > 0}


def tokens_floor(workload: Workload) -> float:
    """The workload's generated-tokens floor (10,000 tokens/s when it has none)."""
    tps = workload.first(ObjectiveKind.TOKENS_PER_SECOND)
    return tps.threshold if tps else 10_000.0


def cost_rate(workload: Workload, factor: float, tokens_per_s: float) -> float:
    """USD/s that costs ``factor`` x the ceiling per 1M billable tokens at ``tokens_per_s``
    output tokens and as many input tokens."""
    ceiling = workload.first(ObjectiveKind.COST_PER_MILLION_TOKENS)
    per_million = factor * (ceiling.threshold if ceiling else 1.0)
    return per_million * 2 * tokens_per_s / 1e6


def healthy(
    workload: Workload, calls_per_s: float | None = None, tokens_per_s: float | None = None
) -> Traffic:
    """Traffic that meets every objective of the workload with margin (module docstring)."""
    calls = HEALTHY_CALLS_PER_S[workload.mode] if calls_per_s is None else calls_per_s
    failed = healthy_failures(workload)
    if workload.mode is Mode.LATENCY:
        headroom = workload.first(ObjectiveKind.HEADROOM)
        ceiling = headroom.threshold if headroom else 0.6
        return Traffic(
            calls_per_s=calls,
            failed=failed,
            slow=_percentile_shares(workload.of_kind(ObjectiveKind.LATENCY), HEALTHY_BURN),
            slow_ttft=_percentile_shares(workload.of_kind(ObjectiveKind.TTFT), HEALTHY_BURN),
            slow_queue=_percentile_shares(workload.of_kind(ObjectiveKind.QUEUE_WAIT), HEALTHY_BURN),
            in_flight=math.floor(LIMIT * ceiling / 2),
        )
    floor_o = workload.first(ObjectiveKind.UTILIZATION)
    floor = floor_o.threshold if floor_o else 0.8
    tokens = (
        HEALTHY_TOKENS_OVER_FLOOR * tokens_floor(workload) if tokens_per_s is None else tokens_per_s
    )
    return Traffic(
        calls_per_s=calls,
        failed=failed,
        slow=_percentile_shares(workload.of_kind(ObjectiveKind.LATENCY), HEALTHY_BURN),
        in_flight=math.ceil(LIMIT * (floor + 1) / 2),
        output_tokens_per_s=tokens,
        input_tokens_per_s=tokens,
        cost_per_s=cost_rate(workload, HEALTHY_COST_OF_CEILING, tokens),
    )
