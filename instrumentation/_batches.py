"""Batch API jobs: a per-job record that turns what the app sees into counted-once series.

A batch job is observed whenever the app sees it: the job ``batches.create`` returns, every
``batches.get`` (the polling loop), every page of ``batches.list``, or, for apps that call
the REST API themselves, every job passed to :func:`track_batch` (or returned by a function
decorated with :func:`observe_batch`). Each observation updates the job's record, keyed by
its name; only *transitions* count:

* the first observation of a job submitted here (``create``, or ``submitted=True``)
  counts it in ``jobs.submitted`` and its requests in ``job.requests``;
* a job ``get`` (or ``track_batch``) shows first, not submitted here (a poller in another
  process), is adopted: counted as submitted then; ``list`` pages only update jobs already
  known (they show every job of the project, including other workloads');
* leaving ``pending`` records ``job.queue_time``: create time to the update time the API
  reports with the first ``running`` observation, or to the end time when the job is
  first seen already ended (an upper bound: it ran in between);
* the first terminal observation counts ``jobs.finished`` by state, ``job.duration``
  (end time - create time, the API's timestamps) and, when the results are inline, each
  response's tokens, its cost at the ``batch`` price, and the requests by outcome. The
  record is then dropped; the job's name stays in a bounded set of finished jobs so that
  polling it again, listing it or reading its results twice counts nothing.

Memory: at most ``max_jobs`` live records (the oldest is dropped past it, and stops counting
in ``jobs.active``) and ``max_finished`` finished names. Results from a file
(``dest.file_name``) are not read: such a job counts everything but tokens and cost.

Nothing here raises into the app: every entry point swallows its own errors, and the job
objects are only read, never changed.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ParamSpec, TypeVar, cast

from gemini_slo.contract import signals as S
from gemini_slo.instrumentation import _state, pricing
from gemini_slo.instrumentation._registry import ExplicitHistogram, Registry
from gemini_slo.instrumentation._usage import usage_from
from gemini_slo.instrumentation._values import PICO, Point, Usage

BatchKey = tuple[str, str, str, str]
"""Values of BATCH_ATTRIBUTES: (workload, mode, provider, model)."""

BATCH_TIER = "batch"
"""The price table's service tier for Batch API jobs."""

_STATES: dict[str, S.BatchState] = {
    "PENDING": S.BatchState.PENDING,
    "QUEUED": S.BatchState.PENDING,
    "RUNNING": S.BatchState.RUNNING,
    "CANCELLING": S.BatchState.RUNNING,
    "UPDATING": S.BatchState.RUNNING,
    "PAUSED": S.BatchState.RUNNING,
    "SUCCEEDED": S.BatchState.SUCCEEDED,
    "PARTIALLY_SUCCEEDED": S.BatchState.SUCCEEDED,
    "FAILED": S.BatchState.FAILED,
    "CANCELLED": S.BatchState.CANCELLED,
    "EXPIRED": S.BatchState.EXPIRED,
}
_TERMINAL = frozenset(S.BATCH_TERMINAL_STATES)

P = ParamSpec("P")
R = TypeVar("R")


def batch_state(value: Any) -> S.BatchState | None:
    """``JOB_STATE_RUNNING``, ``BATCH_STATE_RUNNING`` or the SDK's enum -> ``running``."""
    raw = getattr(value, "value", value)
    if not isinstance(raw, str):
        return None
    name = raw.upper().removeprefix("JOB_STATE_").removeprefix("BATCH_STATE_")
    return _STATES.get(name)


def _epoch(value: Any) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            return None
    return None


_REST_USAGE = (
    "promptTokenCount",
    "candidatesTokenCount",
    "thoughtsTokenCount",
    "cachedContentTokenCount",
    "toolUsePromptTokenCount",
)


def _rest_usage(metadata: dict[str, Any]) -> Usage:
    values = [metadata.get(k) for k in _REST_USAGE]
    return Usage(*(v if type(v) is int and v > 0 else 0 for v in values))


@dataclass(frozen=True, slots=True)
class JobView:
    """What one observation of a job says (from an SDK ``BatchJob`` or the REST JSON)."""

    name: str
    state: S.BatchState
    model: str
    created: float | None
    updated: float | None
    ended: float | None
    responses: tuple[Usage | None, ...] | None
    """Each inline response's usage (None: a per-request error); None without results."""


