"""At most one log line of a kind per interval: a storm of errors cannot fill a disk.

Two sources go through one :class:`LogLimiter`: the agent's own lines (a refused request,
by reason) and the standard-library loggers of asyncio and aiohttp. asyncio logs every
failed ``accept()`` with a traceback; once the descriptors ran out, that was 22.9 MB of log
in 12 s. A kind writes its first line, then at most one line per ``interval`` seconds,
and that line says how many of its kind were left out since the previous one. Kinds are
bounded too (a message that embeds an address or a count would otherwise make each line
a new kind): past ``max_kinds``, every new kind shares one budget.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

#: The standard-library loggers the agent's server writes through (asyncio's event loop,
#: aiohttp's server and web layers).
LIBRARY_LOGGERS = ("asyncio", "aiohttp.server", "aiohttp.web", "aiohttp.access", "aiohttp.internal")
_OTHER = "(other)"


class LogLimiter:
    """Decides, per kind, whether a line is written (thread-safe)."""

    def __init__(
        self,
        interval: float = 10.0,
        *,
        max_kinds: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.max_kinds = max_kinds
        self.clock = clock
        self.suppressed_total = 0
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def allow(self, kind: str) -> int | None:
        """None when the line is to be left out; else how many of its kind were left out."""
        with self._lock:
            if kind not in self._last and len(self._last) >= self.max_kinds:
                kind = _OTHER
            now = self.clock()
            last = self._last.get(kind)
            if last is not None and now - last < self.interval:
                self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
                self.suppressed_total += 1
                return None
            self._last[kind] = now
            return self._suppressed.pop(kind, 0)


class LibraryLogFilter(logging.Filter):
    """A ``logging.Filter`` that rate-limits records by logger and first message line."""

    def __init__(self, limiter: LogLimiter) -> None:
        super().__init__()
        self.limiter = limiter

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep the record when its kind may write; note what was left out before it."""
        first_line = str(record.msg).split("\n", 1)[0][:120]
        left_out = self.limiter.allow(f"{record.name}: {first_line}")
        if left_out is None:
            return False
        if left_out:
            # %% : record.msg is a %-format string when record.args is set.
            note = f" [{left_out} similar lines left out in the last interval]"
            record.msg = f"{record.msg}{note.replace('%', '%%') if record.args else note}"
        return True


def limit_library_logs(limiter: LogLimiter) -> None:
    """Put one :class:`LibraryLogFilter` on each of :data:`LIBRARY_LOGGERS` (replacing ours).

    Idempotent: an agent started again in the same process (tests) replaces the filter of
    the previous one rather than stacking them.
    """
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, LibraryLogFilter)]:
            logger.removeFilter(old)
        logger.addFilter(LibraryLogFilter(limiter))
