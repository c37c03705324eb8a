"""``gemini-slo demo`` as a new user runs it (``make demo``), shortened by its own options.

With Prometheus and Alertmanager: the healthy phase meets every objective, the page
arrives, resolves, and the demo exits 0 (``--exit-after-scenario``). Without them
(``--no-monitoring``, what a machine without the binaries gets): it still runs the
workloads, shows ``gemini-slo status``, says how to install Prometheus, and keeps the stack
up with the agent's SLO page reachable (``--duration``). Either way it leaves no process
behind.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow


ARGV = [sys.executable, "-m", "gemini_slo.cli.main", "demo"]


def _section(out: str, title: str) -> str:
    """The lines of one ``== title`` section of the demo's output."""
    start = out.index(f"== {title}")
    end = out.find("\n== ", start + 1)
    return out[start : end if end >= 0 else len(out)]


def _demo(tmp_path: Path, *options: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ARGV, "--workdir", str(tmp_path / "demo"), *options],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "COLUMNS": "120"},
    )


def _children_left(workdir: Path) -> list[str]:
    """Processes whose command line names the demo's workdir (ours all do, via --spec/--json)."""
    left = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(workdir) in cmdline:
            left.append(cmdline)
    return left


@pytest.mark.prometheus
@pytest.mark.alertmanager
def test_demo_pages_and_resolves(tmp_path: Path, require_binary: Any) -> None:
    """The full demo: healthy phase, fault, page, resolve, status, dashboards; exit 0."""
    require_binary("prometheus")
    require_binary("prometheus-alertmanager")
    result = _demo(tmp_path, "--healthy-seconds", "20", "--exit-after-scenario", timeout=480)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    healthy = _section(out, "agent status at the end of the healthy phase")
    assert "chat (latency mode)" in healthy and "batch (throughput mode)" in healthy
    assert " NO " not in healthy, healthy  # every objective of the example spec met
    where = _section(out, "where to look").splitlines()
    assert where[1].strip().startswith("SLO page") and "Prometheus" in where[2], where
    assert "PAGE: [FIRING] GeminiSlo" in out
    assert "paged " in out and "after the fault" in out
    # The latency fault breaks every percentile objective: each of them pages.
    for objective in ("latency_p95", "latency_p99", "ttft_p95"):
        assert f"{objective} paged " in out, out
    assert "all resolved" in out
    assert "chat (latency mode)" in out and "batch (throughput mode)" in out
    assert "dashboards/latency.json" in out
    assert not _children_left(tmp_path / "demo")


def test_demo_without_prometheus_stays_up_with_its_page(tmp_path: Path) -> None:
    """Without the monitoring stack: status, what to install, then the SLO page stays up."""
    argv = [
        *ARGV, "--workdir", str(tmp_path / "demo"), "--no-monitoring", "--healthy-seconds", "5",
        "--fault-seconds", "10", "--duration", "15",
    ]  # fmt: skip
    demo = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "120"},
    )
    lines: list[str] = []
    try:
        assert demo.stdout is not None
        for line in demo.stdout:
            lines.append(line)
            if "everything keeps running" in line:
                break
        out = "".join(lines)
        assert "everything keeps running for 15s" in out, out
        (page_url,) = re.findall(r"SLO page +(http://\S+)", _section(out, "where to look"))
        with urllib.request.urlopen(page_url, timeout=10) as response:
            page = response.read().decode()
        assert 'data-workload="chat"' in page and 'data-workload="batch"' in page
        rest, _ = demo.communicate(timeout=120)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    out += rest
    assert demo.returncode == 0, out
    assert "apt-get install prometheus prometheus-alertmanager" in out
    assert "chat (latency mode)" in out and "batch (throughput mode)" in out
    assert "stopping everything" in out
    assert not _children_left(tmp_path / "demo")
