"""Variables and panel shorthands the dashboard definitions share."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dashboards.model import Panel, PanelKind, Query, Unit, Variable, panel
from rules import medianest

if TYPE_CHECKING:
    from stack.config import StackConfig


def environment(config: StackConfig) -> Variable:
    return Variable(name="environment", label="Environment", kind="custom", query=config.environment,
                    description="The stack these dashboards belong to (one Prometheus per environment).")


def instance(job: str, label: str = "Instance") -> Variable:
    return Variable(name="instance", label=label, query=f'label_values(up{{job="{job}"}}, instance)',
                    include_all=True, description=f"Targets of the {job} scrape job.")


def endpoint(config: StackConfig) -> Variable:
    return Variable(name="endpoint", label="Endpoint", include_all=True,
                    query=f'label_values({medianest.ENDPOINT_REQUESTS_RATE}{{job="{config.jobs.backend}"}}, endpoint)',
                    description="Backend API endpoints (from the recorded per-endpoint request rate).")


def timeseries(title: str, description: str, unit: Unit, *queries: Query, **fields: Any) -> Panel:
    return panel(PanelKind.TIMESERIES, title, description, *queries, unit=unit, **fields)


def stat(title: str, description: str, unit: Unit, *queries: Query, **fields: Any) -> Panel:
    return panel(PanelKind.STAT, title, description, *queries, unit=unit, **{"width": 6, "height": 4, **fields})


def gauge(title: str, description: str, unit: Unit, *queries: Query, **fields: Any) -> Panel:
    return panel(PanelKind.GAUGE, title, description, *queries, unit=unit, **{"width": 6, "height": 6, **fields})


def bar_gauge(title: str, description: str, unit: Unit, *queries: Query, **fields: Any) -> Panel:
    return panel(PanelKind.BAR_GAUGE, title, description, *queries, unit=unit, **fields)


def table(title: str, description: str, unit: Unit, *queries: Query, **fields: Any) -> Panel:
    return panel(PanelKind.TABLE, title, description, *queries, unit=unit, **fields)
