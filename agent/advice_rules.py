"""The verdict rules, as data: which figures of a workload's traffic point to which mode, and why.

Each :class:`Rule` tests one figure of a :class:`~gemini_slo.agent.traffic.Traffic` (by the
name :meth:`Traffic.feature` answers to) against a threshold; when it holds, it is evidence
for one mode with a weight, told in words (``reason``) and traced to where the rule comes
from (``source``). :func:`score` weighs the evidence:

    score = sum(weight of rules that hold, + for throughput, - for latency)
            / sum over the figures that are known of their largest rule weight

so ``-1`` is "every known figure says latency", ``+1`` "every one says throughput". At
``LEAN`` or beyond either way the verdict is that mode; in between it is ``hybrid`` (the
figures disagree: both shapes are in the workload, or neither clearly). With less than
``MIN_CALLS`` calls or less than ``MIN_EVIDENCE`` weight of known figures, the verdict is
``unknown`` (too little data to say). The advisor (``advice.py``) adds what no single
figure shows: a workload whose parts (by model, operation or service) get opposite
verdicts is hybrid whatever its overall score.

The table is pure data and this module pure code, so that the agent's store and Prometheus'
answers feed the same rules.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass

#: |score| at or above which the verdict is a mode rather than hybrid.
LEAN = 0.35
#: Fewer calls than this over the window: no verdict.
MIN_CALLS = 20
#: Less known evidence (sum of weights) than this: no verdict.
MIN_EVIDENCE = 3.0

#: Where the rules come from.
FRAMEWORK = (
    "latency/throughput decision framework: interactive queries need low latency, "
    "asynchronous batch work is throughput-first"
)
HEADROOM = "decision framework: latency-first keeps 40-60% headroom"
UTILIZATION = "decision framework: throughput-first runs at 80-90% utilization"
STREAMING = "Gemini API: streaming exists so that a reader sees tokens as they are generated"
QUEUEING = "gemini-slo AdmissionQueue: shedding instead of queueing is a latency set-up"
ARRIVALS = (
    "queueing theory (M/G/inf): independent arrivals keep a Poisson number of calls in "
    "flight (dispersion ~1)"
)


class Verdict(enum.StrEnum):
    """The advisor's answer for one workload."""

    LATENCY = "latency"
    THROUGHPUT = "throughput"
    HYBRID = "hybrid"
    UNKNOWN = "unknown"


def _pct(v: float) -> str:
    return f"{v * 100:.0f}%"


def _secs(v: float) -> str:
    return f"{v * 1000:.0f} ms" if v < 1 else f"{v:.1f} s"


def _num(v: float) -> str:
    return f"{v:,.0f}" if v >= 10 else f"{v:.2f}"


@dataclass(frozen=True, slots=True)
class Rule:
    """One piece of evidence: ``feature`` ``op`` ``threshold`` points to ``mode``."""

    id: str
    feature: str
    op: str  # ">=" or "<="
    threshold: float
    mode: Verdict  # LATENCY or THROUGHPUT
    weight: float
    reason: str  # formatted with {value} and {threshold}
    source: str
    fmt: Callable[[float], str] = _num

    def holds(self, value: float) -> bool:
        """Whether the evidence is there."""
        return value >= self.threshold if self.op == ">=" else value <= self.threshold

    def explain(self, value: float) -> str:
        """The reason in words, with the figure."""
        return self.reason.format(value=self.fmt(value), threshold=self.fmt(self.threshold))


L, T = Verdict.LATENCY, Verdict.THROUGHPUT