def view_of(job: Any) -> JobView | None:
    """Read a job; None when it is not one (or has no name or known state)."""
    if isinstance(job, dict):
        return _rest_view(job)
    name = getattr(job, "name", None)
    state = batch_state(getattr(job, "state", None))
    if not isinstance(name, str) or not name or state is None:
        return None
    responses: tuple[Usage | None, ...] | None = None
    inline = getattr(getattr(job, "dest", None), "inlined_responses", None)
    if isinstance(inline, list):
        out: list[Usage | None] = []
        for item in inline:
            response = getattr(item, "response", None)
            metadata = getattr(response, "usage_metadata", None)
            if getattr(item, "error", None) is not None or response is None:
                out.append(None)
            else:
                out.append(usage_from(metadata) if metadata is not None else Usage())
        responses = tuple(out)
    model = getattr(job, "model", None)
    return JobView(
        name=name,
        state=state,
        model=_model_name(model),
        created=_epoch(getattr(job, "create_time", None)),
        updated=_epoch(getattr(job, "update_time", None)),
        ended=_epoch(getattr(job, "end_time", None)),
        responses=responses,
    )


def job_name(job: Any) -> Any:
    """The job's name, read without parsing the rest (None when there is none)."""
    if isinstance(job, dict):
        name = job.get("name")
        metadata = job.get("metadata")
        if name is None and isinstance(metadata, dict):
            name = metadata.get("name")
        return name
    return getattr(job, "name", None)


def _rest_view(job: dict[str, Any]) -> JobView | None:
    """The REST shape: an Operation ``{"name", "metadata": {"state": "BATCH_STATE_..."}}``."""
    metadata = job.get("metadata")
    if not isinstance(metadata, dict):
        metadata = job  # a bare batch resource
    name = job.get("name") or metadata.get("name")
    state = batch_state(metadata.get("state"))
    if not isinstance(name, str) or not name or state is None:
        return None
    responses: tuple[Usage | None, ...] | None = None
    output = metadata.get("output")
    inline = output.get("inlinedResponses") if isinstance(output, dict) else None
    items = inline.get("inlinedResponses") if isinstance(inline, dict) else None
    if isinstance(items, list):
        out: list[Usage | None] = []
        for item in items:
            response = item.get("response") if isinstance(item, dict) else None
            if not isinstance(response, dict) or item.get("error") is not None:
                out.append(None)
                continue
            usage = response.get("usageMetadata")
            out.append(_rest_usage(usage) if isinstance(usage, dict) else Usage())
        responses = tuple(out)
    return JobView(
        name=name,
        state=state,
        model=_model_name(metadata.get("model")),
        created=_epoch(metadata.get("createTime")),
        updated=_epoch(metadata.get("updateTime")),
        ended=_epoch(metadata.get("endTime")),
        responses=responses,
    )


def _model_name(model: Any) -> str:
    if isinstance(model, str) and model:
        return model.removeprefix("models/")
    return "unknown"


def request_count(src: Any) -> int | None:
    """Requests in a ``batches.create`` source: a list, or a source with inline requests."""
    if isinstance(src, list):
        return len(src)
    inline = src.get("inlined_requests") if isinstance(src, dict) else None
    if inline is None and not isinstance(src, dict | str):
        inline = getattr(src, "inlined_requests", None)
    return len(inline) if isinstance(inline, list) else None


def _duration_histogram() -> ExplicitHistogram:
    return ExplicitHistogram(S.BATCH_DURATION_BUCKETS)


class _Series:
    """The batch series of one attribute set (mutated under the book's lock)."""

    __slots__ = (
        "attributes",
        "cost_pico",
        "duration",
        "finished",
        "queue_time",
        "request_outcomes",
        "requests",
        "submitted",
        "tokens",
    )

    def __init__(self, key: BatchKey) -> None:
        self.attributes = tuple(zip(S.BATCH_ATTRIBUTES, key, strict=True))
        self.submitted = 0
        self.finished: dict[str, int] = {}
        self.requests = ExplicitHistogram(S.BATCH_REQUESTS_BUCKETS)
        self.request_outcomes = {S.Outcome.OK.value: 0, S.Outcome.ERROR.value: 0}
        self.queue_time = _duration_histogram()
        self.duration: dict[str, ExplicitHistogram] = {}
        self.tokens = [0, 0, 0, 0, 0]
        self.cost_pico = 0


@dataclass(slots=True)
class _Record:
    key: BatchKey
    state: S.BatchState
    created: float | None
    requests_counted: bool


