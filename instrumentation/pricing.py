"""Cost of a call from a dated, sourced price table (``pricing.yaml`` beside this module).

Exactness: prices are read as decimals and turned into integer pico-USD (1e-12 USD) per
token, so that a call's cost is an exact integer and a sum of per-call costs equals the
table applied to the token totals (whenever all the calls fall in the same price tier). The
exported value is that integer divided by 1e12.

Model names are normalised deterministically before the lookup:

1. a resource path keeps its last segment (``models/gemini-2.5-flash``,
   ``publishers/google/models/gemini-2.5-flash`` -> ``gemini-2.5-flash``), lower-cased;
2. an exact entry (or an entry's ``aliases``) wins;
3. else these tails are stripped, once each, in this order, and the result looked up: a
   bare or date-stamped preview/experimental tail (``-preview``, ``-preview-09-2025``,
   ``-preview-06-17``, ``-exp``, ``-exp-1206``), ``-latest``, a three-digit version
   ``-001``. ``gemini-2.5-flash-preview-09-2025`` and ``gemini-2.5-flash-001`` are priced
   as ``gemini-2.5-flash``; ``gemini-2.5-flash-preview-tts``, ``gemini-2.5-flash-image``
   and ``gemini-2.5-flash-native-audio-latest`` are not (other products, other units):
   they stay unpriced unless the table lists them.

A model the table does not know, or a pricing mode (service tier) it does not list for that
model, costs nothing: the call is counted in ``gemini_slo.client.cost.unpriced_calls`` and
a warning naming the model (never any prompt text) is logged once per model and mode, for
the first ``MAX_NAMED_UNPRICED`` of them (then one line saying that further ones are not).

Pricing modes: the request's ``service_tier`` (standard, flex, priority) and ``batch``,
the Batch API's price, which is not a service tier but a way of submitting requests
(``cost_pico(model, usage, service_tier="batch")``). A mode is a factor on input and
output tokens and a factor of its own on cached reads (Google prices batch cache hits as
non-batch traffic).

The table in use (:func:`active_table`) is process-wide: the shipped one, with the
``GEMINI_SLO_PRICING`` override file if set, until ``configure(pricing=...)`` replaces it.
The registry prices calls with it when it aggregates them, and the load generator prices
its own record of each call with it, so the two agree.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
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

KINDS = ("text", "embedding")
"""What a model is billed for: ``text`` (input, cached reads, output) or ``embedding``
(input only)."""

_SUFFIXES = (
    re.compile(r"-(preview|exp)(-\d{2}-\d{2,4}|-\d{4})?$"),
    re.compile(r"-latest$"),
    re.compile(r"-\d{3}$"),
)

_log = logging.getLogger("gemini_slo.instrumentation.pricing")


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
class Mode:
    """A pricing mode: factors on the standard price (``None`` in a model: not offered)."""

    name: str
    factor: Fraction
    cache_read: Fraction
    source: str = ""
    read: str = ""
    notes: str = ""


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """A model's tiers, ordered by ``max_prompt_tokens`` (the open-ended tier last), with
    where its figures come from."""

    tiers: tuple[Tier, ...]
    name: str = ""
    kind: str = "text"
    status: str = ""
    source: str = ""
    read: str = ""
    notes: str = ""
    aliases: tuple[str, ...] = ()
    modes: Mapping[str, Mode | None] = field(default_factory=dict)
    """Per-model mode overrides (``None``: the mode is not offered for this model)."""
    litellm: Mapping[str, str] = field(default_factory=dict)
    """Why a figure differs from LiteLLM's table, by LiteLLM field name."""

    def tier_for(self, prompt_tokens: int) -> Tier:
        """The tier that applies to the whole request."""
        for tier in self.tiers:
            if tier.max_prompt_tokens is None or prompt_tokens <= tier.max_prompt_tokens:
                return tier
        return self.tiers[-1]


