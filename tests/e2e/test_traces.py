"""Traces end to end, on the sandbox: the simulator sends its spans over OTLP/HTTP to the
sandbox's Jaeger v2 (the judge built from its Go module at the shipped version, run from its
ServiceSpec with the shipped config on loopback ports); an exemplar on the simulator's latency
histogram, read from its /metrics or as Prometheus stored it (`--enable-feature=exemplar-storage`,
a shipped flag), names a trace that Jaeger's query API serves, as long as the injected latency.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from prometheus_client.parser import text_string_to_metric_families as text_families
from sandbox_helpers import HTTP, get, get_text

from stack.config import StackConfig
from stack.sandbox.run import Sandbox, wait_for
from stack.sandbox.simulator import SERVICE
from stack.services import jaeger

pytestmark = pytest.mark.e2e

LATENCY_SECONDS = 2.5
# The latency histogram, and the bucket a request slowed by LATENCY_SECONDS lands in (2.5 s plus
# at most the healthy 0.8 s), as Prometheus 3 and the OpenMetrics exposition write it.
HISTOGRAM = "medianest_http_request_duration_seconds"
SLOW_BUCKET = "5.0"
WAIT_SECONDS = 30
INTERVAL = 0.5


@dataclass(frozen=True)
class Jaeger:
    query: str  # its UI and query API's URL

    def trace(self, trace_id: str) -> dict[str, Any] | None:
        """The trace from the query API (GET /api/traces/<id>, cmd/query/app/http_handler.go);
        None while Jaeger does not have it."""
        status, body = get(f"{self.query}/api/traces/{trace_id}")
        if status in (0, 404):  # not answering yet, or not stored yet
            return None
        assert status == 200, body[:500]
        (found,) = json.loads(body)["data"]
        return found


@dataclass(frozen=True)
class Simulator:
    url: str
    log: Path


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as running:
        yield running


@pytest.fixture(scope="module")
def jaeger_server(sandbox: Sandbox) -> Jaeger:
    return Jaeger(sandbox.url_of(jaeger.NAME))


@pytest.fixture(scope="module")
def simulator(sandbox: Sandbox) -> Simulator:
    return Simulator(sandbox.simulator_url, sandbox.root / "medianest.log")


@pytest.fixture(scope="module")
def prometheus_url(sandbox: Sandbox) -> str:
    return sandbox.prometheus_url


# --- exemplars: where the test reads them ----------------------------------------------------------

@dataclass(frozen=True)
class Exemplar:
    trace_id: str
    value: float  # seconds
    series: dict[str, str]  # the labels of the series it is on


def exemplars_from_metrics(simulator_url: str, bucket: str) -> list[Exemplar]:
    """The exemplars on the latency histogram's `bucket`, scraped from the simulator's /metrics
    as Prometheus scrapes it (OpenMetrics: the text format has no exemplars)."""
    request = urllib.request.Request(f"{simulator_url}/metrics",
                                     headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    with HTTP.open(request, timeout=5) as response:
        assert response.headers["Content-Type"].startswith("application/openmetrics-text")
        text = response.read().decode()
    return [Exemplar(s.exemplar.labels["trace_id"], s.exemplar.value, s.labels)
            for family in text_string_to_metric_families(text) for s in family.samples
            if s.name == f"{HISTOGRAM}_bucket" and s.labels["le"] == bucket and s.exemplar is not None]


def exemplars_from_prometheus(prometheus_url: str, bucket: str, since: float) -> list[Exemplar]:
    """The same through Prometheus (/api/v1/query_exemplars; needs `--enable-feature=exemplar-storage`),
    stored since `since` (Unix seconds)."""
    query = urllib.parse.urlencode({"query": f'{HISTOGRAM}_bucket{{le="{bucket}"}}',
                                    "start": f"{since:.3f}", "end": f"{time.time() + 1:.3f}"})
    status, body = get(f"{prometheus_url}/api/v1/query_exemplars?{query}")
    assert status == 200, body[:500]
    return [Exemplar(e["labels"]["trace_id"], float(e["value"]), series["seriesLabels"])
            for series in json.loads(body)["data"] for e in series["exemplars"]]


# --- the tests ---------------------------------------------------------------------------------

def _tags(span: dict[str, Any]) -> dict[str, Any]:
    return {tag["key"]: tag["value"] for tag in span["tags"]}


def check_trace(jaeger_server: Jaeger, simulator: Simulator, exemplar: Exemplar) -> None:
    """The exemplar's trace is in Jaeger: the request's server span, as long as the exemplar's
    value (the slowed request's latency), with its database and Redis calls as children, and the
    request's log line carries its ids."""
    assert LATENCY_SECONDS <= exemplar.value < LATENCY_SECONDS + 0.8
    found = wait_for(lambda: jaeger_server.trace(exemplar.trace_id), WAIT_SECONDS, INTERVAL,
                     f"trace {exemplar.trace_id} in Jaeger")

    assert found["traceID"] == exemplar.trace_id
    assert {p["serviceName"] for p in found["processes"].values()} == {SERVICE}
    (server,) = [s for s in found["spans"] if _tags(s).get("span.kind") == "server"]
    route = f"{exemplar.series['method']} {exemplar.series['endpoint']}"
    assert server["operationName"] == route and server["references"] == []
    tags = _tags(server)
    assert tags["http.route"] == exemplar.series["endpoint"]
    assert str(tags["http.response.status_code"]) == exemplar.series["status_code"]
    # Jaeger keeps microseconds: the span lasts what the histogram observed.
    assert server["duration"] == pytest.approx(exemplar.value * 1e6, abs=2)
    # Its database and Redis calls are its children, within it.
    children = [s for s in found["spans"] if s is not server]
    assert children
    for child in children:
        assert _tags(child)["span.kind"] == "client"
        assert child["references"] == [{"refType": "CHILD_OF", "traceID": exemplar.trace_id,
                                        "spanID": server["spanID"]}]
        # (Jaeger truncates each start and duration to the microsecond.)
        assert server["startTime"] <= child["startTime"]
        assert child["startTime"] + child["duration"] <= server["startTime"] + server["duration"] + 1
        assert _tags(child)["db.system.name"] in ("postgresql", "redis")
    # And the request's log line carries the same trace id (Loki's link to Jaeger).
    logged = [json.loads(line) for line in simulator.log.read_text().splitlines()]
    (line,) = [r for r in logged if r["traceId"] == exemplar.trace_id]
    assert line["spanId"] == server["spanID"] and line["durationMs"] == round(exemplar.value * 1000)


def test_an_exemplar_on_the_metrics_is_a_trace_in_jaeger_as_long_as_the_latency(
        sandbox: Sandbox, jaeger_server: Jaeger, simulator: Simulator) -> None:
    sandbox.inject(latency_seconds=LATENCY_SECONDS)
    # Requests slowed by the fault (the bucket keeps its latest request's exemplar).
    exemplars = wait_for(lambda: exemplars_from_metrics(simulator.url, SLOW_BUCKET), WAIT_SECONDS, INTERVAL,
                         f"an exemplar on {HISTOGRAM} le={SLOW_BUCKET}")
    for exemplar in exemplars:
        check_trace(jaeger_server, simulator, exemplar)


def test_an_exemplar_stored_by_prometheus_is_a_trace_in_jaeger(
        sandbox: Sandbox, jaeger_server: Jaeger, simulator: Simulator, prometheus_url: str,
        dev_config: StackConfig) -> None:
    since = time.time()
    sandbox.inject(latency_seconds=LATENCY_SECONDS)
    exemplars = wait_for(lambda: exemplars_from_prometheus(prometheus_url, SLOW_BUCKET, since), WAIT_SECONDS,
                         INTERVAL, f"Prometheus to store an exemplar on {HISTOGRAM} le={SLOW_BUCKET}")
    for exemplar in exemplars[:3]:
        assert exemplar.series["job"] == dev_config.jobs.backend
        check_trace(jaeger_server, simulator, exemplar)
    # Prometheus scraped OpenMetrics (the format with exemplars): the same series names as the
    # text format, which the rules were written against.
    text = get_text(f"{simulator.url}/metrics")
    names = {s.name for family in text_families(text) for s in family.samples}
    match = urllib.parse.urlencode({"match[]": f'{{job="{dev_config.jobs.backend}"}}'})
    status, body = get(f"{prometheus_url}/api/v1/label/__name__/values?{match}")
    assert status == 200
    # Less what Prometheus makes itself: the scrape's series and alerts about the job.
    stored = {n for n in json.loads(body)["data"]
              if n not in ("up", "ALERTS", "ALERTS_FOR_STATE") and not n.startswith("scrape_")}
    assert stored == names
