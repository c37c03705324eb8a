"""The agent's advisor: its traffic recorder, ``/api/advice`` and the verdict series.

The maintenance loop calls :meth:`Advisor.sample` (a frame of the store, see
``traffic_recorder.py``); ``GET /api/advice?window=1h`` answers :meth:`Advisor.advice`; each
scrape adds :meth:`Advisor.metrics` (``gemini_slo_advice_*``, names in
``contract/agent_series.py``) over :data:`~gemini_slo.contract.agent_series.ADVICE_WINDOW`,
computed once per frame rather than per scrape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import structlog
from gemini_slo.agent.advice import Advice, analyse
from gemini_slo.agent.store import Store
from gemini_slo.agent.traffic_recorder import TrafficRecorder
from gemini_slo.contract import agent_series, signals
from gemini_slo.contract.durations import parse_duration
from gemini_slo.contract.spec import SloSpec
from prometheus_client.metrics_core import Metric

if TYPE_CHECKING:
    from gemini_slo.instrumentation.pricing import PriceTable

log = structlog.get_logger("gemini_slo.agent")

_HELP = {
    agent_series.ADVICE_MODE: "1 per observed workload; labels: its declared mode and the "
    "mode its traffic shows over the advisor's window (latency, throughput, hybrid, unknown).",
    agent_series.ADVICE_SCORE: "The mode advisor's score: -1 when every figure says latency, "
    "+1 when every one says throughput.",
    agent_series.ADVICE_MISMATCH: "1 when the declared mode contradicts what the traffic "
    "shows (a hybrid contradicts both), else 0.",
}


def _prices() -> PriceTable | None:
    # The instrumentation's price table (a public module of a lower layer), read lazily:
    # the agent starts without it, and a broken override must not stop the advisor.
    try:
        from gemini_slo.instrumentation import pricing

        return pricing.default_table()
    except Exception:  # pragma: no cover - the shipped table always loads
        log.warning("price table unavailable: no cost what-ifs", exc_info=True)
        return None


class Advisor:
    """The recorder, the analysis and its series for one agent."""

    def __init__(
        self, store: Store, spec: SloSpec | None, *, recorder: TrafficRecorder | None = None
    ) -> None:
        self.store = store
        self.spec = spec
        self.recorder = recorder or TrafficRecorder(store)
        self._prices: PriceTable | None = None
        self._priced = False
        self._cached: tuple[int, float, list[Metric]] | None = None

    @property
    def prices(self) -> PriceTable | None:
        """The price table for cost what-ifs (None if it cannot be read)."""
        if not self._priced:
            self._prices, self._priced = _prices(), True
        return self._prices

    def sample(self, now: float | None = None) -> None:
        """Take a frame of the store (the agent's maintenance loop calls this).

        Never raises: a bug here must not stop the loop that also expires series.
        """
        try:
            self.recorder.sample(now)
        except Exception:  # pragma: no cover - defensive
            log.warning("advisor sample failed", exc_info=True)

    def analyse(
        self,
        window: str = agent_series.ADVICE_WINDOW,
        pools: Mapping[str, tuple[str, ...]] | None = None,
    ) -> Advice:
        """The advice over ``window`` (a duration such as ``1h``)."""
        observed = self.recorder.observe(parse_duration(window))
        return analyse(observed, self.spec, self.prices, window=window, pools=pools)

    def advice(
        self,
        window: str = agent_series.ADVICE_WINDOW,
        pools: Mapping[str, tuple[str, ...]] | None = None,
    ) -> dict[str, Any]:
        """``GET /api/advice`` as a dict."""
        return self.analyse(window, pools).to_json()

    def metrics(self) -> list[Metric]:
        """The ``gemini_slo_advice_*`` families (recomputed when a new frame was taken)."""
        key = (self.recorder.frames, self.recorder.last_frame_at)
        if self._cached is not None and self._cached[:2] == key:
            return self._cached[2]
        try:
            observed = self.recorder.observe(parse_duration(agent_series.ADVICE_WINDOW))
            workloads = analyse(observed, self.spec, with_interference=False).workloads
        except Exception:  # pragma: no cover - defensive: a scrape never fails for advice
            log.warning("advisor analysis failed", exc_info=True)
            workloads = ()
        families = {name: Metric(name, text, "gauge") for name, text in _HELP.items()}
        for w in workloads:
            workload = {signals.LABEL_WORKLOAD: w.traffic.name}
            families[agent_series.ADVICE_MODE].add_sample(
                agent_series.ADVICE_MODE,
                {
                    **workload,
                    agent_series.LABEL_DECLARED: w.declared_mode or "",
                    agent_series.LABEL_OBSERVED: w.verdict.value,
                },
                1.0,
            )
            families[agent_series.ADVICE_SCORE].add_sample(
                agent_series.ADVICE_SCORE, workload, w.score.score
            )
            families[agent_series.ADVICE_MISMATCH].add_sample(
                agent_series.ADVICE_MISMATCH, workload, float(w.mismatch)
            )
        out = [m for m in families.values() if m.samples]
        self._cached = (*key, out)
        return out
