"""A local Gemini API (Developer API REST surface) with a latency model, quotas and fault injection.

The real google-genai SDK talks to it over HTTP (``HttpOptions(base_url=...)``), so tests,
the demo and benchmarks exercise real client traffic. One concern per module:

- ``profile`` + ``profiles.yaml``: per-model latency model, thinking, quotas and pools, as data
- ``capacity``: pools whose latency degrades with their requests in flight (docs/emulator.md)
- ``model``: the seeded generator (token rule, filler text, plans, prompt markers)
- ``faults``: the run-time fault registry; ``quota``: RPM/TPM windows
- ``errors``: the API's error JSON; ``schema``: request validation
- ``stats``: ground truth (what was answered, which usage was written)
- ``server``: routes and the admin API; ``cli``: ``gemini-slo emulate``
- ``testing``: ``running_emulator()`` and friends, the public helpers for tests
"""

if __name__ != "gemini_slo.emulator":  # pragma: no cover - a layout guard, see docs/architecture.md
    raise ImportError(
        f"import this package as 'gemini_slo.emulator', not {__name__!r}: the top-level folders "
        "are installed as subpackages of gemini_slo (pip install -e .)"
    )
