"""The series store: OTLP points from many instances merged into one series per label set.

Model
-----
A *family* is one Prometheus metric (the standard translation of the OTel name, unit and
type). A *series* is one attribute set of a family; the exposed labels are the data
point attributes, translated (``gen_ai.request.model`` -> ``gen_ai_request_model``).
Resource attributes are not labels: the agent merges instances, and Prometheus adds its
own ``job``/``instance`` for the agent target.

Behind each series the store keeps one small state per *instance*: the resource's
``service.instance.id`` (or all resource attributes when it has none) plus the
instrumentation scope, so that cumulative points from many processes can be told apart.

Merging by increments
---------------------
For counters and histograms the store never re-adds instances at scrape time. Each
cumulative point is compared with the previous point of the same instance and only the
*increment* is added to the merged series:

* same incarnation (same ``start_time_unix_nano``) and the value grew: the difference;
* a new incarnation (a later start time, or the value went down): the whole new value,
  since the new process counted from zero -- the dead incarnation's total stays in the
  merged series, which therefore never decreases (Prometheus ``rate()`` stays right);
* an older start time or timestamp than the last seen: a late or duplicated point, ignored.

The rule is the same for counters and for both kinds of histogram (one function,
``_incarnation``), on what never goes down within an incarnation: a counter's value, a
histogram's count. An explicit histogram whose boundaries changed is counted afresh too.

Delta points are increments already. The merged series thus never goes down when an
instance dies or expires: what it counted stays counted. Gauges and non-monotonic sums
(up-down counters) are the *sum of the live instances' last values* (plus delta
contributions), which is what ``sum()`` over per-instance series would give; an expired
instance stops contributing.

Explicit-bucket histograms merge bucket by bucket when boundaries are equal. When an
instance uses other boundaries (a deploy that changed the spec's thresholds), each of its
buckets is counted in the first bucket of the merged series whose upper bound is at least
its own: exact when the new boundaries include the old ones, otherwise an observation may
move up one bucket, never down (SLO compliance is never overstated). The merged series
keeps the boundaries of its first point.

Exponential histograms are not exposed as histograms: their increments feed
:class:`~gemini_slo.agent.windows.Windows`, per workload, mode and model, from which the
percentile gauges are computed.

Expiry and limits
-----------------
An instance not heard from for ``stale_after`` seconds is dropped (its counted total stays
in the merged series); a recently retired instance is remembered, so that one that was
only partitioned and comes back with the same start time is not counted twice. A series
with no update for ``stale_after`` is removed. Each family holds at most
``max_series_per_metric`` series, shared fairly (:mod:`gemini_slo.agent.cardinality`): each
workload of the spec has a reserve, the rest share a pool, and points of label sets that
find no room go to an overflow series labelled ``otel_metric_overflow="true"`` (as the
OpenTelemetry SDK does), one per spec workload and one for the rest. An overflow series'
own per-instance table is bounded by the same limit (beyond it, cumulative points are
rejected because their increments cannot be computed without state). The number of
families (the contract's own metrics always find room), of instances per series and of
instance states in all are bounded too, and so are the lengths of names, units, label names
and values, so memory is bounded whatever arrives.
"""

from __future__ import annotations

import bisect
import itertools
import math
import operator
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from gemini_slo.agent import labels as labels_mod
from gemini_slo.agent import selectors as selectors_mod
from gemini_slo.agent.cardinality import OVERFLOW_LABEL, Cardinality, FamilyBudget, Ticket
from gemini_slo.agent.exponential import MAX_SCALE, MIN_SCALE, ExpHistogram
from gemini_slo.agent.selectors import Relabel, WorkloadSelectors
from gemini_slo.agent.self_metrics import SelfMetrics
from gemini_slo.agent.windows import COUNTER_METRICS, Windows
from gemini_slo.contract import signals
from gemini_slo.contract.agent_series import PERCENTILE_METRICS
from gemini_slo.contract.signals import Kind
from gemini_slo.contract.spec import SloSpec
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1 import metrics_pb2

LabelKey = tuple[tuple[str, str], ...]
InstanceKey = tuple[Any, ...]

#: The overflow series of everything outside the spec's workloads, when its points carry
#: none of the labels an overflow series keeps (see gemini_slo.agent.cardinality).
OVERFLOW_KEY: LabelKey = ((OVERFLOW_LABEL, "true"),)

_CUMULATIVE = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
_DELTA = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
_NO_RECORDED_VALUE = metrics_pb2.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
#: Buckets one incoming exponential histogram may carry (a memory guard; the SDK sends 160).
MAX_INCOMING_EXP_BUCKETS = 4096
MAX_EXPLICIT_BOUNDS = 1024
_RETIRED_PER_SERIES = 16
#: The OpenTelemetry API's limits on instrument names and units.
MAX_METRIC_NAME_LENGTH = 255
MAX_UNIT_LENGTH = 63
MAX_HELP_LENGTH = 1024


