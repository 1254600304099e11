"""A full outage on a time-compressed sandbox, through real Alertmanager: the SLO page and
HighErrorRate, then both resolved after recovery. About 11 minutes of real alerting time: the
slow tier (`make test-all`, the nightly workflow)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sandbox_helpers import notified

from rules.alerting_policy import CRITICAL_ALERTS
from stack.sandbox.run import Sandbox, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def outage() -> Iterator[Sandbox]:
    with Sandbox(alertmanagers=1, compressed=True) as sandbox:
        yield sandbox


@pytest.mark.slow
def test_a_full_outage_pages_and_resolves(outage: Sandbox) -> None:
    """On a time-compressed sandbox (SLOs over 5 days: the page's short windows are 5 minutes;
    Alertmanager re-notifies after 10s): HighErrorRate waits its 5m `for`; both resolve once the
    outage has left their 5-minute windows."""
    wait_for(lambda: outage.query(f'up{{job="{outage.config.jobs.backend}"}} == 1'), timeout=60,
             what="the backend scraped")
    time.sleep(30)  # some healthy traffic first
    outage.inject(error_ratio=1.0)
    page = {"slo": "api-availability", "tier": "page"}
    wait_for(lambda: notified(outage, "SLOErrorBudgetBurn", "firing", CRITICAL_ALERTS, **page), timeout=120,
             what="the api-availability SLO page")
    wait_for(lambda: notified(outage, "HighErrorRate", "firing", CRITICAL_ALERTS), timeout=480,
             what="HighErrorRate at critical-alerts")
    outage.reset()
    wait_for(lambda: notified(outage, "HighErrorRate", "resolved", CRITICAL_ALERTS), timeout=480,
             interval=5, what="HighErrorRate resolved")
    wait_for(lambda: notified(outage, "SLOErrorBudgetBurn", "resolved", CRITICAL_ALERTS, **page), timeout=480,
             interval=5, what="the SLO page resolved")
