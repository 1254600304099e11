"""Grafana dashboards as typed Python, checked against the same metric catalog as the rules."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dashboards import infrastructure, logs, medianest, provisioning, slo, stack_health
from dashboards.datasources import LONG_TERM
from dashboards.model import DashboardSpec, GeneratedDashboard, Language, generate
from rules.platform import absent_alerts
from stack import services as registry

if TYPE_CHECKING:
    from stack.config import StackConfig


def specs(config: StackConfig, provisioned: frozenset[str]) -> tuple[DashboardSpec, ...]:
    return tuple(with_components(spec, config) for spec in (
        medianest.system_overview(config),
        medianest.business(config),
        reading_history(slo.dashboard(config), provisioned),
        infrastructure.dashboard(config),
        stack_health.dashboard(config),
        logs.dashboard(config),
    ))


def with_components(spec: DashboardSpec, config: StackConfig) -> DashboardSpec:
    """The dashboard with the rows (and variables) of every deployed component shown on it
    (`COMPONENT.dashboard` names its uid)."""
    shown = [component for component in registry.deployed(config) if component.dashboard == spec.uid]
    rows = tuple(row for component in shown for row in component.dashboard_rows(config))
    names = {variable.name for variable in spec.variables}
    variables = []
    for variable in (v for component in shown for v in component.dashboard_variables(config)):
        if variable.name not in names:
            names.add(variable.name)
            variables.append(variable)
    return spec.model_copy(update={"rows": spec.rows + rows, "variables": spec.variables + tuple(variables)})


def reading_history(spec: DashboardSpec, provisioned: frozenset[str]) -> DashboardSpec:
    """The dashboard's PromQL read from the long-term store when the stack has one (its budgets
    span the SLO period: the store keeps it whatever happens to Prometheus), else unchanged."""
    if LONG_TERM.uid not in provisioned:
        return spec
    rows = tuple(row.model_copy(update={"panels": tuple(panel.model_copy(update={"queries": tuple(
        query.model_copy(update={"datasource": LONG_TERM.uid}) if query.language is Language.PROMQL else query
        for query in panel.queries)}) for panel in row.panels)}) for row in spec.rows)
    return spec.model_copy(update={"rows": rows})


def without_panels_reading(spec: DashboardSpec, provisioned: frozenset[str]) -> DashboardSpec | None:
    """No panel reading a datasource this stack does not provision (its component is left out:
    no Loki, no log panels), no row left with nothing to query; None when nothing is left."""
    rows = []
    for row in spec.rows:
        panels = tuple(p for p in row.panels if all(q.datasource_uid in provisioned for q in p.queries))
        if any(p.queries for p in panels):  # not a text panel alone
            rows.append(row.model_copy(update={"panels": panels}))
    return spec.model_copy(update={"rows": tuple(rows)}) if rows else None


def without_runbooks_of(spec: DashboardSpec, absent: set[str]) -> DashboardSpec:
    """No runbook link to an alert this stack leaves out (a component it does not deploy)."""
    rows = tuple(row.model_copy(update={"panels": tuple(
        panel.model_copy(update={"alerts": tuple(a for a in panel.alerts if a not in absent)})
        for panel in row.panels)}) for row in spec.rows)
    return spec.model_copy(update={"rows": rows})


def dashboards(config: StackConfig) -> tuple[GeneratedDashboard, ...]:
    absent = absent_alerts(config)
    provisioned = frozenset(p.source.uid for p in provisioning.provided(config))
    shown = (without_panels_reading(spec, provisioned) for spec in specs(config, provisioned))
    return tuple(generate(without_runbooks_of(spec, absent), config.runbook_base_url) for spec in shown if spec)