def _fraction(value: Any, what: str) -> Fraction:
    try:
        number = Fraction(Decimal(str(value)))
    except Exception as exc:
        raise PricingError(f"{what}: not a number: {value!r}") from exc
    if number < 0:
        raise PricingError(f"{what}: negative: {value!r}")
    return number


def _per_token_pico(value: Any, per_tokens: int, what: str = "price") -> Fraction:
    """USD per ``per_tokens`` tokens (a decimal string or number) -> pico-USD per token."""
    return _fraction(value, what) * PICO / per_tokens


def _to_int(value: Fraction) -> int:
    # Exact for every price with at most 6 decimals per 1M tokens and halving discounts; a
    # finer override price is rounded to the nearest pico-dollar per token.
    return round(value)


#: Model names whose lookup a table remembers (the registry's cardinality limit, twice).
_CACHE_LIMIT = 2 * CARDINALITY_LIMIT


STANDARD = Mode("standard", Fraction(1), Fraction(1))
"""The standard price (no service tier, or one priced at factor 1)."""


def cost_of(tier: Tier, mode: Mode, usage: Usage) -> int:
    """The cost in pico-USD of ``usage`` at ``tier`` under ``mode``."""
    cached = min(usage.cached, usage.input)
    fresh = (usage.input - cached + usage.tool_use) * tier.input + (
        usage.output + usage.thoughts
    ) * tier.output
    reads = cached * tier.cache_read
    if mode.factor == 1 and mode.cache_read == 1:
        return fresh + reads
    return _to_int(fresh * mode.factor + reads * mode.cache_read)


@dataclass(frozen=True, slots=True)
class CostParts:
    """A call's cost split by token kind, in exact pico-USD (before the total is rounded to
    a whole pico-dollar, as :func:`cost_of` does)."""

    input: Fraction
    cache_read: Fraction
    output: Fraction

    @property
    def total(self) -> int:
        """The cost the instrumentation records: the sum, rounded to a whole pico-dollar."""
        return _to_int(self.input + self.cache_read + self.output)


def cost_parts(tier: Tier, mode: Mode, usage: Usage) -> CostParts:
    """:func:`cost_of`, split by token kind (for ``gemini-slo prices``: a bill by hand)."""
    cached = min(usage.cached, usage.input)
    return CostParts(
        input=(usage.input - cached + usage.tool_use) * tier.input * mode.factor,
        cache_read=cached * tier.cache_read * mode.cache_read,
        output=(usage.output + usage.thoughts) * tier.output * mode.factor,
    )


#: How many (model, mode) pairs are named one by one. A flood of distinct model names (a
#: bug, an attack) must neither grow memory nor fill a disk with one line per name: past
#: this, one last line says so and the counter alone tells the rest.
MAX_NAMED_UNPRICED = 20


class _UnpricedLog:
    """Which unpriced (model, mode) pairs were logged; thread-safe, bounded."""

    def __init__(self) -> None:
        self.named: set[tuple[str, str | None]] = set()
        self.silenced = False
        self.lock = threading.Lock()

    def warn(self, model: str, service_tier: str | None, why: str) -> None:
        """Log once per (model, mode), the first MAX_NAMED_UNPRICED of them; never raises."""
        key = (model, service_tier)
        if self.silenced or key in self.named:
            return
        with self.lock:
            if self.silenced or key in self.named:
                return
            if len(self.named) >= MAX_NAMED_UNPRICED:
                self.silenced = True
                last = True
            else:
                self.named.add(key)
                last = False
        with contextlib.suppress(Exception):  # a broken log handler must not reach the app
            if last:
                _log.warning(
                    "gemini-slo: calls to more than %d distinct models or modes are unpriced; "
                    "further ones are not logged (gemini_slo.client.cost.unpriced_calls "
                    "counts them all, by model).",
                    MAX_NAMED_UNPRICED,
                )
                return
            _log.warning(
                "gemini-slo: calls to model %r%s are unpriced (%s); they are counted in "
                "gemini_slo.client.cost.unpriced_calls and cost 0. Add the model to a "
                "GEMINI_SLO_PRICING file to price them.",
                model,
                "" if service_tier is None else f" with service tier {service_tier!r}",
                why,
            )


