"""The metric contract of gemini-slo: every signal's name, kind, unit, attributes, buckets and mode.

This module is the one place where a metric or label name is spelled. The instrumentation
records these signals, the agent receives and exposes them, and the rule and dashboard
generators query them: all of them import the names from here and never restate one.

Naming (docs/instrumentation.md lists every signal):

* Where the OpenTelemetry GenAI semantic conventions define a signal, its name and
  attributes are used as they are (``gen_ai.client.operation.duration`` and friends), so that
  dashboards also read what the official OpenTelemetry instrumentation emits.
* Everything the conventions do not cover carries a ``gemini_slo.`` prefix.
* The Prometheus name of each signal is what the standard OTLP-to-Prometheus translation
  gives (dots to underscores, the unit as a suffix with ``s`` -> ``_seconds``, ``{...}``
  annotations dropped, ``_total`` on monotonic sums), computed by :func:`prometheus_name`,
  so that the same dashboards and rules work behind the agent, the OpenTelemetry Collector
  or Prometheus' own OTLP receiver. Units are therefore chosen so that the translated name
  reads well: a cost in dollars is ``gemini_slo.cost.usd`` with the annotation unit
  ``{USD}``, never the bare unit ``USD`` (which would become a ``_USD`` suffix).
* Every series carries the workload and the mode. No label ever holds a request id, a user
  id or prompt text.

Durations are recorded twice on the OTLP path: once into explicit buckets aligned with the
SLO thresholds (so that compliance is *counted*, never interpolated) under the semconv
name, and once into a base-2 exponential histogram under a ``gemini_slo.`` twin name (OTLP
allows one data type per metric name), from which the agent computes mergeable percentiles.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gemini_slo.contract import translation
from prometheus_client.utils import floatToGoString

__all__ = [
    "ATTR_ERROR_TYPE",
    "ATTR_MODE",
    "ATTR_OPERATION",
    "ATTR_OUTCOME",
    "ATTR_PROVIDER",
    "ATTR_QUEUE",
    "ATTR_REQUEST_MODEL",
    "ATTR_TOKEN_TYPE",
    "ATTR_WORKLOAD",
    "BILLABLE_TOKEN_TYPES",
    "BOTH",
    "CALLS",
    "CALL_ATTRIBUTES",
    "CALL_COST_PER_MILLION_BUCKETS",
    "CALL_COST_PER_MILLION_TOKENS",
    "CALL_TOKENS_PER_SECOND",
    "CALL_TOKENS_PER_SECOND_BUCKETS",
    "CONCURRENCY_LIMIT",
    "COST",
    "DEADLINE_EXCEEDED",
    "EXPONENTIAL_MAX_BUCKETS",
    "EXPONENTIAL_SCALE",
    "FAILED_OUTCOMES",
    "GENERATED_TOKEN_TYPES",
    "INSTRUMENTATION_SIGNALS",
    "LABEL_ERROR_TYPE",
    "LABEL_MODE",
    "LABEL_MODEL",
    "LABEL_OPERATION",
    "LABEL_OUTCOME",
    "LABEL_PROVIDER",
    "LABEL_QUEUE",
    "LABEL_TOKEN_TYPE",
    "LABEL_WORKLOAD",
    "LATENCY_DURATION_BUCKETS",
    "LATENCY_ONLY",
    "OPERATION_DURATION",
    "OPERATION_DURATION_EXPONENTIAL",
    "OPERATION_EMBED",
    "OPERATION_GENERATE",
    "PROVIDER_GEMINI",
    "PROVIDER_UNKNOWN",
    "PROVIDER_VALUES",
    "PROVIDER_VERTEX",
    "QUEUE_DEPTH",
    "QUEUE_SHED",
    "QUEUE_WAIT",
    "QUEUE_WAIT_BUCKETS",
    "REQUESTS_IN_FLIGHT",
    "RESOURCE_SERVICE_INSTANCE",
    "RESOURCE_SERVICE_NAME",
    "SEMCONV_DURATION_BUCKETS",
    "THROUGHPUT_DURATION_BUCKETS",
    "THROUGHPUT_ONLY",
    "TIME_PER_OUTPUT_TOKEN",
    "TIME_PER_TOKEN_BUCKETS",
    "TIME_TO_FIRST_CHUNK",
    "TIME_TO_FIRST_CHUNK_EXPONENTIAL",
    "TOKENS",
    "TOKEN_USAGE",
    "TOKEN_USAGE_BUCKETS",
    "TTFT_BUCKETS",
    "UNPRICED_CALLS",
    "BucketLayout",
    "Kind",
    "Mode",
    "Outcome",
    "Signal",
    "TokenType",
    "bucket_layout",
    "duration_buckets",
    "format_le",
    "prometheus_label",
    "prometheus_name",
    "signals_for",
    "with_thresholds",
]

# --------------------------------------------------------------------------------------
# Modes, outcomes, token types: the closed vocabularies that label values come from.
# --------------------------------------------------------------------------------------


class Mode(enum.StrEnum):
    """What a workload is tuned for; decides its signals, buckets, dashboards and alerts."""

    LATENCY = "latency"
    """Interactive: tail latency, time to first token, queueing. Alerts page."""
    THROUGHPUT = "throughput"
    """Batch: sustained tokens/s, utilization, cost per token. Alerts open tickets."""


class Outcome(enum.StrEnum):
    """How one call ended; the value of :data:`ATTR_OUTCOME`."""

    OK = "ok"
    ERROR = "error"
    """Any failure not listed below (4xx other than 429, 5xx, connection errors, bugs)."""
    TIMEOUT = "timeout"
    """The client gave up: an SDK/HTTP timeout, or the call's own deadline."""
    REJECTED = "rejected"
    """Shed by an :class:`AdmissionQueue` before it was sent (``QueueRejected``)."""
    RATE_LIMITED = "rate_limited"
    """HTTP 429 RESOURCE_EXHAUSTED from the API."""
    BLOCKED = "blocked"
    """The API answered, but with no candidates (a blocked prompt) or a SAFETY finish."""


