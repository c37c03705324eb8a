"""Per-model quotas: requests per minute (RPM) and tokens per minute (TPM).

A sliding 60-second window per model, like the API's per-minute limits. A request is
admitted when fewer than ``rpm`` requests were admitted in the last 60 s and its prompt
tokens fit in what is left of ``tpm`` (the API counts input tokens against TPM). A refused
request is answered 429 RESOURCE_EXHAUSTED with a RetryInfo delay: the time until the
oldest admission leaves the window, rounded up to whole seconds. Refused requests do not
use quota. A limit of 0 means unlimited. Limits come from the profile and can be
overridden at run time (admin API ``POST /_emulator/quotas``).

Only touched from the server's event loop, except :meth:`QuotaBook.set_limits`, which
takes the lock.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from gemini_slo.emulator.errors import ApiError, quota_exceeded

WINDOW_S = 60.0


@dataclass(slots=True)
class _Window:
    rpm: int
    tpm: int
    admitted: deque[tuple[float, int]]
    tokens: int = 0


class QuotaBook:
    """The quota windows of every model."""

    def __init__(self, limits: dict[str, tuple[int, int]], *, enabled: bool = True) -> None:
        self.enabled = enabled
        self._lock = threading.Lock()
        self._windows = {name: _Window(rpm, tpm, deque()) for name, (rpm, tpm) in limits.items()}

    def set_limits(self, model: str, rpm: int | None = None, tpm: int | None = None) -> None:
        """Override one model's limits (None keeps the current value, 0 = unlimited)."""
        with self._lock:
            window = self._windows.setdefault(model, _Window(0, 0, deque()))
            if rpm is not None:
                window.rpm = rpm
            if tpm is not None:
                window.tpm = tpm

    def limits(self) -> dict[str, dict[str, int]]:
        """Current limits, for the admin API."""
        with self._lock:
            return {m: {"rpm": w.rpm, "tpm": w.tpm} for m, w in self._windows.items()}

    def reset(self) -> None:
        """Forget past admissions (limits stay)."""
        with self._lock:
            for window in self._windows.values():
                window.admitted.clear()
                window.tokens = 0

    def admit(self, model: str, tokens: int, now: float | None = None) -> None:
        """Admit one request or raise the API's 429."""
        window = self._windows.get(model)
        if not self.enabled or window is None or (window.rpm == 0 and window.tpm == 0):
            return
        now = time.monotonic() if now is None else now
        with self._lock:
            admitted = window.admitted
            while admitted and admitted[0][0] <= now - WINDOW_S:
                window.tokens -= admitted.popleft()[1]
            if window.rpm and len(admitted) >= window.rpm:
                raise self._refuse(model, "generate_requests_per_model", window.rpm, window, now)
            if window.tpm and admitted and window.tokens + tokens > window.tpm:
                raise self._refuse(
                    model, "generate_content_paid_tier_input_token_count", window.tpm, window, now
                )
            admitted.append((now, tokens))
            window.tokens += tokens

    @staticmethod
    def _refuse(model: str, metric: str, limit: int, window: _Window, now: float) -> ApiError:
        oldest = window.admitted[0][0] if window.admitted else now
        return quota_exceeded(model, metric, limit, max(0.0, oldest + WINDOW_S - now))
