"""The overview dashboard: every workload of the spec, its mode and SLO state.

A table lists each workload with its mode, lowest error budget left and firing alerts,
the workload name linking to its mode's dashboard; one stat per workload repeats the
state with a direct link. A row of verdicts shows, per observed workload, the mode it
declares beside the mode its traffic shows (the agent's advisor, ``gemini-slo advise``),
with hybrids and contradictions counted.
"""

from __future__ import annotations

from gemini_slo.contract import agent_series
from gemini_slo.contract import alert_names as n
from gemini_slo.contract import promql as q
from gemini_slo.contract import signals as s
from gemini_slo.contract.spec import SloSpec
from gemini_slo.dashboards.common import (
    DATASOURCE_VAR,
    GREEN,
    RED,
    YELLOW,
    Grid,
    Query,
    datasource_variable,
    legend,
    new_dashboard,
    stat_panel,
    steps,
    table_panel,
    timeseries_panel,
    uid,
)
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models.dashboard import Dashboard

NAME = "overview"
TITLE = "Gemini SLO / Overview"

_FIRING = 'alertstate="firing"'


def _firing(where: str) -> str:
    """Firing gemini-slo alerts per workload; 0 for a workload with traffic and none."""
    alerts = f"count by ({q.WORKLOAD}) ({q.sel('ALERTS', _FIRING, where)})"
    zero = f"0 * {q.sel(n.windowed(n.CALLS_RATE, '5m'), where)}"
    return f"{alerts}\nor on ({q.WORKLOAD})\n{zero}"


def _link(mode_dashboard: str, workload: str) -> db.DashboardLink:
    return (
        db.DashboardLink(f"Open {workload}")
        .type(dm.DashboardLinkType.LINK)
        .url(f"/d/{mode_dashboard}?var-workload={workload}&${{{DATASOURCE_VAR}:queryparam}}")
        .keep_time(True)
    )


def _verdict_row(g: Grid) -> None:
    """Declared mode vs the mode the traffic shows, per observed workload."""
    every = f'{q.WORKLOAD}=~".+"'
    by_workload = f"max by ({q.WORKLOAD})"
    labels = f"{q.WORKLOAD}, {agent_series.LABEL_DECLARED}, {agent_series.LABEL_OBSERVED}"
    g.row("Mode verdicts")
    verdicts = table_panel(
        "Declared mode vs observed",
        [
            Query(f"max by ({labels}) ({q.sel(agent_series.ADVICE_MODE, every)})", instant=True),
            Query(f"{by_workload} ({q.sel(agent_series.ADVICE_SCORE, every)})", instant=True),
            Query(f"{by_workload} ({q.sel(agent_series.ADVICE_MISMATCH, every)})", instant=True),
        ],
        "Per observed workload over the agent's last "
        f"{agent_series.ADVICE_WINDOW}: the mode it declares (spec, else its mode label) and "
        "the mode its traffic shows (latency, throughput or hybrid), the advisor's score "
        "(-1 every figure says latency, +1 every one says throughput) and 1 when they "
        "contradict. `gemini-slo advise` gives the reasons, a split for hybrids, "
        "interference and objectives to start from.",
    )
    verdicts = verdicts.with_transformation(
        dm.DataTransformerConfig(id_val="merge", options={})
    ).with_transformation(
        dm.DataTransformerConfig(
            id_val="organize",
            options={
                "excludeByName": {"Time": True, "Value #A": True},
                "renameByName": {
                    q.WORKLOAD: "workload",
                    agent_series.LABEL_DECLARED: "declared",
                    agent_series.LABEL_OBSERVED: "observed",
                    "Value #B": "score",
                    "Value #C": "contradicts",
                },
            },
        )
    )
    g.add(verdicts, w=16, h=6)
    g.add(
        stat_panel(
            "Workloads whose traffic contradicts their mode",
            [Query(f"sum({q.sel(agent_series.ADVICE_MISMATCH, every)})")],
            "none",
            "How many observed workloads declare one mode and show another (a hybrid "
            "contradicts both): run `gemini-slo advise` for the reasons and a split.",
            steps((None, GREEN), (1.0, YELLOW)),
        ),
        w=8,
        h=6,
    )


