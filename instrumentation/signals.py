"""The metric contract, re-exported where users have always imported it.

The names live in :mod:`gemini_slo.contract.signals` (the ground floor every package imports
from); ``from gemini_slo.instrumentation import signals`` keeps working for apps and docs.
"""

from gemini_slo.contract.signals import *  # noqa: F403
from gemini_slo.contract.signals import __all__  # noqa: F401
