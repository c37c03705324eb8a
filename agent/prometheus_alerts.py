"""The alerts Prometheus is evaluating, read from its HTTP API for the SLO page.

``gemini-slo agent --prometheus URL`` makes the page list Prometheus' active alerts
(``GET URL/api/v1/alerts``: pending and firing) beside each workload, instead of what the
agent computes itself. Prometheus is the one that pages, so its word is the one to show
when it can be asked. The request has a short timeout and any failure becomes a message on
the page, never an error of the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
from gemini_slo.contract import agent_series, signals
from gemini_slo.contract.alert_names import LABEL_BURN_WINDOW, LABEL_SEVERITY

#: Seconds the page waits for Prometheus.
TIMEOUT = 2.0


class PrometheusError(RuntimeError):
    """Prometheus could not be asked, or answered something else than its alerts."""


@dataclass(frozen=True, slots=True)
class ActiveAlert:
    """One alert as Prometheus reports it."""

    name: str
    state: str  # "firing" or "pending"
    severity: str
    workload: str | None
    objective: str | None
    burn_window: str | None
    active_at: str
    summary: str

    @property
    def firing(self) -> bool:
        """True once the alert's hold has passed (it is being sent to Alertmanager)."""
        return self.state == "firing"


def parse_alerts(payload: Any) -> tuple[ActiveAlert, ...]:
    """``/api/v1/alerts``'s JSON as alerts; PrometheusError when it is not that shape."""
    try:
        if payload["status"] != "success":
            raise PrometheusError(f"Prometheus answered {payload.get('error', payload['status'])}")
        items = payload["data"]["alerts"]
        alerts = []
        for item in items:
            labels: dict[str, str] = item.get("labels") or {}
            annotations: dict[str, str] = item.get("annotations") or {}
            alerts.append(
                ActiveAlert(
                    name=str(labels.get("alertname", "")),
                    state=str(item.get("state", "")),
                    severity=str(labels.get(LABEL_SEVERITY, "")),
                    workload=labels.get(signals.LABEL_WORKLOAD),
                    objective=labels.get(agent_series.LABEL_OBJECTIVE),
                    burn_window=labels.get(LABEL_BURN_WINDOW),
                    active_at=str(item.get("activeAt", "")),
                    summary=str(annotations.get("summary", "")),
                )
            )
    except (KeyError, TypeError, AttributeError) as exc:
        raise PrometheusError(f"not an alerts answer ({type(exc).__name__}: {exc})") from None
    # Firing first, then by name: the page reads top-down.
    return tuple(sorted(alerts, key=lambda a: (not a.firing, a.name, a.objective or "")))


async def fetch_alerts(url: str) -> tuple[ActiveAlert, ...]:
    """GET ``{url}/api/v1/alerts`` within :data:`TIMEOUT`; PrometheusError on any failure."""
    endpoint = url.rstrip("/") + "/api/v1/alerts"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as session,
            session.get(endpoint, headers={"Accept": "application/json"}) as response,
        ):
            if response.status != 200:
                raise PrometheusError(f"GET {endpoint}: HTTP {response.status}")
            payload = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise PrometheusError(f"GET {endpoint}: {type(exc).__name__}: {exc}") from None
    return parse_alerts(payload)
