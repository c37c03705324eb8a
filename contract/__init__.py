"""The contract of gemini-slo, the ground floor: signal names, the slo.yaml model, alert names, durations.

Imports no other package of the project; every other package imports its names from here.
See docs/architecture.md for the layers.
"""

if __name__ != "gemini_slo.contract":  # pragma: no cover - a layout guard, see docs/architecture.md
    raise ImportError(
        f"import this package as 'gemini_slo.contract', not {__name__!r}: the top-level folders "
        "are installed as subpackages of gemini_slo (pip install -e .)"
    )
