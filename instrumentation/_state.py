"""Process-wide state read on the hot path: the default registry, the kill switch, logging.

(The price table in use is the pricing module's: ``pricing.active_table()``.)

Kept in one tiny module so that the hot path reads plain module globals (one attribute
load each) and so that ``configure()`` and ``testing.capture()`` have one place to change.
"""

from __future__ import annotations

import os

from gemini_slo.instrumentation._registry import Registry

_TRUE = {"1", "true", "yes", "on"}


def env_flag(name: str) -> bool:
    """Whether environment variable ``name`` is set to a true value."""
    return os.environ.get(name, "").strip().lower() in _TRUE


default_registry = Registry()
"""The registry used when none is passed (replaced for a while by ``testing.capture()``)."""

enabled = not env_flag("GEMINI_SLO_DISABLED")
"""False: observe() and instrument() become pass-through (GEMINI_SLO_DISABLED)."""

log_calls = env_flag("GEMINI_SLO_LOG_CALLS")
"""One structlog event per call (off by default; a single bool check when off)."""

capture_content = env_flag("GEMINI_SLO_CAPTURE_CONTENT")
"""Whether per-call log events may carry prompt/response text."""


def registry() -> Registry:
    """The current default registry."""
    return default_registry