class BatchBook:
    """The per-job records and batch series of one registry (see the module docstring)."""

    def __init__(
        self,
        max_jobs: int = 10_000,
        max_finished: int = 100_000,
        start_time: Callable[[], int] | None = None,
    ) -> None:
        self._start_time = start_time
        self._started = start_time() if start_time is not None else 0
        self._lock = threading.Lock()
        self._jobs: OrderedDict[str, _Record] = OrderedDict()
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._series: dict[BatchKey, _Series] = {}
        self.max_jobs = max_jobs
        self.max_finished = max_finished
        self.dropped = 0
        """Live records dropped because there were more than ``max_jobs``."""

    def observe(
        self,
        view: JobView,
        workload: str,
        mode: str,
        provider: str,
        *,
        submitted: bool = False,
        adopt: bool = True,
        requests: int | None = None,
    ) -> None:
        """Apply one observation of a job (see the module docstring)."""
        with self._lock:
            self._sync()
            if view.name in self._finished:
                return
            record = self._jobs.get(view.name)
            if record is None:
                if not (submitted or adopt):
                    return
                key = (workload, mode, provider, view.model)
                record = _Record(key, S.BatchState.PENDING, view.created, False)
                self._jobs[view.name] = record
                series = self._series_for(key)
                series.submitted += 1
                if requests is not None:
                    series.requests.record(requests)
                    record.requests_counted = True
                self._bound()
            self._apply(view, record)

    def _apply(self, view: JobView, record: _Record) -> None:
        series = self._series_for(record.key)
        if record.created is None:
            record.created = view.created
        state = view.state
        if record.state is S.BatchState.PENDING and state is not S.BatchState.PENDING:
            left = view.updated if state is S.BatchState.RUNNING else view.ended
            if left is not None and record.created is not None:
                series.queue_time.record(max(0.0, left - record.created))
        record.state = state
        if state not in _TERMINAL:
            return
        series.finished[state.value] = series.finished.get(state.value, 0) + 1
        if view.ended is not None and record.created is not None:
            histogram = series.duration.get(state.value)
            if histogram is None:
                histogram = series.duration[state.value] = _duration_histogram()
            histogram.record(max(0.0, view.ended - record.created))
        if view.responses is not None:
            if not record.requests_counted:
                series.requests.record(len(view.responses))
            self._count_responses(series, record.key[3], view.responses)
        del self._jobs[view.name]
        self._finished[view.name] = None
        while len(self._finished) > self.max_finished:
            self._finished.popitem(last=False)

    def _count_responses(
        self, series: _Series, model: str, responses: Iterable[Usage | None]
    ) -> None:
        try:
            prices: pricing.PriceTable | None = pricing.active_table()
        except Exception:  # an unreadable price file: tokens still count, cost does not
            prices = None
        outcomes = series.request_outcomes
        tokens = series.tokens
        for usage in responses:
            if usage is None:
                outcomes[S.Outcome.ERROR.value] += 1
                continue
            outcomes[S.Outcome.OK.value] += 1
            for i, n in enumerate(usage):
                tokens[i] += n
            cost = None if prices is None else prices.cost_pico(model, usage, BATCH_TIER)
            if cost is not None:
                series.cost_pico += cost

    def is_finished(self, name: Any) -> bool:
        """Whether ``name`` is a job already counted as ended (a poll then counts nothing:
        checked before the job is read, so that polling a finished job costs a lookup)."""
        return isinstance(name, str) and name in self._finished

    def forget(self, name: str) -> None:
        """A job was deleted: it leaves the live records without counting as finished."""
        with self._lock:
            if self._jobs.pop(name, None) is not None:
                self._finished[name] = None

    def _sync(self) -> None:
        # The registry starts over (new thresholds: a new start time, counters from zero);
        # cumulative batch counters must too, or a receiver would count them twice. The
        # live records stay: their jobs still count when they end.
        if self._start_time is None:
            return
        started = self._start_time()
        if started != self._started:
            self._started = started
            self._series.clear()

    def _series_for(self, key: BatchKey) -> _Series:
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series(key)
        return series

    def _bound(self) -> None:
        while len(self._jobs) > self.max_jobs:
            self._jobs.popitem(last=False)
            self.dropped += 1

    def collect(self, out: list[Point]) -> None:
        """Append every batch series' points to ``out``."""
        now = time.time()
        with self._lock:
            self._sync()
            active: dict[tuple[BatchKey, str], int] = {}
            oldest: dict[BatchKey, float] = {}
            for record in self._jobs.values():
                self._series_for(record.key)  # a live job's series exists (after a restart)
                active[(record.key, record.state.value)] = (
                    active.get((record.key, record.state.value), 0) + 1
                )
                if record.state is S.BatchState.PENDING and record.created is not None:
                    oldest[record.key] = max(oldest.get(record.key, 0.0), now - record.created)
            for key, series in self._series.items():
                self._collect_series(key, series, active, oldest.get(key, 0.0), out)

    @staticmethod
    def _collect_series(
        key: BatchKey,
        series: _Series,
        active: dict[tuple[BatchKey, str], int],
        oldest: float,
        out: list[Point],
    ) -> None:
        a = series.attributes
        out.append(Point(S.BATCH_JOBS_SUBMITTED, a, series.submitted))
        for state, n in series.finished.items():
            out.append(Point(S.BATCH_JOBS_FINISHED, (*a, (S.ATTR_BATCH_STATE, state)), n))
        for state in S.BATCH_ACTIVE_STATES:
            n = active.get((key, state.value), 0)
            out.append(Point(S.BATCH_JOBS_ACTIVE, (*a, (S.ATTR_BATCH_STATE, state.value)), n))
        out.append(Point(S.BATCH_QUEUE_OLDEST, a, max(0.0, oldest)))
        if series.queue_time.count:
            out.append(Point(S.BATCH_QUEUE_TIME, a, series.queue_time.snapshot()))
        for state, histogram in series.duration.items():
            attrs = (*a, (S.ATTR_BATCH_STATE, state))
            out.append(Point(S.BATCH_JOB_DURATION, attrs, histogram.snapshot()))
        if series.requests.count:
            out.append(Point(S.BATCH_JOB_REQUESTS, a, series.requests.snapshot()))
        if sum(series.request_outcomes.values()):
            for outcome, n in series.request_outcomes.items():
                out.append(Point(S.BATCH_REQUESTS, (*a, (S.ATTR_OUTCOME, outcome)), n))
            for token_type, n in zip(S.TokenType, series.tokens, strict=True):
                attrs = (*a, (S.ATTR_TOKEN_TYPE, token_type.value))
                out.append(Point(S.BATCH_TOKENS, attrs, n))
            out.append(Point(S.BATCH_COST, a, series.cost_pico / PICO))


