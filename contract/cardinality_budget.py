"""How a cardinality limit is shared between workloads: one rule for the app and the agent.

A single first-come-first-served budget lets a flood of label values in one workload (a
model name built from user input) take every slot, and another workload's new series are
then folded. Both the app's registry and the agent split the limit the same way: each
workload that is entitled to one gets a **reserve** of series no other workload can take,
and the rest is a **common pool** that any workload uses once its reserve is full. Who is
entitled differs (the agent: the spec's workloads; the app: the workloads it is told of and
the first ones it sees), the arithmetic is this module's.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BudgetSplit", "split_budget"]


@dataclass(frozen=True, slots=True)
class BudgetSplit:
    """A limit cut into equal reserves and a common pool."""

    reserve: int
    """Series reserved for each entitled workload."""
    pool: int
    """Series shared by everyone (the limit minus every reserve)."""


def split_budget(max_series: int, workloads: int, per_workload: int | None = None) -> BudgetSplit:
    """The split of ``max_series`` for ``workloads`` reserves of ``per_workload`` series
    each (by default one equal share each, the pool getting one share too), never more in
    reserves than the limit holds. No workloads: the pool is the whole limit."""
    if max_series < 0 or workloads < 0 or (per_workload is not None and per_workload < 0):
        raise ValueError(
            f"a budget needs non-negative numbers: {max_series} series, {workloads} "
            f"workloads, {per_workload} per workload"
        )
    if not workloads:
        return BudgetSplit(0, max_series)
    reserve = max_series // (workloads + 1) if per_workload is None else per_workload
    reserve = min(reserve, max_series // workloads)
    return BudgetSplit(reserve, max_series - workloads * reserve)
