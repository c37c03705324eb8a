"""Cost of a call from a dated, sourced price table (``pricing.yaml`` beside this module).

Exactness: prices are read as decimals and turned into integer pico-USD (1e-12 USD) per
token, so that a call's cost is an exact integer and a sum of per-call costs equals the
table applied to the token totals (whenever all the calls fall in the same price tier). The
exported value is that integer divided by 1e12.

Model names are normalised deterministically before the lookup:

1. a resource path keeps its last segment (``models/gemini-2.5-flash``,
   ``publishers/google/models/gemini-2.5-flash`` -> ``gemini-2.5-flash``), lower-cased;
2. an exact entry wins;
3. else these suffixes are stripped, once each, in this order, and the result looked up:
   a ``-preview...`` or ``-exp...`` tail, ``-latest``, a three-digit version ``-001``.
   ``gemini-2.5-flash-preview-09-2025`` and ``gemini-2.5-flash-001`` are priced as
   ``gemini-2.5-flash``; ``gemini-2.5-flash-image`` is not (a different product): unpriced.

An unknown model costs nothing and is counted in ``gemini_slo.client.cost.unpriced_calls``.

The table in use (:func:`active_table`) is process-wide: the shipped one, with the
``GEMINI_SLO_PRICING`` override file if set, until ``configure(pricing=...)`` replaces it.
The registry prices calls with it when it aggregates them, and the load generator prices
its own record of each call with it, so the two agree.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from gemini_slo.contract.otlp_limits import CARDINALITY_LIMIT
from gemini_slo.instrumentation._values import PICO, Usage

PRICING_VERSION = "gemini-slo/pricing/v1"

_SUFFIXES = (
    re.compile(r"-(preview|exp)(-.*)?$"),
    re.compile(r"-latest$"),
    re.compile(r"-\d{3}$"),
)


class PricingError(ValueError):
    """A price file that does not follow the schema."""


@dataclass(frozen=True, slots=True)
class Tier:
    """Prices of one prompt-size tier, in pico-USD per token (exact integers)."""

    max_prompt_tokens: int | None
    input: int
    output: int
    cache_read: int


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """A model's tiers, ordered by ``max_prompt_tokens`` (the open-ended tier last)."""

    tiers: tuple[Tier, ...]

    def tier_for(self, prompt_tokens: int) -> Tier:
        """The tier that applies to the whole request."""
        for tier in self.tiers:
            if tier.max_prompt_tokens is None or prompt_tokens <= tier.max_prompt_tokens:
                return tier
        return self.tiers[-1]


def _per_token_pico(value: Any, per_tokens: int) -> Fraction:
    """USD per ``per_tokens`` tokens (a decimal string or number) -> pico-USD per token."""
    try:
        usd = Fraction(Decimal(str(value)))
    except Exception as exc:
        raise PricingError(f"not a price: {value!r}") from exc
    if usd < 0:
        raise PricingError(f"negative price: {value!r}")
    return usd * PICO / per_tokens


def _to_int(value: Fraction) -> int:
    # Exact for every price with at most 6 decimals per 1M tokens and halving discounts; a
    # finer override price is rounded to the nearest pico-dollar per token.
    return round(value)


#: Model names whose lookup a table remembers (the registry's cardinality limit, twice).
_CACHE_LIMIT = 2 * CARDINALITY_LIMIT


