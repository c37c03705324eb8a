"""The price table (``pricing.py``): the shipped table, cost rules, model-name normalisation,
override files, exact integer arithmetic, unpriced calls."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from gemini_slo.contract import signals as S
from gemini_slo.instrumentation import (
    Registry,
    Usage,
    observe,
    testing,
)
from gemini_slo.instrumentation.pricing import PricingError, default_table, load_table

FLASH = "gemini-2.5-flash"


@pytest.fixture
def rec() -> testing.InMemoryRecorder:
    """A fresh registry and its reader."""
    return testing.InMemoryRecorder(Registry())


def test_price_table_has_source_and_date() -> None:
    """The shipped table names its source and date."""
    table = default_table()
    assert "ai.google.dev" in table.source
    assert table.transcribed == "2026-12-02"
    for name, price in table.models.items():
        assert price.source.startswith("https://"), name
        assert len(price.read) == 10 and price.read.startswith("2026-"), name
        assert price.kind in ("text", "embedding"), name


@pytest.mark.parametrize(
    ("model", "usage", "tier", "usd"),
    [
        (FLASH, Usage(1_000_000, 0, 0, 0, 0), None, 0.30),
        (FLASH, Usage(0, 1_000_000, 0, 0, 0), None, 2.50),
        (FLASH, Usage(0, 0, 1_000_000, 0, 0), None, 2.50),  # thoughts billed as output
        (FLASH, Usage(1_000_000, 0, 0, 1_000_000, 0), None, 0.03),  # all cached
        ("gemini-2.5-flash-lite", Usage(1_000_000, 1_000_000, 0, 0, 0), None, 0.50),
        ("gemini-2.5-pro", Usage(200_000, 0, 0, 0, 0), None, 0.25),
        (
            "gemini-2.5-pro",
            Usage(200_001, 1_000_000, 0, 0, 0),
            None,
            200_001 * 2.5e-6 + 15.0,
        ),  # whole request
        (
            "gemini-2.5-pro",
            Usage(300_000, 0, 0, 100_000, 0),
            None,
            200_000 * 2.5e-6 + 100_000 * 0.25e-6,
        ),
        (FLASH, Usage(1_000_000, 1_000_000, 0, 0, 0), "flex", 1.40),
        (FLASH, Usage(1_000_000, 0, 0, 0, 0), "batch", 0.15),
        (FLASH, Usage(1_000_000, 0, 0, 1_000_000, 0), "batch", 0.03),  # cache hits not halved
        (FLASH, Usage(2_000_000, 0, 0, 1_000_000, 0), "flex", 0.15 + 0.03),
        (FLASH, Usage(1_000_000, 1_000_000, 0, 0, 0), "priority", 2.80 * 1.8),
        ("gemini-3.1-pro-preview", Usage(200_000, 0, 0, 0, 0), None, 0.40),
        ("gemini-3.1-pro-preview", Usage(200_001, 0, 1_000_000, 0, 0), None, 200_001 * 4e-6 + 18),
        ("gemini-3.1-pro-preview", Usage(300_000, 0, 0, 100_000, 0), "batch", 0.4 + 0.04),
        ("gemini-3-flash-preview", Usage(1_000_000, 1_000_000, 0, 0, 0), None, 3.50),
        ("gemini-3.1-flash-lite-preview", Usage(1_000_000, 1_000_000, 0, 0, 0), None, 1.75),
        ("gemini-3.5-flash", Usage(1_000_000, 1_000_000, 0, 0, 0), "batch", 5.25),
        ("gemini-3.8-flash", Usage(0, 1_000_000, 0, 0, 0), "batch", 1.875),
        ("gemini-embedding-001", Usage(1_000_000, 0, 0, 0, 0), None, 0.15),
        ("gemini-embedding-2", Usage(1_000_000, 0, 0, 0, 0), "batch", 0.10),
    ],
)
def test_cost_rules(model: str, usage: Usage, tier: str | None, usd: float) -> None:
    """Input, output, thoughts, cache read, the >200k tier for the whole request, and the
    flex, batch (cache hits at the standard price) and priority (1.8x) modes."""
    pico = default_table().cost_pico(model, usage, tier)
    assert pico is not None
    assert pico / 1e12 == pytest.approx(usd, rel=1e-12)


@pytest.mark.parametrize(
    ("name", "priced_as"),
    [
        ("models/gemini-2.5-flash", FLASH),
        ("publishers/google/models/gemini-2.5-flash", FLASH),
        ("gemini-2.5-flash-001", FLASH),
        ("gemini-2.5-flash-preview-09-2025", FLASH),
        ("gemini-2.5-flash-lite-preview-06-17", "gemini-2.5-flash-lite"),
        ("Gemini-2.5-Pro", "gemini-2.5-pro"),
        ("gemini-2.5-flash-image", None),
        ("gemini-2.5-flash-preview-tts", None),  # a TTS product, not text flash
        ("gemini-2.5-flash-native-audio-latest", None),
        ("gemini-3.1-flash-live-preview", None),
        ("gemini-3.1-flash-lite-preview", "gemini-3.1-flash-lite"),
        ("gemini-3.1-pro-preview-customtools", "gemini-3.1-pro-preview"),
        ("gemini-embedding-2-preview", "gemini-embedding-2"),
        ("models/gemini-3-flash-preview", "gemini-3-flash-preview"),
        ("gpt-4", None),
        ("unknown", None),
    ],
)
def test_model_name_normalisation(name: str, priced_as: str | None) -> None:
    """Versions and previews map to their base entry; other products stay unpriced."""
    table = default_table()
    expected = None if priced_as is None else table.models[priced_as]
    assert table.lookup(name) is expected


def test_unlisted_tier_is_unpriced() -> None:
    """A service tier the table does not list, or one a model does not offer, is never
    guessed."""
    table = default_table()
    assert table.cost_pico(FLASH, Usage(10, 10), "turbo") is None
    assert table.cost_pico("gemini-embedding-001", Usage(10), "priority") is None
    assert table.cost_pico("gemini-embedding-001", Usage(10), "batch") is not None


def test_pricing_override_file(tmp_path: Path) -> None:
    """An override file replaces or adds models; the others stay."""
    path = tmp_path / "prices.yaml"
    path.write_text(
        "version: gemini-slo/pricing/v1\nmodels:\n  my-model:\n    tiers:\n      - {input: '1', output: '2'}\n  gemini-2.5-flash:\n    tiers:\n      - {input: '9', output: '9'}\n"
    )
    table = load_table(path)
    assert table.cost_pico("my-model", Usage(1_000_000, 1_000_000)) == 3 * 10**12
    assert table.cost_pico(FLASH, Usage(1_000_000)) == 9 * 10**12
    assert table.lookup("gemini-2.5-pro") is not None
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: {}\n")
    with pytest.raises(PricingError):
        load_table(bad)


def test_cost_is_exact_integer_arithmetic() -> None:
    """Sum of per-call costs equals the table applied to the totals, exactly."""
    table = default_table()
    rng = random.Random(3)
    usages = [
        Usage(rng.randint(1, 5000), rng.randint(0, 900), rng.randint(0, 300), 0, 0)
        for _ in range(500)
    ]
    per_call = sum(table.cost_pico(FLASH, u) or 0 for u in usages)
    total = Usage(*(sum(col) for col in zip(*usages, strict=True)))
    assert per_call == table.cost_pico(FLASH, total)


def test_unknown_model_is_unpriced(rec: testing.InMemoryRecorder) -> None:
    """No model anywhere: 'unknown', cost 0, counted as unpriced."""
    with observe(workload="chat", registry=rec.registry) as call:
        call.record_usage(prompt_tokens=10, output_tokens=10)
    assert rec.value(S.UNPRICED_CALLS, model="unknown") == 1
    assert rec.value(S.COST) == 0


@pytest.mark.parametrize(
    ("name", "product"),
    [
        ("gemini-2.5-flash-preview-tts", "text-to-speech"),
        ("models/gemini-3.8-flash-lite-tts", "text-to-speech"),
        ("gemini-2.5-flash-image", "image generation"),
        ("imagen-3.0-generate-001", "image generation"),
        ("veo-3.1-generate-preview", "video generation"),
        ("gemini-2.5-flash-native-audio-latest", "Live API"),
        ("gemini-3.1-flash-live-preview", "Live API"),
        ("gemini-3.8-live", "Live API"),
        ("gemini-9-pro", None),
    ],
)
def test_other_products_are_named_and_never_priced(name: str, product: str | None) -> None:
    """A non-text product is unpriced and named as what it is; an unknown text model is
    unpriced without a product name."""
    table = default_table()
    assert table.lookup(name) is None
    found = table.product_of(name)
    assert (found is None) if product is None else (found is not None and product in found)


def test_no_priced_model_looks_like_another_product() -> None:
    """The not_priced families and the priced models do not overlap."""
    table = default_table()
    names = [*table.models, *(a for p in table.models.values() for a in p.aliases)]
    assert [n for n in names if table.product_of(n)] == []
