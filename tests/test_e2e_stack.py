"""The plumbing of the end-to-end stack: configs, the webhook receiver, Prometheus to webhook.

These check gemini_slo.lab.stack and gemini_slo.lab.webhook on their own, with a rule
that always fires, so that a failure of the full-stack test points at the rules or the
signals, not at the wiring.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from gemini_slo.lab import stack as st
from gemini_slo.lab.webhook import ReceivedAlert, WebhookReceiver


def _post(url: str, body: dict[str, Any]) -> int:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return int(response.status)


def test_webhook_records_and_waits() -> None:
    """A notification in Alertmanager's shape is parsed, listened to and waited for."""
    seen: list[ReceivedAlert] = []
    with WebhookReceiver() as hook:
        hook.add_listener(seen.append)
        body = {
            "receiver": "page",
            "status": "firing",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": "X", "severity": "critical", "w": "chat"},
                    "annotations": {"summary": "s"},
                    "startsAt": "2026-01-01T00:00:00Z",
                    "endsAt": "0001-01-01T00:00:00Z",
                }
            ],
        }
        since = time.time()
        assert _post(hook.url, body) == 200
        alert = hook.wait_for(lambda a: a.severity == "critical", timeout=5, since=since)
        assert alert is not None and alert.firing and alert.name == "X" and alert.receiver == "page"
        assert "w=chat" in alert.describe()
        assert hook.wait_for(lambda a: a.name == "Y", timeout=0.2) is None
        assert seen == [alert]
        assert len(hook.notifications) == 1


def test_webhook_rejects_bad_bodies() -> None:
    """Non-JSON bodies get a 400 and are not recorded."""
    with WebhookReceiver() as hook:
        request = urllib.request.Request(hook.url, data=b"not json")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=5)
        assert info.value.code == 400
        assert hook.alerts == []


def test_alertmanager_config_keeps_routes_and_replaces_receivers() -> None:
    """Routes, grouping and inhibition stay as generated; integrations become our webhook."""
    generated: dict[str, Any] = {
        "global": {"resolve_timeout": "5m", "slack_api_url_file": "/x"},
        "templates": ["t/*.tmpl"],
        "route": {
            "receiver": "tickets",
            "group_by": ["gemini_slo_workload"],
            "group_wait": "30s",
            "routes": [
                {"receiver": "pager", "matchers": ["severity=critical"], "group_wait": "10s"}
            ],
        },
        "receivers": [
            {"name": "tickets", "slack_configs": [{"channel": "#x"}]},
            {"name": "pager", "pagerduty_configs": [{"routing_key_file": "/k"}]},
        ],
        "inhibit_rules": [{"source_matchers": ["severity=critical"]}],
    }
    config = st.alertmanager_config("http://127.0.0.1:1/alerts", generated)
    assert config["global"] == {"resolve_timeout": "5m"}
    assert "templates" not in config
    assert config["inhibit_rules"] == generated["inhibit_rules"]
    assert [r["name"] for r in config["receivers"]] == ["tickets", "pager"]
    for receiver in config["receivers"]:
        assert receiver["webhook_configs"][0]["url"] == "http://127.0.0.1:1/alerts"
    assert config["route"]["group_wait"] == "1s"
    assert config["route"]["routes"][0]["group_wait"] == "1s"
    assert config["route"]["routes"][0]["matchers"] == ["severity=critical"]
    assert "repeat_interval" not in config["route"]["routes"][0]  # inherited, not set
    assert generated["route"]["group_wait"] == "30s"  # the input is not modified


def test_prometheus_config_shape(tmp_path: Path) -> None:
    """Scrape every second with honor_labels, load the rules, send to Alertmanager."""
    rules = tmp_path / "r.yaml"
    config = st.prometheus_config(["127.0.0.1:9"], [rules], "127.0.0.1:8")
    assert config["global"]["evaluation_interval"] == "1s"
    assert config["rule_files"] == [str(rules.resolve())]
    assert config["scrape_configs"][0]["honor_labels"] is True
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:8"]


def test_scaled_spec_changes_only_the_alert_options(tmp_path: Path) -> None:
    """The demo's spec is the example with short windows, nothing else."""
    from gemini_slo.contract.spec import default_spec_path, load_spec

    out = st.scaled_spec(default_spec_path(), tmp_path / "slo.yaml", window_scale=60)
    original = yaml.safe_load(default_spec_path().read_text())
    scaled = yaml.safe_load(out.read_text())
    assert scaled["alerting"]["window_scale"] == 60
    assert scaled["workloads"] == original["workloads"]
    assert load_spec(out).alerting.window_scale == 60


def test_managed_process_is_stopped(tmp_path: Path) -> None:
    """A child is stopped by the context manager, and its log is readable."""
    with st.ManagedProcess(
        "sleeper", ["sh", "-c", "echo hello; exec sleep 60"], tmp_path / "s.log"
    ) as proc:
        deadline = time.monotonic() + 5
        while "hello" not in proc.log_tail() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.running()
        assert "hello" in proc.log_tail()
    assert not proc.running()


def test_managed_process_reports_early_exit(tmp_path: Path) -> None:
    """A child that dies before it is ready is reported with its output."""
    proc = st.ManagedProcess(
        "dies",
        ["sh", "-c", "echo boom; exit 3"],
        tmp_path / "d.log",
        ready_url=f"http://127.0.0.1:{st.free_port()}/",
    )
    with pytest.raises(st.StackError, match="boom"):
        proc.wait_ready(timeout=10)
    proc.stop()


@pytest.mark.prometheus
@pytest.mark.alertmanager
def test_prometheus_alert_reaches_webhook(tmp_path: Path, require_binary: Any) -> None:
    """An always-firing rule goes Prometheus -> Alertmanager -> webhook in seconds."""
    require_binary("prometheus")
    require_binary("prometheus-alertmanager")
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "t",
                        "rules": [
                            {
                                "alert": "AlwaysFiring",
                                "expr": "vector(1)",
                                "labels": {"severity": "critical"},
                            }
                        ],
                    }
                ]
            }
        )
    )
    started = time.monotonic()
    with st.Stack(["127.0.0.1:1"], rule_files=[rules], workdir=tmp_path / "m") as stack:
        assert stack.webhook is not None
        alert = stack.webhook.wait_for(lambda a: a.name == "AlwaysFiring", timeout=90)
        assert alert is not None, stack.alertmanager.log_tail() if stack.alertmanager else ""
        assert alert.firing
        assert stack.query_value("vector(2)") == 2.0
        with pytest.raises(st.StackError):
            stack.query("sum(")
        assert stack.rules()[0]["rules"][0]["name"] == "AlwaysFiring"
        prometheus, alertmanager = stack.prometheus, stack.alertmanager
    assert prometheus is not None and not prometheus.running()
    assert alertmanager is not None and not alertmanager.running()
    assert time.monotonic() - started < 90
