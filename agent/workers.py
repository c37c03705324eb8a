"""A bounded pool of worker threads for the agent's CPU work, off the event-loop thread.

Decoding a body, merging it into the store, rendering ``/metrics`` and ``/api/slo``, the
periodic expiry and the state file all run here; the event loop only moves bytes and
answers ``/healthz`` and ``/readyz``. One thread of Python code cannot stop another for
long (the interpreter switches threads every few milliseconds), so the loop keeps
answering while a worker grinds through a body; a C call that does not release the GIL
(parsing protobuf) still can, which is why the request limits bound the body size too.

A pool refuses work when ``max_pending`` jobs are already waiting or running
(:class:`Busy`): the caller answers 503, and memory stays bounded by what is queued.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Busy(Exception):
    """The pool holds ``max_pending`` jobs already."""


class WorkerPool:
    """``workers`` threads; at most ``max_pending`` jobs queued or running at once."""

    def __init__(self, name: str, workers: int, max_pending: int) -> None:
        self.name = name
        self.max_pending = max_pending
        self.pending = 0
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix=f"gemini-slo-{name}"
        )

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn(*args)`` on a worker thread and return its result; :class:`Busy` if full."""
        if self.pending >= self.max_pending:
            raise Busy(f"{self.name} pool holds {self.max_pending} jobs")
        self.pending += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, fn, *args)
        finally:
            self.pending -= 1

    def shutdown(self, wait: bool = True) -> None:
        """Stop taking jobs; with ``wait``, return once the running ones are done."""
        self._executor.shutdown(wait=wait, cancel_futures=not wait)
