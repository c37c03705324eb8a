"""AdmissionQueue: bounded concurrency with a bounded wait, for threads and asyncio alike.

Latency-mode workloads must not queue a call that will miss its deadline anyway: it is
better to shed it at once (the caller gets ``QueueRejected`` and can degrade, retry on
another region, or tell the user) than to let it wait, burn a slot and time out.

Semantics of one acquisition (``with q.slot():``, ``async with q.slot():``, or through
``observe(queue=q)``):

* A free slot and nobody waiting: admitted at once (queue wait 0).
* Otherwise the call may wait at most ``bound = min(max_wait, remaining deadline)``. It is
  **shed at once** (``QueueRejected``, reason ``"hopeless"``) when waiting cannot succeed:
  ``bound <= 0``; or ``max_depth`` calls are already waiting; or the expected wait exceeds
  ``bound``. The expected wait is ``(waiting ahead + 1) / max_concurrency x mean service
  time``, the mean being an exponentially weighted average of how long admitted calls held
  their slot (0 until a first call completes, so a cold queue never sheds on a guess).
* Else it waits in FIFO order; if no slot is handed to it within ``bound`` it is shed
  (reason ``"timeout"``), after having waited ``bound``.
* A released slot is handed directly to the oldest waiter (no barging), whether that
  waiter is a thread or an asyncio task, in any event loop.

Signals (latency mode, see signals.py): ``gemini_slo.queue.depth`` (calls waiting),
``gemini_slo.queue.wait`` (every admitted or shed call's wait, 0 when immediate) and
``gemini_slo.queue.shed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from types import TracebackType
from typing import Literal

from gemini_slo.contract import signals as S
from gemini_slo.instrumentation import _state
from gemini_slo.instrumentation._registry import QueueSeries, Registry

_EWMA_WEIGHT = 0.2


class QueueRejected(Exception):
    """An AdmissionQueue shed the call (outcome ``rejected``); it was never sent."""

    def __init__(self, queue: str, reason: Literal["hopeless", "timeout"], waited: float) -> None:
        super().__init__(
            f"admission queue {queue!r} shed the call ({reason}, waited {waited:.3f}s)"
        )
        self.queue = queue
        self.reason = reason
        self.waited = waited


class _Waiter:
    """One waiting acquisition: a thread (an Event) or a task (a Future on its loop)."""

    __slots__ = ("event", "future", "granted", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self.granted = False
        self.loop = loop
        if loop is None:
            self.event: threading.Event | None = threading.Event()
            self.future: asyncio.Future[None] | None = None
        else:
            self.event = None
            self.future = loop.create_future()

    def wake(self) -> None:
        if self.event is not None:
            self.event.set()
        elif self.loop is not None and self.future is not None:
            self.loop.call_soon_threadsafe(_resolve, self.future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class AdmissionQueue:
    """At most ``max_concurrency`` calls at once; others wait up to ``max_wait`` seconds.

    ``name`` labels its series (``gemini_slo.queue``); ``workload`` is the workload its
    series are attributed to when it is used outside ``observe`` (inside, the scope's);
    ``max_depth`` optionally bounds how many calls may wait.
    """

    def __init__(
        self,
        max_concurrency: int,
        max_wait: float,
        name: str = "default",
        *,
        workload: str | None = None,
        registry: Registry | None = None,
        max_depth: int | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        if max_wait < 0:
            raise ValueError("max_wait must be >= 0")
        self.max_concurrency = max_concurrency
        self.max_wait = float(max_wait)
        self.name = name
        self.workload = workload
        self.max_depth = max_depth
        self._registry = registry
        self._lock = threading.Lock()
        self._active = 0
        self._waiters: deque[_Waiter] = deque()
        self._service_time = 0.0

    # ---- introspection --------------------------------------------------------------

    @property
    def active(self) -> int:
        """Slots in use."""
        return self._active

    @property
    def waiting(self) -> int:
        """Calls waiting for a slot."""
        return len(self._waiters)

    @property
    def mean_service_time(self) -> float:
        """The running estimate of how long a call holds its slot (seconds)."""
        return self._service_time

    # ---- public context managers -----------------------------------------------------

    def slot(
        self,
        remaining: float | None = None,
        workload: str | None = None,
        mode: str = S.Mode.LATENCY,
    ) -> Slot:
        """A context manager (``with`` or ``async with``) holding one slot.

        ``remaining`` is the time left before the caller's deadline (seconds), which bounds
        the wait together with ``max_wait``.
        """
        return Slot(self, remaining, workload, mode)

    # ---- the machinery, used by Slot and observe() -----------------------------------

    def series(self, workload: str | None, mode: str) -> QueueSeries | None:
        """The queue series to record into (None: the mode does not record queue signals)."""
        if mode != S.Mode.LATENCY:
            return None
        registry = self._registry or _state.registry()
        return registry.queue_series(workload or self.workload or "default", mode, self.name)

    def _admit(
        self,
        remaining: float | None,
        series: QueueSeries | None,
        loop: asyncio.AbstractEventLoop | None,
    ) -> _Waiter | None:
        """Take a free slot (None), or enqueue a waiter, or raise QueueRejected at once."""
        bound = self.max_wait if remaining is None else min(self.max_wait, remaining)
        with self._lock:
            if self._active < self.max_concurrency and not self._waiters:
                self._active += 1
                waiter = None
            else:
                ahead = len(self._waiters)
                expected = (ahead + 1) / self.max_concurrency * self._service_time
                if (
                    bound <= 0
                    or expected > bound
                    or (self.max_depth is not None and ahead >= self.max_depth)
                ):
                    if series is not None:
                        series.shed_at_once()
                    raise QueueRejected(self.name, "hopeless", 0.0)
                waiter = _Waiter(loop)
                self._waiters.append(waiter)
        if waiter is None:
            if series is not None:
                series.leave(0.0, shed=False, entered=False)
        elif series is not None:
            series.enter()
        return waiter

    def _give_up(self, waiter: _Waiter) -> bool:
        """After a timeout: True if the slot arrived meanwhile, else dequeue and False."""
        with self._lock:
            if waiter.granted:
                return True
            with contextlib.suppress(ValueError):  # granted is set before removal: absent is fine
                self._waiters.remove(waiter)
            return False

    def acquire(self, remaining: float | None = None, series: QueueSeries | None = None) -> float:
        """Block until a slot is held; return the monotonic time it was granted."""
        started = time.monotonic()
        waiter = self._admit(remaining, series, None)
        if waiter is not None:
            bound = self.max_wait if remaining is None else min(self.max_wait, remaining)
            assert waiter.event is not None
            try:
                arrived = waiter.event.wait(bound)
            except BaseException:
                # Interrupted while waiting (KeyboardInterrupt...): never leak a slot.
                if self._give_up(waiter):
                    self.release(time.monotonic())
                if series is not None:
                    series.leave(time.monotonic() - started, shed=False)
                raise
            if not arrived and not self._give_up(waiter):
                waited = time.monotonic() - started
                if series is not None:
                    series.leave(waited, shed=True)
                raise QueueRejected(self.name, "timeout", waited)
            if series is not None:
                series.leave(time.monotonic() - started, shed=False)
        return time.monotonic()

    async def acquire_async(
        self, remaining: float | None = None, series: QueueSeries | None = None
    ) -> float:
        """Await a slot; return the monotonic time it was granted."""
        started = time.monotonic()
        waiter = self._admit(remaining, series, asyncio.get_running_loop())
        if waiter is not None:
            bound = self.max_wait if remaining is None else min(self.max_wait, remaining)
            assert waiter.future is not None
            try:
                async with asyncio.timeout(bound):
                    await asyncio.shield(waiter.future)
            except TimeoutError:
                if not self._give_up(waiter):
                    waited = time.monotonic() - started
                    if series is not None:
                        series.leave(waited, shed=True)
                    raise QueueRejected(self.name, "timeout", waited) from None
            except BaseException:
                # Cancelled while waiting: give the slot on if it had just arrived.
                if self._give_up(waiter):
                    self.release(time.monotonic())
                if series is not None:
                    series.leave(time.monotonic() - started, shed=False)
                raise
            if series is not None:
                series.leave(time.monotonic() - started, shed=False)
        return time.monotonic()

    def release(self, granted_at: float) -> None:
        """Free a slot held since ``granted_at`` (monotonic), handing it to the oldest waiter."""
        held = time.monotonic() - granted_at
        with self._lock:
            self._service_time += (
                _EWMA_WEIGHT * (held - self._service_time) if self._service_time else held
            )
            if self._waiters:
                waiter = self._waiters.popleft()
                waiter.granted = True  # the slot passes on: _active is unchanged
            else:
                self._active -= 1
                waiter = None
        if waiter is not None:
            waiter.wake()


class Slot:
    """One slot of an AdmissionQueue, for ``with`` and ``async with``."""

    __slots__ = ("_granted", "_mode", "_queue", "_remaining", "_workload")

    def __init__(
        self, queue: AdmissionQueue, remaining: float | None, workload: str | None, mode: str
    ) -> None:
        self._queue = queue
        self._remaining = remaining
        self._workload = workload
        self._mode = mode
        self._granted = 0.0

    def __enter__(self) -> Slot:
        q = self._queue
        self._granted = q.acquire(self._remaining, q.series(self._workload, self._mode))
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._queue.release(self._granted)

    async def __aenter__(self) -> Slot:
        q = self._queue
        self._granted = await q.acquire_async(self._remaining, q.series(self._workload, self._mode))
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._queue.release(self._granted)
