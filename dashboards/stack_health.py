"""The monitoring stack watching itself: every component's scrape health, then each one's row
(`COMPONENT.dashboard_rows` of the modules whose `dashboard` is this one: Prometheus,
Alertmanager, Loki, Jaeger, Grafana)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dashboards.common import environment, table
from dashboards.model import DashboardSpec, Row, Unit, prom, steps
from stack import services as registry
from stack.services.component import STACK_HEALTH

if TYPE_CHECKING:
    from stack.config import StackConfig

FOLDER = "stack"


def dashboard(config: StackConfig) -> DashboardSpec:
    stack_jobs = "|".join(getattr(config.jobs, c.job.key) for c in registry.deployed(config) if c.job)
    return DashboardSpec(
        uid=STACK_HEALTH, title="MediaNest / Monitoring stack health", folder=FOLDER,
        description="Whether the monitoring stack itself works: scrapes, rules, notifications, logs, traces.",
        tags=("stack", "generated"), variables=(environment(config),),
        rows=(
            Row(title="Targets", panels=(
                table("Stack targets", "Scrape health of every stack component: 1 up, 0 down.", Unit.UP_DOWN,
                      prom(f'up{{job=~"{stack_jobs}"}}', instant=True),
                      thresholds=steps("red", (1, "green")), alerts=("TargetDown", "Watchdog"), width=24, height=6),
            )),
        ),
    )
