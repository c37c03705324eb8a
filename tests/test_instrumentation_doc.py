"""The generated signals table of docs/instrumentation.md (``_doc.py``)."""

from __future__ import annotations

from pathlib import Path


def test_docs_signals_table_is_current() -> None:
    """docs/instrumentation.md carries the table generated from signals.py, verbatim."""
    from gemini_slo.instrumentation._doc import signals_table

    doc = (Path(__file__).resolve().parent.parent / "docs" / "instrumentation.md").read_text()
    assert signals_table() in doc