_unpriced_log = _UnpricedLog()


def _warn_unpriced(model: str, service_tier: str | None, why: str) -> None:
    _unpriced_log.warn(model, service_tier, why)


@dataclass(frozen=True, slots=True)
class NotPriced:
    """A product family billed by other units than text tokens (never priced as text)."""

    match: re.Pattern[str]
    product: str


@dataclass(frozen=True, slots=True)
class PriceTable:
    """A loaded price table."""

    source: str
    transcribed: str
    models: Mapping[str, ModelPrice]
    service_tiers: Mapping[str, Fraction]
    """Each mode's factor on input and output (see :attr:`modes` for the whole rule)."""
    modes: Mapping[str, Mode] = field(default_factory=dict)
    note: str = ""
    not_priced: tuple[NotPriced, ...] = ()
    _cache: dict[str, ModelPrice | None] = field(default_factory=dict, compare=False, repr=False)
    _aliases: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name, price in self.models.items():
            for alias in price.aliases:
                self._aliases.setdefault(alias.lower(), name)

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

    def _get(self, name: str) -> ModelPrice | None:
        price = self.models.get(name)
        if price is None and name in self._aliases:
            price = self.models.get(self._aliases[name])
        return price

    def _lookup(self, model: str) -> ModelPrice | None:
        name = model.rsplit("/", 1)[-1].lower()
        price = self._get(name)
        if price is not None:
            return price
        for pattern in _SUFFIXES:
            name = pattern.sub("", name)
            price = self._get(name)
            if price is not None:
                return price
        return None

    def product_of(self, model: str) -> str | None:
        """For a model the table does not price: the non-text product its name is, if known."""
        name = model.rsplit("/", 1)[-1].lower()
        for family in self.not_priced:
            if family.match.search(name):
                return family.product
        return None

    def mode_for(self, price: ModelPrice, service_tier: str | None) -> Mode | None:
        """The mode that prices ``service_tier`` for ``price`` (no tier: :data:`STANDARD`),
        or None when that mode is unpriced for this model."""
        if service_tier is None:
            return STANDARD
        name = service_tier.lower()
        if name in price.modes:
            return price.modes[name]
        mode = self.modes.get(name)
        if mode is None:
            factor = self.service_tiers.get(name)
            mode = None if factor is None else Mode(name, factor, factor)
        return mode

    def cost_pico(self, model: str, usage: Usage, service_tier: str | None = None) -> int | None:
        """The cost of one call in pico-USD, or None when the model (or mode) is unpriced.

        ``service_tier`` is the request's service tier (``flex``, ``priority``...) or
        ``"batch"`` for a request of a Batch API job.
        """
        price = self.lookup(model)
        if price is None:
            product = self.product_of(model)
            why = "not in the price table" + ("" if product is None else f"; it is {product}")
            _warn_unpriced(model, None, why)
            return None
        mode = self.mode_for(price, service_tier)
        if mode is None:
            _warn_unpriced(model, service_tier, "no price for this service tier")
            return None
        return cost_of(price.tier_for(usage.input), mode, usage)


def _text(value: Any) -> str:
    return "" if value is None else " ".join(str(value).split())


def _parse_mode(name: str, body: Any, where: str) -> Mode:
    if isinstance(body, dict):
        if "factor" not in body:
            raise PricingError(f"{where}: service tier {name!r} needs a 'factor'")
        factor = _fraction(body["factor"], f"{where}: service tier {name!r} factor")
        cache = _fraction(
            body.get("cache_read", body["factor"]), f"{where}: service tier {name!r} cache_read"
        )
        return Mode(
            name,
            factor,
            cache,
            source=_text(body.get("source")),
            read=_text(body.get("read")),
            notes=_text(body.get("notes")),
        )
    factor = _fraction(body, f"{where}: service tier {name!r}")
    return Mode(name, factor, factor)


