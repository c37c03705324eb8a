"""``gemini-slo prices``: the table with its date and sources, and the exact cost of a usage."""

from __future__ import annotations

import argparse
import json
from decimal import Decimal
from pathlib import Path

import pytest
from gemini_slo.cli import prices
from gemini_slo.instrumentation import Usage
from gemini_slo.instrumentation.pricing import default_table


def main(argv: list[str]) -> int:
    """``gemini-slo prices ARGV`` in-process (without main's process-wide logging setup,
    which would bind the logger to this test's captured stderr)."""
    parser = argparse.ArgumentParser(prog="gemini-slo prices")
    prices.add_arguments(parser)
    return prices.run(parser.parse_args(argv))


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run the command in-process; its exit status and stdout."""
    code = main(argv)
    return code, capsys.readouterr().out


def test_prints_the_table_with_date_and_sources(capsys: pytest.CaptureFixture[str]) -> None:
    """The table names its date, every model, its sources, and the three pricing modes."""
    code, out = run([], capsys)
    assert code == 0
    table = default_table()
    assert f"read {table.transcribed}" in out
    for name in table.models:
        assert name in out
    assert "ai.google.dev/gemini-api/docs/pricing" in out
    assert "gemini-api/docs/batch-mode" in out
    for mode in ("flex", "priority", "batch"):
        assert mode in out


def test_named_models_and_unpriced_ones(capsys: pytest.CaptureFixture[str]) -> None:
    """A named model is shown as the entry it is priced as; an unpriced one is said so and
    the exit status is 1."""
    code, out = run(
        ["models/gemini-3.1-flash-lite-preview", "gemini-2.5-flash-preview-tts"], capsys
    )
    assert code == 1
    assert "(as gemini-3.1-flash-lite)" in out
    assert "gemini-2.5-flash-preview-tts: not in the table" in out
    assert "gemini-2.5-pro " not in out


def test_json_table(capsys: pytest.CaptureFixture[str]) -> None:
    """--json gives the figures as exact decimal strings per 1M tokens."""
    code, out = run(["gemini-2.5-pro", "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["read"] == default_table().transcribed
    (pro,) = data["models"]
    assert [t["input"] for t in pro["tiers"]] == ["1.25", "2.5"]
    assert [t["output"] for t in pro["tiers"]] == ["10", "15"]
    assert {m["mode"]: m["cache_read_factor"] for m in data["modes"]}["batch"] == "1"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        # 250k prompt (> 200k: the whole request at 2.50/15.00), batch: half price.
        (["--input", "250000", "--output", "1000", "--tier", "batch"], "0.32"),
        # 50k of it cached: cached reads at the standard cache-read price in batch (0.25).
        (
            [
                "--input",
                "250000",
                "--cached",
                "50000",
                "--output",
                "1000",
                "--thinking",
                "500",
                "--tier",
                "batch",
            ],
            "0.27375",
        ),
        (["--input", "100000", "--output", "2000"], "0.145"),
        (["--input", "100000", "--output", "2000", "--tier", "priority"], "0.261"),
    ],
)
def test_cost_of_a_usage_is_exact(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The total is the hand computation, to the last digit, and equals what the
    instrumentation records for the same usage."""
    code, out = run(["gemini-2.5-pro", *argv, "--json"], capsys)
    assert code == 0
    (row,) = json.loads(out)["costs"]
    assert row["total_usd"] == expected
    flags = dict(zip(argv[::2], argv[1::2], strict=True))
    usage = Usage(
        int(flags["--input"]),
        int(flags["--output"]),
        int(flags.get("--thinking", 0)),
        int(flags.get("--cached", 0)),
    )
    recorded = default_table().cost_pico("gemini-2.5-pro", usage, flags.get("--tier"))
    assert recorded == row["total_pico_usd"]
    assert Decimal(recorded) / 10**12 == Decimal(expected)


def test_cost_table_for_every_model(capsys: pytest.CaptureFixture[str]) -> None:
    """Without model names, the cost is given for each model of the table."""
    code, out = run(["--input", "1000000", "--output", "1000000"], capsys)
    assert code == 0
    assert "gemini-3.8-flash" in out and "4.50" in out  # 0.75 + 3.75
    assert "gemini-2.5-flash-lite" in out and "0.50" in out


def test_tier_not_offered_and_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Priority is not offered for embeddings (exit 1); bad usage or a bad price file is a
    clear error (exit 2)."""
    code, out = run(["gemini-embedding-001", "--input", "10", "--tier", "priority"], capsys)
    assert code == 1
    assert "gemini-embedding-001 (priority): unpriced" in out
    assert main(["--input", "10", "--cached", "11"]) == 2
    assert "cannot exceed --input" in capsys.readouterr().err
    bad = tmp_path / "prices.yaml"
    bad.write_text("models: {}\n")
    assert main(["--pricing", str(bad)]) == 2
    assert "version: gemini-slo/pricing/v1" in capsys.readouterr().err
