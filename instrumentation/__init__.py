"""Drop-in instrumentation for Gemini calls: decorator, google-genai patch, admission queue."""

if (
    __name__ != "gemini_slo.instrumentation"
):  # pragma: no cover - a layout guard, see docs/architecture.md
    raise ImportError(
        f"import this package as 'gemini_slo.instrumentation', not {__name__!r}: the top-level folders "
        "are installed as subpackages of gemini_slo (pip install -e .)"
    )

from gemini_slo.contract import signals
from gemini_slo.contract.signals import Mode, Outcome, TokenType
from gemini_slo.instrumentation import outcomes, testing
from gemini_slo.instrumentation._call import Call
from gemini_slo.instrumentation._classify import DeadlineExceeded
from gemini_slo.instrumentation._observe import observe
from gemini_slo.instrumentation._patch import instrument, is_instrumented, uninstrument
from gemini_slo.instrumentation._registry import Registry
from gemini_slo.instrumentation._values import Usage
from gemini_slo.instrumentation.admission import AdmissionQueue, QueueRejected
from gemini_slo.instrumentation.config import Settings, configure, flush, shutdown
from gemini_slo.instrumentation.views import otel_views

# The public exception types report this package as their home, so that error.type reads
# 'gemini_slo.instrumentation.QueueRejected' rather than a private module path.
QueueRejected.__module__ = __name__
DeadlineExceeded.__module__ = __name__

__all__ = [
    "AdmissionQueue",
    "Call",
    "DeadlineExceeded",
    "Mode",
    "Outcome",
    "QueueRejected",
    "Registry",
    "Settings",
    "TokenType",
    "Usage",
    "configure",
    "flush",
    "instrument",
    "is_instrumented",
    "observe",
    "otel_views",
    "outcomes",
    "shutdown",
    "signals",
    "testing",
    "uninstrument",
]
