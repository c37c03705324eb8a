"""The SLO spec (``slo.yaml``, ``version: gemini-slo/v1``): a validated, frozen model.

Every field is documented in docs/slo-spec.md. Loading::

    from gemini_slo.contract.spec import load_spec, default_spec_path
    spec = load_spec(default_spec_path())        # the packaged example (contract/slo.yaml)
    spec = parse_spec(text, source="slo.yaml")   # from a string

An invalid spec raises :class:`SpecError` (a ``ValueError``) whose message names the file,
the line and the field path, e.g.
``slo.yaml:12: workloads[0].objectives.latency[1].threshold: expected a duration like
'500ms', '2s' or '5m', got 'fast'``; ``.line`` and ``.path`` carry the location.

The model, for the agent (gemini_slo_objective_* series, /api/slo) and the generators::

    for workload in spec.workloads:               # Workload: .name .mode .models .labels .selectors
        for o in workload.objectives:             # Objective, in a stable order
            o.name        # stable id, the value of the ``objective`` label: "latency_p95"
            o.kind        # ObjectiveKind.LATENCY, .TTFT, .AVAILABILITY, ...
            o.target      # good-event ratio, 0.95 for "95% under 500 ms"; 1.0 for floors/ceilings
            o.threshold   # the bound in o.unit: 0.5 (s), 0.995 (ratio), 10000 (tokens/s), ...
            o.unit        # Unit.SECONDS, RATIO, TOKENS_PER_SECOND, USD_PER_MILLION_TOKENS
            o.comparison  # Comparison.AT_MOST / AT_LEAST: how the measured value must
                          # compare with the threshold for the objective to be met
            o.is_met(v)   # apply that comparison to a measured value
            o.budget      # error budget ratio (1 - target), None for floors/ceilings
            o.percentile  # 0.95 for latency/TTFT/queue-wait objectives, else None
            o.summary     # "95% of calls under 500ms"

What each objective measures (the value handed to ``is_met``):

=========================== ============================================== ========== ===
name                        measured value                                 unit       cmp
=========================== ============================================== ========== ===
latency_p95, latency_p99    that percentile of end-to-end call duration    seconds    <=
ttft_p95                    that percentile of time to first chunk         seconds    <=
queue_wait_p95              that percentile of admission-queue wait        seconds    <=
availability                share of calls not failed (signals.FAILED_...)  ratio      >=
timeout_ratio               share of calls with outcome timeout            ratio      <=
shed_ratio                  share of calls with outcome rejected (shed)    ratio      <=
headroom                    in-flight / concurrency limit (utilization)    ratio      <=
tokens_per_second           generated (output + thoughts) tokens/s         tokens/s   >=
cost_per_million_tokens     USD per 1M billable tokens                     USD/1M     <=
error_ratio                 share of calls failed                          ratio      <=
rate_limited_ratio          share of calls answered 429                    ratio      <=
utilization                 in-flight / concurrency limit                  ratio      >=
stall                       seconds without generated tokens while busy    seconds    <=
=========================== ============================================== ========== ===

Latency and TTFT thresholds are histogram bucket boundaries: the instrumentation merges
:meth:`SloSpec.latency_thresholds` / :meth:`SloSpec.ttft_thresholds` into its layouts
(:attr:`Workload.bucket_layout`, computed by :func:`signals.bucket_layout` for both) so that
compliance is counted from the bucket at the threshold, never interpolated.
"""

from __future__ import annotations

import enum
import importlib.resources
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gemini_slo.contract import agent_series, signals
from gemini_slo.contract._spec_yaml import Field, SpecError, compose
from gemini_slo.contract.alert_names import ALERT_NAMES, LABEL_BURN_WINDOW, LABEL_SEVERITY, Severity
from gemini_slo.contract.durations import format_duration
from gemini_slo.contract.selectors import Selector, parse_selectors
from gemini_slo.contract.signals import Mode

__all__ = [
    "VERSION",
    "Alerting",
    "Comparison",
    "Notify",
    "Objective",
    "ObjectiveKind",
    "Selector",
    "SloSpec",
    "SpecError",
    "Unit",
    "Workload",
    "default_spec_path",
    "format_duration",
    "load_spec",
    "parse_spec",
]

VERSION = "gemini-slo/v1"

