"""Hosts and the services MediaNest depends on: the dashboard's shell. Its rows are the deployed
components' (`COMPONENT.dashboard_rows` of the modules in stack/services whose `dashboard` is
this uid), added by dashboards/__init__.py `with_components`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dashboards.common import environment
from dashboards.model import DashboardSpec

if TYPE_CHECKING:
    from stack.config import StackConfig

FOLDER = "infrastructure"


def dashboard(config: StackConfig) -> DashboardSpec:
    return DashboardSpec(
        uid="infrastructure", title="MediaNest / Infrastructure", folder=FOLDER,
        description="Hosts and the services MediaNest depends on, one row per component "
                    "(its exporter) the stack deploys.",
        tags=("infrastructure", "generated"),
        variables=(environment(config),),
        rows=(),
    )