#: Outcomes that count against availability (``ok`` and ``blocked`` do not: a blocked
#: prompt is the API working as designed, not an outage).
FAILED_OUTCOMES: tuple[Outcome, ...] = (
    Outcome.ERROR,
    Outcome.TIMEOUT,
    Outcome.REJECTED,
    Outcome.RATE_LIMITED,
)


class TokenType(enum.StrEnum):
    """Values of :data:`ATTR_TOKEN_TYPE` on :data:`TOKENS`.

    They map one to one onto Gemini's ``usage_metadata``; ``input`` already contains
    ``cached`` (Gemini counts cached content in the prompt), so never add the two.
    """

    INPUT = "input"  # prompt_token_count
    OUTPUT = "output"  # candidates_token_count (thoughts NOT included; see THOUGHTS)
    THOUGHTS = "thoughts"  # thoughts_token_count, billed at the output price
    CACHED = "cached"  # cached_content_token_count, a subset of input
    TOOL_USE = "tool_use"  # tool_use_prompt_token_count


#: Token types that are disjoint and add up to Gemini's ``total_token_count``.
BILLABLE_TOKEN_TYPES: tuple[TokenType, ...] = (
    TokenType.INPUT,
    TokenType.OUTPUT,
    TokenType.THOUGHTS,
    TokenType.TOOL_USE,
)

#: Token types that are *generated* (decode side); tokens/s objectives count these.
GENERATED_TOKEN_TYPES: tuple[TokenType, ...] = (TokenType.OUTPUT, TokenType.THOUGHTS)


# --------------------------------------------------------------------------------------
# Attribute (label) names. OTel spelling here; Prometheus spelling via prometheus_label().
# --------------------------------------------------------------------------------------

