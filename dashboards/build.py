"""All dashboards and Grafana provisioning files of a spec, and every panel's PromQL.

``dashboards(spec)`` gives the JSON models (file name -> dict); ``provisioning(spec)`` the
provisioning files; ``queries(spec)`` every PromQL expression with its dashboard and
panel, for tests that run them against a real Prometheus.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from gemini_slo.contract.signals import Mode
from gemini_slo.contract.spec import SloSpec, format_duration
from gemini_slo.dashboards import latency, overview, throughput
from gemini_slo.dashboards.common import (
    JOB_VAR,
    MODEL_VAR,
    PROVISIONED_DATASOURCE_NAME,
    PROVISIONED_DATASOURCE_UID,
    WORKLOAD_VAR,
    uid,
)
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

#: Where the provisioning file tells Grafana to read the dashboards from: copy
#: dashboards/*.json there (see docs/slo-spec.md).
DASHBOARDS_PATH = "/var/lib/grafana/dashboards/gemini-slo"
PROMETHEUS_URL = "http://127.0.0.1:9090"
FOLDER = "Gemini SLO"

_BUILDERS: tuple[tuple[str, Mode | None, Callable[[SloSpec], Dashboard]], ...] = (
    (overview.NAME, None, overview.build),
    (latency.NAME, Mode.LATENCY, latency.build),
    (throughput.NAME, Mode.THROUGHPUT, throughput.build),
)


def _to_dict(d: Dashboard) -> dict[str, Any]:
    # The SDK's encoder gives the Grafana JSON model; round-trip for plain dicts.
    data: dict[str, Any] = json.loads(json.dumps(d, cls=JSONEncoder))
    return data


def dashboards(spec: SloSpec) -> dict[str, dict[str, Any]]:
    """Every dashboard of the spec as ``{file name: JSON model}``.

    The mode dashboards exist only when the spec has a workload in that mode.
    """
    out: dict[str, dict[str, Any]] = {}
    for name, mode, build in _BUILDERS:
        if mode is not None and not spec.by_mode(mode):
            continue
        out[f"{name}.json"] = _to_dict(build(spec))
    return out


def provisioning(spec: SloSpec) -> dict[str, dict[str, Any]]:
    """Grafana provisioning files, ``{path under dashboards/provisioning: content}``."""
    return {
        "dashboards/gemini-slo.yaml": {
            "apiVersion": 1,
            "providers": [
                {
                    "name": "gemini-slo",
                    "folder": FOLDER,
                    "type": "file",
                    "disableDeletion": False,
                    "allowUiUpdates": False,
                    "updateIntervalSeconds": 60,
                    "options": {"path": DASHBOARDS_PATH},
                }
            ],
        },
        "datasources/gemini-slo-prometheus.yaml": {
            "apiVersion": 1,
            "datasources": [
                {
                    "name": PROVISIONED_DATASOURCE_NAME,
                    "uid": PROVISIONED_DATASOURCE_UID,
                    "type": "prometheus",
                    "access": "proxy",
                    "url": PROMETHEUS_URL,
                    "isDefault": False,
                    "jsonData": {
                        # Grafana's $__rate_interval is 4x this: keep it the scrape interval.
                        "timeInterval": format_duration(spec.alerting.scrape_interval),
                        "httpMethod": "POST",
                    },
                }
            ],
        },
    }


class PanelQuery(NamedTuple):
    """One PromQL expression of a dashboard panel."""

    dashboard_uid: str
    panel_title: str
    expr: str


def _panels(model: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in model.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # panels nested in collapsed rows


def substitute(
    expr: str, workload: str, model: str = ".*", rate_interval: str = "1m", job: str = ".*"
) -> str:
    """Replace the dashboards' template variables in a PromQL expression."""
    out = expr.replace("$__rate_interval", rate_interval)
    out = re.sub(rf"\$\{{?{WORKLOAD_VAR}\}}?", workload, out)
    out = re.sub(rf"\$\{{?{JOB_VAR}\}}?", job, out)
    return re.sub(rf"\$\{{?{MODEL_VAR}\}}?", model, out)


def queries(spec: SloSpec, *, expand: bool = True, rate_interval: str = "1m") -> list[PanelQuery]:
    """Every PromQL expression of every generated dashboard, with its uid and panel title.

    With ``expand`` (the default), template variables are substituted: a mode dashboard's
    queries are listed once per workload of that mode (``$workload`` = its name), ``$model``
    becomes ``.*`` (All) and ``$__rate_interval`` becomes ``rate_interval``. Without it the
    raw templates are returned once.
    """
    out: list[PanelQuery] = []
    for file_name, model in dashboards(spec).items():
        name = file_name.removesuffix(".json")
        mode = Mode(name) if name in {m.value for m in Mode} else None
        workloads = [w.name for w in spec.by_mode(mode)] if mode else [""]
        for panel in _panels(model):
            for target in panel.get("targets", []):
                expr = target.get("expr", "")
                if not expand:
                    out.append(PanelQuery(model["uid"], panel["title"], expr))
                    continue
                for w in workloads:
                    out.append(
                        PanelQuery(
                            model["uid"],
                            panel["title"],
                            substitute(expr, w, rate_interval=rate_interval),
                        )
                    )
    return out


__all__ = ["PanelQuery", "dashboards", "provisioning", "queries", "substitute", "uid"]
