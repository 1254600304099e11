"""MediaNest's traffic simulator: it serves exactly the catalog's metrics, healthy traffic stays
under every threshold, each fault moves what its alert reads, the HTTP API and the CLI behave,
its traces (spans, log trace ids, exemplars) agree with its metrics and logs, and the generated
MediaNest and SLO rules (on promtool) fire on each fault and on nothing else.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, format_span_id, format_trace_id
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from rules.catalog import MetricType
from rules.metrics import medianest
from rules.slos import CRITICAL_ENDPOINTS
from stack import tools
from stack.bundle import RULES_DIR, build
from stack.config import StackConfig
from stack.output import write_tree
from stack.sandbox.simulator import (
    ENDPOINTS,
    EXTERNAL_SERVICES,
    MIB,
    SERVICE,
    STALLED_QUEUE,
    FaultError,
    Simulator,
    SimulatorServer,
    main,
    rfc3339,
    serve,
    tracer_provider,
    traces_url,
)

ROOT = Path(__file__).resolve().parents[2]
CLOCK = 1_767_225_600.0  # 2026-01-01T00:00:00Z: a fixed clock makes a run fully deterministic
HTTP = "medianest_http_requests_total"
LOG_FIELDS = {"timestamp", "level", "service", "message", "correlationId", "traceId", "spanId", "method",
              "endpoint", "statusCode", "durationMs"}


def _simulator(seconds: float = 0, rps: float = 20, seed: int = 1, **faults: Any) -> Simulator:
    sim = Simulator(rps=rps, seed=seed, clock=lambda: CLOCK)
    if faults:
        sim.set_faults(faults)
    sim.tick(seconds)
    return sim


def _samples(sim: Simulator) -> list[Sample]:
    return [s for family in text_string_to_metric_families(sim.exposition().decode()) for s in family.samples]


def _sum(samples: list[Sample], name: str, **labels: str) -> float:
    return sum(s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def _value(samples: list[Sample], name: str, **labels: str) -> float:
    (value,) = [s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    return value


def _error_share(samples: list[Sample]) -> float:
    errors = sum(s.value for s in samples if s.name == HTTP and s.labels["status_code"].startswith("5"))
    return errors / _sum(samples, HTTP)


# --- the exposition ------------------------------------------------------------------------------

def test_every_catalog_metric_is_served_with_exactly_its_labels() -> None:
    samples = _samples(_simulator(10))
    seen: dict[str, set[frozenset[str]]] = {}
    for s in samples:
        seen.setdefault(s.name, set()).add(frozenset(s.labels))
    expected: dict[str, frozenset[str]] = {}
    for metric in medianest.APPLICATION + medianest.NODEJS_DEFAULTS:
        labels = frozenset(metric.labels)
        if metric.type is MetricType.HISTOGRAM:
            expected |= {f"{metric.name}_bucket": labels | {"le"}, f"{metric.name}_sum": labels,
                         f"{metric.name}_count": labels}
        else:
            expected[metric.name] = labels
    for name, labels in expected.items():
        assert name in seen, f"{name} has no series: give it traffic in the simulator's model"
        assert seen[name] == {labels}, f"{name}: labels {seen[name]}, the catalog says {set(labels)}"
    # Nothing beyond the catalog (prometheus-client's `_created` series, a default process collector).
    assert set(seen) == set(expected)


def test_histograms_expose_the_catalog_buckets() -> None:
    samples = _samples(_simulator(10))
    for metric in medianest.APPLICATION + medianest.NODEJS_DEFAULTS:
        if metric.type is MetricType.HISTOGRAM:
            bounds = {float(s.labels["le"]) for s in samples if s.name == f"{metric.name}_bucket"}
            assert bounds == {*map(float, metric.buckets), float("inf")}, metric.name


def test_the_same_seed_gives_the_same_metrics_and_logs() -> None:
    first, second = _simulator(), _simulator()
    assert first.tick(5) == second.tick(5)
    assert first.exposition() == second.exposition()
    assert _simulator(5, seed=2).exposition() != first.exposition()


# --- healthy traffic and faults ------------------------------------------------------------------

def test_healthy_traffic_has_no_5xx_and_a_fault_sets_their_share(dev_config: StackConfig) -> None:
    assert _error_share(_samples(_simulator(20))) < dev_config.thresholds.error_ratio
    assert _error_share(_samples(_simulator(20, error_ratio=0.5))) == pytest.approx(0.5, abs=0.08)
    assert _error_share(_samples(_simulator(20, error_ratio=1.0))) == 1.0


def _share_within(samples: list[Sample], bound: str, endpoints: tuple[str, ...]) -> float:
    name = "medianest_http_request_duration_seconds"
    within = sum(_sum(samples, f"{name}_bucket", endpoint=e, le=bound) for e in endpoints)
    return within / sum(_sum(samples, f"{name}_count", endpoint=e) for e in endpoints)


def test_latency_fault_moves_requests_into_higher_buckets() -> None:
    healthy, slow = _samples(_simulator(20)), _samples(_simulator(20, latency_seconds=2.5))
    # The latency SLOs: 95% of the critical endpoints' requests within 1 s, 99% within 2 s.
    assert _share_within(healthy, "1.0", CRITICAL_ENDPOINTS) == 1.0
    assert _share_within(healthy, "0.3", CRITICAL_ENDPOINTS) > 0.8
    assert _share_within(slow, "2.0", CRITICAL_ENDPOINTS) == 0.0
    assert _share_within(slow, "5.0", CRITICAL_ENDPOINTS) == 1.0


def test_healthy_backend_stays_under_every_threshold(dev_config: StackConfig) -> None:
    t = dev_config.thresholds
    seconds = 600
    samples = _samples(_simulator(seconds))
    assert 190 * MIB < _value(samples, "medianest_process_resident_memory_bytes") < 210 * MIB
    assert _value(samples, "medianest_process_resident_memory_bytes") < t.resident_memory_bytes
    assert 0.001 <= _value(samples, "medianest_nodejs_eventloop_lag_seconds") < t.event_loop_lag_seconds
    assert _value(samples, "medianest_database_connections_active") <= t.database_connections
    assert all(s.value <= t.queue_backlog_items for s in samples if s.name == "medianest_queue_size")
    assert _value(samples, "medianest_user_sessions_active") >= 1
    assert all(s.value == 0 for s in samples if s.name == "medianest_circuit_breaker_state")
    for cache in ("media_metadata", "plex_library"):
        assert _value(samples, "medianest_cache_hit_ratio", cache_type=cache) == pytest.approx(0.9, abs=0.06)
    # Enough sign-ins for AuthenticationFailuresHigh to look at them, a failure share well under it.
    attempts = _sum(samples, "medianest_auth_attempts_total")
    assert attempts / seconds > t.auth_min_attempts_per_second
    assert _sum(samples, "medianest_auth_attempts_total", status="failure") / attempts < t.auth_failure_ratio / 2
    # Queues finish what they receive (BackgroundJobQueueBuildup compares the two rates).
    jobs = "medianest_background_jobs_total"
    for queue in ("uploads", "metadata", "transcode"):
        queued = _sum(samples, jobs, queue=queue, status="queued")
        assert queued > 0
        assert _sum(samples, jobs, queue=queue, status="completed") == queued


def test_faults_drive_what_their_alerts_read() -> None:
    sim = _simulator(10)
    before = _samples(sim)
    sim.set_faults({"circuit_open": ["plex"], "database_connections": 150, "queue_growth_per_second": 2,
                    "memory_growth_bytes_per_second": MIB, "event_loop_lag_seconds": 0.3})
    sim.tick(60)
    after = _samples(sim)
    breaker = "medianest_circuit_breaker_state"
    assert {s.labels["service"]: s.value for s in after if s.name == breaker} == {
        service: 1.0 if service == "plex" else 0.0 for service in EXTERNAL_SERVICES}
    assert _sum(after, "medianest_external_api_duration_seconds_count", service="plex", status="error") > 0
    assert _value(after, "medianest_database_connections_active") == 150
    assert _value(after, "medianest_nodejs_eventloop_lag_seconds") == 0.3
    assert _value(after, "medianest_queue_size", queue_name=STALLED_QUEUE) >= 120
    jobs = "medianest_background_jobs_total"
    completed = _sum(before, jobs, queue=STALLED_QUEUE, status="completed")
    assert _sum(after, jobs, queue=STALLED_QUEUE, status="completed") == completed
    assert _sum(after, jobs, queue=STALLED_QUEUE, status="queued") >= completed + 120
    for name in ("medianest_process_resident_memory_bytes", "medianest_nodejs_heap_size_used_bytes"):
        assert _value(after, name) - _value(before, name) == pytest.approx(60 * MIB, abs=2 * MIB)

    assert sim.reset_faults().as_json() == _simulator().faults.as_json()
    sim.tick(60)
    healed = _samples(sim)
    assert _value(healed, "medianest_queue_size", queue_name=STALLED_QUEUE) <= 2  # the backlog drained
    assert all(s.value == 0 for s in healed if s.name == breaker)


@pytest.mark.parametrize(("body", "field", "hint"), [
    ({"error_ratio": 2}, "error_ratio", "from 0 to 1"),
    ({"error_ratio": "high"}, "error_ratio", "from 0 to 1"),
    ({"error_ratio": True}, "error_ratio", "from 0 to 1"),
    ({"latency_seconds": -1}, "latency_seconds", "from 0 to 600"),
    ({"circuit_open": ["netflix"]}, "circuit_open", "plex, overseerr, tmdb"),
    ({"circuit_open": "plex"}, "circuit_open", "a list of service names"),
    ({"database_connections": 1.5}, "database_connections", "whole number"),
    ({"queue_growth_per_second": None}, "queue_growth_per_second", "a number"),
    ({"surprise": 1}, "surprise", "valid fields are error_ratio, latency_seconds"),
    (["error_ratio"], "body", "JSON object"),
])
def test_bad_faults_are_refused_naming_the_field(body: Any, field: str, hint: str) -> None:
    sim = _simulator()
    with pytest.raises(FaultError) as error:
        sim.set_faults(body)
    assert error.value.field == field
    assert str(error.value).startswith(f"{field}: ") and hint in str(error.value)


def test_a_refused_body_changes_no_fault() -> None:
    sim = _simulator()
    with pytest.raises(FaultError):
        sim.set_faults({"error_ratio": 0.5, "latency_seconds": "slow"})
    assert sim.faults.error_ratio == 0


# --- logs ----------------------------------------------------------------------------------------

def _check_record(record: dict[str, Any]) -> None:
    assert set(record) == LOG_FIELDS
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["timestamp"])
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", record["correlationId"])
    assert re.fullmatch(r"[0-9a-f]{32}", record["traceId"]) and re.fullmatch(r"[0-9a-f]{16}", record["spanId"])
    assert record["service"] == SERVICE
    expected_level = "error" if record["statusCode"] >= 500 else {"info", "warn"}
    assert record["level"] == expected_level or record["level"] in expected_level
    assert isinstance(record["durationMs"], int) and record["durationMs"] >= 0
    assert not any("user" in key.lower() for key in record)


def test_log_records_are_winston_style_and_sampled() -> None:
    sim = _simulator(error_ratio=0.3)
    records = sim.tick(1)
    assert len(records) == 20
    for record in records:
        _check_record(record)
    assert {r["level"] for r in records} >= {"error", "info"}
    assert records[0]["timestamp"] == "2025-12-31T23:59:59.025Z"  # spread over the tick that ends at CLOCK
    # Over the sampling limit, at most LOG_LINES_PER_SECOND lines a second.
    assert len(_simulator(rps=200).tick(2)) == 40


# --- the HTTP server and the CLI -----------------------------------------------------------------

def _http(url: str, method: str = "GET", body: bytes | None = None, accept: str | None = None) -> tuple[int, str, str]:
    request = urllib.request.Request(url, data=body, method=method, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


def test_http_server_serves_metrics_health_and_faults(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "medianest.log"
    with serve(0, log, rps=20, seed=1) as server:
        status, content_type, text = _http(f"{server.url}/metrics")
        assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
        assert {f.name for f in text_string_to_metric_families(text)} >= {"medianest_process_resident_memory_bytes"}
        assert _http(f"{server.url}/api/health")[::2] == (200, '{"status": "ok"}')

        status, _, body = _http(f"{server.url}/faults", "POST", b'{"error_ratio": 1.0, "circuit_open": ["plex"]}')
        assert status == 200 and json.loads(body)["error_ratio"] == 1.0
        assert json.loads(_http(f"{server.url}/faults")[2])["circuit_open"] == ["plex"]
        assert _http(f"{server.url}/api/health")[0] == 503

        status, _, body = _http(f"{server.url}/faults", "POST", b'{"error_ratio": 3}')
        assert status == 400 and json.loads(body)["field"] == "error_ratio"
        assert "from 0 to 1" in json.loads(body)["error"]
        assert _http(f"{server.url}/faults", "POST", b"{not json")[0] == 400
        assert _http(f"{server.url}/nowhere")[0] == 404

        status, _, body = _http(f"{server.url}/faults", "DELETE")
        assert status == 200 and json.loads(body)["error_ratio"] == 0
        assert _http(f"{server.url}/api/health")[0] == 200
        time.sleep(1.2)  # two ticks
        assert _sum(_samples(server.simulator), HTTP) > 0
    lines = log.read_text().splitlines()
    assert lines
    for line in lines:
        _check_record(json.loads(line))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_metrics(process: subprocess.Popen[str], port: int) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            if _http(f"http://127.0.0.1:{port}/metrics")[0] == 200:
                return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the simulator did not serve /metrics: {process.communicate(timeout=10)}")
        time.sleep(0.1)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_cli_stops_cleanly_on_a_signal(tmp_path: Path, signum: int) -> None:
    port, log = _free_port(), tmp_path / "medianest.log"
    process = subprocess.Popen([sys.executable, "-m", "stack.sandbox.simulator", "--port", str(port),
                                "--log-file", str(log), "--rps", "40", "--seed", "3"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_metrics(process, port)
        time.sleep(1.2)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    lines = log.read_text().splitlines()
    assert lines and log.read_text().endswith("\n")
    for line in lines:
        _check_record(json.loads(line))


def test_cli_sends_every_request_as_a_trace_to_its_otlp_endpoint(tmp_path: Path) -> None:
    collector, port, log = _Collector(), _free_port(), tmp_path / "medianest.log"
    process = subprocess.Popen([sys.executable, "-m", "stack.sandbox.simulator", "--port", str(port),
                                "--log-file", str(log), "--rps", "20",
                                "--otlp-endpoint", f"http://127.0.0.1:{collector.server_address[1]}"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_metrics(process, port)
        time.sleep(1.2)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        collector.shutdown()
        collector.server_close()
    assert process.returncode == 0, stderr
    assert f"traces to http://127.0.0.1:{collector.server_address[1]}/v1/traces" in stderr
    assert collector.paths == {"/v1/traces application/x-protobuf"}
    assert {service for service, _ in collector.spans} == {SERVICE}
    requests = {s["trace_id"] for _, s in collector.spans if s["kind"] == 2}  # SPAN_KIND_SERVER
    assert {s["trace_id"] for _, s in collector.spans} == requests
    # Every logged request's trace arrived, the last tick's too: the exit flushed them.
    logged = [json.loads(line)["traceId"] for line in log.read_text().splitlines()]
    assert logged and set(logged) == requests


# --- traces --------------------------------------------------------------------------------------

OPENMETRICS = "application/openmetrics-text; version=1.0.0"
ROUTES = {f"{e.method} {e.path}": e for e in ENDPOINTS}
Traced = Callable[..., tuple[Simulator, InMemorySpanExporter]]


@pytest.fixture
def traced() -> Iterator[Traced]:
    """Simulators whose spans go to memory, through the batch processor `serve` uses."""
    providers: list[TracerProvider] = []

    def make(rps: float = 20, seed: int = 1, **faults: Any) -> tuple[Simulator, InMemorySpanExporter]:
        exporter = InMemorySpanExporter()
        providers.append(tracer_provider(exporter))
        sim = Simulator(rps=rps, seed=seed, clock=lambda: CLOCK, tracer_provider=providers[-1])
        if faults:
            sim.set_faults(faults)
        sim.tick(0)  # as `_simulator` does
        return sim, exporter

    yield make
    for provider in providers:
        provider.shutdown()


def _finished(sim: Simulator, exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    assert isinstance(sim.tracer_provider, TracerProvider) and sim.tracer_provider.force_flush()
    return list(exporter.get_finished_spans())


def _servers(spans: list[ReadableSpan]) -> dict[str, ReadableSpan]:
    """The SERVER spans by their trace id (hex)."""
    servers = [s for s in spans if s.kind is SpanKind.SERVER]
    by_trace = {format_trace_id(s.context.trace_id): s for s in servers}
    assert len(by_trace) == len(servers), "two requests share a trace"
    return by_trace


def _seconds(span: ReadableSpan) -> float:
    assert span.start_time is not None and span.end_time is not None
    return (span.end_time - span.start_time) / 1e9


def _exemplars(text: str) -> list[Sample]:
    return [s for family in openmetrics_families(text) for s in family.samples if s.exemplar is not None]


def _otel_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("OtelBatch")}


def test_each_request_is_a_server_span_with_a_client_span_per_query_and_redis_command(traced: Traced) -> None:
    sim, exporter = traced(error_ratio=0.2)
    sim.tick(10)
    spans, samples = _finished(sim, exporter), _samples(sim)
    servers = _servers(spans)
    assert len(servers) == _sum(samples, HTTP) == 200
    assert {s.resource.attributes["service.name"] for s in spans} == {SERVICE}
    children: dict[int, list[ReadableSpan]] = {}
    for span in spans:
        if span.kind is not SpanKind.SERVER:
            assert span.kind is SpanKind.CLIENT and span.parent is not None, span.name
            children.setdefault(span.parent.span_id, []).append(span)
            assert format_trace_id(span.context.trace_id) in servers
    statuses = set()
    for server in servers.values():
        ep, a = ROUTES[server.name], server.attributes
        status = a["http.response.status_code"]
        statuses.add(status // 100)
        assert server.parent is None
        assert (a["http.request.method"], a["http.route"], a["url.path"]) == (ep.method, ep.path, ep.path)
        # Server spans: a 5xx is an error; a 4xx is the client's.
        assert server.status.status_code is (StatusCode.ERROR if status >= 500 else StatusCode.UNSET)
        assert a.get("error.type") == (str(status) if status >= 500 else None)
        calls = sorted(children.pop(server.context.span_id, []), key=lambda c: c.start_time or 0)
        postgres = [c for c in calls if c.attributes["db.system.name"] == "postgresql"]
        redis = [c for c in calls if c.attributes["db.system.name"] == "redis"]
        assert len(postgres) + len(redis) == len(calls)
        assert [c.name for c in postgres] == [f"{operation} {table}" for operation, table in ep.queries]
        assert all(c.attributes["db.collection.name"] == c.name.split()[1] for c in postgres)
        assert len(redis) >= len(ep.redis) and {c.name for c in redis} <= {"GET", "SET"}
        # One after the other, within the request.
        bounds = [server.start_time, *(t for c in calls for t in (c.start_time, c.end_time)), server.end_time]
        assert bounds == sorted(bounds), server.name
    assert not children, "spans whose parent is no request"
    assert statuses >= {2, 4, 5}
    # A span for every query and command the metrics counted, and no other.
    postgres_spans = [s for s in spans if s.attributes and s.attributes.get("db.system.name") == "postgresql"]
    for operation, table in {q for ep in ENDPOINTS for q in ep.queries}:
        assert (sum(s.name == f"{operation} {table}" for s in postgres_spans) ==
                _sum(samples, "medianest_database_query_duration_seconds_count", operation=operation, table=table) > 0)
    for command in ("get", "set"):
        assert (sum(s.name == command.upper() for s in spans) ==
                _sum(samples, "medianest_redis_operation_duration_seconds_count", command=command) > 0)


def test_a_latency_fault_gives_spans_as_long_as_the_requests_without_waiting(traced: Traced) -> None:
    sim, exporter = traced(latency_seconds=2.5)
    started = time.monotonic()
    records = sim.tick(5)
    assert time.monotonic() - started < 2.5, "the simulator slept"
    servers = _servers(_finished(sim, exporter))
    assert len(servers) == len(records) == 100
    durations = [_seconds(s) for s in servers.values()]
    assert all(2.5 <= d < 2.5 + 0.8 for d in durations), (min(durations), max(durations))
    # Exactly the durations the latency histogram observed.
    samples = _samples(sim)
    assert sum(durations) == pytest.approx(_sum(samples, "medianest_http_request_duration_seconds_sum"),
                                           abs=len(durations) * 1e-9)
    # Each logged request is its trace: same ids, ending at its log line's time, as long as it says.
    for record in records:
        server = servers[record["traceId"]]
        assert record["spanId"] == format_span_id(server.context.span_id)
        assert rfc3339(server.end_time / 1e9) == record["timestamp"]
        assert round(_seconds(server) * 1000) == record["durationMs"]
        assert server.name == f"{record['method']} {record['endpoint']}"


def test_a_slow_database_gives_slow_query_spans(traced: Traced) -> None:
    sim, exporter = traced(database_latency_seconds=1.5)
    sim.tick(5)
    spans = _finished(sim, exporter)
    queries = [s for s in spans if s.attributes and s.attributes.get("db.system.name") == "postgresql"]
    others = [s for s in spans if s.kind is SpanKind.CLIENT and s not in queries]
    assert queries and all(1.5 <= _seconds(s) < 1.5 + 0.25 for s in queries)
    assert others and all(_seconds(s) <= 0.02 for s in others)


def test_exemplars_carry_the_trace_ids_of_logged_requests(traced: Traced) -> None:
    sim, exporter = traced(error_ratio=0.1)
    records = sim.tick(10)
    assert len(records) == 200  # at 20 requests/s every request is logged
    servers, logged = _servers(_finished(sim, exporter)), {r["traceId"]: r for r in records}
    assert set(logged) == set(servers)
    body, content_type = sim.scrape(OPENMETRICS)
    assert content_type.startswith("application/openmetrics-text")
    exemplars = _exemplars(body.decode())
    series = {(s.labels["method"], s.labels["endpoint"], s.labels["status_code"])
              for s in _samples(sim) if s.name == HTTP}
    on_counter = [s for s in exemplars if s.name == HTTP]
    # The counter's latest request on every series; each latency bucket's latest request.
    assert {(s.labels["method"], s.labels["endpoint"], s.labels["status_code"]) for s in on_counter} == series
    assert {s.name for s in exemplars} == {HTTP, "medianest_http_request_duration_seconds_bucket"}
    bounds = (0.0, 0.01, 0.05, 0.1, 0.3, 0.5, 1.0, 2.0, 5.0)
    for sample in exemplars:
        assert sample.exemplar is not None and set(sample.exemplar.labels) == {"trace_id"}
        trace_id = sample.exemplar.labels["trace_id"]
        assert re.fullmatch(r"[0-9a-f]{32}", trace_id)
        record, server = logged[trace_id], servers[trace_id]
        assert (record["method"], record["endpoint"], str(record["statusCode"])) == (
            sample.labels["method"], sample.labels["endpoint"], sample.labels["status_code"])
        if sample.name == HTTP:
            assert sample.exemplar.value == 1
        else:
            le = float(sample.labels["le"])
            assert sample.exemplar.value == pytest.approx(_seconds(server), abs=1e-6)
            assert bounds[bounds.index(le) - 1] < sample.exemplar.value <= le
    # The text format has no exemplars.
    assert "trace_id" not in sim.exposition().decode()


def test_traces_change_nothing_in_the_traffic_model(traced: Traced) -> None:
    plain, (traced_sim, _) = _simulator(), traced()
    without, with_traces = plain.tick(30), traced_sim.tick(30)
    assert plain.exposition() == traced_sim.exposition()
    assert [{**r, "traceId": "", "spanId": ""} for r in without] == [{**r, "traceId": "", "spanId": ""}
                                                                     for r in with_traces]
    assert {r["traceId"] for r in without}.isdisjoint(r["traceId"] for r in with_traces)


def test_the_server_exports_every_span_on_stop_and_serves_exemplars_to_openmetrics_scrapes(tmp_path: Path) -> None:
    log, exporter = tmp_path / "medianest.log", InMemorySpanExporter()
    before = _otel_threads()
    server = SimulatorServer(Simulator(rps=20, tracer_provider=tracer_provider(exporter)), 0, log).start()
    with server:
        assert server.simulator.tracing and _otel_threads() - before
        time.sleep(1.3)  # two ticks
        status, content_type, text = _http(f"{server.url}/metrics", accept=OPENMETRICS)
        assert status == 200 and content_type.startswith("application/openmetrics-text")
        exemplar_ids = {s.exemplar.labels["trace_id"] for s in _exemplars(text) if s.exemplar}
        assert exemplar_ids
        assert "trace_id" not in _http(f"{server.url}/metrics")[2]
    servers = _servers(list(exporter.get_finished_spans()))  # stop() flushed the batch processor
    assert len(servers) == _sum(_samples(server.simulator), HTTP) > 0
    logged = {json.loads(line)["traceId"] for line in log.read_text().splitlines()}
    assert logged == set(servers)
    assert exemplar_ids <= logged


def test_without_an_otlp_endpoint_there_are_no_traces(tmp_path: Path) -> None:
    before = _otel_threads()
    with serve(0, tmp_path / "medianest.log", rps=20) as server:
        assert not server.simulator.tracing and server.simulator.tracer_provider is None
        time.sleep(1.3)
        assert _otel_threads() - before == set(), "a span processor runs without an endpoint"
        status, content_type, text = _http(f"{server.url}/metrics", accept=OPENMETRICS)
        assert status == 200 and content_type.startswith("application/openmetrics-text")
        assert _sum([s for f in openmetrics_families(text) for s in f.samples], HTTP) > 0
        assert _exemplars(text) == []


@pytest.mark.parametrize(("endpoint", "url"), [
    ("http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces"),
    ("http://jaeger:4318/", "http://jaeger:4318/v1/traces"),
    ("https://collector.example/otlp", "https://collector.example/otlp/v1/traces"),
    ("http://127.0.0.1:4318/v1/traces", "http://127.0.0.1:4318/v1/traces"),
])
def test_an_otlp_endpoint_is_a_base_url_or_the_traces_url(endpoint: str, url: str) -> None:
    assert traces_url(endpoint) == url


@pytest.mark.parametrize("endpoint", ["127.0.0.1:4318", "ftp://127.0.0.1:4318", "http://", "grpc://jaeger:4317"])
def test_the_cli_refuses_a_bad_otlp_endpoint(endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--port", "0", "--log-file", str(tmp_path / "log"), "--otlp-endpoint", endpoint])
    assert exit_.value.code == 2
    assert "is not an OTLP/HTTP endpoint" in capsys.readouterr().err
    assert not (tmp_path / "log").exists()


class _Collector(ThreadingHTTPServer):
    """A stand-in OTLP/HTTP collector on loopback: keeps the spans POSTed to /v1/traces."""

    daemon_threads = True

    def __init__(self) -> None:
        self.spans: list[tuple[str, dict[str, Any]]] = []  # (service.name, span as the proto has it)
        self.paths: set[str] = set()
        super().__init__(("127.0.0.1", 0), _CollectorHandler)
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()


class _CollectorHandler(BaseHTTPRequestHandler):
    server: _Collector

    def do_POST(self) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.paths.add(f"{self.path} {self.headers['Content-Type']}")
        for resource in request.resource_spans:
            service = {a.key: a.value.string_value for a in resource.resource.attributes}["service.name"]
            for scope in resource.scope_spans:
                self.server.spans += [(service, {"trace_id": span.trace_id.hex(), "kind": span.kind,
                                                 "name": span.name}) for span in scope.spans]
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


# --- the generated alerts on simulated traffic (promtool) ----------------------------------------

HEALTHY_MINUTES = 10
# Fault, the minutes it lasts, and the alerts firing then: its own, and the SLO burn it causes.
SCENARIOS: dict[str, tuple[dict[str, Any], int, tuple[str, ...]]] = {
    "healthy": ({}, 50, ()),
    "errors": ({"error_ratio": 0.5}, 15, ("HighErrorRate", "SLOErrorBudgetBurn")),
    "latency": ({"latency_seconds": 2.5}, 20, ("HighResponseTime", "SLOErrorBudgetBurn")),
    "circuit-open": ({"circuit_open": ["plex"]}, 5, ("ExternalServiceDown",)),
    # BackgroundJobQueueBuildup: 15m rate windows, then 30m.
    "queue-growth": ({"queue_growth_per_second": 2}, 50, ("BackgroundJobQueueBuildup", "QueueBacklog")),
    "database-connections": ({"database_connections": 150}, 10, ("DatabaseConnectionHigh",)),
    # MemoryLeakSuspected: a 15m deriv, then 30m.
    "memory-growth": ({"memory_growth_bytes_per_second": 8 * MIB}, 50, ("HighMemoryUsage", "MemoryLeakSuspected")),
    "event-loop-lag": ({"event_loop_lag_seconds": 0.3}, 10, ("EventLoopLagHigh",)),
    "auth-failures": ({"auth_failure_ratio": 0.6}, 25, ("AuthenticationFailuresHigh",)),
    "slow-database": ({"database_latency_seconds": 1.5}, 20,
                      ("HighResponseTime", "SLOErrorBudgetBurn", "SlowDatabaseQueries")),
}


def _input_series(config: StackConfig, faults: dict[str, Any], minutes: int) -> list[dict[str, str]]:
    """A scrape a minute: HEALTHY_MINUTES of healthy traffic, then `minutes` with the fault."""
    target = {"job": config.jobs.backend, "instance": "backend:3001"}
    sim = _simulator(rps=10, seed=5)
    scrapes: list[dict[str, float]] = []
    for minute in range(HEALTHY_MINUTES + minutes + 1):
        if minute == HEALTHY_MINUTES + 1 and faults:
            sim.set_faults(faults)
        if minute:
            sim.tick(60)
        scrapes.append({_series(s.name, {**s.labels, **target}): s.value for s in _samples(sim)})
        scrapes[-1][_series("up", target)] = 1
    names = sorted(set().union(*scrapes))
    return [{"series": n, "values": " ".join(repr(s[n]) if n in s else "_" for s in scrapes)} for n in names]


def _series(name: str, labels: dict[str, str]) -> str:
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


@pytest.fixture(scope="module")
def rendered(dev_config: StackConfig, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rendered")
    write_tree(build(dev_config).files, root)
    return root


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_generated_alerts_fire_on_their_fault_and_on_nothing_else(
        scenario: str, dev_config: StackConfig, rendered: Path) -> None:
    faults, minutes, expected = SCENARIOS[scenario]
    # MediaNest's alerts and SLOs; the platform rules watch exporters this test does not run.
    rule_files = sorted(f"../rules/{p.name}" for p in (rendered / RULES_DIR).glob("*.yaml")
                        if p.name != "platform.yaml")
    silent = {"expr": "count(ALERTS) or vector(0)", "exp_samples": [{"labels": "{}", "value": 0}]}
    # Nothing pending or firing while healthy (for the healthy scenario: every 5 minutes).
    checks = [{**silent, "eval_time": f"{m}m"} for m in range(5, HEALTHY_MINUTES + (0 if faults else minutes) + 1, 5)]
    if faults:
        checks.append({"expr": 'group by (alertname) (ALERTS{alertstate="firing"})',
                       "eval_time": f"{HEALTHY_MINUTES + minutes}m",
                       "exp_samples": [{"labels": f'{{alertname="{a}"}}', "value": 1} for a in expected]})
    test = {"name": scenario, "interval": "1m", "input_series": _input_series(dev_config, faults, minutes),
            "promql_expr_test": checks}
    path = rendered / "prometheus" / "tests" / f"simulator-{scenario}.yaml"
    path.write_text(yaml.safe_dump({"rule_files": rule_files, "evaluation_interval": "1m", "tests": [test]}))
    run = tools.promtool_test_rules(path)
    assert run.ok, run.output