DEFAULT_HEADROOM = 0.60  # latency mode: utilization above this is a warning
DEFAULT_UTILIZATION_FLOOR = 0.80  # throughput mode: below this is wasted money
DEFAULT_RATE_LIMITED_RATIO = 0.05  # throughput mode: a 429 storm is more than this share
DEFAULT_STALL_AFTER = 300.0  # seconds without tokens while calls are in flight
DEFAULT_SCRAPE_INTERVAL = 15.0
DEFAULT_RUNBOOK_BASE_URL = "https://github.com/gemini-slo/gemini-slo/blob/main/alerts/runbook.md"
DEFAULT_WEBHOOK_URL = "http://127.0.0.1:9095/alerts"
#: Rate windows never get shorter than this many scrape intervals (see Alerting.min_window).
MIN_WINDOW_SCRAPES = 4


class ObjectiveKind(enum.StrEnum):
    """What an objective constrains; decides its SLI, its alert and its dashboard panel."""

    LATENCY = "latency"
    TTFT = "ttft"
    QUEUE_WAIT = "queue_wait"
    AVAILABILITY = "availability"
    TIMEOUT_RATIO = "timeout_ratio"
    SHED_RATIO = "shed_ratio"
    HEADROOM = "headroom"
    TOKENS_PER_SECOND = "tokens_per_second"
    COST_PER_MILLION_TOKENS = "cost_per_million_tokens"
    ERROR_RATIO = "error_ratio"
    RATE_LIMITED_RATIO = "rate_limited_ratio"
    UTILIZATION = "utilization"
    STALL = "stall"


class Unit(enum.StrEnum):
    """Unit of an objective's threshold."""

    SECONDS = "seconds"
    RATIO = "ratio"
    TOKENS_PER_SECOND = "tokens_per_second"
    USD_PER_MILLION_TOKENS = "usd_per_million_tokens"


class Comparison(enum.StrEnum):
    """How the measured value must compare with the threshold for the objective to be met."""

    AT_MOST = "<="
    AT_LEAST = ">="


#: Objectives allowed per mode, in the order the model lists them.
MODE_OBJECTIVES: dict[Mode, tuple[ObjectiveKind, ...]] = {
    Mode.LATENCY: (
        ObjectiveKind.LATENCY,
        ObjectiveKind.TTFT,
        ObjectiveKind.AVAILABILITY,
        ObjectiveKind.TIMEOUT_RATIO,
        ObjectiveKind.SHED_RATIO,
        ObjectiveKind.QUEUE_WAIT,
        ObjectiveKind.HEADROOM,
    ),
    Mode.THROUGHPUT: (
        ObjectiveKind.TOKENS_PER_SECOND,
        ObjectiveKind.COST_PER_MILLION_TOKENS,
        ObjectiveKind.ERROR_RATIO,
        ObjectiveKind.RATE_LIMITED_RATIO,
        ObjectiveKind.UTILIZATION,
        ObjectiveKind.STALL,
    ),
}


def _percent(ratio: float) -> str:
    return f"{ratio * 100:.6g}%"


def _percentile_suffix(percentile: float) -> str:
    # 0.95 -> "p95", 0.999 -> "p99_9": the value must be a valid part of a label value
    # and of a Grafana refId, and stable across releases.
    return "p" + f"{percentile * 100:.6g}".replace(".", "_")


