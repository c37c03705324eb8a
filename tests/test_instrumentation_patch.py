"""The google-genai patch's helpers (``_patch.py``) that need no emulator; the patch itself
against the emulator is tested in test_instrumentation_sdk.py."""

from __future__ import annotations

from gemini_slo.contract import signals as S


def test_provider_from_the_client() -> None:
    """gcp.vertex_ai for a Vertex AI client, gcp.gemini otherwise."""
    from types import SimpleNamespace

    from gemini_slo.instrumentation._patch import _provider

    assert (
        _provider(SimpleNamespace(_api_client=SimpleNamespace(vertexai=True))) == S.PROVIDER_VERTEX
    )
    assert (
        _provider(SimpleNamespace(_api_client=SimpleNamespace(vertexai=False))) == S.PROVIDER_GEMINI
    )