# OpenTelemetry GenAI semantic conventions.
ATTR_OPERATION = "gen_ai.operation.name"  # generate_content | embeddings
ATTR_PROVIDER = "gen_ai.provider.name"  # gcp.gemini | gcp.vertex_ai | gcp.gen_ai
ATTR_REQUEST_MODEL = "gen_ai.request.model"
ATTR_TOKEN_TYPE = "gen_ai.token.type"
ATTR_ERROR_TYPE = "error.type"  # only on failed calls: '429', '503', 'httpx2.ReadTimeout', ...

# gemini-slo's own.
ATTR_WORKLOAD = "gemini_slo.workload"
ATTR_MODE = "gemini_slo.mode"
ATTR_OUTCOME = "gemini_slo.outcome"
ATTR_QUEUE = "gemini_slo.queue"  # the AdmissionQueue's name

# Values of ATTR_OPERATION and ATTR_PROVIDER.
OPERATION_GENERATE = "generate_content"
OPERATION_EMBED = "embeddings"
PROVIDER_GEMINI = "gcp.gemini"
PROVIDER_VERTEX = "gcp.vertex_ai"
PROVIDER_UNKNOWN = "gcp.gen_ai"
#: Every gen_ai.provider.name value accepted for Google's GenAI APIs: the semantic
#: conventions' (what the project writes) and the official instrumentation's (the older
#: gen_ai.system names, lower-cased). No rule or panel selects on the provider, so data
#: with any of them gets the same SLIs (docs/official-instrumentation.md).
PROVIDER_VALUES = (PROVIDER_GEMINI, PROVIDER_VERTEX, PROVIDER_UNKNOWN, "gemini", "vertex_ai")

#: Resource attributes. The standard translation turns service.name into the Prometheus
#: ``job`` label and service.instance.id into ``instance`` (the rest go to target_info).
RESOURCE_SERVICE_NAME = "service.name"
RESOURCE_SERVICE_INSTANCE = "service.instance.id"

#: The attributes every call-level series carries, in this order.
CALL_ATTRIBUTES: tuple[str, ...] = (
    ATTR_WORKLOAD,
    ATTR_MODE,
    ATTR_OPERATION,
    ATTR_PROVIDER,
    ATTR_REQUEST_MODEL,
)


# --------------------------------------------------------------------------------------
# Bucket layouts. Explicit boundaries are upper bounds in the signal's unit.
# --------------------------------------------------------------------------------------

#: The GenAI semconv advice for durations, kept for reference and for the comparison in
#: bench/ (it is what the official instrumentation uses).
SEMCONV_DURATION_BUCKETS: tuple[float, ...] = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip

#: Interactive end-to-end latency: dense where interactive SLO thresholds live (100 ms to
#: 2 s), so that common thresholds (200, 250, 300, 500, 800 ms, 1 s, 1.5 s, 2 s) are
#: boundaries even before the spec's own thresholds are merged in.
LATENCY_DURATION_BUCKETS: tuple[float, ...] = (
    0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 1.25, 1.5,
    2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 60.0,
)  # fmt: skip

#: Time to first chunk in latency mode: users notice 200-300 ms.
TTFT_BUCKETS: tuple[float, ...] = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.5, 2.0,
    3.0, 5.0, 10.0,
)  # fmt: skip

#: Time per output token (decode speed seen by the user), seconds per token.
TIME_PER_TOKEN_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1,
    0.2, 0.5,
)  # fmt: skip

#: Queue wait before a slot is granted (or the call is shed).
QUEUE_WAIT_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

#: Batch calls: long generations, seconds to minutes.
THROUGHPUT_DURATION_BUCKETS: tuple[float, ...] = (
    0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0,
    180.0, 300.0, 600.0,
)  # fmt: skip

#: Per-call token counts, the semconv advice (powers of 4).
TOKEN_USAGE_BUCKETS: tuple[float, ...] = tuple(float(4**i) for i in range(14))

