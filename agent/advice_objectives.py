"""Objectives to start from: an slo.yaml workload entry drawn from what was observed.

A latency workload gets latency percentiles and TTFT at ``MARGIN`` over what was observed
(rounded up to 10 ms), an availability target at the highest "nines" level the
workload already meets, and the default 60% headroom; a throughput workload gets a tokens/s
floor at ``FLOOR_SHARE`` of the sustained rate (over the steps with traffic), a cost ceiling at ``MARGIN`` over the
observed cost per 1M tokens, an error ratio and the default 80% utilization floor. The
entries are plain data in the spec's own syntax (durations through the one duration
grammar), so ``gemini-slo generate`` accepts the document as it is.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml
from gemini_slo.agent.advice_rules import Verdict
from gemini_slo.agent.traffic import Traffic
from gemini_slo.contract.durations import format_duration
from gemini_slo.contract.spec import VERSION

MARGIN = 1.25
FLOOR_SHARE = 0.8
#: Availability targets offered, highest first.
NINES: tuple[float, ...] = (0.999, 0.995, 0.99, 0.98, 0.95, 0.9)
_NAME = re.compile(r"[^a-z0-9_-]+")
_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/@:-]*")


def workload_name(text: str) -> str:
    """A valid spec workload name (lowercase, digits, '-' and '_', a letter first, <= 40)."""
    name = _NAME.sub("-", text.lower()).strip("-_") or "workload"
    if not name[0].isalpha():
        name = "w-" + name
    return name[:40].rstrip("-_")


def _threshold(seconds: float) -> str:
    return format_duration(max(0.01, math.ceil(seconds * MARGIN * 100) / 100))


def _percent(ratio: float) -> str:
    return f"{ratio * 100:.6g}%"


def _nines(availability: float | None) -> float:
    if availability is None:
        return NINES[1]
    for level in NINES:
        if availability >= level:
            return level
    return NINES[-1]


def _ceil_sig(value: float, digits: int = 2) -> float:
    if value <= 0:
        return value
    scale = 10.0 ** (math.floor(math.log10(value)) - digits + 1)
    return float(round(math.ceil(value / scale) * scale, 10))


def entry(traffic: Traffic, mode: Verdict, name: str | None = None) -> dict[str, Any]:
    """The slo.yaml workload entry for ``traffic`` run in ``mode`` (latency or throughput)."""
    objectives: dict[str, Any] = {}
    if mode is Verdict.LATENCY:
        latency = []
        if traffic.duration and traffic.duration.p95:
            latency.append({"percentile": 95, "threshold": _threshold(traffic.duration.p95)})
        if traffic.duration and traffic.duration.p99:
            latency.append({"percentile": 99, "threshold": _threshold(traffic.duration.p99)})
        if latency:
            objectives["latency"] = latency
        if traffic.ttft and traffic.ttft.p95:
            objectives["ttft"] = {"percentile": 95, "threshold": _threshold(traffic.ttft.p95)}
        objectives["availability"] = _percent(_nines(traffic.availability))
        if traffic.shed_share:
            objectives["shed_ratio"] = _percent(min(0.5, max(0.01, 2 * traffic.shed_share)))
        objectives["headroom"] = {"max_utilization": "60%"}
    else:
        floor = math.floor(traffic.sustained_tokens_per_s * FLOOR_SHARE)
        if floor >= 1:
            objectives["tokens_per_second"] = {"min": floor}
        if traffic.cost_per_million:
            objectives["cost_per_million_tokens"] = {
                "max": _ceil_sig(traffic.cost_per_million * MARGIN)
            }
        error = (traffic.error_share or 0.0) + (traffic.timeout_share or 0.0)
        objectives["error_ratio"] = _percent(min(0.5, max(0.01, _ceil_sig(2 * error, 1))))
        objectives["utilization"] = {"min": "80%"}
    models = [m for m in traffic.models if _MODEL.fullmatch(m) and m != "unknown"]
    out: dict[str, Any] = {"name": workload_name(name or traffic.name), "mode": mode.value}
    if models:
        out["models"] = models
    out["objectives"] = objectives
    return out


def document(entries: list[dict[str, Any]]) -> str:
    """A whole slo.yaml holding ``entries`` (names made unique), as ``generate`` reads it."""
    seen: set[str] = set()
    unique = []
    for e in entries:
        name, n = e["name"], 2
        while name in seen:
            name = f"{e['name'][:37]}-{n}"
            n += 1
        seen.add(name)
        unique.append({**e, "name": name})
    header = "# Objectives to start from, drawn by `gemini-slo advise` from observed traffic.\n"
    body = yaml.safe_dump(
        {"version": VERSION, "workloads": unique}, sort_keys=False, default_flow_style=None
    )
    return header + body


def fragment(e: dict[str, Any]) -> str:
    """One workload's entry as a whole slo.yaml (valid alone, or merged into another)."""
    return document([e])
