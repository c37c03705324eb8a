"""bench/agent_down.py, shortened: it runs every part (the endpoint states, the workers,
the idle measure) and prints a figure for each, so that the numbers it is quoted for stay
reproducible. Its verdict is not asserted: on a shared 2-core machine a short run's p99
is noise (the bench prints its own A/A control)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parents[1] / "bench" / "agent_down.py"


def test_a_short_run_prints_every_state() -> None:
    """Two rounds of ten calls, the healthy agent and two failing states: every worker has
    a row with figures, every state a verdict, the exporters' idle CPU is measured."""
    result = subprocess.run(
        [sys.executable, str(BENCH), "--rounds", "2", "--calls", "10", "--idle", "1",
         "--states", "closed,503"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )  # fmt: skip
    out = result.stdout
    assert result.returncode in (0, 1), out + result.stderr  # 1: a goal not met, still a run
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    for worker in ("bare", "control", "healthy", "closed", "503"):
        assert worker in rows, out
    assert "ms/s" in rows["healthy"]  # the idle CPU of its exporter
    for state in ("closed", "503"):
        verdict = [line for line in out.splitlines() if line.split()[:1] == [state]][-1]
        assert verdict.rstrip().endswith(("met", ")")), verdict
    assert "A/A control" in out