#: Per-call generated tokens per second in throughput mode.
CALL_TOKENS_PER_SECOND_BUCKETS: tuple[float, ...] = (
    1, 5, 10, 25, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 2000, 5000,
)  # fmt: skip

#: Per-call cost in USD per 1M tokens in throughput mode (Gemini 2.5: ~0.1 to ~15).
CALL_COST_PER_MILLION_BUCKETS: tuple[float, ...] = (
    0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 25.0,
)  # fmt: skip

#: Base-2 exponential histograms (OTLP ExponentialHistogram). Scale 5 gives 32 buckets
#: per doubling, a relative bucket width of 2^(1/32) - 1 = 2.2%; interpolating inside a
#: bucket brings percentile error well under the 1% target. MAX_BUCKETS bounds memory: a
#: histogram that would need more halves its resolution (scale - 1), as the OTel SDK does.
EXPONENTIAL_SCALE = 5
EXPONENTIAL_MAX_BUCKETS = 320


def with_thresholds(buckets: Sequence[float], thresholds: Iterable[float]) -> tuple[float, ...]:
    """Return ``buckets`` with every SLO threshold added as a boundary, sorted, deduplicated.

    A latency SLO ("95% of calls under 500 ms") is evaluated from the cumulative bucket at
    exactly its threshold; a threshold that is not a boundary would have to be interpolated.
    """
    merged = {float(b) for b in buckets}
    merged.update(float(t) for t in thresholds if t > 0)
    return tuple(sorted(merged))


# --------------------------------------------------------------------------------------
# Signals.
# --------------------------------------------------------------------------------------


class Kind(enum.StrEnum):
    """OpenTelemetry instrument kind; decides the Prometheus type and suffixes."""

    COUNTER = "counter"  # monotonic sum -> Prometheus counter, "_total"
    UP_DOWN_COUNTER = "updowncounter"  # non-monotonic sum -> Prometheus gauge
    GAUGE = "gauge"
    HISTOGRAM = "histogram"  # explicit buckets -> classic histogram
    EXPONENTIAL_HISTOGRAM = "exponential_histogram"  # -> native histogram, or agent percentiles


@dataclass(frozen=True, slots=True)
class Signal:
    """One metric of the contract.

    ``modes`` says in which workload modes the instrumentation records it; ``attributes``
    are the attribute keys its data points carry (besides the optional ``error.type``
    on call-level signals, listed in ``optional_attributes``).
    """

    name: str
    kind: Kind
    unit: str
    description: str
    attributes: tuple[str, ...]
    modes: frozenset[Mode]
    buckets: tuple[float, ...] = ()
    optional_attributes: tuple[str, ...] = ()
    semconv: bool = False

    @property
    def prometheus(self) -> str:
        """The Prometheus metric family name (without ``_bucket``/``_sum``/``_count``)."""
        return prometheus_name(self.name, self.unit, self.kind)

    @property
    def labels(self) -> tuple[str, ...]:
        """Prometheus label names of :attr:`attributes` (not counting ``le``)."""
        return tuple(prometheus_label(a) for a in self.attributes)


BOTH = frozenset({Mode.LATENCY, Mode.THROUGHPUT})
LATENCY_ONLY = frozenset({Mode.LATENCY})
THROUGHPUT_ONLY = frozenset({Mode.THROUGHPUT})

# ---- both modes -----------------------------------------------------------------------

OPERATION_DURATION = Signal(
    name="gen_ai.client.operation.duration",
    kind=Kind.HISTOGRAM,
    unit="s",
    description="End-to-end duration of a GenAI call (to the last chunk for streams).",
    attributes=CALL_ATTRIBUTES,
    optional_attributes=(ATTR_ERROR_TYPE,),
    modes=BOTH,
    buckets=LATENCY_DURATION_BUCKETS,  # THROUGHPUT_DURATION_BUCKETS in throughput mode
    semconv=True,
)

