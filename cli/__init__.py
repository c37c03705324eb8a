"""The ``gemini-slo`` command and the one writer of generated artifacts: the top floor."""

if __name__ != "gemini_slo.cli":  # pragma: no cover - a layout guard, see docs/architecture.md
    raise ImportError(
        f"import this package as 'gemini_slo.cli', not {__name__!r}: the top-level folders "
        "are installed as subpackages of gemini_slo (pip install -e .)"
    )
