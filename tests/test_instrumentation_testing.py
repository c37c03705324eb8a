"""The public test helpers (``testing.py``): ``capture()`` and the response builder."""

from __future__ import annotations

from gemini_slo.contract import signals as S
from gemini_slo.instrumentation import Registry, Usage, observe, outcomes, testing

FLASH = "gemini-2.5-flash"


def test_capture_swaps_the_default_registry() -> None:
    """testing.capture() records calls made without registry= and restores afterwards."""

    @observe(workload="cap", model=FLASH)
    def call() -> None:
        pass

    with testing.capture() as first:
        call()
    with testing.capture() as second:
        call()
        call()
    assert first.value(S.CALLS, workload="cap") == 1
    assert second.value(S.CALLS, workload="cap") == 2


def test_response_builder_is_read_as_gemini_would_answer() -> None:
    """testing.response(): its usage, model and finish reason are what the instrumentation
    reads from a real answer (one observed call with tool-use and cached tokens)."""
    answer = testing.response(prompt=100, output=40, thoughts=8, cached=30, tool_use=12)
    assert outcomes.usage_of(answer) == Usage(100, 40, 8, 30, 12)
    registry = Registry()

    @observe(workload="chat", registry=registry)
    def call() -> object:
        return answer

    assert call() is answer
    rec = testing.InMemoryRecorder(registry)
    assert rec.value(S.CALLS, model=FLASH, outcome="ok") == 1
    assert rec.value(S.TOKENS, token_type="tool_use") == 12
    filtered = testing.response(finish="SPII")
    assert outcomes.outcome_of(None, filtered) == ("blocked", None)
    refused = testing.response(block_reason="PROHIBITED_CONTENT", candidates=[])
    assert outcomes.is_blocked(refused, stream=True)