def build(spec: SloSpec) -> Dashboard:
    """The overview of every workload."""
    d = new_dashboard(
        spec,
        NAME,
        TITLE,
        "Every Gemini workload of the SLO spec with its mode and SLO state; each links to "
        "its mode's dashboard.",
        workloads=f'{q.WORKLOAD}=~".+"',
    )
    d.with_variable(datasource_variable())
    g = Grid(d)
    any_workload = f'{q.WORKLOAD}=~".+"'

    g.row("Workloads")
    workloads_table = table_panel(
        "Workloads",
        [
            Query(
                f"min by ({q.WORKLOAD}, {q.MODE}) ({q.sel(n.ERROR_BUDGET_REMAINING, any_workload)})",
                instant=True,
            ),
            Query(_firing(any_workload), instant=True),
        ],
        "One row per workload: its mode, the lowest error budget left among its "
        "objectives, and its firing alerts. Click a workload to open its dashboard.",
    )
    workloads_table = workloads_table.with_transformation(
        dm.DataTransformerConfig(id_val="merge", options={})
    ).with_transformation(
        dm.DataTransformerConfig(
            id_val="organize",
            options={
                "excludeByName": {"Time": True},
                "renameByName": {
                    q.WORKLOAD: "workload",
                    q.MODE: "mode",
                    "Value #A": "lowest error budget left",
                    "Value #B": "firing alerts",
                },
            },
        )
    )
    workloads_table = workloads_table.override_by_name(
        "workload",  # the display name after the organize transformation
        [
            dm.DynamicConfigValue(
                id_val="links",
                value=[
                    {
                        "title": "Open the workload's dashboard",
                        "url": "/d/gemini-slo-${__data.fields.mode}?var-workload=${__value.raw}"
                        f"&${{{DATASOURCE_VAR}:queryparam}}",
                    }
                ],
            )
        ],
    )
    g.add(workloads_table, w=24, h=4 + 2 * len(spec.workloads))

    _verdict_row(g)

    g.row("SLO state per workload")
    for w in spec.workloads:
        where = f'{q.WORKLOAD}="{w.name}"'
        dashboard_uid = uid(w.mode.value)
        g.add(
            stat_panel(
                f"{w.name} ({w.mode.value}): firing alerts",
                [Query(_firing(where), legend(s.LABEL_WORKLOAD))],
                "none",
                f"Firing gemini-slo alerts of {w.name}; objectives: "
                + "; ".join(o.summary for o in w.objectives)
                + ".",
                steps((None, GREEN), (1.0, RED)),
            ).links([_link(dashboard_uid, w.name)]),
            w=6,
            h=5,
        )
        if any(o.has_budget for o in w.objectives):
            g.add(
                stat_panel(
                    f"{w.name} ({w.mode.value}): lowest error budget left",
                    [
                        Query(
                            f"min by ({q.WORKLOAD}) ({q.sel(n.ERROR_BUDGET_REMAINING, where)})",
                            legend(s.LABEL_WORKLOAD),
                        )
                    ],
                    "percentunit",
                    f"The smallest share of the {spec.period_days}d error budget left among "
                    f"{w.name}'s objectives.",
                    steps((None, RED), (0.0, YELLOW), (0.25, GREEN)),
                ).links([_link(dashboard_uid, w.name)]),
                w=6,
                h=5,
            )

    g.row("All workloads")
    g.add(
        timeseries_panel(
            "Error budget remaining",
            [
                Query(
                    q.sel(n.ERROR_BUDGET_REMAINING, any_workload),
                    f"{legend(s.LABEL_WORKLOAD)} {legend(agent_series.LABEL_OBJECTIVE)}",
                )
            ],
            "percentunit",
            "Every budgeted objective of every workload.",
        ),
        w=12,
    )
    g.add(
        timeseries_panel(
            "Calls per second",
            [
                Query(
                    q.sel(n.windowed(n.CALLS_RATE, "5m"), any_workload),
                    f"{legend(s.LABEL_WORKLOAD)} ({legend(s.LABEL_MODE)})",
                )
            ],
            "reqps",
            "Every workload's call rate.",
            minimum=0,
        ),
        w=12,
    )
    return d.build()
