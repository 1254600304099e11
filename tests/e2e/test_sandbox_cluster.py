"""A gossip cluster of three Alertmanagers with one peer killed notifies exactly once."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sandbox_helpers import notified

from rules.alerting_policy import CRITICAL_ALERTS
from stack.sandbox.run import Sandbox, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cluster() -> Iterator[Sandbox]:
    with Sandbox(alertmanagers=3) as sandbox:
        yield sandbox


def test_a_cluster_missing_a_peer_notifies_exactly_once(cluster: Sandbox) -> None:
    wait_for(lambda: cluster.query("alertmanager_cluster_members == 3"), timeout=90,
             what="three Alertmanagers in one cluster")
    cluster.supervisor.kill(Sandbox.alertmanager_name(0))
    cluster.supervisor.stop("redis")
    first = wait_for(lambda: notified(cluster, "RedisDown", "firing", CRITICAL_ALERTS), timeout=180,
                     what="RedisDown at critical-alerts")
    # Longer than the peers' staggered waits (15 s per position): a duplicate would be here by now.
    time.sleep(45)
    assert len(notified(cluster, "RedisDown", "firing", CRITICAL_ALERTS)) == len(first) == 1
