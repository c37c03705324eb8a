"""The shipped price table against a reference snapshot of LiteLLM's table.

``tests/data/litellm_gemini_prices.json`` holds the Gemini rows of LiteLLM's
``model_prices_and_context_window_backup.json`` (version and date inside) for the models of
the table: ``gemini/<model>`` (Developer API), ``vertex_ai/<model>`` and ``<model>`` (Vertex
AI). Every price field of every row must equal the table's figure for the same token kind,
prompt tier and pricing mode, or the model's ``litellm:`` notes must say why (by field name,
or ``gemini/<field>`` / ``vertex/<field>`` for one API). A note that explains nothing (the
figures agree) fails too, so the notes cannot go stale. No network: the snapshot is data.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from gemini_slo.instrumentation.pricing import ModelPrice, PriceTable, default_table, load_table

SNAPSHOT = Path(__file__).parent / "data" / "litellm_gemini_prices.json"
FIELD = re.compile(
    r"^(input_cost_per_token|output_cost_per_token|output_cost_per_reasoning_token"
    r"|cache_read_input_token_cost)(_above_200k_tokens)?(_batches|_flex|_priority)?$"
)
MODES = {None: None, "_batches": "batch", "_flex": "flex", "_priority": "priority"}
PICO = 10**12


def snapshot() -> dict[str, Any]:
    """The committed LiteLLM snapshot."""
    data: dict[str, Any] = json.loads(SNAPSHOT.read_text("utf-8"))
    return data


def rows_for(model: str, rows: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """LiteLLM rows of ``model``: key -> (api prefix used by notes, row)."""
    out = {}
    for key, api in (
        (f"gemini/{model}", "gemini"),
        (f"vertex_ai/{model}", "vertex"),
        (model, "vertex"),
    ):
        if key in rows:
            out[key] = (api, rows[key])
    return out


def table_figure(table: PriceTable, price: ModelPrice, field: str) -> Fraction | None:
    """The table's USD per token for a LiteLLM field (None: the table leaves it unpriced)."""
    match = FIELD.match(field)
    assert match is not None, field
    kind, above, mode_suffix = match.groups()
    tier = price.tiers[-1] if above else price.tiers[0]
    mode = table.mode_for(price, MODES[mode_suffix])
    if mode is None:
        return None
    if kind == "cache_read_input_token_cost":
        return Fraction(tier.cache_read) * mode.cache_read / PICO
    base = tier.input if kind == "input_cost_per_token" else tier.output
    return Fraction(base) * mode.factor / PICO


def differences(table: PriceTable, rows: dict[str, Any]) -> list[str]:
    """Every unexplained difference and every note that explains nothing."""
    problems = []
    for name, price in sorted(table.models.items()):
        mine = rows_for(name, rows)
        if not mine:
            problems.append(f"{name}: no LiteLLM row in the snapshot")
            continue
        differing: set[str] = set()
        for key, (api, row) in mine.items():
            for field, value in row.items():
                if not FIELD.match(field):
                    continue
                theirs = Fraction(Decimal(repr(value)))
                ours = table_figure(table, price, field)
                note_key = f"{api}/{field}" if f"{api}/{field}" in price.litellm else field
                if ours == theirs:
                    continue
                differing.add(note_key)
                if note_key not in price.litellm:
                    shown = "unpriced" if ours is None else f"{float(ours * 10**6):g}"
                    problems.append(
                        f"{key} {field}: LiteLLM {value * 10**6:g}, table {shown} per 1M,"
                        f" and no note under models.{name}.litellm"
                    )
        for note_key in sorted(set(price.litellm) - differing):
            problems.append(f"{name}: litellm note {note_key!r} explains no difference")
    return problems


def test_snapshot_names_its_version_and_date() -> None:
    """The reference data says which LiteLLM release it was taken from, and when."""
    data = snapshot()
    assert re.fullmatch(r"\d+\.\d+\.\d+", data["litellm_version"])
    assert re.fullmatch(r"2026-\d\d-\d\d", data["taken"])
    assert len(data["rows"]) >= len(default_table().models)


def test_table_matches_litellm_or_explains_why() -> None:
    """Every LiteLLM figure for a model of the table is the table's figure, or a note says
    why it is not; every note explains a real difference."""
    problems = differences(default_table(), snapshot()["rows"])
    assert not problems, "\n".join(problems)


def test_a_changed_price_is_caught(tmp_path: Path) -> None:
    """The comparison fails on a figure nobody explained, and on a note left behind."""
    path = tmp_path / "override.yaml"
    path.write_text(
        "version: gemini-slo/pricing/v1\nmodels:\n"
        "  gemini-3.8-flash:\n    source: https://example.test\n    read: '2026-12-02'\n"
        "    tiers:\n      - {input: '0.80', output: '3.75', cache_read: '0.075'}\n"
        "  gemini-2.5-flash-lite:\n    tiers:\n      - {input: '0.10', output: '0.40', cache_read: '0.01'}\n"
        "    litellm:\n      input_cost_per_token: a note about nothing\n"
    )
    problems = differences(load_table(path), snapshot()["rows"])
    assert any(p.startswith("gemini/gemini-3.8-flash input_cost_per_token:") for p in problems)
    assert any("explains no difference" in p and "gemini-2.5-flash-lite" in p for p in problems)


@pytest.mark.parametrize(
    "key",
    sorted(k for k, r in snapshot()["rows"].items() if r.get("mode") not in ("chat", "embedding")),
)
def test_other_products_stay_unpriced(key: str) -> None:
    """Rows of other products in the snapshot (TTS: priced per audio token) find no entry."""
    assert default_table().lookup(key.rsplit("/", 1)[-1]) is None
