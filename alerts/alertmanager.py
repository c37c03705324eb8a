"""The Alertmanager configuration (alerts/alertmanager.yaml) from the spec.

Routing follows the severity label that the rules set per mode: ``critical`` (latency-mode
burn rates, a throughput stall) goes to the ``page`` receiver, ``warning`` (throughput
tickets, latency capacity warnings) to the ``ticket`` receiver. Notifications are grouped
by workload and alert name, and a critical alert of a workload inhibits that workload's
warnings (the page already has a human on it).

Receivers are ready for PagerDuty (page), Slack (ticket) and a webhook (both). Credentials
are read from files (``routing_key_file``, ``api_url_file``), never written here; a receiver
is included only when the spec's ``alerting.notify`` configures it. The webhook URL defaults
to ``http://127.0.0.1:9095/alerts`` (the demo's receiver); override it in the spec or
rewrite the ``url:`` lines.
"""

from __future__ import annotations

from typing import Any

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
        "inhibit_rules": [
            {
                "source_matchers": [f'{n.LABEL_SEVERITY}="{n.Severity.CRITICAL.value}"'],
                "target_matchers": [f'{n.LABEL_SEVERITY}="{n.Severity.WARNING.value}"'],
                "equal": [s.LABEL_WORKLOAD],
            }
        ],
        "receivers": [_receiver(spec, PAGE_RECEIVER), _receiver(spec, TICKET_RECEIVER)],
    }
