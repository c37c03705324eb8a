"""Things around the product for trying and testing it: load generator, local stack, webhook, demo."""

if __name__ != "gemini_slo.lab":  # pragma: no cover - a layout guard, see docs/architecture.md
    raise ImportError(
        f"import this package as 'gemini_slo.lab', not {__name__!r}: the top-level folders "
        "are installed as subpackages of gemini_slo (pip install -e .)"
    )
