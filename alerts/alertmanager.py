"""The Alertmanager configuration (alerts/alertmanager.yaml) from the spec.

Routing follows the severity label that the rules set per pair and mode: ``critical``
(fast burns of latency, TTFT, availability and throughput errors, a stall) goes to the
``page`` receiver, ``warning`` (slow burns, capacity and throughput tickets) to the
``ticket`` receiver. Notifications are grouped by workload and alert name. A page inhibits
the tickets of the same workload and objective (a fast burn also crosses the slow pairs'
thresholds: the human who is paged needs no ticket for it), and, per :data:`SYMPTOMS`, the
tickets that are its consequences; a ticket for another objective still arrives.

Receivers are ready for PagerDuty (page), Slack (ticket) and a webhook (both). Credentials
are read from files (``routing_key_file``, ``api_url_file``), never written here; a receiver
is included only when the spec's ``alerting.notify`` configures it. The webhook URL defaults
to ``http://127.0.0.1:9095/alerts`` (the demo's receiver); override it in the spec or
rewrite the ``url:`` lines.
"""

from __future__ import annotations

from typing import Any

from gemini_slo.contract import agent_series
from gemini_slo.contract import alert_names as n
from gemini_slo.contract import signals as s
from gemini_slo.contract.spec import SloSpec, format_duration

PAGE_RECEIVER = "page"
TICKET_RECEIVER = "ticket"
GROUP_BY: tuple[str, ...] = ("alertname", s.LABEL_WORKLOAD)

# Nominal Alertmanager timings (scaled by alerting.window_scale, at least 1s).
GROUP_WAIT = {PAGE_RECEIVER: 10.0, TICKET_RECEIVER: 60.0}
GROUP_INTERVAL = {PAGE_RECEIVER: 300.0, TICKET_RECEIVER: 900.0}
REPEAT_INTERVAL = {PAGE_RECEIVER: 3600.0, TICKET_RECEIVER: 86400.0}

_TITLE = (
    "[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }} "
    "({{ .CommonLabels." + s.LABEL_WORKLOAD + " }})"
)
_TEXT = (
    "{{ range .Alerts }}{{ .Annotations.summary }}\n{{ .Annotations.description }}\n"
    "Runbook: {{ .Annotations.runbook_url }}\n{{ end }}"
)


#: A page of the key alert also inhibits these tickets of the same workload: they are what
#: the paged problem looks like from another objective (a timeout or shed spike is part of
#: the availability burn; no tokens is what a stall is).
SYMPTOMS: dict[str, tuple[str, ...]] = {
    n.AVAILABILITY_BURN: (n.TIMEOUT_SPIKE, n.SHED_SPIKE),
    n.STALLED: (n.TOKEN_THROUGHPUT_LOW,),
}


def _timing(spec: SloSpec, seconds: float) -> str:
    return format_duration(max(spec.alerting.hold(seconds), 1.0))


def _receiver(spec: SloSpec, name: str) -> dict[str, Any]:
    notify = spec.alerting.notify
    receiver: dict[str, Any] = {"name": name}
    if name == PAGE_RECEIVER and notify.pagerduty_routing_key_file:
        receiver["pagerduty_configs"] = [
            {
                "routing_key_file": notify.pagerduty_routing_key_file,
                "severity": "critical",
                "description": _TITLE,
                "send_resolved": True,
            }
        ]
    if name == TICKET_RECEIVER and notify.slack_api_url_file:
        receiver["slack_configs"] = [
            {
                "api_url_file": notify.slack_api_url_file,
                "channel": notify.slack_channel,
                "title": _TITLE,
                "text": _TEXT,
                "send_resolved": True,
            }
        ]
    if notify.webhook_url:
        receiver["webhook_configs"] = [{"url": notify.webhook_url, "send_resolved": True}]
    return receiver


def _route(spec: SloSpec, receiver: str, severity: n.Severity) -> dict[str, Any]:
    return {
        "matchers": [f'{n.LABEL_SEVERITY}="{severity.value}"'],
        "receiver": receiver,
        "group_wait": _timing(spec, GROUP_WAIT[receiver]),
        "group_interval": _timing(spec, GROUP_INTERVAL[receiver]),
        "repeat_interval": _timing(spec, REPEAT_INTERVAL[receiver]),
    }


def inhibit_rules() -> list[dict[str, Any]]:
    """A page inhibits its objective's tickets, and the tickets listed in SYMPTOMS."""
    critical = f'{n.LABEL_SEVERITY}="{n.Severity.CRITICAL.value}"'
    warning = f'{n.LABEL_SEVERITY}="{n.Severity.WARNING.value}"'
    out: list[dict[str, Any]] = [
        {
            "source_matchers": [critical],
            "target_matchers": [warning],
            "equal": [s.LABEL_WORKLOAD, agent_series.LABEL_OBJECTIVE],
        }
    ]
    for cause, symptoms in SYMPTOMS.items():
        out.append(
            {
                "source_matchers": [f'alertname="{cause}"', critical],
                "target_matchers": [f'alertname=~"{"|".join(symptoms)}"', warning],
                "equal": [s.LABEL_WORKLOAD],
            }
        )
    return out


def alertmanager_config(spec: SloSpec) -> dict[str, Any]:
    """The whole Alertmanager configuration as a dict, keys in file order."""
    return {
        "route": {
            "receiver": TICKET_RECEIVER,  # anything unmatched is at least seen
            "group_by": list(GROUP_BY),
            "group_wait": _timing(spec, GROUP_WAIT[TICKET_RECEIVER]),
            "group_interval": _timing(spec, GROUP_INTERVAL[TICKET_RECEIVER]),
            "repeat_interval": _timing(spec, REPEAT_INTERVAL[TICKET_RECEIVER]),
            "routes": [
                _route(spec, PAGE_RECEIVER, n.Severity.CRITICAL),
                _route(spec, TICKET_RECEIVER, n.Severity.WARNING),
            ],
        },
        "inhibit_rules": inhibit_rules(),
        "receivers": [_receiver(spec, PAGE_RECEIVER), _receiver(spec, TICKET_RECEIVER)],
    }
