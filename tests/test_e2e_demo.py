"""``gemini-slo demo`` as a new user runs it (``make demo``), shortened by its own options.

With Prometheus and Alertmanager: the page arrives, resolves, and the demo exits 0. Without
them (``--no-monitoring``, what a machine without the binaries gets): it still runs the
workloads, shows ``gemini-slo status`` and says how to install Prometheus. Either way it
leaves no process behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow


def _demo(tmp_path: Path, *options: str, timeout: float) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "gemini_slo.cli.main", "demo"]
    return subprocess.run(
        [*argv, "--workdir", str(tmp_path / "demo"), *options],
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
    result = _demo(tmp_path, "--healthy-seconds", "20", timeout=480)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "PAGE: [FIRING] GeminiSlo" in out
    assert "paged " in out and "after the fault" in out
    # The latency fault breaks every percentile objective: each of them pages.
    for objective in ("latency_p95", "latency_p99", "ttft_p95"):
        assert f"{objective} paged " in out, out
    assert "all resolved" in out
    assert "chat (latency mode)" in out and "batch (throughput mode)" in out
    assert "dashboards/latency.json" in out
    assert not _children_left(tmp_path / "demo")


def test_demo_without_prometheus(tmp_path: Path) -> None:
    """Without the monitoring stack the demo still runs, shows status and says what to install."""
    result = _demo(
        tmp_path, "--no-monitoring", "--healthy-seconds", "5", "--fault-seconds", "10", timeout=300
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "apt-get install prometheus prometheus-alertmanager" in out
    assert "chat (latency mode)" in out and "batch (throughput mode)" in out
    assert not _children_left(tmp_path / "demo")