@dataclass(frozen=True, slots=True)
class StoreLimits:
    """Bounds on what the store keeps."""

    stale_after: float = 300.0
    max_series_per_metric: int = 2000
    #: Each spec workload's reserve of series per metric (None: the budget / (workloads + 1)).
    max_series_per_workload: int | None = None
    #: Models a spec workload may bring that the spec does not list for it, per metric.
    max_models_per_workload: int = 20
    max_metrics: int = 1000
    max_instances_per_series: int = 10_000
    max_instances: int = 200_000
    max_exp_buckets: int = signals.EXPONENTIAL_MAX_BUCKETS
    max_label_name_length: int = labels_mod.MAX_NAME_LENGTH
    max_label_value_length: int = labels_mod.MAX_VALUE_LENGTH


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What one export request did."""

    points: int
    rejected: int
    overflowed: int
    messages: tuple[str, ...]

    def error_message(self) -> str:
        """The partial_success message (empty when there is nothing to say)."""
        return "; ".join(self.messages)


#: The start and time of an instance that has sent no point yet: before any real one
#: (OTLP times are unsigned), so that its first point is a new incarnation.
_NO_POINT_YET = -1


class Instance:
    """Last state of one instance's cumulative stream for one series."""

    __slots__ = ("bounds", "buckets", "count", "exp", "seen", "start", "sum", "time", "value")

    def __init__(self, seen: float) -> None:
        self.start = _NO_POINT_YET
        self.time = _NO_POINT_YET
        self.seen = seen
        self.value = 0.0
        self.count = 0
        self.sum = 0.0
        self.bounds: tuple[float, ...] = ()
        self.buckets: list[int] = []
        self.exp: ExpHistogram | None = None


class Series:
    """One merged series (see the module docstring)."""

    __slots__ = (
        "bounds",
        "buckets",
        "count",
        "counter_key",
        "group",
        "instances",
        "overflow",
        "retired",
        "sum",
        "text",
        "ticket",
        "updated",
        "value",
    )

    def __init__(self, now: float) -> None:
        self.value = 0.0  # counters: merged total; gauges: delta contributions
        self.count = 0
        self.sum = 0.0
        self.bounds: tuple[float, ...] | None = None
        self.buckets: list[int] = []
        self.instances: dict[InstanceKey, Instance] = {}
        self.retired: dict[InstanceKey, Instance] = {}
        self.updated = now
        self.group: tuple[str, str, str, str] | None = None  # Windows key, if tracked
        self.counter_key: tuple[str, str, str, str] | None = None
        self.text: str | None = None  # the exposition's label text, formatted once
        self.ticket: Ticket | None = None  # its share of the family's budget
        self.overflow = False  # an overflow series (its instances are (labels, instance))

    def gauge_value(self) -> float:
        """Sum of the live instances' last values plus delta contributions."""
        return self.value + sum(i.value for i in self.instances.values())


@dataclass(slots=True)
class Family:
    """One Prometheus metric family."""

    name: str
    otel_name: str
    kind: Kind
    unit: str
    help: str
    series: dict[LabelKey, Series] = field(default_factory=dict)
    budget: FamilyBudget = field(default_factory=FamilyBudget)
    overflow: set[LabelKey] = field(default_factory=set)  # keys of its overflow series


_KIND_NAMES = {
    Kind.COUNTER: "counter (monotonic sum)",
    Kind.UP_DOWN_COUNTER: "non-monotonic sum",
    Kind.GAUGE: "gauge",
    Kind.HISTOGRAM: "histogram",
    Kind.EXPONENTIAL_HISTOGRAM: "exponential histogram",
}
_VALID_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
#: A gauge and a non-monotonic sum are both Prometheus gauges with the same name and the
#: same merge (live instances' last values summed): one family may receive both.
_GAUGE_KINDS = {Kind.GAUGE, Kind.UP_DOWN_COUNTER}
_KNOWN_HELP = {s.name: s.description for s in signals.INSTRUMENTATION_SIGNALS}


@dataclass(frozen=True, slots=True)
class _Counter:
    """A contract counter the agent feeds itself: its family name and an OTLP template."""

    name: str
    template: metrics_pb2.Metric


def _counter(signal: signals.Signal) -> _Counter:
    template = metrics_pb2.Metric(
        name=signal.name, unit=signal.unit, description=signal.description
    )
    return _Counter(signal.prometheus, template)


#: (the counter, its labels from the histogram's, whether it adds the sum or the count)
_Derived = tuple[_Counter, Callable[[LabelKey], LabelKey], bool]
#: Foreign histograms that stand for a contract counter the foreign emitter does not send:
#: the duration histogram's count for the calls (outcome from error.type), the token-usage
#: histogram's sum for the tokens.
_FOREIGN_COUNTERS: dict[str, _Derived] = {
    signals.OPERATION_DURATION.name: (_counter(signals.CALLS), selectors_mod.calls_labels, False),
    signals.TOKEN_USAGE.name: (_counter(signals.TOKENS), selectors_mod.tokens_labels, True),
}


