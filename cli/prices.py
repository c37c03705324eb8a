"""``gemini-slo prices``: the price table in use, and what a given usage costs.

::

    gemini-slo prices [MODEL ...] [--pricing FILE] [--json]
    gemini-slo prices gemini-2.5-pro --input 250000 --output 1000 [--cached N]
        [--thinking N] [--tool-use N] [--tier standard|flex|priority|batch]

Without usage flags: the table (USD per 1M tokens) with its date and sources, every model or
the ones named, and its pricing modes with the wording they rest on. With usage flags: the
cost of one call with that usage for each model (every model when none is named), split by
token kind, in exact decimal USD: the same integer pico-dollar arithmetic the
instrumentation records in ``gemini_slo.client.cost.usd``, so a bill can be checked by hand.
``--input`` is the whole prompt (``prompt_token_count``, cached tokens included), as Gemini
reports it. Exit status: 0, 1 when a named model (or the tier, for a model) is unpriced, 2
on a bad price file.
"""

from __future__ import annotations

import argparse
import json
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

from gemini_slo.cli.errors import CommandError, reports_errors
from gemini_slo.instrumentation import Usage
from gemini_slo.instrumentation.pricing import (
    ModelPrice,
    PriceTable,
    PricingError,
    Tier,
    active_table,
    cost_parts,
    load_table,
)
from rich.console import Console
from rich.table import Table

