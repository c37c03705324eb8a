"""Grafana dashboards per mode, built with grafana-foundation-sdk; the generated JSON lives beside the builders."""

if (
    __name__ != "gemini_slo.dashboards"
):  # pragma: no cover - a layout guard, see docs/architecture.md
    raise ImportError(
        f"import this package as 'gemini_slo.dashboards', not {__name__!r}: the top-level folders "
        "are installed as subpackages of gemini_slo (pip install -e .)"
    )

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from gemini_slo.dashboards.build import PanelQuery, dashboards, queries

__all__ = ["PanelQuery", "dashboards", "queries"]


def __getattr__(name: str) -> Any:
    """``gemini_slo.dashboards.queries`` and friends, imported lazily (the SDK is large)."""
    if name in __all__:
        from gemini_slo.dashboards import build

        return getattr(build, name)
    raise AttributeError(name)
