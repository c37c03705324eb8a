"""Drop-in instrumentation for Gemini calls: decorator, google-genai patch, admission queue."""

if __name__ != "gemini_slo.instrumentation":  # pragma: no cover - a layout guard, see DESIGN.md
    raise ImportError(
        f"import this package as 'gemini_slo.instrumentation', not {__name__!r}: the top-level folders "
        "are installed as subpackages of gemini_slo (pip install -e .)"
    )
