"""The generated stack on real Prometheus, Alertmanager and exporters (the sandbox), from a failing
service to a notification at the webhook sink. Each sandbox is shared by the tests of its
xdist group, which run in order on one worker; the groups run side by side."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from rules.alerting_policy import CRITICAL_ALERTS, DEADMAN
from rules.model import RecordingRule
from stack.sandbox.run import Sandbox, wait_for
from stack.sandbox.sink import alerts_in


@pytest.fixture(scope="module")
def single() -> Iterator[Sandbox]:
    with Sandbox(alertmanagers=1) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def outage() -> Iterator[Sandbox]:
    with Sandbox(alertmanagers=1) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def cluster() -> Iterator[Sandbox]:
    with Sandbox(alertmanagers=3) as sandbox:
        yield sandbox


def _firing_query(alertname: str) -> str:
    return f'ALERTS{{alertname="{alertname}",alertstate="firing"}}'


def _notified(sandbox: Sandbox, alertname: str, status: str, receiver: str, **labels: str) -> list:
    return [a for a in alerts_in(sandbox.notifications(), alertname, status=status, receiver=receiver)
            if all(a["labels"].get(k) == v for k, v in labels.items())]


# --- one Alertmanager: targets, rules, heartbeat, restarts, a dependency down, the sink down ----

@pytest.mark.xdist_group("sandbox-single")
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


@pytest.mark.xdist_group("sandbox-single")
def test_watchdog_reaches_the_dead_mans_switch(single: Sandbox) -> None:
    # Prometheus drops what fires before it has discovered Alertmanager and resends a minute
    # later (--rules.alert.resend-delay): the first heartbeat can take that long after a start.
    wait_for(lambda: _notified(single, "Watchdog", "firing", DEADMAN), timeout=120,
             what="Watchdog at the deadman receiver")
    # A heartbeat, never a page.
    assert not _notified(single, "Watchdog", "firing", CRITICAL_ALERTS)


@pytest.mark.xdist_group("sandbox-single")
def test_healthy_traffic_pages_nobody(single: Sandbox) -> None:
    pages = [a["labels"]["alertname"] for a in alerts_in(single.notifications(), None, receiver=CRITICAL_ALERTS)]
    assert pages == [], f"healthy traffic paged: {pages}"


@pytest.mark.xdist_group("sandbox-single")
def test_prometheus_restarted_on_its_data_directory_keeps_its_samples(single: Sandbox) -> None:
    job = single.config.jobs.prometheus
    before = time.time() - 5
    assert single.query(f'up{{job="{job}"}}', at=before), "no sample before the restart"
    single.supervisor.stop("prometheus")
    single.supervisor.restart("prometheus")
    samples = single.query(f'up{{job="{job}"}}', at=before)
    assert samples and samples[0]["value"][1] == "1", "samples from before the restart are gone"


@pytest.mark.xdist_group("sandbox-single")
def test_postgres_down_reaches_its_receiver_once_the_sink_is_back(single: Sandbox) -> None:
    """PostgreSQL stops while the webhook is down: Alertmanager keeps retrying, and the page
    arrives once the webhook is back."""
    single.supervisor.stop("sink")
    single.supervisor.stop("postgres")
    wait_for(lambda: single.query(_firing_query("PostgresDown")), timeout=150, what="PostgresDown firing")
    time.sleep(10)  # Alertmanager has tried by now, and failed
    assert not _notified(single, "PostgresDown", "firing", CRITICAL_ALERTS)
    single.supervisor.restart("sink")
    wait_for(lambda: _notified(single, "PostgresDown", "firing", CRITICAL_ALERTS), timeout=120,
             what="PostgresDown at critical-alerts after the sink came back")


# --- a full outage: the SLO page and HighErrorRate, then recovery ------------------------------

@pytest.mark.xdist_group("sandbox-outage")
def test_a_full_outage_pages_and_resolves(outage: Sandbox) -> None:
    """About 40 minutes of real alerting time: HighErrorRate waits its 5m `for`, and the SLO page
    resolves only once the outage has left the 30m short window of its 6x-over-6h path (the SRE
    workbook's reset time), then at the next group interval (5m)."""
    wait_for(lambda: outage.query(f'up{{job="{outage.config.jobs.backend}"}} == 1'), timeout=60,
             what="the backend scraped")
    time.sleep(30)  # some healthy traffic first
    outage.inject(error_ratio=1.0)
    page = {"slo": "api-availability", "tier": "page"}
    wait_for(lambda: _notified(outage, "SLOErrorBudgetBurn", "firing", CRITICAL_ALERTS, **page), timeout=240,
             what="the api-availability SLO page")
    wait_for(lambda: _notified(outage, "HighErrorRate", "firing", CRITICAL_ALERTS), timeout=480,
             what="HighErrorRate at critical-alerts")
    outage.reset()
    wait_for(lambda: _notified(outage, "HighErrorRate", "resolved", CRITICAL_ALERTS), timeout=720,
             interval=5, what="HighErrorRate resolved")
    wait_for(lambda: _notified(outage, "SLOErrorBudgetBurn", "resolved", CRITICAL_ALERTS, **page), timeout=2700,
             interval=10, what="the SLO page resolved")


# --- a cluster of three Alertmanagers, one killed ---------------------------------------------

@pytest.mark.xdist_group("sandbox-cluster")
def test_a_cluster_missing_a_peer_notifies_exactly_once(cluster: Sandbox) -> None:
    wait_for(lambda: cluster.query("alertmanager_cluster_members == 3"), timeout=90,
             what="three Alertmanagers in one cluster")
    cluster.supervisor.kill(Sandbox.alertmanager_name(0))
    cluster.supervisor.stop("redis")
    first = wait_for(lambda: _notified(cluster, "RedisDown", "firing", CRITICAL_ALERTS), timeout=180,
                     what="RedisDown at critical-alerts")
    # Longer than the peers' staggered waits (15 s per position): a duplicate would be here by now.
    time.sleep(45)
    assert len(_notified(cluster, "RedisDown", "firing", CRITICAL_ALERTS)) == len(first) == 1
