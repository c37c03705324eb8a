"""The mode advisor: which mode each workload really is, what a hybrid costs, where to start.

:func:`analyse` turns what a source observed (:class:`~gemini_slo.agent.traffic.Observed`,
from the agent's recorder or from Prometheus) into an :class:`Advice`:

* per workload a traffic profile (``traffic.py``), a verdict from the rule table
  (``advice_rules.py``) with its score and three strongest reasons, the declared mode (the
  spec's, else the ``gemini_slo_mode`` label) and whether the two disagree;
* for a workload whose parts (by model, operation or service) get opposite verdicts, or
  whose figures disagree, the verdict ``hybrid`` and a proposed split with each part's
  verdict and figures;
* interference between a latency workload and each other workload
  (``advice_interference.py``), with a concurrency cap when the data supports one;
* an slo.yaml to start from (``advice_objectives.py``), per workload and as one document;
* cost what-ifs: the workload's cost at the price table's other service tiers (batch, flex).

The agent serves ``Advice.to_json()`` at ``/api/advice``; ``gemini-slo advise`` prints it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gemini_slo.agent import advice_objectives as objectives
from gemini_slo.agent.advice_interference import Interference, interference
from gemini_slo.agent.advice_rules import MIN_CALLS, Score, Verdict, score
from gemini_slo.agent.traffic import Observed, Traffic
from gemini_slo.contract.durations import format_duration, parse_duration
from gemini_slo.contract.spec import ObjectiveKind, SloSpec

if TYPE_CHECKING:
    from gemini_slo.instrumentation.pricing import PriceTable

#: A part must carry this share of the workload's calls to count in a split.
MIN_PART_SHARE = 0.05
#: Up to this many workloads, interference is looked for between every pair.
MAX_ALL_PAIRS = 12
NOTHING_SHARED = "nothing declared"
_MONTH_S = 30 * 86400.0
_STANDARD_TIERS = {"standard", "unspecified"}


@dataclass(frozen=True, slots=True)
class Split:
    """A hybrid workload cut by one label into parts that are each one shape."""

    label: str
    parts: tuple[tuple[str, Traffic, Score], ...]

    def to_json(self) -> dict[str, Any]:
        """For ``/api/advice``."""
        return {
            "label": self.label,
            "parts": [
                {
                    "value": value,
                    "observed_mode": s.verdict.value,
                    "score": s.score,
                    "reasons": s.reasons(),
                    "profile": profile_json(t),
                }
                for value, t, s in self.parts
            ],
        }


@dataclass(frozen=True, slots=True)
class WorkloadAdvice:
    """Everything the advisor says about one workload."""

    traffic: Traffic
    declared_mode: str | None
    score: Score
    verdict: Verdict
    reasons: tuple[str, ...]
    split: Split | None
    entries: tuple[dict[str, Any], ...]
    cost_what_ifs: tuple[dict[str, Any], ...]

    @property
    def mismatch(self) -> bool:
        """The declared mode contradicts the verdict (a hybrid contradicts either mode)."""
        if self.declared_mode is None or self.verdict is Verdict.UNKNOWN:
            return False
        return self.verdict.value != self.declared_mode

    def to_json(self) -> dict[str, Any]:
        """For ``/api/advice``."""
        return {
            "name": self.traffic.name,
            "foreign": self.traffic.foreign,
            "declared_mode": self.declared_mode,
            "observed_mode": self.verdict.value,
            "mismatch": self.mismatch,
            "score": self.score.score,
            "reasons": list(self.reasons),
            "findings": [f.to_json() for f in self.score.findings],
            "profile": profile_json(self.traffic),
            "split": self.split.to_json() if self.split else None,
            "slo_yaml": objectives.document(list(self.entries)) if self.entries else None,
            "cost_what_ifs": list(self.cost_what_ifs),
        }


@dataclass(frozen=True, slots=True)
class Advice:
    """The advisor's answer for one window."""

    source: str
    window: str
    seconds: float
    workloads: tuple[WorkloadAdvice, ...]
    interference: tuple[Interference, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    def slo_yaml(self) -> str | None:
        """Every workload's objectives as one slo.yaml (None when there is nothing to say)."""
        entries = [e for w in self.workloads for e in w.entries]
        return objectives.document(entries) if entries else None

    def to_json(self) -> dict[str, Any]:
        """``GET /api/advice`` (a figure that is not finite is ``None``, never NaN)."""
        out: dict[str, Any] = _finite(self._json())
        return out

    def _json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "window": self.window,
            "seconds": round(self.seconds, 3),
            "workloads": [w.to_json() for w in self.workloads],
            "interference": [i.to_json() for i in self.interference],
            "slo_yaml": self.slo_yaml(),
            "notes": list(self.notes),
        }


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def profile_json(t: Traffic) -> dict[str, Any]:
    """The traffic profile's figures (None where unknown)."""

    def q(x: Any) -> dict[str, Any] | None:
        return None if x is None else {"p50": x.p50, "p95": x.p95, "p99": x.p99, "mean": x.mean}

    def pair(p: tuple[float | None, float | None] | None) -> dict[str, Any] | None:
        return None if p is None else {"p50": p[0], "p95": p[1]}

    return {
        "models": list(t.models),
        "operations": list(t.operations),
        "services": list(t.services),
        "calls": t.calls,
        "calls_per_second": t.calls_per_s,
        "generated_tokens_per_second": t.generated_tokens_per_s,
        "sustained_tokens_per_second": t.sustained_tokens_per_s,
        "streamed_share": t.streamed_share,
        "ttft_share_of_duration": t.ttft_share,
        "duration_seconds": q(t.duration),
        "ttft_seconds": q(t.ttft),
        "input_tokens_per_call": pair(t.input_per_call),
        "output_tokens_per_call": pair(t.output_per_call),
        "burstiness": t.burstiness,
        "in_flight_mean": t.in_flight_mean,
        "in_flight_peak": t.in_flight_peak,
        "concurrency_limit": t.concurrency_limit,
        "utilization": t.utilization,
        "queue_wait_p95_seconds": t.queue_wait_p95_s,
        "shed_share": t.shed_share,
        "timeout_share": t.timeout_share,
        "rate_limited_share": t.rate_limited_share,
        "error_share": t.error_share,
        "availability": t.availability,
        "cost_usd": t.cost_usd,
        "cost_per_million_tokens": t.cost_per_million,
        "batch_job_share": t.batch_job_share,
    }