def _parse_model(name: str, body: Any, per_tokens: int) -> ModelPrice:
    where = f"model {name!r}"
    if not isinstance(body, dict) or not isinstance(body.get("tiers"), list) or not body["tiers"]:
        raise PricingError(f"{where}: expected a non-empty 'tiers' list")
    kind = str(body.get("kind", "text"))
    if kind not in KINDS:
        raise PricingError(f"{where}: 'kind' must be one of {', '.join(KINDS)}, not {kind!r}")
    tiers = []
    for raw in body["tiers"]:
        needed = {"input"} if kind == "embedding" else {"input", "output"}
        if not isinstance(raw, dict) or not needed <= raw.keys():
            raise PricingError(f"{where}: every tier needs {' and '.join(sorted(needed))}")
        max_prompt = raw.get("max_prompt_tokens")
        tiers.append(
            Tier(
                max_prompt_tokens=None if max_prompt is None else int(max_prompt),
                input=_to_int(_per_token_pico(raw["input"], per_tokens, f"{where} input")),
                output=_to_int(
                    _per_token_pico(raw.get("output", 0), per_tokens, f"{where} output")
                ),
                cache_read=_to_int(
                    _per_token_pico(raw.get("cache_read", raw["input"]), per_tokens, where)
                ),
            )
        )
    tiers.sort(key=lambda t: (t.max_prompt_tokens is None, t.max_prompt_tokens or 0))
    overrides: dict[str, Mode | None] = {}
    for mode_name, mode_body in (body.get("service_tiers") or {}).items():
        key = str(mode_name).lower()
        overrides[key] = None if mode_body is None else _parse_mode(key, mode_body, where)
    aliases = body.get("aliases") or ()
    if not isinstance(aliases, list | tuple):
        raise PricingError(f"{where}: 'aliases' must be a list")
    litellm = body.get("litellm") or {}
    if not isinstance(litellm, dict):
        raise PricingError(f"{where}: 'litellm' must map LiteLLM field names to notes")
    return ModelPrice(
        tuple(tiers),
        name=name,
        kind=kind,
        status=_text(body.get("status")),
        source=_text(body.get("source")),
        read=_text(body.get("read")),
        notes=_text(body.get("notes")),
        aliases=tuple(str(a).lower() for a in aliases),
        modes=overrides,
        litellm={str(k): _text(v) for k, v in litellm.items()},
    )


def _parse(data: Any) -> PriceTable:
    if not isinstance(data, dict) or data.get("version") != PRICING_VERSION:
        raise PricingError(f"a price table needs 'version: {PRICING_VERSION}'")
    per_tokens = int(data.get("per_tokens", 1_000_000))
    modes = {
        str(k).lower(): _parse_mode(str(k).lower(), v, "service_tiers")
        for k, v in (data.get("service_tiers") or {}).items()
    }
    models = {
        str(name).lower(): _parse_model(str(name).lower(), body, per_tokens)
        for name, body in (data.get("models") or {}).items()
    }
    return PriceTable(
        source=str(data.get("source", "")),
        transcribed=str(data.get("transcribed", "")),
        models=models,
        service_tiers={name: mode.factor for name, mode in modes.items()},
        modes=modes,
        note=_text(data.get("note")),
        not_priced=_parse_not_priced(data.get("not_priced") or []),
    )


def _parse_not_priced(entries: Any) -> tuple[NotPriced, ...]:
    if not isinstance(entries, list):
        raise PricingError("'not_priced' must be a list of {match, product}")
    out = []
    for entry in entries:
        if not isinstance(entry, dict) or not {"match", "product"} <= entry.keys():
            raise PricingError("every 'not_priced' entry needs 'match' and 'product'")
        try:
            pattern = re.compile(str(entry["match"]))
        except re.error as exc:
            raise PricingError(f"not_priced: bad pattern {entry['match']!r}: {exc}") from None
        out.append(NotPriced(pattern, _text(entry["product"])))
    return tuple(out)


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
        modes={**base.modes, **extra.modes},
        note=extra.note or base.note,
        not_priced=extra.not_priced + base.not_priced,
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
