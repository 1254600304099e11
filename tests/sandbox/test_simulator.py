"""MediaNest's traffic simulator: it serves exactly the catalog's metrics, healthy traffic stays
under every threshold, each fault moves what its alert reads, the HTTP API and the CLI behave,
and the generated MediaNest and SLO rules (on promtool) fire on each fault and on nothing else.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from rules.catalog import MetricType
from rules.metrics import medianest
from rules.slos import CRITICAL_ENDPOINTS
from stack import tools
from stack.bundle import RULES_DIR, build
from stack.config import StackConfig
from stack.output import write_tree
from stack.sandbox.simulator import EXTERNAL_SERVICES, MIB, SERVICE, STALLED_QUEUE, FaultError, Simulator, serve

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

def _http(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, str, str]:
    request = urllib.request.Request(url, data=body, method=method)
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


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_cli_stops_cleanly_on_a_signal(tmp_path: Path, signum: int) -> None:
    port, log = _free_port(), tmp_path / "medianest.log"
    process = subprocess.Popen([sys.executable, "-m", "stack.sandbox.simulator", "--port", str(port),
                                "--log-file", str(log), "--rps", "40", "--seed", "3"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if _http(f"http://127.0.0.1:{port}/metrics")[0] == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the simulator did not serve /metrics: {process.communicate(timeout=10)}")
            time.sleep(0.1)
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