def _split(t: Traffic) -> Split | None:
    """The first label whose parts get both a latency and a throughput verdict."""
    for label, parts in t.parts.items():
        scored = [
            (value, part, score(part.feature, part.calls))
            for value, part in parts.items()
            if part.calls >= max(MIN_CALLS, MIN_PART_SHARE * t.calls)
        ]
        verdicts = {s.verdict for _, _, s in scored}
        if {Verdict.LATENCY, Verdict.THROUGHPUT} <= verdicts:
            return Split(label, tuple(scored))
    return None


def _declared(t: Traffic, spec: SloSpec | None) -> str | None:
    if spec is not None and not t.foreign:
        for w in spec.workloads:
            if w.name == t.name:
                return w.mode.value
    return t.declared_mode


def _cost_what_ifs(t: Traffic, prices: PriceTable | None) -> tuple[dict[str, Any], ...]:
    if prices is None or t.cost_usd <= 0 or t.seconds <= 0:
        return ()
    monthly = t.cost_usd / t.seconds * _MONTH_S
    out = [
        {
            "tier": "standard",
            "cost_usd": t.cost_usd,
            "usd_per_month_at_this_rate": monthly,
            "cost_per_million_tokens": t.cost_per_million,
        }
    ]
    for tier, factor in sorted(prices.service_tiers.items()):
        # A what-if is a saving: a mode that costs more (priority) is no option to save.
        if tier in _STANDARD_TIERS or factor >= 1:
            continue
        f = float(factor)
        out.append(
            {
                "tier": tier,
                "cost_usd": t.cost_usd * f,
                "usd_per_month_at_this_rate": monthly * f,
                "cost_per_million_tokens": None
                if t.cost_per_million is None
                else t.cost_per_million * f,
                "saving_usd_per_month": monthly * (1 - f),
            }
        )
    return tuple(out)