class _Rejections:
    """Collects rejected points of one request, with a few example messages."""

    __slots__ = ("count", "messages", "self_metrics")

    def __init__(self, self_metrics: SelfMetrics) -> None:
        self.count = 0
        self.messages: dict[str, int] = {}
        self.self_metrics = self_metrics

    def add(self, reason: str, message: str, n: int = 1) -> None:
        self.count += n
        self.self_metrics.rejected_points[reason] += n
        if message in self.messages or len(self.messages) < 5:
            self.messages[message] = self.messages.get(message, 0) + n


class _Ctx:
    """Where the points of one metric come from, where rejections go, how many overflowed."""

    __slots__ = ("delta", "instance", "now", "overflowed", "rejections", "relabel")

    def __init__(
        self,
        instance: InstanceKey,
        delta: bool,
        now: float,
        rejections: _Rejections,
        relabel: Relabel | None = None,
    ) -> None:
        self.instance = instance
        #: The spec's workload selectors for this resource (agent/selectors.py), if any.
        self.relabel = relabel
        self.delta = delta
        self.now = now
        self.rejections = rejections
        self.overflowed = 0


# Where a cumulative point stands against the last point of its instance. Plain ints, not
# an enum: looking up an enum member costs more than the rest of the rule, once a point.
#: The same process, counting on: the increment is the difference.
_SAME_INCARNATION: Final = 0
#: A new instance or a restarted process: the whole value is the increment.
_NEW_INCARNATION: Final = 1
#: A point of an older incarnation, or out of order: ignored.
_LATE_POINT: Final = 2


def _incarnation(inst: Instance, start: int, time_: int, total: float, last_total: float) -> int:
    """The merge rule of the module docstring, the one place it is written.

    ``total`` is what never goes down within one incarnation (a counter's value, a
    histogram's count) and ``last_total`` the same of the instance's last point.
    """
    if start == inst.start:  # the usual case first
        if time_ < inst.time:
            return _LATE_POINT
        return _SAME_INCARNATION if total >= last_total else _NEW_INCARNATION
    return _NEW_INCARNATION if start > inst.start else _LATE_POINT


