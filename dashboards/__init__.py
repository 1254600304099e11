"""Grafana dashboards as typed Python, checked against the same metric catalog as the rules."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dashboards import infrastructure, logs, medianest, slo, stack_health
from dashboards.model import DashboardSpec, GeneratedDashboard, generate
from rules.platform import absent_alerts

if TYPE_CHECKING:
    from stack.config import StackConfig


def specs(config: StackConfig) -> tuple[DashboardSpec, ...]:
    return (
        medianest.system_overview(config),
        medianest.business(config),
        slo.dashboard(config),
        infrastructure.dashboard(config),
        stack_health.dashboard(config),
        logs.dashboard(config),
    )


def without_runbooks_of(spec: DashboardSpec, absent: set[str]) -> DashboardSpec:
    """No runbook link to an alert this stack leaves out (a component it does not deploy)."""
    rows = tuple(row.model_copy(update={"panels": tuple(
        panel.model_copy(update={"alerts": tuple(a for a in panel.alerts if a not in absent)})
        for panel in row.panels)}) for row in spec.rows)
    return spec.model_copy(update={"rows": rows})


def dashboards(config: StackConfig) -> tuple[GeneratedDashboard, ...]:
    absent = absent_alerts(config)
    return tuple(generate(without_runbooks_of(spec, absent), config.runbook_base_url) for spec in specs(config))