@dataclass(frozen=True, slots=True)
class Objective:
    """One objective of a workload; see the module docstring for each kind."""

    name: str
    kind: ObjectiveKind
    target: float
    threshold: float
    unit: Unit
    comparison: Comparison
    percentile: float | None = None

    @property
    def budget(self) -> float | None:
        """The error budget as a ratio of events (1 - target); None for floors/ceilings."""
        return None if self.target >= 1.0 else round(1.0 - self.target, 12)

    @property
    def has_budget(self) -> bool:
        """True when the objective is an event ratio with an error budget (burn-rate alerts)."""
        return self.target < 1.0

    def is_met(self, value: float) -> bool:
        """Whether a measured value (see the module docstring) meets the objective.

        NaN (no data) is never met.
        """
        if math.isnan(value):
            return False
        if self.comparison is Comparison.AT_MOST:
            return value <= self.threshold
        return value >= self.threshold

    @property
    def summary(self) -> str:
        """A one-line human description: '95% of calls under 500ms'."""
        t = self.threshold
        match self.kind:
            case ObjectiveKind.LATENCY:
                return f"{_percent(self.target)} of calls under {format_duration(t)}"
            case ObjectiveKind.TTFT:
                return f"{_percent(self.target)} of first chunks under {format_duration(t)}"
            case ObjectiveKind.QUEUE_WAIT:
                return f"{_percent(self.target)} of queue waits under {format_duration(t)}"
            case ObjectiveKind.AVAILABILITY:
                return f"at least {_percent(t)} of calls succeed"
            case ObjectiveKind.TIMEOUT_RATIO:
                return f"at most {_percent(t)} of calls time out"
            case ObjectiveKind.SHED_RATIO:
                return f"at most {_percent(t)} of calls shed"
            case ObjectiveKind.ERROR_RATIO:
                return f"at most {_percent(t)} of calls fail"
            case ObjectiveKind.RATE_LIMITED_RATIO:
                return f"at most {_percent(t)} of calls rate limited (429)"
            case ObjectiveKind.HEADROOM:
                return f"utilization at most {_percent(t)} (keep headroom)"
            case ObjectiveKind.UTILIZATION:
                return f"utilization at least {_percent(t)}"
            case ObjectiveKind.TOKENS_PER_SECOND:
                return f"at least {t:g} generated tokens/s sustained"
            case ObjectiveKind.COST_PER_MILLION_TOKENS:
                return f"at most {t:g} USD per 1M tokens"
            case ObjectiveKind.STALL:
                return f"no stall: tokens within {format_duration(t)} while calls are in flight"


@dataclass(frozen=True, slots=True)
class Workload:
    """A named workload in one mode, with its models, alert labels and objectives."""

    name: str
    mode: Mode
    models: tuple[str, ...]
    objectives: tuple[Objective, ...]
    labels: tuple[tuple[str, str], ...] = ()
    #: Which foreign series (without gemini_slo.workload) are this workload's, in order
    #: (contract/selectors.py).
    selectors: tuple[Selector, ...] = ()

    def objective(self, name: str) -> Objective:
        """The objective called ``name``; KeyError when there is none."""
        for o in self.objectives:
            if o.name == name:
                return o
        raise KeyError(f"workload {self.name!r} has no objective {name!r}")

    def of_kind(self, kind: ObjectiveKind) -> tuple[Objective, ...]:
        """The objectives of one kind, in spec order (several for LATENCY)."""
        return tuple(o for o in self.objectives if o.kind is kind)

    def first(self, kind: ObjectiveKind) -> Objective | None:
        """The first objective of a kind, or None."""
        found = self.of_kind(kind)
        return found[0] if found else None

    @property
    def latency_thresholds(self) -> tuple[float, ...]:
        """Latency objective thresholds in seconds, sorted and unique."""
        return tuple(sorted({o.threshold for o in self.of_kind(ObjectiveKind.LATENCY)}))

    @property
    def ttft_thresholds(self) -> tuple[float, ...]:
        """TTFT objective thresholds in seconds, sorted and unique."""
        return tuple(sorted({o.threshold for o in self.of_kind(ObjectiveKind.TTFT)}))

    @property
    def bucket_layout(self) -> signals.BucketLayout:
        """The explicit bucket layout the instrumentation records this workload into."""
        return signals.bucket_layout(self.mode, self.latency_thresholds, self.ttft_thresholds)

    def duration_buckets(self) -> tuple[float, ...]:
        """The duration bucket layout the instrumentation uses for this workload."""
        return self.bucket_layout.duration

    def ttft_buckets(self) -> tuple[float, ...]:
        """The time-to-first-chunk bucket layout for this workload."""
        return self.bucket_layout.ttft

    @property
    def label_dict(self) -> dict[str, str]:
        """The workload's extra alert labels as a dict."""
        return dict(self.labels)


@dataclass(frozen=True, slots=True)
class Notify:
    """Where Alertmanager sends notifications; see alerts/alertmanager.yaml."""

    webhook_url: str | None = DEFAULT_WEBHOOK_URL
    pagerduty_routing_key_file: str | None = None
    slack_api_url_file: str | None = None
    slack_channel: str = "#gemini-slo"