@dataclass(frozen=True, slots=True)
class PriceTable:
    """A loaded price table."""

    source: str
    transcribed: str
    models: Mapping[str, ModelPrice]
    service_tiers: Mapping[str, Fraction]
    _cache: dict[str, ModelPrice | None] = field(default_factory=dict, compare=False, repr=False)

    def lookup(self, model: str) -> ModelPrice | None:
        """The entry for ``model`` after normalisation (see the module docstring)."""
        try:
            return self._cache[model]
        except KeyError:
            pass
        price = self._lookup(model)
        if len(self._cache) >= _CACHE_LIMIT:
            # A flood of distinct model names must not grow memory without bound (the
            # registry folds their series; this cache would keep every name): start over.
            self._cache.clear()
        self._cache[model] = price
        return price

    def _lookup(self, model: str) -> ModelPrice | None:
        name = model.rsplit("/", 1)[-1].lower()
        price = self.models.get(name)
        if price is not None:
            return price
        for pattern in _SUFFIXES:
            name = pattern.sub("", name)
            price = self.models.get(name)
            if price is not None:
                return price
        return None

    def cost_pico(self, model: str, usage: Usage, service_tier: str | None = None) -> int | None:
        """The cost of one call in pico-USD, or None when the model (or tier) is unpriced."""
        price = self.lookup(model)
        if price is None:
            return None
        factor: Fraction | None = None
        if service_tier is not None:
            factor = self.service_tiers.get(service_tier.lower())
            if factor is None:
                return None
        tier = price.tier_for(usage.input)
        cached = min(usage.cached, usage.input)
        pico = (
            (usage.input - cached + usage.tool_use) * tier.input
            + cached * tier.cache_read
            + (usage.output + usage.thoughts) * tier.output
        )
        if factor is not None and factor != 1:
            return _to_int(pico * factor)
        return pico


def _parse_model(name: str, body: Any, per_tokens: int) -> ModelPrice:
    if not isinstance(body, dict) or not isinstance(body.get("tiers"), list) or not body["tiers"]:
        raise PricingError(f"model {name!r}: expected a non-empty 'tiers' list")
    tiers = []
    for raw in body["tiers"]:
        if not isinstance(raw, dict) or not {"input", "output"} <= raw.keys():
            raise PricingError(f"model {name!r}: every tier needs input and output")
        max_prompt = raw.get("max_prompt_tokens")
        tiers.append(
            Tier(
                max_prompt_tokens=None if max_prompt is None else int(max_prompt),
                input=_to_int(_per_token_pico(raw["input"], per_tokens)),
                output=_to_int(_per_token_pico(raw["output"], per_tokens)),
                cache_read=_to_int(
                    _per_token_pico(raw.get("cache_read", raw["input"]), per_tokens)
                ),
            )
        )
    tiers.sort(key=lambda t: (t.max_prompt_tokens is None, t.max_prompt_tokens or 0))
    return ModelPrice(tuple(tiers))


def _parse(data: Any) -> PriceTable:
    if not isinstance(data, dict) or data.get("version") != PRICING_VERSION:
        raise PricingError(f"a price table needs 'version: {PRICING_VERSION}'")
    per_tokens = int(data.get("per_tokens", 1_000_000))
    models = {
        str(name).lower(): _parse_model(str(name), body, per_tokens)
        for name, body in (data.get("models") or {}).items()
    }
    tiers = {
        str(k).lower(): Fraction(Decimal(str(v)))
        for k, v in (data.get("service_tiers") or {}).items()
    }
    return PriceTable(
        source=str(data.get("source", "")),
        transcribed=str(data.get("transcribed", "")),
        models=models,
        service_tiers=tiers,
    )


def default_table() -> PriceTable:
    """The shipped table."""
    text = resources.files("gemini_slo.instrumentation").joinpath("pricing.yaml").read_text("utf-8")
    return _parse(yaml.safe_load(text))


def load_table(override: str | Path | None = None) -> PriceTable:
    """The shipped table, with the models (and service tiers) of ``override`` replacing or
    adding to its own."""
    base = default_table()
    if override is None:
        return base
    extra = _parse(yaml.safe_load(Path(override).read_text("utf-8")))
    return PriceTable(
        source=extra.source or base.source,
        transcribed=extra.transcribed or base.transcribed,
        models={**base.models, **extra.models},
        service_tiers={**base.service_tiers, **extra.service_tiers},
    )


def cost_usd(pico: int) -> float:
    """pico-USD -> USD, the way the exported counter converts it."""
    return pico / PICO


_active: PriceTable | None = None


def active_table() -> PriceTable:
    """The price table in use (loaded on first use from ``GEMINI_SLO_PRICING``, if set)."""
    global _active
    table = _active
    if table is None:
        table = _active = load_table(os.environ.get("GEMINI_SLO_PRICING") or None)
    return table


def set_active_table(table: PriceTable | None) -> None:
    """Replace the price table in use (None: reload lazily from the environment)."""
    global _active
    _active = table
