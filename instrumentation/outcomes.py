"""The rules a finished call is counted by, for code that keeps its own record of calls.

The load generator (``gemini_slo.lab.load``) records every call it makes beside the
instrumentation, as a yardstick; it must count them exactly as the instrumentation does.
This module is the public face of those rules (the instrumentation's own code uses the
same functions):

* :func:`outcome_of` / :func:`classify`: outcome and ``error.type`` from the exception
  raised (``429`` -> ``rate_limited``, timeouts and cancellations -> ``timeout``,
  :class:`QueueRejected` -> ``rejected`` as ``gemini_slo.instrumentation.QueueRejected``),
  else ``blocked`` or ``ok`` from the response;
* :func:`is_blocked` and :data:`BLOCKING_FINISH_REASONS`: when a response counts as
  filtered;
* :func:`usage_of`: a response's (or a stream's last chunk's) token usage;
* :func:`cost_pico`: a call's cost with the price table in use (``pricing.active_table()``).
"""

from __future__ import annotations

from gemini_slo.instrumentation._classify import classify, outcome_of
from gemini_slo.instrumentation._usage import BLOCKING_FINISH_REASONS, is_blocked, usage_of
from gemini_slo.instrumentation._values import PICO, Usage
from gemini_slo.instrumentation.admission import QueueRejected
from gemini_slo.instrumentation.pricing import active_table

__all__ = [
    "BLOCKING_FINISH_REASONS",
    "PICO",
    "QueueRejected",
    "Usage",
    "classify",
    "cost_pico",
    "is_blocked",
    "outcome_of",
    "usage_of",
]


def cost_pico(model: str, usage: Usage, service_tier: str | None = None) -> int | None:
    """The cost of one call in pico-USD with the price table in use (None: unpriced), as
    the registry computes it when it aggregates the call."""
    return active_table().cost_pico(model, usage, service_tier)
