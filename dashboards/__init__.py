"""Grafana dashboards per mode, built with grafana-foundation-sdk; the generated JSON lives beside the builders."""

if __name__ != "gemini_slo.dashboards":  # pragma: no cover - a layout guard, see DESIGN.md
    raise ImportError(
        f"import this package as 'gemini_slo.dashboards', not {__name__!r}: the top-level folders "
        "are installed as subpackages of gemini_slo (pip install -e .)"
    )
