"""Prometheus rules, Alertmanager routes and promtool tests generated from slo.yaml."""

if __name__ != "gemini_slo.alerts":  # pragma: no cover - a layout guard, see docs/architecture.md
    raise ImportError(
        f"import this package as 'gemini_slo.alerts', not {__name__!r}: the top-level folders "
        "are installed as subpackages of gemini_slo (pip install -e .)"
    )
