"""One sandbox (one Alertmanager) on real binaries, shared by the tests of this module, which
run in order on one worker (`--dist loadfile`): every target up, the heartbeat, no page on
healthy traffic, a restart keeping data, a dependency down while the sink is down."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sandbox_helpers import firing_query, notified

from rules.alerting_policy import CRITICAL_ALERTS, DEADMAN
from rules.model import RecordingRule
from stack.sandbox.run import Sandbox, wait_for
from stack.sandbox.sink import alerts_in

pytestmark = pytest.mark.e2e
# Long enough for every alert with a `for` of a minute to have fired, had it a reason to.
HEALTHY_SECONDS = 120


@pytest.fixture(scope="module")
def single() -> Iterator[Sandbox]:
    with Sandbox(alertmanagers=1) as sandbox:
        yield sandbox


def test_every_target_is_up_and_every_recording_rule_produces_data(single: Sandbox) -> None:
    jobs = {s.metrics.job for s in single.bundle.services if s.metrics} | {single.config.jobs.backend}

    def all_up() -> bool:
        targets = single.targets()
        return all(t["health"] == "up" for t in targets) and {t["labels"]["job"] for t in targets} == jobs

    wait_for(all_up, timeout=60, what=f"every target of {sorted(jobs)} up")
    records = sorted({r.record for f in single.bundle.rule_files for g in f.groups for r in g.rules
                      if isinstance(r, RecordingRule)})
    assert len(records) > 20

    def empty() -> list[str]:
        return [name for name in records if not single.query(name)]

    wait_for(lambda: not empty(), timeout=90, what="data for every recording rule")


def test_watchdog_reaches_the_dead_mans_switch(single: Sandbox) -> None:
    # Prometheus drops what fires before it has discovered Alertmanager and resends a minute
    # later (--rules.alert.resend-delay): the first heartbeat can take that long after a start.
    wait_for(lambda: notified(single, "Watchdog", "firing", DEADMAN), timeout=120,
             what="Watchdog at the deadman receiver")
    # A heartbeat, never a page.
    assert not notified(single, "Watchdog", "firing", CRITICAL_ALERTS)


def test_healthy_traffic_pages_nobody(single: Sandbox) -> None:
    # Not before the path to the sink is proven (the heartbeat arrived) and the rules have seen
    # a while of healthy traffic: otherwise "no page" would hold for a sandbox that cannot page.
    wait_for(lambda: notified(single, "Watchdog", "firing", DEADMAN), timeout=120,
             what="the heartbeat at the deadman receiver")
    time.sleep(max(0.0, HEALTHY_SECONDS - (time.time() - single.started_at)))
    assert single.query('ALERTS{severity="critical"}') == [], "a page is pending or firing on healthy traffic"
    pages = [a["labels"]["alertname"] for a in alerts_in(single.notifications(), None, receiver=CRITICAL_ALERTS)]
    assert pages == [], f"healthy traffic paged: {pages}"


def test_prometheus_restarted_on_its_data_directory_keeps_its_samples(single: Sandbox) -> None:
    job = single.config.jobs.prometheus
    before = time.time() - 5
    assert single.query(f'up{{job="{job}"}}', at=before), "no sample before the restart"
    single.supervisor.stop("prometheus")
    single.supervisor.restart("prometheus")
    samples = single.query(f'up{{job="{job}"}}', at=before)
    assert samples and samples[0]["value"][1] == "1", "samples from before the restart are gone"


def test_postgres_down_reaches_its_receiver_once_the_sink_is_back(single: Sandbox) -> None:
    """PostgreSQL stops while the webhook is down: Alertmanager keeps retrying, and the page
    arrives once the webhook is back."""
    single.supervisor.stop("sink")
    single.supervisor.stop("postgres")
    wait_for(lambda: single.query(firing_query("PostgresDown")), timeout=150, what="PostgresDown firing")
    time.sleep(10)  # Alertmanager has tried by now, and failed
    assert not notified(single, "PostgresDown", "firing", CRITICAL_ALERTS)
    single.supervisor.restart("sink")
    wait_for(lambda: notified(single, "PostgresDown", "firing", CRITICAL_ALERTS), timeout=120,
             what="PostgresDown at critical-alerts after the sink came back")