@dataclass(frozen=True, slots=True)
class Alerting:
    """Alert settings shared by every workload."""

    window_scale: float = 1.0
    scrape_interval: float = DEFAULT_SCRAPE_INTERVAL
    labels: tuple[tuple[str, str], ...] = ()
    runbook_base_url: str = DEFAULT_RUNBOOK_BASE_URL
    severity_overrides: tuple[tuple[str, Severity], ...] = ()
    notify: Notify = field(default_factory=Notify)
    #: Bad events every burn-rate pair needs in its long window; None: derived per pair
    #: from its burn factor (contract/burn_windows.default_min_bad_events).
    min_bad_events: int | None = None

    @property
    def min_window(self) -> float:
        """Shortest rate window in seconds: MIN_WINDOW_SCRAPES scrape intervals.

        A rate over fewer scrapes is noise (or empty); scaled windows are clamped to this.
        """
        return MIN_WINDOW_SCRAPES * self.scrape_interval

    def window(self, nominal_seconds: float) -> float:
        """A rate/range window in whole seconds: divided by window_scale, at least min_window."""
        return float(max(round(nominal_seconds / self.window_scale), self.min_window))

    def hold(self, nominal_seconds: float) -> float:
        """A ``for`` (or Alertmanager timing) duration divided by window_scale, whole seconds."""
        return float(max(round(nominal_seconds / self.window_scale), 0))

    def severity(self, alert: str, default: Severity) -> Severity:
        """The severity of ``alert`` after the spec's overrides."""
        return dict(self.severity_overrides).get(alert, default)

    @property
    def label_dict(self) -> dict[str, str]:
        """The labels added to every alert, as a dict."""
        return dict(self.labels)


@dataclass(frozen=True, slots=True)
class SloSpec:
    """A validated slo.yaml."""

    version: str
    period: float  # seconds; a whole number of days
    alerting: Alerting
    workloads: tuple[Workload, ...]
    source: str = "slo.yaml"

    @property
    def period_days(self) -> int:
        """The SLO period in days (28 or 30, typically)."""
        return round(self.period / 86400)

    def workload(self, name: str) -> Workload:
        """The workload called ``name``; KeyError when there is none."""
        for w in self.workloads:
            if w.name == name:
                return w
        raise KeyError(f"no workload {name!r} in {self.source}")

    def _resolve(self, workload: Workload | str) -> Workload:
        return self.workload(workload) if isinstance(workload, str) else workload

    def latency_thresholds(self, workload: Workload | str) -> tuple[float, ...]:
        """The workload's latency thresholds in seconds (duration bucket boundaries)."""
        return self._resolve(workload).latency_thresholds

    def ttft_thresholds(self, workload: Workload | str) -> tuple[float, ...]:
        """The workload's TTFT thresholds in seconds (time-to-first-chunk boundaries)."""
        return self._resolve(workload).ttft_thresholds

    def by_mode(self, mode: Mode) -> tuple[Workload, ...]:
        """The workloads in one mode."""
        return tuple(w for w in self.workloads if w.mode is mode)

    # ---- workload selectors (contract/selectors.py) ----------------------------------

    def match_workload(
        self, resource: Mapping[str, str], attributes: Mapping[str, str]
    ) -> Workload | None:
        """The first workload (spec order) one of whose selectors matches, or None."""
        for w in self.workloads:
            if any(sel.matches(resource, attributes) for sel in w.selectors):
                return w
        return None


# ======================================================================================
# Loading
# ======================================================================================

_NAME = re.compile(r"[a-z][a-z0-9_-]{0,39}")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/@:-]*")
_URL = re.compile(r"https?://\S+")
# Labels that gemini-slo sets itself; a spec label may not shadow them.
_RESERVED_LABELS = frozenset(
    {
        "alertname",
        LABEL_SEVERITY,
        LABEL_BURN_WINDOW,
        signals.LABEL_WORKLOAD,
        signals.LABEL_MODE,
        agent_series.LABEL_OBJECTIVE,
        "job",
        "instance",
        "le",
    }
)


def default_spec_path() -> Path:
    """The packaged example spec (contract/slo.yaml), the default of the agent and the demo."""
    return Path(str(importlib.resources.files("gemini_slo.contract").joinpath("slo.yaml")))