def _advise(t: Traffic, spec: SloSpec | None, prices: PriceTable | None) -> WorkloadAdvice:
    s = score(t.feature, t.calls)
    split = _split(t) if t.calls >= MIN_CALLS else None
    verdict = Verdict.HYBRID if split is not None else s.verdict
    reasons = list(s.reasons())
    entries: list[dict[str, Any]] = []
    if split is not None:
        kinds = ", ".join(f"{v} {ps.verdict.value}" for v, _, ps in split.parts)
        reasons = [f"by {split.label} its calls are of two shapes: {kinds}", *reasons[:2]]
        for value, part, ps in split.parts:
            if ps.verdict in (Verdict.LATENCY, Verdict.THROUGHPUT):
                entries.append(objectives.entry(part, ps.verdict, f"{t.name}-{value}"))
    elif (
        verdict is Verdict.HYBRID and t.streamed_share is not None and 0.2 < t.streamed_share < 0.8
    ):
        share = f"{t.streamed_share * 100:.0f}%"
        reasons = [
            f"its figures disagree ({share} of calls streamed): no label separates the shapes;"
            " give streamed calls a workload of their own",
            *reasons[:2],
        ]
    if verdict in (Verdict.LATENCY, Verdict.THROUGHPUT):
        entries.append(objectives.entry(t, verdict))
    return WorkloadAdvice(
        traffic=t,
        declared_mode=_declared(t, spec),
        score=s,
        verdict=verdict,
        reasons=tuple(reasons[:3]),
        split=split,
        entries=tuple(entries),
        # What the batch or flex price would save is a question for throughput work.
        cost_what_ifs=_cost_what_ifs(t, prices)
        if Verdict.THROUGHPUT.value in (verdict.value, _declared(t, spec))
        else (),
    )


def _p95_objective(spec: SloSpec | None, name: str) -> float | None:
    if spec is None:
        return None
    for w in spec.workloads:
        if w.name == name:
            for o in w.of_kind(ObjectiveKind.LATENCY):
                if o.percentile == 0.95:
                    return o.threshold
    return None


def _shares(a: Traffic, b: Traffic, pools: Mapping[str, tuple[str, ...]]) -> str:
    common = sorted(set(a.models) & set(b.models))
    if common:
        return "model " + ", ".join(common)
    for pool, models in sorted(pools.items()):
        if set(a.models) & set(models) and set(b.models) & set(models):
            return f"pool {pool}"
    return NOTHING_SHARED


def analyse(
    observed: Observed,
    spec: SloSpec | None = None,
    prices: PriceTable | None = None,
    *,
    window: str | None = None,
    pools: Mapping[str, tuple[str, ...]] | None = None,
    with_interference: bool = True,
) -> Advice:
    """The advice for everything ``observed`` holds (see the module docstring).

    Interference is fitted for every pair of a latency workload and another one while there
    are at most :data:`MAX_ALL_PAIRS` workloads (capacity can be shared in ways no label
    shows); beyond, only for pairs that share a model or a declared pool.
    """
    pools = pools or {}
    advised = [_advise(t, spec, prices) for t in observed.profiles()]
    pairs: list[Interference] = []
    every_pair = len(advised) <= MAX_ALL_PAIRS
    for lat in advised if with_interference else ():
        is_latency = lat.verdict is Verdict.LATENCY or (
            lat.verdict is not Verdict.THROUGHPUT and lat.declared_mode == Verdict.LATENCY.value
        )
        if not is_latency or not lat.traffic.steps:
            continue
        for other in advised:
            if other is lat or not other.traffic.steps:
                continue
            shares = _shares(lat.traffic, other.traffic, pools)
            if every_pair or shares != NOTHING_SHARED:
                pairs.append(
                    interference(
                        lat.traffic, other.traffic, shares, _p95_objective(spec, lat.traffic.name)
                    )
                )
    notes = []
    if observed.untracked:
        notes.append(
            "the agent follows at most its limit of shapes (workload x model x operation): "
            "some were left out; use --prometheus for the rest"
        )
    if window is not None and observed.seconds + 1 < parse_duration(window):
        notes.append(
            f"the window covers {format_duration(round(observed.seconds))} of the "
            f"{window} asked: the {observed.source} has not seen more yet"
        )
    return Advice(
        source=observed.source,
        window=window or format_duration(round(observed.seconds)),
        seconds=observed.seconds,
        workloads=tuple(advised),
        interference=tuple(pairs),
        notes=tuple(notes),
    )