OPERATION_DURATION_EXPONENTIAL = Signal(
    name="gemini_slo.client.operation.duration",
    kind=Kind.EXPONENTIAL_HISTOGRAM,
    unit="s",
    description="The same durations as gen_ai.client.operation.duration, as a base-2 "
    "exponential histogram from which accurate, mergeable percentiles are computed.",
    attributes=CALL_ATTRIBUTES,
    optional_attributes=(ATTR_ERROR_TYPE,),
    modes=BOTH,
)

CALLS = Signal(
    name="gemini_slo.client.calls",
    kind=Kind.COUNTER,
    unit="{call}",
    description="GenAI calls by outcome (ok, error, timeout, rejected, rate_limited, blocked).",
    attributes=(*CALL_ATTRIBUTES, ATTR_OUTCOME),
    optional_attributes=(ATTR_ERROR_TYPE,),
    modes=BOTH,
)

TOKENS = Signal(
    name="gemini_slo.client.tokens",
    kind=Kind.COUNTER,
    unit="{token}",
    description="Tokens by type (input, output, thoughts, cached, tool_use) as Gemini "
    "reported them; a stream counts its final cumulative usage once.",
    attributes=(*CALL_ATTRIBUTES, ATTR_TOKEN_TYPE),
    modes=BOTH,
)

TOKEN_USAGE = Signal(
    name="gen_ai.client.token.usage",
    kind=Kind.HISTOGRAM,
    unit="{token}",
    description="Billable tokens per call, per the GenAI semantic conventions: type input "
    "(the prompt) or output (candidates plus thoughts).",
    attributes=(*CALL_ATTRIBUTES, ATTR_TOKEN_TYPE),
    modes=BOTH,
    buckets=TOKEN_USAGE_BUCKETS,
    semconv=True,
)

COST = Signal(
    name="gemini_slo.client.cost.usd",
    kind=Kind.COUNTER,
    unit="{USD}",
    description="Cost of the calls in US dollars, from the dated price table.",
    attributes=CALL_ATTRIBUTES,
    modes=BOTH,
)

UNPRICED_CALLS = Signal(
    name="gemini_slo.client.cost.unpriced_calls",
    kind=Kind.COUNTER,
    unit="{call}",
    description="Calls to a model the price table does not know; they cost nothing in "
    "gemini_slo.client.cost.usd (prices are never guessed).",
    attributes=CALL_ATTRIBUTES,
    modes=BOTH,
)

REQUESTS_IN_FLIGHT = Signal(
    name="gemini_slo.client.requests.in_flight",
    kind=Kind.UP_DOWN_COUNTER,
    unit="{request}",
    description="Calls started and not yet finished (sent to the API, past any queue).",
    attributes=CALL_ATTRIBUTES,
    modes=BOTH,
)

CONCURRENCY_LIMIT = Signal(
    name="gemini_slo.client.concurrency.limit",
    kind=Kind.GAUGE,
    unit="{request}",
    description="The workload's concurrency limit where one is known (an AdmissionQueue's "
    "max_concurrency, or the one given to observe()); utilization = in_flight / limit.",
    attributes=(ATTR_WORKLOAD, ATTR_MODE),
    modes=BOTH,
)

# ---- latency mode ---------------------------------------------------------------------

TIME_TO_FIRST_CHUNK = Signal(
    name="gen_ai.client.operation.time_to_first_chunk",
    kind=Kind.HISTOGRAM,
    unit="s",
    description="Time from the call to the first chunk of a streamed response.",
    attributes=CALL_ATTRIBUTES,
    modes=LATENCY_ONLY,
    buckets=TTFT_BUCKETS,
    semconv=True,
)

TIME_TO_FIRST_CHUNK_EXPONENTIAL = Signal(
    name="gemini_slo.client.operation.time_to_first_chunk",
    kind=Kind.EXPONENTIAL_HISTOGRAM,
    unit="s",
    description="The same as gen_ai.client.operation.time_to_first_chunk, as a base-2 "
    "exponential histogram for accurate percentiles.",
    attributes=CALL_ATTRIBUTES,
    modes=LATENCY_ONLY,
)