class Store:
    """Merged series from every instance; thread-safe (one lock, short critical sections)."""

    def __init__(
        self,
        limits: StoreLimits | None = None,
        *,
        windows: Windows | None = None,
        self_metrics: SelfMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        spec: SloSpec | None = None,
    ) -> None:
        self.limits = limits = limits or StoreLimits()
        self.cardinality = Cardinality(
            spec.workloads if spec is not None else (),
            max_series=limits.max_series_per_metric,
            max_series_per_workload=limits.max_series_per_workload,
            max_models_per_workload=limits.max_models_per_workload,
        )
        self.windows = windows or Windows(clock=clock)
        # The windows share the series cap: a group exists only for an admitted series,
        # and the spec's workloads are always tracked.
        self.windows.max_groups = limits.max_series_per_metric
        self.windows.protected = frozenset(self.cardinality.models)
        self.self_metrics = self_metrics or SelfMetrics()
        self.clock = clock
        self.lock = threading.RLock()
        self.families: dict[str, Family] = {}
        self._family_names: dict[tuple[str, str, Kind], str] = {}
        self._bucket_maps: dict[tuple[tuple[float, ...], tuple[float, ...]], list[int]] = {}
        # Valid bucket layouts seen, each kept as one shared tuple: every series and
        # instance with that layout references it (memory), and comparing layouts is
        # then usually an identity check (speed).
        self._bounds: dict[tuple[float, ...], tuple[float, ...]] = {}
        self.labels = labels_mod.LabelTranslator(
            max_name=limits.max_label_name_length, max_value=limits.max_label_value_length
        )
        self.instances = 0  # instance states held, for the max_instances limit
        self.selectors = WorkloadSelectors(spec)

    # ---- ingest -----------------------------------------------------------------------

    def ingest(
        self, request: ExportMetricsServiceRequest, encoding: str = "protobuf"
    ) -> IngestResult:
        """Merge every point of ``request``; invalid points are rejected, the rest kept."""
        with self.lock:
            now = self.clock()
            rejections = _Rejections(self.self_metrics)
            total = 0
            overflowed = 0
            bound = self.limits.max_label_value_length
            selectors = self.selectors
            for rm in request.resource_metrics:
                resource_key = _resource_key(rm.resource.attributes, bound)
                relabel = selectors.for_resource(rm.resource.attributes) if selectors else None
                for sm in rm.scope_metrics:
                    scope = sm.scope
                    instance = (
                        resource_key,
                        labels_mod.bounded(scope.name, bound),
                        labels_mod.bounded(scope.version, bound),
                    )
                    for metric in sm.metrics:
                        n, o = self._ingest_metric(metric, instance, now, rejections, relabel)
                        total += n
                        overflowed += o
            self.self_metrics.points[encoding] += total
            self.windows.tick(now)
            messages = [
                f"{msg} ({n} points)" if n > 1 else msg for msg, n in rejections.messages.items()
            ]
            return IngestResult(total, rejections.count, overflowed, tuple(messages))

    def _family(
        self, metric: metrics_pb2.Metric, kind: Kind, npoints: int, rejections: _Rejections
    ) -> Family | None:
        key = (metric.name, metric.unit, kind)
        name = self._family_names.get(key)
        if name is None:
            name = signals.prometheus_name(metric.name, metric.unit, kind)
            if name[:1].isdigit():
                name = "_" + name  # a guard: the translation already replaces a leading digit
            if len(self._family_names) < 4 * self.limits.max_metrics:
                self._family_names[key] = name
        family = self.families.get(name)
        if family is None:
            if len(metric.name) > MAX_METRIC_NAME_LENGTH or len(metric.unit) > MAX_UNIT_LENGTH:
                rejections.add(
                    "invalid_metric",
                    f"metric name over {MAX_METRIC_NAME_LENGTH} or unit over "
                    f"{MAX_UNIT_LENGTH} characters ({metric.name[:64]!r}...)",
                    npoints,
                )
                return None
            if not metric.name or not _VALID_NAME.match(name):
                rejections.add("invalid_metric", f"invalid metric name {metric.name!r}", npoints)
                return None
            # The contract's own metrics always find room: a flood of junk names must not
            # keep a workload's calls out.
            if len(self.families) >= self.limits.max_metrics and metric.name not in _KNOWN_HELP:
                rejections.add(
                    "too_many_metrics",
                    f"metric {metric.name!r} refused: the agent holds its limit of "
                    f"{self.limits.max_metrics} metrics",
                    npoints,
                )
                return None
            help_text = (
                _KNOWN_HELP.get(metric.name)
                or metric.description[:MAX_HELP_LENGTH]
                or f"OTLP metric {metric.name}"
            )
            family = Family(name, metric.name, kind, metric.unit, help_text)
            self.families[name] = family
        elif family.kind is not kind and {family.kind, kind} != _GAUGE_KINDS:
            rejections.add(
                "type_conflict",
                f"metric {metric.name!r} sent as a {_KIND_NAMES[kind]}, but "
                f"{family.name} is a {_KIND_NAMES[family.kind]}",
                npoints,
            )
            return None
        return family

    def _ingest_metric(
        self,
        metric: metrics_pb2.Metric,
        instance: InstanceKey,
        now: float,
        rejections: _Rejections,
        relabel: Relabel | None = None,
    ) -> tuple[int, int]:
        data = metric.WhichOneof("data")
        if data == "sum":
            points: Any = metric.sum.data_points
            temporality = metric.sum.aggregation_temporality
            kind = Kind.COUNTER if metric.sum.is_monotonic else Kind.UP_DOWN_COUNTER
        elif data == "gauge":
            points = metric.gauge.data_points
            temporality = _CUMULATIVE  # a gauge's last value per instance
            kind = Kind.GAUGE
        elif data == "histogram":
            points = metric.histogram.data_points
            temporality = metric.histogram.aggregation_temporality
            kind = Kind.HISTOGRAM
        elif data == "exponential_histogram":
            points = metric.exponential_histogram.data_points
            temporality = metric.exponential_histogram.aggregation_temporality
            kind = Kind.EXPONENTIAL_HISTOGRAM
        else:
            n = len(metric.summary.data_points) if data == "summary" else 0
            if n:
                rejections.add(
                    "unsupported_type",
                    f"metric {metric.name!r}: summaries are not supported (send histograms)",
                    n,
                )
            return n, 0
        n = len(points)
        if n == 0:
            return 0, 0
        if temporality not in (_CUMULATIVE, _DELTA):
            rejections.add(
                "unsupported_temporality",
                f"metric {metric.name!r}: aggregation temporality unspecified",
                n,
            )
            return n, 0
        family = self._family(metric, kind, n, rejections)
        if family is None:
            return n, 0
        ctx = _Ctx(instance, temporality == _DELTA, now, rejections, relabel)
        if kind is Kind.HISTOGRAM:
            self._histograms(family, points, ctx)
        elif kind is Kind.EXPONENTIAL_HISTOGRAM:
            self._exponentials(family, points, ctx)
        else:
            self._numbers(family, points, ctx)
        return n, ctx.overflowed

    def _series(
        self, family: Family, labels: LabelKey, ctx: _Ctx
    ) -> tuple[Series | None, InstanceKey]:
        """The series for ``labels`` (or an overflow series, counted in ``ctx``), marked
        updated, and the instance key to use in it. ``None`` when the point is rejected."""
        now = ctx.now
        series = family.series.get(labels)
        if series is not None:
            series.updated = now
            return series, ctx.instance
        ticket = self.cardinality.admit(family.budget, labels)
        if ticket is not None:
            series = Series(now)
            series.ticket = ticket
            self._track(family, labels, series)
            family.series[labels] = series
            return series, ctx.instance
        return self._overflow(family, labels, ctx)

    def _overflow(
        self, family: Family, labels: LabelKey, ctx: _Ctx
    ) -> tuple[Series | None, InstanceKey]:
        """No room for ``labels``: its workload's overflow series, and the instance key there."""
        now = ctx.now
        self.self_metrics.overflow_points[family.name] += 1
        okey = self.cardinality.overflow_key(labels)
        overflow = family.series.get(okey)
        if overflow is None:
            overflow = self._new_overflow(family, okey, now)
        key = (labels, ctx.instance)
        limit = self.limits.max_series_per_metric
        if not ctx.delta and key not in overflow.instances and len(overflow.instances) >= limit:
            ctx.rejections.add(
                "cardinality_limit",
                f"{family.name}: cardinality limit reached and its overflow series is full "
                f"({limit} label sets); point dropped",
            )
            return None, key
        overflow.updated = now
        ctx.overflowed += 1
        return overflow, key

    def _new_overflow(self, family: Family, okey: LabelKey, now: float) -> Series:
        series = family.series[okey] = Series(now)
        series.overflow = True
        family.overflow.add(okey)
        self._track(family, okey, series)
        return series

    @staticmethod
    def _track(family: Family, labels: LabelKey, series: Series) -> None:
        """Remember which Windows aggregate this series feeds, if any."""
        tracked_percentile = family.otel_name in PERCENTILE_METRICS
        tracked_counter = family.otel_name in COUNTER_METRICS
        if not (tracked_percentile or tracked_counter):
            return
        values = dict(labels)
        workload = values.get(signals.LABEL_WORKLOAD, "")
        mode = values.get(signals.LABEL_MODE, "")
        if tracked_percentile:
            if signals.LABEL_ERROR_TYPE not in values:
                series.group = (
                    family.otel_name,
                    workload,
                    mode,
                    values.get(signals.LABEL_MODEL, ""),
                )
        else:
            sub_attr = COUNTER_METRICS[family.otel_name]
            sub = values.get(signals.prometheus_label(sub_attr), "") if sub_attr else ""
            series.counter_key = (family.otel_name, workload, mode, sub)

    def _instance(
        self, family: Family, series: Series, key: InstanceKey, start: int, ctx: _Ctx
    ) -> Instance | None:
        """The instance state, marked seen; a retired one with this ``start`` revives.

        None (and the point rejected) when a limit on instance states would be exceeded.
        """
        inst = series.instances.get(key)
        if inst is not None:
            inst.seen = ctx.now
            return inst
        limits = self.limits
        if len(series.instances) >= limits.max_instances_per_series:
            ctx.rejections.add(
                "too_many_instances",
                f"{family.name}: more than {limits.max_instances_per_series} instances "
                "for one series",
            )
            return None
        inst = series.retired.pop(key, None)
        if inst is not None and inst.start == start:
            inst.seen = ctx.now
            series.instances[key] = inst
            self.instances += 1
            return inst
        if self.instances >= limits.max_instances:
            ctx.rejections.add(
                "too_many_instances",
                f"the agent holds its limit of {limits.max_instances} instance states",
            )
            return None
        inst = Instance(ctx.now)
        series.instances[key] = inst
        self.instances += 1
        return inst

    @staticmethod
    def _heard_from(series: Series, key: InstanceKey, now: float) -> None:
        """A delta point keeps its instance's cumulative state, if any, from expiring."""
        inst = series.instances.get(key)
        if inst is not None:
            inst.seen = now

    # -- numbers --

    def _numbers(
        self, family: Family, points: Iterable[metrics_pb2.NumberDataPoint], ctx: _Ctx
    ) -> None:
        delta, now, rejections = ctx.delta, ctx.now, ctx.rejections
        monotonic = family.kind is Kind.COUNTER
        translate = self.labels.translate
        windows = self.windows
        for p in points:
            if p.flags & _NO_RECORDED_VALUE:
                continue
            v = p.as_double if p.WhichOneof("value") == "as_double" else float(p.as_int)
            if not math.isfinite(v):
                rejections.add("invalid_value", f"{family.name}: non-finite value")
                continue
            if monotonic and v < 0:
                rejections.add("invalid_value", f"{family.name}: negative value on a counter")
                continue
            labels = translate(p.attributes)
            if ctx.relabel is not None:
                labels = ctx.relabel(labels)
            series, key = self._series(family, labels, ctx)
            if series is None:
                continue
            if delta:
                series.value += v
                if monotonic and series.counter_key is not None:
                    windows.add_counter(series.counter_key, v, now)
                self._heard_from(series, key, now)
                continue
            start, t = p.start_time_unix_nano, p.time_unix_nano
            inst = self._instance(family, series, key, start, ctx)
            if inst is None:
                continue
            if not monotonic:  # a gauge: the instance's latest value
                if t >= inst.time:
                    inst.value, inst.time, inst.start = v, t, start
                continue
            step = _incarnation(inst, start, t, v, inst.value)
            if step == _LATE_POINT:
                continue
            increment = v - inst.value if step == _SAME_INCARNATION else v
            inst.value, inst.time, inst.start = v, t, start
            if increment:
                series.value += increment
                if series.counter_key is not None:
                    windows.add_counter(series.counter_key, increment, now)

    # -- explicit histograms --

    def _check_bounds(self, bounds: tuple[float, ...]) -> tuple[float, ...] | None:
        """The shared copy of a valid layout; None when the bounds are invalid."""
        shared = self._bounds.get(bounds)
        if shared is not None:
            return shared
        ok = all(math.isfinite(b) for b in bounds) and all(
            a < b for a, b in itertools.pairwise(bounds)
        )
        if not ok:
            return None
        if len(self._bounds) < 1000:
            self._bounds[bounds] = bounds
        return bounds

    def _bucket_map(self, src: tuple[float, ...], dst: tuple[float, ...]) -> list[int]:
        key = (src, dst)
        mapping = self._bucket_maps.get(key)
        if mapping is None:
            mapping = [bisect.bisect_left(dst, b) for b in src] + [len(dst)]
            if len(self._bucket_maps) < 1000:
                self._bucket_maps[key] = mapping
        return mapping

    def _histograms(
        self, family: Family, points: Iterable[metrics_pb2.HistogramDataPoint], ctx: _Ctx
    ) -> None:
        delta, rejections = ctx.delta, ctx.rejections
        translate = self.labels.translate
        for p in points:
            if p.flags & _NO_RECORDED_VALUE:
                continue
            bounds = tuple(p.explicit_bounds)
            counts = list(p.bucket_counts)
            count = p.count
            if not counts:
                if bounds:
                    rejections.add(
                        "inconsistent_histogram", f"{family.name}: bounds without buckets"
                    )
                    continue
                counts = [count]
            elif len(counts) != len(bounds) + 1:
                rejections.add(
                    "inconsistent_histogram",
                    f"{family.name}: {len(counts)} bucket counts for {len(bounds)} bounds",
                )
                continue
            if len(bounds) > MAX_EXPLICIT_BOUNDS:
                rejections.add(
                    "inconsistent_histogram",
                    f"{family.name}: {len(bounds)} explicit bounds, more than the limit of "
                    f"{MAX_EXPLICIT_BOUNDS}",
                )
                continue
            valid = self._check_bounds(bounds)
            if valid is None:
                rejections.add(
                    "inconsistent_histogram",
                    f"{family.name}: bounds must be finite and strictly increasing",
                )
                continue
            bounds = valid
            if sum(counts) != count:
                rejections.add(
                    "inconsistent_histogram", f"{family.name}: bucket counts do not add up to count"
                )
                continue
            total = p.sum if p.HasField("sum") else 0.0
            if not math.isfinite(total):
                rejections.add("invalid_value", f"{family.name}: non-finite sum")
                continue
            labels = translate(p.attributes)
            derive: _Derived | None = None
            if ctx.relabel is not None:
                relabelled = ctx.relabel(labels)
                if relabelled != labels:  # a foreign point a selector claimed
                    derive = _FOREIGN_COUNTERS.get(family.otel_name)
                labels = relabelled
            series, key = self._series(family, labels, ctx)
            if series is None:
                continue
            if series.bounds is None:
                series.bounds = bounds
                series.buckets = [0] * (len(bounds) + 1)
            if delta:
                self._heard_from(series, key, ctx.now)
                self._add_buckets(series, bounds, counts, count, total)
                if derive is not None:
                    self._foreign_count(derive, labels, count, total, ctx)
                continue
            start, t = p.start_time_unix_nano, p.time_unix_nano
            inst = self._instance(family, series, key, start, ctx)
            if inst is None:
                continue
            step = _incarnation(inst, start, t, count, inst.count)
            if step == _LATE_POINT:
                continue
            # Other boundaries than the instance's last point: counted afresh, as a restart.
            if step == _SAME_INCARNATION and (bounds is inst.bounds or bounds == inst.bounds):
                if count == inst.count:
                    inst.time = t  # nothing new: the usual case for an idle series
                    continue
                inc = list(map(operator.sub, counts, inst.buckets))
                if min(inc) < 0:
                    inc = counts  # a bucket went down: a reset we could not see otherwise
                    inc_count, inc_sum = count, total
                else:
                    inc_count, inc_sum = count - inst.count, total - inst.sum
            else:
                inc = counts
                inc_count, inc_sum = count, total
            inst.start, inst.time, inst.count, inst.sum = start, t, count, total
            inst.bounds, inst.buckets = bounds, counts
            self._add_buckets(series, bounds, inc, inc_count, inc_sum)
            if derive is not None:
                self._foreign_count(derive, labels, inc_count, inc_sum, ctx)

    def _foreign_count(
        self, derive: _Derived, labels: LabelKey, count: int, total: float, ctx: _Ctx
    ) -> None:
        """Feed the contract counter a foreign histogram stands for (_FOREIGN_COUNTERS).

        Increments only (computed by the histogram's own merge rule), so the counter
        follows the histogram's restarts and late points; see selectors.calls_labels and
        selectors.tokens_labels.
        """
        metric, to_labels, by_sum = derive
        amount = total if by_sum else float(count)
        if not amount > 0:
            return
        family = self.families.get(metric.name) or self._family(
            metric.template, Kind.COUNTER, 1, ctx.rejections
        )
        if family is None:
            return
        series, _ = self._series(family, to_labels(labels), ctx)
        if series is None:
            return
        series.value += amount
        if series.counter_key is not None:
            self.windows.add_counter(series.counter_key, amount, ctx.now)

    def _add_buckets(
        self, series: Series, bounds: tuple[float, ...], inc: list[int], count: int, total: float
    ) -> None:
        merged = series.buckets
        if bounds is series.bounds or bounds == series.bounds:
            merged[:] = map(operator.add, merged, inc)
        else:
            assert series.bounds is not None
            mapping = self._bucket_map(bounds, series.bounds)
            for i, c in enumerate(inc):
                if c:
                    merged[mapping[i]] += c
        series.count += count
        series.sum += total

    # -- exponential histograms --

    def _exponentials(
        self, family: Family, points: Iterable[metrics_pb2.ExponentialHistogramDataPoint], ctx: _Ctx
    ) -> None:
        delta, now, rejections = ctx.delta, ctx.now, ctx.rejections
        translate = self.labels.translate
        windows = self.windows
        max_buckets = self.limits.max_exp_buckets
        for p in points:
            if p.flags & _NO_RECORDED_VALUE:
                continue
            hist, problem = _exp_from_point(p, max_buckets)
            if hist is None:
                rejections.add(
                    "invalid_value" if "non-finite" in problem else "inconsistent_histogram",
                    f"{family.name}: {problem}",
                )
                continue
            labels = translate(p.attributes)
            if ctx.relabel is not None:
                labels = ctx.relabel(labels)
            series, key = self._series(family, labels, ctx)
            if series is None:
                continue
            if delta:
                self._heard_from(series, key, now)
                if series.group is not None and hist.count:
                    windows.add_histogram(series.group, hist, now)
                continue
            start, t = p.start_time_unix_nano, p.time_unix_nano
            inst = self._instance(family, series, key, start, ctx)
            if inst is None:
                continue
            step = _incarnation(inst, start, t, hist.count, inst.count)
            if step == _LATE_POINT:
                continue
            last = inst.exp
            if step == _SAME_INCARNATION and last is not None:
                if hist.count == last.count:
                    inst.time = t  # nothing new: the usual case for an idle series
                    continue
                inc = hist.copy()
                inc.merge(last, max_buckets, sign=-1)
            else:
                inc = hist
            inst.start, inst.time, inst.exp, inst.count = start, t, hist, hist.count
            if series.group is not None and inc.count:
                windows.add_histogram(series.group, inc, now)

    # ---- restore (the state file) -----------------------------------------------------

    def restore_family(
        self, name: str, otel_name: str, kind: Kind, unit: str, help_text: str
    ) -> Family | None:
        """The family to restore series into (made if absent); None when it cannot be held.

        Called under the lock by :mod:`gemini_slo.agent.state_file`.
        """
        family = self.families.get(name)
        if family is not None:
            return family if family.kind is kind else None
        if not _VALID_NAME.match(name) or (
            len(self.families) >= self.limits.max_metrics and otel_name not in _KNOWN_HELP
        ):
            return None
        family = self.families[name] = Family(name, otel_name, kind, unit, help_text)
        self._family_names[(otel_name, unit, kind)] = name
        return family

    def restore_series(
        self, family: Family, labels: LabelKey, series: Series, overflow: bool
    ) -> bool:
        """Put a restored series in ``family`` through the same admission as a new one.

        False when it is there already or the current limits have no room for it (a
        smaller ``max_series_per_metric`` than when it was written).
        """
        if labels in family.series:
            return False
        if series.bounds is not None:
            shared = self._check_bounds(series.bounds)
            if shared is None:
                return False
            series.bounds = shared
        for inst in (*series.instances.values(), *series.retired.values()):
            if inst.bounds:
                inst.bounds = self._check_bounds(inst.bounds) or inst.bounds
        if overflow:
            series.overflow = True
            family.overflow.add(labels)
        else:
            ticket = self.cardinality.admit(family.budget, labels)
            if ticket is None:
                return False
            series.ticket = ticket
        family.series[labels] = series
        self._track(family, labels, series)
        self.instances += len(series.instances)
        return True

    # ---- maintenance ------------------------------------------------------------------

    def expire(self, now: float | None = None) -> int:
        """Drop stale instances and series; returns the number of series dropped."""
        with self.lock:
            now = self.clock() if now is None else now
            horizon = now - self.limits.stale_after
            dropped = 0
            for family in list(self.families.values()):
                for labels, series in list(family.series.items()):
                    if series.updated < horizon:
                        del family.series[labels]
                        if series.ticket is not None:
                            self.cardinality.release(family.budget, series.ticket)
                        family.overflow.discard(labels)
                        self.instances -= len(series.instances)
                        dropped += 1
                        continue
                    stale = [k for k, i in series.instances.items() if i.seen < horizon]
                    for k in stale:
                        inst = series.instances.pop(k)
                        self.instances -= 1
                        if (
                            family.kind is Kind.COUNTER
                            or family.kind is Kind.HISTOGRAM
                            or (family.kind is Kind.EXPONENTIAL_HISTOGRAM)
                        ):
                            series.retired[k] = inst
                            while len(series.retired) > _RETIRED_PER_SERIES:
                                series.retired.pop(next(iter(series.retired)))
                if not family.series:
                    del self.families[family.name]
            self.self_metrics.expired_series += dropped
            self.windows.expire(now, self.limits.stale_after)
            self.windows.tick(now)
            return dropped

    def series_count(self) -> int:
        """Active merged series."""
        with self.lock:
            return sum(len(f.series) for f in self.families.values())

    def instance_count(self) -> int:
        """Active per-instance states."""
        with self.lock:
            return self.instances

    def overflow_series_count(self) -> int:
        """Distinct (label set, instance) pairs currently folded into overflow series."""
        with self.lock:
            return sum(
                len(f.series[key].instances) for f in self.families.values() for key in f.overflow
            )

    def gauge_total(self, otel_name: str, workload: str) -> float | None:
        """Sum of a gauge-like signal's series for one workload (None when absent)."""
        with self.lock:
            found = False
            total = 0.0
            for family in self.families.values():
                if family.otel_name != otel_name:
                    continue
                for labels, series in family.series.items():
                    if dict(labels).get(signals.LABEL_WORKLOAD) == workload:
                        found = True
                        total += series.gauge_value()
            return total if found else None