def load_spec(path: str | Path) -> SloSpec:
    """Read and validate a spec file; errors name the file by its base name and the line."""
    p = Path(path)
    return parse_spec(p.read_text(encoding="utf-8"), source=p.name)


def parse_spec(text: str, source: str = "slo.yaml") -> SloSpec:
    """Validate spec text; raises SpecError naming the field path and line."""
    root = compose(text, source)
    top = root.mapping(("version", "period", "alerting", "workloads"), ("version", "workloads"))
    version = top["version"].string()
    if version != VERSION:
        top["version"].fail(f"unsupported version {version!r} (this build reads {VERSION!r})")
    period = 30 * 86400.0
    if "period" in top:
        period = top["period"].duration()
        if period % 86400 != 0 or not 1 <= period / 86400 <= 365:
            top["period"].fail("expected a whole number of days like '28d' or '30d'")
    alerting = _alerting(top["alerting"]) if "alerting" in top else Alerting()
    items = top["workloads"].sequence()
    if not items:
        top["workloads"].fail("expected at least one workload")
    workloads: list[Workload] = []
    seen: dict[str, Field] = {}
    selectors: dict[Selector, str] = {}
    for item in items:
        workload = _workload(item)
        if workload.name in seen:
            item.fail(
                f"duplicate workload name {workload.name!r} (first on line {seen[workload.name].line})"
            )
        seen[workload.name] = item
        for i, selector in enumerate(workload.selectors):
            if selector in selectors:
                # First match wins: the same selector later could never match.
                item.mapping(_WORKLOAD_FIELDS)["select"].sequence()[i].fail(
                    f"the same selector as workload {selectors[selector]!r}'s, which wins"
                )
            selectors[selector] = workload.name
        workloads.append(workload)
    return SloSpec(
        version=version,
        period=period,
        alerting=alerting,
        workloads=tuple(workloads),
        source=source,
    )


def _labels(f: Field) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for key, value in f.string_mapping().items():
        if not _LABEL_NAME.fullmatch(key) or key.startswith("__"):
            value.fail("not a valid Prometheus label name")
        if key in _RESERVED_LABELS:
            value.fail("this label is set by gemini-slo itself")
        scalar = value.scalar()
        if isinstance(scalar, bool) or not isinstance(scalar, str | int | float):
            value.fail(f"expected a string label value, got {scalar!r}")
        out.append((key, str(scalar)))
    return tuple(sorted(out))


def _alerting(f: Field) -> Alerting:
    fields = f.mapping(
        (
            "window_scale",
            "scrape_interval",
            "labels",
            "runbook_base_url",
            "severity_overrides",
            "notify",
            "min_bad_events",
        )
    )
    default = Alerting()
    window_scale = default.window_scale
    if "window_scale" in fields:
        window_scale = fields["window_scale"].number()
        if window_scale < 1:
            fields["window_scale"].fail(f"expected a number >= 1, got {window_scale:g}")
    scrape = (
        fields["scrape_interval"].duration()
        if "scrape_interval" in fields
        else DEFAULT_SCRAPE_INTERVAL
    )
    if scrape < 1:
        fields["scrape_interval"].fail("expected at least 1s")
    runbook = default.runbook_base_url
    if "runbook_base_url" in fields:
        runbook = fields["runbook_base_url"].string(_URL, "an http(s) URL")
        if "#" in runbook:
            fields["runbook_base_url"].fail("must not contain '#': the alert's anchor is appended")
    overrides: list[tuple[str, Severity]] = []
    if "severity_overrides" in fields:
        for name, value in fields["severity_overrides"].string_mapping().items():
            if name not in ALERT_NAMES:
                value.fail(f"unknown alert (known: {', '.join(ALERT_NAMES)})")
            sev = value.string()
            if sev not in Severity.__members__.values():
                value.fail(f"expected one of {', '.join(s.value for s in Severity)}, got {sev!r}")
            overrides.append((name, Severity(sev)))
    min_bad_events: int | None = None
    if "min_bad_events" in fields:
        count = fields["min_bad_events"].number()
        if count != int(count) or count < 1:
            fields["min_bad_events"].fail(f"expected a whole number >= 1, got {count:g}")
        min_bad_events = int(count)
    return Alerting(
        window_scale=window_scale,
        scrape_interval=scrape,
        labels=_labels(fields["labels"]) if "labels" in fields else (),
        runbook_base_url=runbook,
        severity_overrides=tuple(sorted(overrides)),
        notify=_notify(fields["notify"]) if "notify" in fields else Notify(),
        min_bad_events=min_bad_events,
    )