_books: weakref.WeakKeyDictionary[Registry, BatchBook] = weakref.WeakKeyDictionary()
_books_lock = threading.Lock()


def book_for(registry: Registry) -> BatchBook:
    """The registry's batch book, created (and hooked into its snapshots) on first use."""
    book = _books.get(registry)
    if book is None:
        with _books_lock:
            book = _books.get(registry)
            if book is None:
                ref = weakref.ref(registry)

                def start_time() -> int:
                    live = ref()
                    return live.start_time_ns if live is not None else 0

                book = _books[registry] = BatchBook(start_time=start_time)
                registry.add_collector(book.collect)
    return book


def track_batch(
    job: R,
    *,
    workload: str = "default",
    mode: S.Mode | str = S.Mode.THROUGHPUT,
    provider: str = S.PROVIDER_GEMINI,
    submitted: bool = False,
    requests: int | None = None,
    registry: Registry | None = None,
) -> R:
    """Observe one batch job the app holds and return it unchanged.

    ``job`` is a google-genai ``BatchJob`` or the REST JSON (the Operation that
    ``batchGenerateContent`` and ``GET /v1beta/batches/{id}`` return). ``submitted=True``
    for the answer to the submission (with ``requests``, the number of requests sent).
    Call it on every poll: a job is counted once (see the module docstring). Never raises.
    """
    if not _state.enabled:  # GEMINI_SLO_DISABLED=1: pass everything through
        return job
    try:
        book = book_for(registry or _state.default_registry)
        if book.is_finished(job_name(job)):
            return job
        view = view_of(job)
        if view is not None:
            book.observe(
                view, workload, S.Mode(mode).value, provider, submitted=submitted, requests=requests
            )
    except Exception:  # never into the app
        pass
    return job


def observe_batch(
    workload: str = "default",
    mode: S.Mode | str = S.Mode.THROUGHPUT,
    *,
    provider: str = S.PROVIDER_GEMINI,
    submitted: bool = False,
    registry: Registry | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a function (sync or async) that returns a batch job (a submission or a
    poll, over REST or not): every job it returns is passed to :func:`track_batch`; what it
    returns or raises is unchanged. A function returning a list of jobs (a list page)
    observes each job that is already known."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        def record(result: Any) -> None:
            if not _state.enabled:
                return
            if isinstance(result, list):
                try:
                    views = [v for v in map(view_of, result) if v is not None]
                    book = book_for(registry or _state.default_registry)
                    for view in views:
                        book.observe(view, workload, S.Mode(mode).value, provider, adopt=False)
                except Exception:  # never into the app
                    pass
                return
            track_batch(
                result,
                workload=workload,
                mode=mode,
                provider=provider,
                submitted=submitted,
                registry=registry,
            )

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def awrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                result = await cast(Any, fn)(*args, **kwargs)
                record(result)
                return result

            return cast(Callable[P, R], awrapper)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            result = fn(*args, **kwargs)
            record(result)
            return result

        return wrapper

    return decorate
