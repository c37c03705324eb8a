"""How a measured value reads to a person, in the unit of its objective.

One formatter for the agent's SLO page and ``gemini-slo status``, so that the two show the
same number the same way (``266 ms``, ``0.5%``, ``16,380 tok/s``, ``$0.395/1M``).
"""

from __future__ import annotations

import math

from gemini_slo.contract.agent_series import UNBUCKETED_STATE

#: Units beside the spec's (contract.spec.Unit values): plain counts and calls per second.
COUNT = "count"
CALLS_PER_SECOND = "calls_per_second"

#: What an objective without a measurement says: its workload is idle.
NO_TRAFFIC = "no traffic"
#: A latency/TTFT objective whose incoming histogram has no bucket at its threshold.
UNBUCKETED = UNBUCKETED_STATE


def format_value(value: float | None, unit: str) -> str:
    """``value`` in ``unit`` for a person; ``-`` when there is none (None or not finite)."""
    if value is None or not math.isfinite(value):
        return "-"
    number = float(value)
    if unit == "seconds":
        return f"{number * 1000:.0f} ms" if number < 10 else f"{number:.1f} s"
    if unit == "ratio":
        percent = number * 100
        return f"{percent:,.0f}%" if abs(percent) >= 1000 else f"{percent:.3g}%"
    if unit == "tokens_per_second":
        return f"{number:,.0f} tok/s"
    if unit == "usd_per_million_tokens":
        return f"${number:.3g}/1M"
    if unit == CALLS_PER_SECOND:
        return f"{number:.3g}/s"
    return f"{number:.4g}"


def format_span(seconds: float) -> str:
    """A length of time for a person: ``45 s``, ``12 min``, ``3.5 h``, ``3 days``."""
    if not math.isfinite(seconds) or seconds < 0:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.3g} h"
    return f"{seconds / 86400:.3g} days"


def _compact(number: float) -> str:
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(number) >= size:
            return f"{number / size:.3g}{suffix}"
    return f"{number:.3g}"


def format_tick(value: float, unit: str) -> str:
    """A chart axis label: as short as it can be (``500 ms``, ``1.5 s``, ``0.5%``, ``20k``)."""
    if unit == "seconds":
        return f"{value * 1000:.3g} ms" if value < 1 else f"{value:.3g} s"
    if unit == "ratio":
        return f"{value * 100:.3g}%"
    if unit == "usd_per_million_tokens":
        return f"${value:.3g}"
    return _compact(value)