TIME_PER_OUTPUT_TOKEN = Signal(
    name="gemini_slo.client.operation.time_per_output_token",
    kind=Kind.HISTOGRAM,
    unit="s",
    description="Decode time per generated token of a stream, counted in tokens, not "
    "chunks: (duration - ttft) / (output + thoughts - 1).",
    attributes=CALL_ATTRIBUTES,
    modes=LATENCY_ONLY,
    buckets=TIME_PER_TOKEN_BUCKETS,
)

QUEUE_DEPTH = Signal(
    name="gemini_slo.queue.depth",
    kind=Kind.UP_DOWN_COUNTER,
    unit="{request}",
    description="Calls waiting in an AdmissionQueue for a slot.",
    attributes=(ATTR_WORKLOAD, ATTR_MODE, ATTR_QUEUE),
    modes=LATENCY_ONLY,
)

QUEUE_WAIT = Signal(
    name="gemini_slo.queue.wait",
    kind=Kind.HISTOGRAM,
    unit="s",
    description="Time a call waited in an AdmissionQueue before it got a slot or was shed.",
    attributes=(ATTR_WORKLOAD, ATTR_MODE, ATTR_QUEUE),
    modes=LATENCY_ONLY,
    buckets=QUEUE_WAIT_BUCKETS,
)

QUEUE_SHED = Signal(
    name="gemini_slo.queue.shed",
    kind=Kind.COUNTER,
    unit="{call}",
    description="Calls an AdmissionQueue shed at once (QueueRejected) because they would "
    "have waited longer than max_wait or past their deadline.",
    attributes=(ATTR_WORKLOAD, ATTR_MODE, ATTR_QUEUE),
    modes=LATENCY_ONLY,
)

DEADLINE_EXCEEDED = Signal(
    name="gemini_slo.client.deadline.exceeded",
    kind=Kind.COUNTER,
    unit="{call}",
    description="Calls that ran past the deadline given to observe(deadline=...).",
    attributes=CALL_ATTRIBUTES,
    modes=LATENCY_ONLY,
)

# ---- throughput mode ------------------------------------------------------------------

CALL_TOKENS_PER_SECOND = Signal(
    name="gemini_slo.client.call.output_tokens_per_second",
    kind=Kind.HISTOGRAM,
    unit="{token/s}",
    description="Generated tokens (output + thoughts) per second of each successful call.",
    attributes=CALL_ATTRIBUTES,
    modes=THROUGHPUT_ONLY,
    buckets=CALL_TOKENS_PER_SECOND_BUCKETS,
)

CALL_COST_PER_MILLION_TOKENS = Signal(
    name="gemini_slo.client.call.cost_per_million_tokens",
    kind=Kind.HISTOGRAM,
    unit="{USD}",
    description="Cost of each priced call in USD per 1M billable tokens.",
    attributes=CALL_ATTRIBUTES,
    modes=THROUGHPUT_ONLY,
    buckets=CALL_COST_PER_MILLION_BUCKETS,
)

#: Every signal the instrumentation records, in a stable order.
INSTRUMENTATION_SIGNALS: tuple[Signal, ...] = (
    OPERATION_DURATION,
    OPERATION_DURATION_EXPONENTIAL,
    CALLS,
    TOKENS,
    TOKEN_USAGE,
    COST,
    UNPRICED_CALLS,
    REQUESTS_IN_FLIGHT,
    CONCURRENCY_LIMIT,
    TIME_TO_FIRST_CHUNK,
    TIME_TO_FIRST_CHUNK_EXPONENTIAL,
    TIME_PER_OUTPUT_TOKEN,
    QUEUE_DEPTH,
    QUEUE_WAIT,
    QUEUE_SHED,
    DEADLINE_EXCEEDED,
    CALL_TOKENS_PER_SECOND,
    CALL_COST_PER_MILLION_TOKENS,
)


