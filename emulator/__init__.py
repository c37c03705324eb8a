"""A local Gemini API (Developer API REST surface) with a latency model, quotas and fault injection."""

if __name__ != "gemini_slo.emulator":  # pragma: no cover - a layout guard, see DESIGN.md
    raise ImportError(
        f"import this package as 'gemini_slo.emulator', not {__name__!r}: the top-level folders "
        "are installed as subpackages of gemini_slo (pip install -e .)"
    )