_PICO = 10**12
_MILLION = 10**6
_USAGE_FLAGS = ("input", "output", "cached", "thinking", "tool_use")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``gemini-slo prices``."""
    parser.add_argument("models", nargs="*", metavar="MODEL", help="models to show (default all)")
    parser.add_argument(
        "--pricing",
        type=Path,
        default=None,
        help="a price file overriding the shipped table (default GEMINI_SLO_PRICING, if set)",
    )
    usage = parser.add_argument_group("the cost of one call with this usage")
    usage.add_argument("--input", type=int, default=None, help="prompt tokens (cached included)")
    usage.add_argument("--output", type=int, default=None, help="output (candidate) tokens")
    usage.add_argument("--cached", type=int, default=None, help="cached prompt tokens")
    usage.add_argument("--thinking", type=int, default=None, help="thinking tokens (as output)")
    usage.add_argument("--tool-use", type=int, default=None, help="tool-use prompt tokens")
    usage.add_argument(
        "--tier", default=None, help="pricing mode: standard, flex, priority or batch"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")


def usd(pico: Fraction | int) -> str:
    """Exact decimal USD of a pico-USD amount, at least to the cent."""
    whole, _, cents = _decimal(Fraction(pico) / _PICO).partition(".")
    return f"{whole}.{cents.ljust(2, '0')}"


def per_million(pico_per_token: int | Fraction) -> str:
    """pico-USD per token -> USD per 1M tokens, exact."""
    return _decimal(Fraction(pico_per_token) * _MILLION / _PICO)


def _decimal(value: Fraction) -> str:
    """The exact decimal of ``value`` (its denominator has only 2s and 5s: every table
    price and factor is a finite decimal), trailing zeros dropped."""
    scale = 0
    while (value * 10**scale).denominator != 1:
        scale += 1
        if scale > 40:  # not a finite decimal (an odd override factor): 18 places suffice
            return format(Decimal(value.numerator) / Decimal(value.denominator), ".18f")
    text = format(Decimal((value * 10**scale).numerator).scaleb(-scale), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _tier_label(tiers: tuple[Tier, ...], tier: Tier) -> str:
    if len(tiers) == 1:
        return "all"
    if tier.max_prompt_tokens is None:
        previous = tiers[-2].max_prompt_tokens or 0
        return f"> {previous:,}"
    return f"<= {tier.max_prompt_tokens:,}"


def _selected(
    table: PriceTable, names: list[str]
) -> tuple[list[tuple[str, ModelPrice]], list[str]]:
    if not names:
        return sorted(table.models.items()), []
    found, missing = [], []
    for name in names:
        price = table.lookup(name)
        if price is None:
            missing.append(name)
        else:
            found.append((name, price))
    return found, missing


def table_data(table: PriceTable, names: list[str]) -> dict[str, Any]:
    """The table (or the named models) as plain data, USD per 1M tokens as decimal strings."""
    found, missing = _selected(table, names)
    models = []
    for asked, price in found:
        models.append(
            {
                "model": asked,
                "priced_as": price.name,
                "kind": price.kind,
                "status": price.status,
                "source": price.source,
                "read": price.read,
                "notes": price.notes,
                "not_offered": sorted(k for k, v in price.modes.items() if v is None),
                "tiers": [
                    {
                        "prompt_tokens": _tier_label(price.tiers, t),
                        "input": per_million(t.input),
                        "cache_read": None
                        if price.kind == "embedding"
                        else per_million(t.cache_read),
                        "output": None if price.kind == "embedding" else per_million(t.output),
                    }
                    for t in price.tiers
                ],
            }
        )
    modes = [
        {
            "mode": m.name,
            "factor": _decimal(m.factor),
            "cache_read_factor": _decimal(m.cache_read),
            "source": m.source,
            "read": m.read,
            "notes": m.notes,
        }
        for m in table.modes.values()
    ]
    return {
        "source": table.source,
        "read": table.transcribed,
        "currency": "USD",
        "per_tokens": _MILLION,
        "note": table.note,
        "models": models,
        "modes": modes,
        "unpriced": missing,
        "products": {name: table.product_of(name) for name in missing if table.product_of(name)},
    }


def cost_data(
    table: PriceTable, names: list[str], usage: Usage, tier: str | None
) -> dict[str, Any]:
    """The cost of one call with ``usage`` under ``tier`` for each model, exact."""
    found, missing = _selected(table, names)
    rows = []
    for asked, price in found:
        mode = table.mode_for(price, tier)
        if mode is None:
            missing.append(f"{asked} ({tier})")
            continue
        applied = price.tier_for(usage.input)
        parts = cost_parts(applied, mode, usage)
        rows.append(
            {
                "model": asked,
                "priced_as": price.name,
                "prompt_tier": _tier_label(price.tiers, applied),
                "mode": mode.name,
                "input_usd": usd(parts.input),
                "cache_read_usd": usd(parts.cache_read),
                "output_usd": usd(parts.output),
                "total_usd": usd(parts.total),
                "total_pico_usd": parts.total,
            }
        )
    return {
        "read": table.transcribed,
        "usage": {
            "prompt_tokens": usage.input,
            "cached_tokens": usage.cached,
            "output_tokens": usage.output,
            "thinking_tokens": usage.thoughts,
            "tool_use_tokens": usage.tool_use,
        },
        "tier": tier or "standard",
        "costs": rows,
        "unpriced": missing,
    }


def render_table(data: dict[str, Any], console: Console) -> None:
    """Print the table and its modes."""
    console.print(
        f"Gemini prices in {data['currency']} per 1M tokens, read {data['read']} "
        f"(main source {data['source']})"
    )
    table = Table(title_justify="left", show_lines=False)
    for column in (
        "model",
        "kind",
        "status",
        "prompt",
        "input",
        "cached read",
        "output",
        "source (read)",
    ):
        table.add_column(column, overflow="fold", no_wrap=column == "model")
    for m in data["models"]:
        name = m["model"] if m["model"] == m["priced_as"] else f"{m['model']} (as {m['priced_as']})"
        for i, t in enumerate(m["tiers"]):
            table.add_row(
                name if i == 0 else "",
                m["kind"] if i == 0 else "",
                m["status"] if i == 0 else "",
                t["prompt_tokens"],
                t["input"],
                t["cache_read"] or "-",
                t["output"] or "-",
                f"{m['source'].removeprefix('https://')} ({m['read']})" if i == 0 else "",
            )
    console.print(table)
    modes = Table(title="Pricing modes (factors on the standard price)", title_justify="left")
    for column in ("mode", "input, output", "cached read", "why"):
        modes.add_column(column, overflow="fold")
    for mode in data["modes"]:
        why = mode["notes"] + (
            f" ({mode['source']}, read {mode['read']})" if mode["source"] else ""
        )
        modes.add_row(mode["mode"], mode["factor"], mode["cache_read_factor"], why)
    console.print(modes)
    if data["note"]:
        console.print(f"note: {data['note']}", highlight=False)
    for name in data["unpriced"]:
        product = data["products"].get(name)
        kind = "" if product is None else f"; it is {product}"
        console.print(f"[red]{name}: not in the table{kind} (unpriced: its calls record $0)[/]")


def render_costs(data: dict[str, Any], console: Console) -> None:
    """Print the cost of the usage per model."""
    u = data["usage"]
    console.print(
        f"one call: {u['prompt_tokens']:,} prompt tokens ({u['cached_tokens']:,} cached), "
        f"{u['output_tokens']:,} output, {u['thinking_tokens']:,} thinking, "
        f"{u['tool_use_tokens']:,} tool-use; mode {data['tier']}; prices read {data['read']}"
    )
    table = Table(title_justify="left")
    for column in (
        "model",
        "prompt tier",
        "input",
        "cached read",
        "output + thinking",
        "total USD",
    ):
        table.add_column(column, justify="right" if column != "model" else "left")
    for row in data["costs"]:
        table.add_row(
            row["model"],
            row["prompt_tier"],
            row["input_usd"],
            row["cache_read_usd"],
            row["output_usd"],
            f"[bold]{row['total_usd']}[/]",
        )
    console.print(table)
    for name in data["unpriced"]:
        console.print(f"[red]{name}: unpriced (its calls record $0)[/]")


def _usage(args: argparse.Namespace) -> Usage | None:
    values = {flag: getattr(args, flag) for flag in _USAGE_FLAGS}
    if all(v is None for v in values.values()) and args.tier is None:
        return None
    for flag, value in values.items():
        if value is not None and value < 0:
            raise CommandError(f"--{flag.replace('_', '-')} must be >= 0, not {value}")
    n = {flag: value or 0 for flag, value in values.items()}
    if n["cached"] > n["input"]:
        raise CommandError("--cached counts part of the prompt: it cannot exceed --input")
    return Usage(n["input"], n["output"], n["thinking"], n["cached"], n["tool_use"])


@reports_errors("prices")
def run(args: argparse.Namespace) -> int:
    """Entry point of ``gemini-slo prices``."""
    try:
        table = load_table(args.pricing) if args.pricing is not None else active_table()
    except (PricingError, OSError, ValueError) as exc:
        raise CommandError(f"cannot read the price table: {exc}") from None
    usage = _usage(args)
    console = Console(width=max(Console().width, 120))
    if usage is None:
        data = table_data(table, list(args.models))
        if args.json:
            print(json.dumps(data, indent=2))
        else:
            render_table(data, console)
    else:
        data = cost_data(table, list(args.models), usage, args.tier)
        if args.json:
            print(json.dumps(data, indent=2))
        else:
            render_costs(data, console)
    return 1 if data["unpriced"] else 0
