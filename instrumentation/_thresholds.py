"""SLO latency thresholds from an ``slo.yaml`` spec (or a plain mapping), as bucket boundaries.

The spec model proper lives in ``gemini_slo.contract.spec``: when it can be imported, the spec
is loaded and validated by it (``load_spec``; a bad spec fails loudly at ``configure()``)
and its ``Workload.latency_thresholds``/``ttft_thresholds`` are used. Otherwise (an
installation without the agent's dependencies) the thresholds are read straight from the
YAML (``workloads[].objectives.latency[].threshold`` and ``...ttft.threshold``, a single
objective or a list). Durations are ``"500ms"``, ``"1.5s"``, ``"2m"`` or seconds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from gemini_slo.instrumentation._registry import Thresholds

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """``"500ms"`` -> 0.5; numbers are seconds."""
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"not a duration: {value!r}")
    # Rounded to the nanosecond so that "700ms" is 0.7, not 0.7000000000000001: the value
    # becomes a bucket boundary that the rules match exactly (as agent/spec.py does).
    return round(float(match.group(1)) * _UNITS[match.group(2)], 9)


def _thresholds_of(objective: Any) -> list[float]:
    items = objective if isinstance(objective, list) else [objective]
    return [
        parse_duration(item["threshold"])
        for item in items
        if isinstance(item, dict) and "threshold" in item
    ]


def from_spec(path: str | Path) -> Thresholds:
    """The latency and TTFT thresholds of every workload of the spec at ``path``."""
    try:
        from gemini_slo.contract.spec import load_spec
    except ImportError:  # pragma: no cover - the agent's model is part of the distribution
        return from_yaml(path)
    spec = load_spec(path)
    return Thresholds(
        duration={w.name: tuple(w.latency_thresholds) for w in spec.workloads},
        ttft={w.name: tuple(w.ttft_thresholds) for w in spec.workloads},
    )


def from_yaml(path: str | Path) -> Thresholds:
    """The same, read from the YAML without the spec model (no validation)."""
    data = yaml.safe_load(Path(path).read_text("utf-8")) or {}
    duration: dict[str, tuple[float, ...]] = {}
    ttft: dict[str, tuple[float, ...]] = {}
    for workload in data.get("workloads") or ():
        name = str(workload.get("name"))
        objectives = workload.get("objectives") or {}
        duration[name] = tuple(sorted(set(_thresholds_of(objectives.get("latency") or []))))
        ttft[name] = tuple(sorted(set(_thresholds_of(objectives.get("ttft") or []))))
    return Thresholds(duration=duration, ttft=ttft)


def from_mapping(thresholds: Mapping[str, Sequence[float]]) -> Thresholds:
    """``{workload: [seconds, ...]}``: the thresholds become boundaries of both the duration
    and the time-to-first-chunk buckets."""
    merged = {w: tuple(sorted({float(v) for v in values})) for w, values in thresholds.items()}
    return Thresholds(duration=merged, ttft=dict(merged))


def combine(*parts: Thresholds) -> Thresholds:
    """The union of several threshold sets."""
    duration: dict[str, set[float]] = {}
    ttft: dict[str, set[float]] = {}
    for part in parts:
        for w, values in part.duration.items():
            duration.setdefault(w, set()).update(values)
        for w, values in part.ttft.items():
            ttft.setdefault(w, set()).update(values)
    return Thresholds(
        duration={w: tuple(sorted(v)) for w, v in duration.items()},
        ttft={w: tuple(sorted(v)) for w, v in ttft.items()},
    )