def signals_for(mode: Mode) -> tuple[Signal, ...]:
    """The signals recorded for a workload in ``mode``."""
    return tuple(s for s in INSTRUMENTATION_SIGNALS if mode in s.modes)


def duration_buckets(mode: Mode, thresholds: Iterable[float] = ()) -> tuple[float, ...]:
    """Explicit duration boundaries for ``mode``, with the spec's latency thresholds added."""
    base = LATENCY_DURATION_BUCKETS if mode is Mode.LATENCY else THROUGHPUT_DURATION_BUCKETS
    return with_thresholds(base, thresholds)


@dataclass(frozen=True, slots=True)
class BucketLayout:
    """The explicit boundaries of one workload's SLO histograms (seconds)."""

    duration: tuple[float, ...]
    """``gen_ai.client.operation.duration``: the mode's layout plus the latency thresholds."""
    ttft: tuple[float, ...]
    """``gemini_slo.client.time_to_first_chunk``: TTFT_BUCKETS plus the TTFT thresholds."""


def bucket_layout(
    mode: Mode, latency_thresholds: Iterable[float] = (), ttft_thresholds: Iterable[float] = ()
) -> BucketLayout:
    """A workload's bucket layout from its mode and its SLO thresholds.

    The one place it is computed: the spec model (``Workload.bucket_layout``) and the
    instrumentation's registry both call it, so the boundaries the generated rules count
    at are exactly the ones recorded.
    """
    return BucketLayout(
        duration=duration_buckets(mode, latency_thresholds),
        ttft=with_thresholds(TTFT_BUCKETS, ttft_thresholds),
    )


# --------------------------------------------------------------------------------------
# The OTLP -> Prometheus translation: as opentelemetry-exporter-prometheus applies it (where
# Prometheus' otlptranslator differs, see contract/translation.py; checked against both in
# tests/test_translation.py).
# --------------------------------------------------------------------------------------

# The translation itself lives in contract/translation.py (one concern per module); it is
# re-exported here, where every caller has always found it.
prometheus_label = translation.prometheus_label


def prometheus_name(name: str, unit: str, kind: Kind) -> str:
    """Translate an OTel metric name to the name opentelemetry-exporter-prometheus gives.

    >>> prometheus_name("gen_ai.client.operation.duration", "s", Kind.HISTOGRAM)
    'gen_ai_client_operation_duration_seconds'
    >>> prometheus_name("gemini_slo.client.tokens", "{token}", Kind.COUNTER)
    'gemini_slo_client_tokens_total'
    """
    return translation.prometheus_name(name, unit, kind)


def format_le(bound: float) -> str:
    """A bucket bound as an ``le`` label value, as Prometheus clients write it.

    ``0.5`` -> ``'0.5'``, ``1`` -> ``'1.0'``, ``inf`` -> ``'+Inf'``: prometheus_client's own
    formatter, so the agent, the app's ``/metrics`` and the rules' ``le`` matchers agree.
    """
    return str(floatToGoString(bound))  # type: ignore[no-untyped-call]


# Prometheus label names, for rule and dashboard generators.
LABEL_WORKLOAD = prometheus_label(ATTR_WORKLOAD)
LABEL_MODE = prometheus_label(ATTR_MODE)
LABEL_OUTCOME = prometheus_label(ATTR_OUTCOME)
LABEL_MODEL = prometheus_label(ATTR_REQUEST_MODEL)
LABEL_OPERATION = prometheus_label(ATTR_OPERATION)
LABEL_PROVIDER = prometheus_label(ATTR_PROVIDER)
LABEL_TOKEN_TYPE = prometheus_label(ATTR_TOKEN_TYPE)
LABEL_ERROR_TYPE = prometheus_label(ATTR_ERROR_TYPE)
LABEL_QUEUE = prometheus_label(ATTR_QUEUE)
