"""Grafana dashboards as typed Python, checked against the same metric catalog as the rules."""

from __future__ import annotations

from dashboards import infrastructure, logs, medianest, slo, stack_health
from dashboards.model import DashboardSpec, GeneratedDashboard, generate
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


def dashboards(config: StackConfig) -> tuple[GeneratedDashboard, ...]:
    return tuple(generate(spec, config.runbook_base_url) for spec in specs(config))
