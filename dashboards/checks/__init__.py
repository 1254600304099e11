"""Static checks on generated dashboards, one per module (pint's habit, as for the rules).

Checks read the JSON we emit, not the definitions, so they judge exactly what Grafana loads.
Each yields (panel title or None, Finding); the runner turns them into `Problem`s against the
dashboard and the panel.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from dashboards.model import GeneratedDashboard
from rules.catalog import Catalog
from rules.checks import Finding
from rules.problems import Problem

# A check sees one dashboard; `uids` sees them all.
PanelFinding = tuple[str | None, Finding]
DashboardCheck = Callable[[GeneratedDashboard, "Context"], Iterator[PanelFinding]]


@dataclass(frozen=True)
class Context:
    catalog: Catalog  # the metric catalog with our recorded series and the stack's jobs
    datasources: frozenset[str]  # provisioned datasource uids
    alerts: frozenset[str]  # alert names of the bundle
    runbook_base_url: str
    # Sample values for dashboard variables, substituted before a query is parsed.
    samples: dict[str, str] = field(default_factory=dict)
    # (metric, grouping labels, matchers) of a sum of a rate -> the series recording it
    recorded: dict[Any, str] = field(default_factory=dict)


def panels(dashboard: GeneratedDashboard) -> list[dict[str, Any]]:
    """Every panel, rows included, and panels nested in collapsed rows."""
    found: list[dict[str, Any]] = []
    for item in dashboard.data.get("panels") or []:
        found.append(item)
        found.extend(item.get("panels") or [])
    return found


def queries(panel: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(datasource type, target) of each target of a panel."""
    default = (panel.get("datasource") or {}).get("type", "")
    return [((t.get("datasource") or {}).get("type", default), t) for t in panel.get("targets") or []]


def _checks() -> dict[str, DashboardCheck]:
    from dashboards.checks import datasources, layout, logql, metadata, promql, recorded, runbooks
    return {
        "promql": promql.check,
        "logql": logql.check,
        "layout": layout.check,
        "datasources": datasources.check,
        "metadata": metadata.check,
        "runbooks": runbooks.check,
        "recorded": recorded.check,
    }


def check_dashboards(dashboards: Sequence[GeneratedDashboard], context: Context) -> list[Problem]:
    from dashboards.checks import uids

    problems: list[Problem] = []
    for dashboard in dashboards:
        source = f"dashboard {dashboard.uid} ({dashboard.title})"
        for name, check in _checks().items():
            for subject, finding in check(dashboard, context):
                problems.append(Problem(source, f"panel {subject}" if subject else "dashboard", name,
                                        finding.severity, finding.message))
    for dashboard, finding in uids.check(dashboards):
        problems.append(Problem(f"dashboard {dashboard.uid} ({dashboard.title})", "dashboard", "uids",
                                finding.severity, finding.message))
    return sorted(problems)
