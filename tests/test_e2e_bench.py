"""bench/e2e.py, shortened: the totals in Prometheus equal the emulator's ground truth.

The benchmark's figures are only worth quoting if its checks hold; this runs it for 20
seconds (emulator at a third of its latencies) so that CI keeps the claim honest: token
totals equal per type, cost equal to the price table applied to the truth, >= 10,000
generated tokens/s.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.prometheus]

BENCH = Path(__file__).resolve().parents[1] / "bench" / "e2e.py"


def test_bench_totals_equal_ground_truth(require_binary: Any, tmp_path: Path) -> None:
    """A 20 s run passes every check of the benchmark and prints the comparison table."""
    require_binary("prometheus")
    result = subprocess.run(
        [sys.executable, str(BENCH), "--duration", "20", "--concurrency", "32",
         "--time-scale", "0.3", "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    for kind in ("input", "output", "thoughts", "cached", "cost USD"):
        line = next((x for x in out.splitlines() if x.startswith(kind)), "")
        assert line.rstrip().endswith(("equal", "equal (price table applied to the truth)")), line
    assert "PASS" in out
