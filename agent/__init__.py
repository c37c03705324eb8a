"""The collector agent: OTLP in, Prometheus out, SLO status."""

if __name__ != "gemini_slo.agent":  # pragma: no cover - a layout guard, see docs/architecture.md
    raise ImportError(
        f"import this package as 'gemini_slo.agent', not {__name__!r}: the top-level folders "
        "are installed as subpackages of gemini_slo (pip install -e .)"
    )