def _resource_key(attributes: Iterable[Any], bound: int) -> tuple[Any, ...]:
    """``service.instance.id`` when present, else every resource attribute (each bounded
    in length, a long one keeping a digest of itself: two instances stay two)."""
    items = []
    for kv in attributes:
        value = labels_mod.bounded(labels_mod.value_string(kv.value, bound), bound)
        if kv.key == signals.RESOURCE_SERVICE_INSTANCE:
            return ("id", value)
        items.append((labels_mod.bounded(kv.key, bound), value))
    return ("attrs", tuple(sorted(items)))


def exp_index_range(scale: int) -> tuple[int, int]:
    """The bucket indexes at ``scale`` whose buckets hold positive floats.

    Bucket ``i`` covers ``(2**(i / 2**scale), 2**((i + 1) / 2**scale)]``: the highest is the
    one holding the largest float (below ``2**1024``), the lowest the one holding the
    smallest subnormal (``2**-1074``), as the OpenTelemetry SDK's mappings compute them.
    """
    if scale >= 0:
        return -(1074 << scale) - 1, (1024 << scale) - 1
    return -(1074 >> -scale) - 1, (1024 >> -scale) - 1


def _exp_from_point(
    p: metrics_pb2.ExponentialHistogramDataPoint, max_buckets: int
) -> tuple[ExpHistogram | None, str]:
    """Validate and convert a point; ``(None, why)`` when it is unusable."""
    scale = p.scale
    if not MIN_SCALE <= scale <= MAX_SCALE:
        return None, f"scale {scale} outside [{MIN_SCALE}, {MAX_SCALE}]"
    pos = p.positive.bucket_counts
    neg = p.negative.bucket_counts
    if len(pos) > MAX_INCOMING_EXP_BUCKETS or len(neg) > MAX_INCOMING_EXP_BUCKETS:
        return None, f"more than {MAX_INCOMING_EXP_BUCKETS} buckets"
    # Buckets beyond the float range hold no float: they are nonsense, would make +Inf
    # percentiles, and a hostile offset would make a merge allocate a list spanning
    # billions of buckets.
    lo, hi = exp_index_range(scale)
    for side, offset, n in (
        ("positive", p.positive.offset, len(pos)),
        ("negative", p.negative.offset, len(neg)),
    ):
        if n and not (lo <= offset and offset + n - 1 <= hi):
            return None, (
                f"{side} buckets {offset}..{offset + n - 1} outside the float range at scale "
                f"{scale} (indexes {lo}..{hi})"
            )
    positive = list(pos)
    negative = list(neg)
    if p.zero_count + sum(positive) + sum(negative) != p.count:
        return None, "bucket counts do not add up to count"
    total = p.sum if p.HasField("sum") else 0.0
    if not math.isfinite(total) or not math.isfinite(p.zero_threshold):
        return None, "non-finite sum or zero threshold"
    hist = ExpHistogram(
        scale,
        p.count,
        total,
        p.zero_count,
        max(p.zero_threshold, 0.0),
        p.positive.offset,
        positive,
        p.negative.offset,
        negative,
    )
    if len(positive) > max_buckets or len(negative) > max_buckets:
        fitted = ExpHistogram(scale)
        fitted.merge(hist, max_buckets)  # downscales until the range fits
        hist = fitted
    return hist, ""
