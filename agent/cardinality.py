"""Fair cardinality: which new series a metric admits, and where the others go.

One budget per metric for everything let a flood of junk label values (1,500 model names)
take every slot, and a workload of the spec then had its new series refused for as long
as the flood lasted. The budget of each metric (``max_series_per_metric``) is split:

* each workload of the spec has a **reserve** of series (``max_series_per_workload``;
  by default the budget divided by the number of spec workloads plus one) for its series
  whose model is one the spec lists for it, or that carry no model;
* everything else shares the **common pool** (the budget minus the reserves): other
  workloads, and the models a spec workload sends that its spec entry does not list. A spec
  workload may also use the common pool once its reserve is full;
* each spec workload may bring at most ``max_models_per_workload`` models that the spec does
  not list (a budget per label: the model), so that its own junk cannot fill the pool.

A series that finds no room is folded into an **overflow series**: one per spec workload
(labels ``gemini_slo_workload``, ``otel_metric_overflow="true"``), one for everything
else (``otel_metric_overflow="true"``). Overflow series keep the contract's low-cardinality
labels whose values are the contract's own (mode, outcome, token type), and ``error.type``
as ``_OTHER`` (the semantic conventions' value for an unknown one), so that a workload's
calls, error ratio and calls/s stay right in Prometheus and in ``/api/slo`` while its
models are folded. Without a spec, the common pool is the whole budget (one overflow
series, as the OpenTelemetry SDK does).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gemini_slo.contract import signals
from gemini_slo.contract.cardinality_budget import split_budget
from gemini_slo.contract.spec import Workload

OVERFLOW_LABEL = signals.LABEL_OVERFLOW
_ERROR_OTHER = "_OTHER"  # semantic conventions: error.type of an error with no better name
#: Labels an overflow series keeps, with the values it keeps them for.
_KEPT: dict[str, frozenset[str]] = {
    signals.LABEL_MODE: frozenset(m.value for m in signals.Mode),
    signals.LABEL_OUTCOME: frozenset(o.value for o in signals.Outcome),
    signals.LABEL_TOKEN_TYPE: frozenset(t.value for t in signals.TokenType),
}

LabelKey = tuple[tuple[str, str], ...]

#: Where an admitted series is counted.
RESERVE = 0
POOL = 1


@dataclass(frozen=True, slots=True)
class Ticket:
    """What an admitted series holds of a family's budget (given back when it expires)."""

    workload: str | None  # the spec workload whose reserve or model budget it uses
    where: int  # RESERVE or POOL
    model: str | None  # an unlisted model of a spec workload, counted in its budget


class FamilyBudget:
    """How much of one family's budget is in use."""

    __slots__ = ("models", "pool", "reserved")

    def __init__(self) -> None:
        self.reserved: dict[str, int] = {}  # spec workload -> series in its reserve
        self.pool = 0  # series in the common pool
        self.models: dict[str, dict[str, int]] = {}  # spec workload -> unlisted model -> series


class Cardinality:
    """The admission rule of the module docstring, for one spec (or none)."""

    def __init__(
        self,
        workloads: Iterable[Workload],
        *,
        max_series: int,
        max_series_per_workload: int | None = None,
        max_models_per_workload: int = 20,
    ) -> None:
        self.models: dict[str, frozenset[str]] = {w.name: frozenset(w.models) for w in workloads}
        split = split_budget(max_series, len(self.models), max_series_per_workload)
        self.reserve = split.reserve
        self.pool = split.pool
        self.max_series = max_series
        self.max_models = max_models_per_workload

    def describe(self) -> str:
        """The budget in words, for partial-success messages."""
        if not self.models:
            return f"{self.max_series} series per metric"
        return (
            f"{self.max_series} series per metric: {self.reserve} reserved for each spec "
            f"workload, {self.pool} shared, {self.max_models} unlisted models per workload"
        )

    def admit(self, budget: FamilyBudget, labels: LabelKey) -> Ticket | None:
        """A ticket when a new series with ``labels`` has room (and take it); else None."""
        workload = model = None
        for name, value in labels:
            if name == signals.LABEL_WORKLOAD:
                workload = value
            elif name == signals.LABEL_MODEL:
                model = value
        listed = self.models.get(workload) if workload is not None else None
        if listed is None:  # not a spec workload: the common pool only
            if budget.pool < self.pool:
                budget.pool += 1
                return Ticket(None, POOL, None)
            return None
        assert workload is not None
        if model is None or model in listed:
            if budget.reserved.get(workload, 0) < self.reserve:
                budget.reserved[workload] = budget.reserved.get(workload, 0) + 1
                return Ticket(workload, RESERVE, None)
            if budget.pool < self.pool:
                budget.pool += 1
                return Ticket(workload, POOL, None)
            return None
        unlisted = budget.models.setdefault(workload, {})
        if (model not in unlisted and len(unlisted) >= self.max_models) or (
            budget.pool >= self.pool
        ):
            return None
        budget.pool += 1
        unlisted[model] = unlisted.get(model, 0) + 1
        return Ticket(workload, POOL, model)

    @staticmethod
    def release(budget: FamilyBudget, ticket: Ticket) -> None:
        """Give back what ``ticket`` held (its series expired)."""
        if ticket.where == RESERVE:
            assert ticket.workload is not None
            budget.reserved[ticket.workload] -= 1
        else:
            budget.pool -= 1
        if ticket.model is not None:
            assert ticket.workload is not None
            unlisted = budget.models[ticket.workload]
            unlisted[ticket.model] -= 1
            if not unlisted[ticket.model]:
                del unlisted[ticket.model]

    def overflow_key(self, labels: LabelKey) -> LabelKey:
        """The overflow series a point with ``labels`` is folded into."""
        out = [(OVERFLOW_LABEL, "true")]
        for name, value in labels:
            if name == signals.LABEL_WORKLOAD:
                if value in self.models:
                    out.append((name, value))
            elif name == signals.LABEL_ERROR_TYPE:
                out.append((name, _ERROR_OTHER))
            elif value in _KEPT.get(name, ()):
                out.append((name, value))
        return tuple(sorted(out))