def _notify(f: Field) -> Notify:
    fields = f.mapping(
        ("webhook_url", "pagerduty_routing_key_file", "slack_api_url_file", "slack_channel")
    )
    webhook: str | None = DEFAULT_WEBHOOK_URL
    if "webhook_url" in fields:
        raw = fields["webhook_url"].scalar()
        webhook = (
            None if raw is None else fields["webhook_url"].string(_URL, "an http(s) URL or null")
        )

    def path(key: str) -> str | None:
        return fields[key].string(what="a file path") if key in fields else None

    channel = (
        fields["slack_channel"].string() if "slack_channel" in fields else Notify().slack_channel
    )
    return Notify(
        webhook_url=webhook,
        pagerduty_routing_key_file=path("pagerduty_routing_key_file"),
        slack_api_url_file=path("slack_api_url_file"),
        slack_channel=channel,
    )


_WORKLOAD_FIELDS = ("name", "mode", "models", "labels", "objectives", "select")


def _workload(f: Field) -> Workload:
    fields = f.mapping(_WORKLOAD_FIELDS, ("name", "mode"))
    name = fields["name"].string(
        _NAME, "a workload name of lowercase letters, digits, '-' and '_' (at most 40)"
    )
    mode_text = fields["mode"].string()
    if mode_text not in {m.value for m in Mode}:
        fields["mode"].fail(
            f"expected one of {', '.join(m.value for m in Mode)}, got {mode_text!r}"
        )
    mode = Mode(mode_text)
    models: list[str] = []
    if "models" in fields:
        for item in fields["models"].sequence():
            model = item.string(_MODEL, "a model name like 'gemini-2.5-flash'")
            if model in models:
                item.fail(f"duplicate model {model!r}")
            models.append(model)
    labels = _labels(fields["labels"]) if "labels" in fields else ()
    objectives = _objectives(fields.get("objectives"), mode)
    selectors = parse_selectors(fields["select"]) if "select" in fields else ()
    return Workload(
        name=name,
        mode=mode,
        models=tuple(models),
        objectives=objectives,
        labels=labels,
        selectors=selectors,
    )


def _percentile_objectives(
    f: Field, kind: ObjectiveKind, prefix: str, check: Callable[[Field, float], None] | None = None
) -> list[Objective]:
    items = f.sequence() if f.is_sequence() else [f]
    out: list[Objective] = []
    seen: dict[str, Field] = {}
    for item in items:
        fields = item.mapping(("percentile", "threshold"), ("percentile", "threshold"))
        percentile = fields["percentile"].percentile()
        threshold = fields["threshold"].duration()
        if check is not None:
            check(fields["threshold"], threshold)
        name = f"{prefix}_{_percentile_suffix(percentile)}"
        if name in seen:
            item.fail(
                f"a second objective at percentile {percentile * 100:g} (first on line {seen[name].line})"
            )
        seen[name] = item
        out.append(
            Objective(
                name=name,
                kind=kind,
                target=percentile,
                threshold=threshold,
                unit=Unit.SECONDS,
                comparison=Comparison.AT_MOST,
                percentile=percentile,
            )
        )
    return out


def _check_queue_wait(f: Field, threshold: float) -> None:
    # The queue wait histogram has a fixed layout: the threshold must be one of its
    # boundaries, or the SLI would have to interpolate.
    if not any(math.isclose(threshold, b) for b in signals.QUEUE_WAIT_BUCKETS):
        allowed = ", ".join(format_duration(b) for b in signals.QUEUE_WAIT_BUCKETS)
        f.fail(f"must be a queue-wait bucket boundary: one of {allowed}")


@dataclass(frozen=True, slots=True)
class _BoundRule:
    """How a floor/ceiling objective is written: ``{key: value}``, and its default."""

    key: str
    unit: Unit
    comparison: Comparison
    read: Callable[[Field], float]
    default: float | None  # None: the objective exists only when the spec gives it