#: The rule table. Thresholds sit where the two reference workloads (lab/load.py) and the
#: framework's figures put the line; weights say how decisive each figure is alone.
RULES: tuple[Rule, ...] = (
    Rule("streamed", "streamed_share", ">=", 0.8, L, 2.0,
         "{value} of calls are streamed: someone reads the answer as it is generated",
         STREAMING, _pct),
    Rule("not_streamed", "streamed_share", "<=", 0.2, T, 1.5,
         "{value} of calls are streamed: nobody watches the tokens arrive",
         STREAMING, _pct),
    Rule("first_token_wait", "ttft_share", ">=", 0.5, L, 1.0,
         "the first token is {value} of a call's time: the wait is the user's wait",
         FRAMEWORK, _pct),
    Rule("short_answers", "output_tokens_p50", "<=", 300, L, 1.0,
         "answers are short (median {value} output tokens)", FRAMEWORK),
    Rule("long_answers", "output_tokens_p50", ">=", 1000, T, 1.5,
         "answers are long (median {value} output tokens): documents, not replies",
         FRAMEWORK),
    Rule("slow_calls", "duration_p50_s", ">=", 10.0, T, 1.0,
         "the median call takes {value}: no user waits that long", FRAMEWORK, _secs),
    Rule("backlog", "batch_job_share", ">=", 0.7, T, 2.0,
         "{value} of calls ran with in-flight pinned at the limit: a job draining a backlog",
         FRAMEWORK, _pct),
    Rule("arrivals", "batch_job_share", "<=", 0.2, L, 1.0,
         "in-flight follows arrivals (at the limit for only {value} of calls)",
         FRAMEWORK, _pct),
    Rule("random_arrivals", "burstiness", ">=", 0.6, L, 0.5,
         "calls in flight come and go at random (dispersion {value}): users, not workers",
         ARRIVALS),
    Rule("steady_workers", "burstiness", "<=", 0.3, T, 0.5,
         "calls in flight hold steady (dispersion {value}): workers back to back",
         ARRIVALS),
    Rule("sheds", "shed_share", ">=", 0.001, L, 1.0,
         "an admission queue sheds calls ({value}) rather than let them wait",
         QUEUEING, _pct),
    Rule("hot", "utilization", ">=", 0.8, T, 1.0,
         "runs at {value} of its concurrency limit", UTILIZATION, _pct),
    Rule("headroom", "utilization", "<=", 0.6, L, 0.5,
         "keeps headroom: {value} of its concurrency limit in use", HEADROOM, _pct),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule that held, with the figure that made it hold."""

    rule: Rule
    value: float

    @property
    def text(self) -> str:
        """The reason in words."""
        return self.rule.explain(self.value)

    def to_json(self) -> dict[str, object]:
        """For ``/api/advice``."""
        return {
            "rule": self.rule.id,
            "points_to": self.rule.mode.value,
            "weight": self.rule.weight,
            "feature": self.rule.feature,
            "value": self.value,
            "reason": self.text,
            "source": self.rule.source,
        }


@dataclass(frozen=True, slots=True)
class Score:
    """The weighed evidence of one workload."""

    verdict: Verdict
    score: float  # -1 (latency) .. +1 (throughput)
    evidence: float  # weight of the rules whose figure was known
    findings: tuple[Finding, ...]  # strongest first

    def reasons(self, n: int = 3) -> list[str]:
        """The ``n`` strongest reasons for the verdict, in words."""
        if self.verdict is Verdict.UNKNOWN:
            return ["too little traffic in the window to say"]
        wanted = {Verdict.LATENCY: (L,), Verdict.THROUGHPUT: (T,)}.get(self.verdict, (L, T))
        return [f.text for f in self.findings if f.rule.mode in wanted][:n]


def score(
    features: Callable[[str], float | None] | Mapping[str, float | None],
    calls: float,
    rules: tuple[Rule, ...] = RULES,
) -> Score:
    """Weigh ``rules`` on a workload's figures (a mapping, or ``Traffic.feature``)."""
    get = features.get if isinstance(features, Mapping) else features
    total = 0.0
    findings: list[Finding] = []
    # Two rules on one figure (one per side) count the figure once, at its larger weight.
    known: dict[str, float] = {}
    for rule in rules:
        value = get(rule.feature)
        if value is None:
            continue
        known[rule.feature] = max(known.get(rule.feature, 0.0), rule.weight)
        if rule.holds(value):
            findings.append(Finding(rule, value))
            total += rule.weight if rule.mode is T else -rule.weight
    findings.sort(key=lambda f: -f.rule.weight)
    evidence = sum(known.values())
    if calls < MIN_CALLS or evidence < MIN_EVIDENCE:
        return Score(Verdict.UNKNOWN, 0.0, evidence, tuple(findings))
    value = total / evidence
    if value >= LEAN:
        verdict = T
    elif value <= -LEAN:
        verdict = L
    else:
        verdict = Verdict.HYBRID
    return Score(verdict, round(value, 3), evidence, tuple(findings))
