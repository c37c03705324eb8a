"""The one duration grammar of gemini-slo: ``500ms``, ``2s``, ``5m``, ``1h``, ``30d``, ``1w``.

Every reader of a duration (the slo.yaml loader, the CLI's overrides, the agent's window
names, the burn-rate windows) parses with :func:`parse_duration`, and every writer
(PromQL ranges, ``for:`` clauses, window labels) formats with :func:`format_duration`, so a
value written by one is read back unchanged by the other.
"""

from __future__ import annotations

import math
import re

__all__ = ["UNITS", "format_duration", "parse_duration"]

#: Seconds per unit, the units PromQL accepts (``y`` aside, which no SLO needs).
UNITS: dict[str, float] = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")


def parse_duration(text: str) -> float:
    """``"500ms"`` -> 0.5, ``"5m"`` -> 300.0; raises ``ValueError`` on anything else.

    The result is rounded to the nanosecond so that ``"700ms"`` is exactly 0.7, not
    0.7000000000000001: thresholds become histogram bucket boundaries that rules match by
    their text.
    """
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (expected e.g. '500ms', '2s', '5m', '1h')")
    return round(float(match.group(1)) * UNITS[match.group(2)], 9)


def format_duration(seconds: float) -> str:
    """Format seconds as a Prometheus duration: 300 -> '5m', 0.5 -> '500ms', 86400 -> '1d'.

    Uses the largest unit that divides the value exactly, so the result round-trips through
    :func:`parse_duration`. Weeks are never chosen (``7d`` reads better in a window label).
    """
    millis = round(seconds * 1000)
    if millis <= 0 or not math.isclose(millis, seconds * 1000, abs_tol=1e-6):
        # Below a millisecond (or not a whole number of them): not a PromQL duration, only
        # ever used for display.
        return f"{seconds * 1000:g}ms"
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if millis % size == 0:
            return f"{millis // size}{unit}"
    return f"{millis}ms"
