"""The admission queue (``admission.py``): bounded concurrency and wait for threads and asyncio,
shedding at once when waiting is hopeless, FIFO hand-over, exact counts."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from gemini_slo.contract import signals as S
from gemini_slo.instrumentation import (
    AdmissionQueue,
    QueueRejected,
    Registry,
    observe,
    testing,
)
from google.genai import types

FLASH = "gemini-2.5-flash"


@pytest.fixture
def rec() -> testing.InMemoryRecorder:
    """A fresh registry and its reader."""
    return testing.InMemoryRecorder(Registry())


def test_queue_threads_bound_concurrency_and_shed_after_max_wait(
    rec: testing.InMemoryRecorder,
) -> None:
    """max_concurrency holds; a call that cannot get a slot within max_wait is shed."""
    queue = AdmissionQueue(max_concurrency=2, max_wait=0.05, name="q", registry=rec.registry)
    active, peak, lock = [0], [0], threading.Lock()

    @observe(workload="chat", model=FLASH, queue=queue, registry=rec.registry)
    def call() -> None:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.5)
        with lock:
            active[0] -= 1

    errors: list[BaseException] = []
    barrier = threading.Barrier(5)

    def run() -> None:
        barrier.wait()
        try:
            call()
        except QueueRejected as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == 2
    assert len(errors) == 3
    assert rec.value(S.CALLS, outcome="rejected") == 3
    assert rec.value(S.CALLS, outcome="ok") == 2
    assert rec.value(S.QUEUE_SHED, queue="q") == 3
    assert rec.value(S.QUEUE_DEPTH, queue="q") == 0
    assert rec.histogram(S.QUEUE_WAIT, queue="q").count == 5
    assert rec.value(S.CONCURRENCY_LIMIT) == 2
    # A shed call never ran: no duration for it.
    assert rec.histogram(S.OPERATION_DURATION).count == 2


def test_queue_sheds_at_once_when_waiting_is_hopeless(rec: testing.InMemoryRecorder) -> None:
    """Once the service time is known, a call whose expected wait exceeds max_wait is shed
    without waiting; so is one whose deadline leaves no time to wait."""
    queue = AdmissionQueue(max_concurrency=1, max_wait=0.2, name="q", registry=rec.registry)
    with queue.slot():
        time.sleep(0.3)  # teaches the queue a 0.3 s service time
    with queue.slot():
        started = time.monotonic()
        with pytest.raises(QueueRejected) as caught:
            queue.acquire(series=queue.series("chat", "latency"))
        assert caught.value.reason == "hopeless"
        assert time.monotonic() - started < 0.1  # not the 0.2 s max_wait
        with pytest.raises(QueueRejected):
            queue.acquire(remaining=0.0)
    assert rec.value(S.QUEUE_SHED, queue="q") == 1


def test_queue_hands_slots_over_fifo_to_asyncio_tasks(rec: testing.InMemoryRecorder) -> None:
    """asyncio: at most max_concurrency at once, waiters served in arrival order."""
    queue = AdmissionQueue(max_concurrency=2, max_wait=5.0, name="aq", registry=rec.registry)
    order: list[int] = []
    active, peak = [0], [0]

    @observe(workload="chat", model=FLASH, queue=queue, registry=rec.registry)
    async def call(i: int) -> None:
        order.append(i)
        active[0] += 1
        peak[0] = max(peak[0], active[0])
        await asyncio.sleep(0.01)
        active[0] -= 1

    async def main() -> None:
        tasks = []
        for i in range(10):
            tasks.append(asyncio.create_task(call(i)))
            await asyncio.sleep(0)
        await asyncio.gather(*tasks)

    asyncio.run(main())
    assert peak[0] == 2
    assert order == list(range(10))
    assert rec.value(S.CALLS, outcome="ok") == 10
    assert rec.histogram(S.QUEUE_WAIT, queue="aq").count == 10


def test_queue_async_timeout_shed(rec: testing.InMemoryRecorder) -> None:
    """asyncio: a task that waits past max_wait gets QueueRejected (reason timeout)."""
    queue = AdmissionQueue(max_concurrency=1, max_wait=0.03, name="aq", registry=rec.registry)

    async def main() -> None:
        async with queue.slot(workload="chat"):
            with pytest.raises(QueueRejected) as caught:
                async with queue.slot(workload="chat"):
                    pass
            assert caught.value.reason == "timeout"
        async with queue.slot(workload="chat"):  # the slot is free again
            pass

    asyncio.run(main())
    assert rec.value(S.QUEUE_SHED, workload="chat") == 1
    assert queue.active == 0 and queue.waiting == 0


def test_thousand_tasks_exact_counts(rec: testing.InMemoryRecorder) -> None:
    """1,000 asyncio tasks through a queue: every call counted, none lost, none twice."""
    queue = AdmissionQueue(max_concurrency=50, max_wait=30.0, name="big", registry=rec.registry)

    @observe(workload="chat", queue=queue, registry=rec.registry)
    async def call() -> types.GenerateContentResponse:
        await asyncio.sleep(0.001)
        return testing.response(prompt=2, output=3, thoughts=0)

    async def main() -> None:
        await asyncio.gather(*(call() for _ in range(1000)))

    asyncio.run(main())
    assert rec.value(S.CALLS, outcome="ok") == 1000
    assert rec.value(S.TOKENS, token_type="output") == 3000
    assert rec.value(S.REQUESTS_IN_FLIGHT) == 0
    assert rec.value(S.QUEUE_DEPTH) == 0
    assert queue.active == 0
