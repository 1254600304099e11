"""The long-term store on the sandbox (the dev stack's `longTermStorage: deploy`): the shipped
Prometheus remote-writes to the shipped VictoriaMetrics, both built from their Go modules.

- History outlives Prometheus: after its data directory is wiped and it restarts, what it had
  scraped before is gone from it and still answered by the store, the SLO series included.
- The SLOs' period rules run on the store (vmalert): the budget left is recorded there, never by
  Prometheus, and after the wipe it still reads the period's history from before it.
- A store outage holds the write path's alerts pending (their `for` is proved by promtool), and
  once the store is back the queue replays: no scrape of the outage is missing from the store.

The lag threshold is lowered to its minimum (10 s) so the outage shows in seconds, not minutes.
"""

from __future__ import annotations

import shutil
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rules.conventions import SLO_BUDGET_REMAINING
from stack.config import StackConfig, load_stack
from stack.sandbox.run import Sandbox, _request, wait_for
from stack.services import prometheus, victoria_metrics

pytestmark = pytest.mark.e2e

SCRAPE_SECONDS = 2


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    data = load_stack("dev").model_dump(by_alias=True)
    data["thresholds"]["remoteWriteLagSeconds"] = 10
    assert data["longTermStorage"]["mode"] == "deploy", "the dev stack deploys its long-term store"
    with Sandbox(base=StackConfig.model_validate(data)) as running:
        yield running


def store(sandbox: Sandbox, expr: str, at: float | None = None) -> list[dict[str, Any]]:
    params = {"query": expr} | ({"time": str(at)} if at is not None else {})
    url = f"{sandbox.url_of(victoria_metrics.NAME)}/api/v1/query?{urllib.parse.urlencode(params)}"
    return _request(url)["data"]["result"]


def _value(result: list[dict[str, Any]]) -> float:
    return float(result[0]["value"][1]) if result else 0.0


def test_history_outlives_a_wiped_prometheus(sandbox: Sandbox) -> None:
    job = sandbox.config.jobs.prometheus
    slo = 'slo:sli_error:ratio_rate5m{slo="api-availability"}'
    # The store has Prometheus' series and the SLO's recorded ones.
    wait_for(lambda: store(sandbox, slo) and _value(store(sandbox, f'count_over_time(up{{job="{job}"}}[1m])')) >= 10,
             timeout=120, what="a minute of history in the long-term store")
    # A minute that has reached the store (remote write trails by a batch): as Prometheus has it.
    before = time.time() - 20
    window = f"count_over_time(up{{job=\"{job}\"}}[1m])"
    kept = _value(sandbox.query(window, at=before))
    assert kept >= 10
    wait_for(lambda: _value(store(sandbox, window, at=before)) == kept, timeout=30,
             what="the store holding the same minute as Prometheus")

    component = sandbox.components[prometheus.NAME]
    data = Path(component.where.paths[prometheus.DATA_DIR])
    sandbox.supervisor.stop(component.process)
    shutil.rmtree(data)
    data.mkdir()
    sandbox.supervisor.restart(component.process)
    wait_for(lambda: sandbox.query("up"), timeout=60, what="Prometheus scraping again")

    wiped = time.time()
    # Prometheus lost it; the store answers the same question as before the wipe.
    assert sandbox.query(window, at=before) == []
    assert _value(store(sandbox, window, at=before)) == kept
    assert store(sandbox, slo, at=before), "the SLO's recorded series from before the wipe"

    # The period rules: recorded by vmalert on the store from its whole history, not by Prometheus.
    budget = f'{SLO_BUDGET_REMAINING}{{slo="api-availability"}}'
    assert sandbox.query(budget) == [], "Prometheus evaluates no period rule with the store deployed"
    wait_for(lambda: _value(store(sandbox, f"timestamp({budget})")) > wiped, timeout=90,
             what="vmalert recording the budget left after the wipe")
    events = 'count_over_time(slo:sli_events:rate5m{slo="api-availability"}[1h])'
    assert _value(store(sandbox, events)) > _value(sandbox.query(events)), (
        "the store's period reaches back before the wipe; Prometheus' starts at it")


def test_a_store_outage_holds_the_write_path_alerts_and_the_queue_replays(sandbox: Sandbox) -> None:
    process = sandbox.components[victoria_metrics.NAME].process
    job = sandbox.config.jobs.prometheus

    def pending(alert: str) -> bool:
        return bool(sandbox.query(f'ALERTS{{alertname="{alert}"}}'))

    wait_for(lambda: _value(store(sandbox, f'count_over_time(up{{job="{job}"}}[30s])')) >= 10,
             timeout=120, what="the store taking writes")
    sandbox.supervisor.stop(process)
    began = time.time()
    wait_for(lambda: pending("PrometheusRemoteWriteBehind") and pending("LongTermStoreDown"), timeout=120,
             what="the write path's alerts pending while the store is down")
    outage = time.time() - began
    sandbox.supervisor.restart(process)
    ended = time.time()

    # The queue replays what was scraped meanwhile: the store holds every sample of the outage
    # that Prometheus holds.
    wait_for(lambda: not pending("PrometheusRemoteWriteBehind"), timeout=120, what="the queue catching up")
    seconds = int(ended - began) + 1
    window = f'count_over_time(up{{job="{job}"}}[{seconds}s])'
    scraped = _value(sandbox.query(window, at=ended))
    assert scraped >= 0.9 * seconds / SCRAPE_SECONDS, (scraped, seconds, outage)
    wait_for(lambda: _value(store(sandbox, window, at=ended)) == scraped, timeout=60,
             what=f"the store holding the outage's {scraped:.0f} samples")