# Floor and ceiling objectives (target 1.0, no error budget), table-driven.
_BOUNDS: dict[ObjectiveKind, _BoundRule] = {
    ObjectiveKind.HEADROOM: _BoundRule(
        "max_utilization", Unit.RATIO, Comparison.AT_MOST, Field.ratio, DEFAULT_HEADROOM
    ),
    ObjectiveKind.UTILIZATION: _BoundRule(
        "min", Unit.RATIO, Comparison.AT_LEAST, Field.ratio, DEFAULT_UTILIZATION_FLOOR
    ),
    ObjectiveKind.TOKENS_PER_SECOND: _BoundRule(
        "min", Unit.TOKENS_PER_SECOND, Comparison.AT_LEAST, Field.positive_number, None
    ),
    ObjectiveKind.COST_PER_MILLION_TOKENS: _BoundRule(
        "max", Unit.USD_PER_MILLION_TOKENS, Comparison.AT_MOST, Field.positive_number, None
    ),
    ObjectiveKind.STALL: _BoundRule(
        "after", Unit.SECONDS, Comparison.AT_MOST, Field.duration, DEFAULT_STALL_AFTER
    ),
}

# Event-ratio objectives: True when the spec gives the good share (availability), False
# when it gives the bad share (timeouts); and the default bad share, if any.
_RATIOS: dict[ObjectiveKind, tuple[bool, float | None]] = {
    ObjectiveKind.AVAILABILITY: (True, None),
    ObjectiveKind.TIMEOUT_RATIO: (False, None),
    ObjectiveKind.SHED_RATIO: (False, None),
    ObjectiveKind.ERROR_RATIO: (False, None),
    ObjectiveKind.RATE_LIMITED_RATIO: (False, DEFAULT_RATE_LIMITED_RATIO),
}

_PERCENTILES: dict[ObjectiveKind, Callable[[Field, float], None] | None] = {
    ObjectiveKind.LATENCY: None,
    ObjectiveKind.TTFT: None,
    ObjectiveKind.QUEUE_WAIT: _check_queue_wait,
}


def _bound(f: Field | None, kind: ObjectiveKind, rule: _BoundRule) -> Objective | None:
    if f is None:
        threshold = rule.default
    else:
        threshold = rule.read(f.mapping((rule.key,), (rule.key,))[rule.key])
    if threshold is None:
        return None
    return Objective(kind.value, kind, 1.0, threshold, rule.unit, rule.comparison)


def _ratio(
    f: Field | None, kind: ObjectiveKind, good: bool, default: float | None
) -> Objective | None:
    if f is None:
        if default is None:
            return None
        value = default
    else:
        value = f.ratio()
    return Objective(
        name=kind.value,
        kind=kind,
        target=value if good else round(1.0 - value, 12),
        threshold=value,
        unit=Unit.RATIO,
        comparison=Comparison.AT_LEAST if good else Comparison.AT_MOST,
    )


def _objectives(f: Field | None, mode: Mode) -> tuple[Objective, ...]:
    allowed = MODE_OBJECTIVES[mode]
    allowed_keys = tuple(k.value for k in allowed)
    fields: dict[str, Field] = {}
    if f is not None:
        if f.is_mapping():
            # A known objective of the other mode gets a clearer message than "unknown".
            for key_node, _ in f.node.value:
                key = str(key_node.value)
                if key in ObjectiveKind.__members__.values() and key not in allowed_keys:
                    Field(key_node, f"{f.path}.{key}", f.source).fail(
                        f"not an objective of a {mode.value}-mode workload "
                        f"(allowed: {', '.join(allowed_keys)})"
                    )
        fields = f.mapping(allowed_keys)
    out: list[Objective] = []
    for kind in allowed:
        item = fields.get(kind.value)
        found: Objective | None = None
        if kind in _PERCENTILES:
            if item is not None:
                out += _percentile_objectives(item, kind, kind.value, _PERCENTILES[kind])
        elif kind in _RATIOS:
            good, default = _RATIOS[kind]
            found = _ratio(item, kind, good, default)
        else:
            found = _bound(item, kind, _BOUNDS[kind])
        if found is not None:
            out.append(found)
    return tuple(out)
