"""MediaNest's traffic simulator: a stand-in for the Node.js backend in the sandbox.

It serves the backend's metrics (built from rules/metrics/medianest.py, so the catalog is the
only list of names), `/api/health`, and a fault injection API (`/faults`), and writes
winston-style JSON log lines. Healthy traffic keeps every MediaNest alert and SLO silent; each
fault is what makes its alert fire.

    python -m stack.sandbox.simulator --port P --log-file F [--rps 20] [--seed 1]

`Simulator` holds the state and the traffic model (no HTTP, deterministic for a seed);
`serve()` runs it behind an HTTP server with a ticking thread.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from rules.catalog import Metric, MetricType
from rules.metrics import medianest

HOST = "127.0.0.1"
SERVICE = "medianest-backend"
TICK_SECONDS = 0.5
LOG_LINES_PER_SECOND = 20.0
MIB = 1024 * 1024

# --- The traffic model --------------------------------------------------------------------------

# Healthy requests never take longer than this: the latency SLOs count requests over 1 s.
HEALTHY_MAX_SECONDS = 0.8
CACHE_HIT_RATIO = 0.9
# Items/s a stalled queue drains once its fault is lifted.
BACKLOG_DRAIN_PER_SECOND = 20.0
EXTERNAL_SERVICES = ("plex", "overseerr", "tmdb")
# (queue, job_type, median run time in seconds). `queue` and `queue_name` carry the same names.
QUEUES = (("uploads", "process_upload", 3.0), ("metadata", "refresh_metadata", 2.0), ("transcode", "transcode", 60.0))
# The queue `queue_growth_per_second` stalls (the one the QueueBacklog rule tests use).
STALLED_QUEUE = "uploads"
CACHES = ("media_metadata", "plex_library")
MEDIA_SOURCES = (("web", 0.7), ("mobile", 0.2), ("api", 0.1))
LOGIN = "/api/v1/auth/login"


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    weight: float
    median_seconds: float
    ok: int = 200
    client_error: tuple[int, float] = (400, 0.0)  # (status code, share of requests)
    not_modified: float = 0.0  # share answered 304
    queries: tuple[tuple[str, str], ...] = ()  # (operation, table) per request
    redis: tuple[str, ...] = ("get",)  # the session lookup, plus any writes
    cache: str | None = None  # cache_type looked up on every request
    external: tuple[str, str] | None = None  # (service, operation), called when not served from cache
    media_type: str | None = None
    job: tuple[str, float] | None = None  # (queue, share of successful requests that queue a job)


# The SLOs select /api/v1/auth/login, /api/v1/media/upload and /api/v1/media/download; the
# alert and SLO examples use GET /api/v1/media. Paths are Express route patterns (bounded).
ENDPOINTS = (
    Endpoint("GET", "/api/v1/media", 34, 0.035, not_modified=0.15, client_error=(404, 0.02),
             queries=(("SELECT", "media_files"),), cache="media_metadata", external=("tmdb", "movie_details")),
    Endpoint("GET", "/api/v1/media/download", 12, 0.15, client_error=(404, 0.01),
             queries=(("SELECT", "media_files"), ("UPDATE", "media_files")), media_type="download",
             job=("transcode", 0.2)),
    Endpoint("POST", "/api/v1/media/upload", 5, 0.2, ok=201, client_error=(413, 0.01),
             queries=(("INSERT", "media_files"),), redis=("get", "set"), media_type="upload", job=("uploads", 1.0)),
    Endpoint("POST", "/api/v1/media/requests", 5, 0.08, ok=201, client_error=(409, 0.02),
             queries=(("SELECT", "media_requests"), ("INSERT", "media_requests")), media_type="request",
             external=("overseerr", "create_request"), job=("metadata", 1.0)),
    Endpoint("POST", LOGIN, 8, 0.09, client_error=(401, 0.05),
             queries=(("SELECT", "users"), ("INSERT", "sessions")), redis=("get", "set")),
    Endpoint("GET", "/api/v1/plex/libraries", 10, 0.05, not_modified=0.1, cache="plex_library",
             external=("plex", "library_sections")),
    Endpoint("GET", "/api/v1/dashboard/status", 26, 0.02, not_modified=0.2,
             queries=(("SELECT", "service_status"),)),
)


# --- Faults -------------------------------------------------------------------------------------

class FaultError(ValueError):
    """A bad fault request; the message names the field and what would be valid."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class Faults:
    """What is wrong with the backend now. The defaults are a healthy backend."""

    error_ratio: float = 0.0  # share of requests answered 5xx; 1.0 is an outage (/api/health 503)
    latency_seconds: float = 0.0  # added to every request's duration
    circuit_open: tuple[str, ...] = ()  # external services whose breaker is open
    queue_growth_per_second: float = 0.0  # items/s added to STALLED_QUEUE, which stops completing jobs
    database_connections: int | None = None  # active connections reported (None: the healthy pool)
    memory_growth_bytes_per_second: float = 0.0  # resident memory and heap grow steadily
    # Beyond the brief, for the alerts no fault above triggers.
    event_loop_lag_seconds: float | None = None  # lag reported (None: ~5 ms)
    auth_failure_ratio: float | None = None  # share of logins that fail (None: 5%)
    database_latency_seconds: float = 0.0  # added to every database query (and so to its request)

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "circuit_open": list(self.circuit_open)}

    def updated(self, body: Any) -> Faults:
        """These faults with the fields of a POST /faults body set; FaultError when it is bad."""
        if not isinstance(body, dict):
            raise FaultError("body", f"must be a JSON object with any of: {', '.join(_PARSERS)}")
        changes = {}
        for name, value in body.items():
            parse = _PARSERS.get(name)
            if parse is None:
                raise FaultError(name, f"unknown fault; valid fields are {', '.join(_PARSERS)}")
            changes[name] = parse(name, value)
        return replace(self, **changes)


def _number(low: float, high: float, optional: bool = False) -> Callable[[str, Any], Any]:
    def parse(field: str, value: Any) -> float | None:
        if value is None and optional:
            return None
        if (isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
                or not low <= value <= high):
            valid = f"a number from {low:g} to {high:g}" + (", or null to clear it" if optional else "")
            raise FaultError(field, f"{json.dumps(value)} is not valid: expected {valid}")
        return float(value)
    return parse


def _count(field: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100_000:
        raise FaultError(field, f"{json.dumps(value)} is not valid: expected a whole number from 0 to 100000, "
                                "or null for the healthy pool")
    return value


def _services(field: str, value: Any) -> tuple[str, ...]:
    valid = ", ".join(EXTERNAL_SERVICES)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FaultError(field, f"{json.dumps(value)} is not valid: expected a list of service names ({valid})")
    unknown = sorted(set(value) - set(EXTERNAL_SERVICES))
    if unknown:
        raise FaultError(field, f"unknown service(s) {', '.join(unknown)}: valid services are {valid}")
    return tuple(sorted(set(value)))


_PARSERS: dict[str, Callable[[str, Any], Any]] = {
    "error_ratio": _number(0, 1),
    "latency_seconds": _number(0, 600),
    "circuit_open": _services,
    "queue_growth_per_second": _number(0, 10_000),
    "database_connections": _count,
    "memory_growth_bytes_per_second": _number(0, 1 << 40),
    "event_loop_lag_seconds": _number(0, 600, optional=True),
    "auth_failure_ratio": _number(0, 1, optional=True),
    "database_latency_seconds": _number(0, 600),
}


# --- Metrics from the catalog -------------------------------------------------------------------

def build_metrics(metrics: Iterable[Metric], registry: CollectorRegistry) -> dict[str, MetricWrapperBase]:
    """One prometheus-client object per catalog metric, keyed by its catalog name."""
    made: dict[str, MetricWrapperBase] = {}
    for m in metrics:
        if m.type is MetricType.COUNTER:
            # prometheus-client appends `_total` itself: give it the base name.
            made[m.name] = Counter(m.name.removesuffix("_total"), m.help, m.labels, registry=registry)
        elif m.type is MetricType.GAUGE:
            made[m.name] = Gauge(m.name, m.help, m.labels, registry=registry)
        elif m.type is MetricType.HISTOGRAM:
            made[m.name] = Histogram(m.name, m.help, m.labels, buckets=m.buckets, registry=registry)
        else:
            # prometheus-client's Summary has no quantiles, so it could not expose what the catalog says.
            raise ValueError(f"{m.name}: the simulator cannot serve a {m.type} metric")
    return made


class _WithoutCreated(Collector):
    """The registry minus prometheus-client's `_created` series: prom-client exposes none, and
    the scrape must carry the catalog's names only."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Any]:
        for family in self._registry.collect():
            family.samples = [s for s in family.samples if not s.name.endswith("_created")]
            yield family


@dataclass(frozen=True)
class Request:
    """One simulated request, as the access log sees it."""

    method: str
    endpoint: str
    status_code: int
    duration_seconds: float
    note: str = ""


# --- The simulator ------------------------------------------------------------------------------

class Simulator:
    """The backend's state and traffic model, without HTTP. `tick(seconds)` advances it; for a
    seed (and a fixed clock) the metrics and log records are the same on every run."""

    def __init__(self, rps: float = 20.0, seed: int = 1, clock: Callable[[], float] = time.time,
                 log_lines_per_second: float = LOG_LINES_PER_SECOND) -> None:
        if not 0 <= rps <= 100_000:
            raise ValueError(f"rps must be from 0 to 100000, not {rps}")
        self.rps = rps
        self.log_lines_per_second = log_lines_per_second
        self.registry = CollectorRegistry()
        self.metrics = build_metrics(medianest.APPLICATION + medianest.NODEJS_DEFAULTS, self.registry)
        self._rng = random.Random(seed)
        self._clock = clock
        self._lock = threading.Lock()
        self._faults = Faults()
        self._carry: dict[str, float] = {}
        self._backlog = {queue: 0 for queue, _, _ in QUEUES}
        self._arrivals: dict[str, int] = {}
        self._hit_ratio = dict.fromkeys(CACHES, CACHE_HIT_RATIO)
        self._sessions = 40
        self._websockets = 0
        self._leaked = 0.0
        # Series a real backend has from its start, before any traffic.
        m = self.metrics
        m["medianest_process_start_time_seconds"].set(int(clock()))
        m["medianest_process_max_fds"].set(65536)
        m["medianest_nodejs_version_info"].labels(version="v20.18.1", major="20", minor="18", patch="1").set(1)
        # Job counters start at 0 together: rate() extrapolates a series that first appears above 0
        # further back than one that starts at 0, so queued would outrun finished for the first 15m
        # and BackgroundJobQueueBuildup would go pending.
        for queue, _, _ in QUEUES:
            for status in ("queued", "completed", "failed"):
                m["medianest_background_jobs_total"].labels(queue, status)
        self._gauges(0.0)
        self._process(0.0, 0)

    # --- faults and health ----------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        return self._faults

    def set_faults(self, body: Any) -> Faults:
        """Set the fields of a POST /faults body (others keep their value); FaultError when bad."""
        with self._lock:
            self._faults = self._faults.updated(body)
            return self._faults

    def reset_faults(self) -> Faults:
        with self._lock:
            self._faults = Faults()
            return self._faults

    def health(self) -> tuple[int, dict[str, str]]:
        if self._faults.error_ratio >= 1:
            return 503, {"status": "unavailable"}
        return 200, {"status": "ok"}

    def exposition(self) -> bytes:
        # Under the lock: a scrape never sees a tick half applied (e.g. jobs queued, not yet completed).
        with self._lock:
            return generate_latest(_WithoutCreated(self.registry))

    # --- time -----------------------------------------------------------------------------------

    def tick(self, seconds: float) -> list[dict[str, Any]]:
        """Advance by `seconds`: about rps x seconds requests, their database, Redis, cache,
        external and job work, and the process gauges. Returns the log records sampled."""
        if seconds < 0:
            raise ValueError("cannot tick backwards")
        with self._lock:
            now = self._clock()
            self._arrivals = {}
            requests = [self._request() for _ in range(self._whole("requests", self.rps * seconds))]
            self._jobs(seconds)
            self._gauges(seconds)
            self._process(seconds, len(requests))
            return self._log_records(requests, now, seconds)

    def _whole(self, key: str, amount: float) -> int:
        """The whole part of `amount`, carrying the fraction to the next tick: rates stay exact."""
        total = self._carry.get(key, 0.0) + amount
        whole = int(total)
        self._carry[key] = total - whole
        return whole

    def _lognormal(self, median: float, cap: float, sigma: float = 0.5) -> float:
        return min(self._rng.lognormvariate(math.log(median), sigma), cap)

    def _request(self) -> Request:
        faults, m, rng = self._faults, self.metrics, self._rng
        ep = rng.choices(ENDPOINTS, weights=[e.weight for e in ENDPOINTS])[0]
        status = self._status(ep)
        duration = self._lognormal(ep.median_seconds, HEALTHY_MAX_SECONDS)
        note = ""
        for operation, table in ep.queries:
            query = self._lognormal(0.004, 0.25, sigma=0.6) + faults.database_latency_seconds
            m["medianest_database_query_duration_seconds"].labels(operation, table, "success").observe(query)
            duration += faults.database_latency_seconds
        redis = list(ep.redis)
        served_from_cache = False
        if ep.cache:
            served_from_cache = rng.random() < CACHE_HIT_RATIO
            ratio = self._hit_ratio[ep.cache]
            # A moving average over the last ~50 lookups, as a hit-ratio gauge would report.
            self._hit_ratio[ep.cache] = ratio + (float(served_from_cache) - ratio) * 0.02
            redis += ["get"] if served_from_cache else ["get", "set"]
        for command in redis:
            m["medianest_redis_operation_duration_seconds"].labels(command, "success").observe(
                self._lognormal(0.0006, 0.02))
        if ep.external and not served_from_cache and status < 500:
            service, operation = ep.external
            if service in faults.circuit_open:
                # An open breaker fails the call at once; the backend answers from stale cache.
                m["medianest_external_api_duration_seconds"].labels(service, operation, "error").observe(0.001)
                note = f"{service} circuit breaker open, served from cache"
            else:
                m["medianest_external_api_duration_seconds"].labels(service, operation, "success").observe(
                    self._lognormal(0.15, 3.0))
        if ep.media_type:
            source = rng.choices([s for s, _ in MEDIA_SOURCES], weights=[w for _, w in MEDIA_SOURCES])[0]
            m["medianest_media_requests_total"].labels(
                ep.media_type, "success" if status < 400 else "failed", source).inc()
        if ep.path == LOGIN:
            outcome = "error" if status >= 500 else "failure" if status == 401 else "success"
            m["medianest_auth_attempts_total"].labels(outcome).inc()
        if ep.job and status < 400 and rng.random() < ep.job[1]:
            self._arrivals[ep.job[0]] = self._arrivals.get(ep.job[0], 0) + 1
        duration += faults.latency_seconds
        labels = (ep.method, ep.path, str(status))
        m["medianest_http_request_duration_seconds"].labels(*labels).observe(duration)
        m["medianest_http_requests_total"].labels(*labels).inc()
        return Request(ep.method, ep.path, status, duration, note)

    def _status(self, ep: Endpoint) -> int:
        faults, rng = self._faults, self._rng
        if rng.random() < faults.error_ratio:
            return rng.choice((500, 500, 502, 503))
        code, share = ep.client_error
        if ep.path == LOGIN and faults.auth_failure_ratio is not None:
            share = faults.auth_failure_ratio
        draw = rng.random()
        if draw < share:
            return code
        return 304 if draw < share + ep.not_modified else ep.ok

    def _jobs(self, seconds: float) -> None:
        m, rng = self.metrics, self._rng
        stalled = self._faults.queue_growth_per_second > 0
        for queue, job_type, median in QUEUES:
            queued = self._arrivals.get(queue, 0)
            if queue == STALLED_QUEUE and stalled:
                queued += self._whole("queue_growth", self._faults.queue_growth_per_second * seconds)
                self._backlog[queue] += queued
                finished = 0
            else:
                # Healthy queues finish in the same tick what they queue, so the queued and finished
                # rates are equal (BackgroundJobQueueBuildup compares them), plus any old backlog.
                drained = min(self._backlog[queue], self._whole(f"drain:{queue}", BACKLOG_DRAIN_PER_SECOND * seconds))
                self._backlog[queue] -= drained
                finished = queued + drained
            # No job fails: BackgroundJobQueueBuildup fires on queued > completed + failed, and only
            # identical counters give rates that are exactly equal (a sum of two rates may round up).
            m["medianest_background_jobs_total"].labels(queue, "queued").inc(queued)
            m["medianest_background_jobs_total"].labels(queue, "completed").inc(finished)
            for _ in range(finished):
                m["medianest_background_job_duration_seconds"].labels(queue, job_type).observe(
                    self._lognormal(median, 800.0))
            # Waiting items: the backlog, plus a job or two just picked up.
            m["medianest_queue_size"].labels(queue).set(self._backlog[queue] + rng.randint(0, 2))

    def _gauges(self, seconds: float) -> None:
        faults, m, rng = self._faults, self.metrics, self._rng
        for service in EXTERNAL_SERVICES:
            m["medianest_circuit_breaker_state"].labels(service).set(1 if service in faults.circuit_open else 0)
        for cache, ratio in self._hit_ratio.items():
            m["medianest_cache_hit_ratio"].labels(cache).set(round(ratio, 4))
        connections = faults.database_connections
        m["medianest_database_connections_active"].set(6 + rng.randint(0, 6) if connections is None else connections)
        if seconds:
            self._sessions = min(max(self._sessions + rng.randint(-1, 1), 25), 60)
        m["medianest_user_sessions_active"].set(self._sessions)
        self._websockets = max(round(self._sessions * 0.6) + rng.randint(-2, 2), 0)
        m["medianest_websocket_connections_active"].set(self._websockets)

    def _process(self, seconds: float, requests: int) -> None:
        """Node.js and process gauges around a healthy backend's values (~200 MiB resident, ~5 ms lag)."""
        faults, m, rng = self._faults, self.metrics, self._rng
        self._leaked += faults.memory_growth_bytes_per_second * seconds
        heap_used = 95 * MIB + self._leaked + rng.uniform(-MIB, MIB)
        heap_total = 140 * MIB + self._leaked
        rss = 200 * MIB + self._leaked + rng.uniform(-MIB, MIB)
        m["medianest_process_resident_memory_bytes"].set(round(rss))
        m["medianest_process_virtual_memory_bytes"].set(round(rss + 900 * MIB))
        m["medianest_process_heap_bytes"].set(round(heap_total + 40 * MIB))
        m["medianest_nodejs_heap_size_used_bytes"].set(round(heap_used))
        m["medianest_nodejs_heap_size_total_bytes"].set(round(heap_total))
        m["medianest_nodejs_external_memory_bytes"].set(round(3 * MIB + rng.uniform(0, 0.5 * MIB)))
        for space, share in (("new_space", 0.08), ("old_space", 0.82), ("code_space", 0.04),
                             ("large_object_space", 0.06)):
            used, total = round(heap_used * share), round(heap_total * share)
            m["medianest_nodejs_heap_space_size_used_bytes"].labels(space).set(used)
            m["medianest_nodejs_heap_space_size_total_bytes"].labels(space).set(total)
            m["medianest_nodejs_heap_space_size_available_bytes"].labels(space).set(max(total - used, 0))

        lag = faults.event_loop_lag_seconds
        if lag is None:
            lag = min(max(rng.gauss(0.005, 0.0015), 0.001), 0.02)
        m["medianest_nodejs_eventloop_lag_seconds"].set(lag)
        for stat, factor in (("min", 0.4), ("max", 4.0), ("mean", 1.0), ("stddev", 0.3), ("p50", 0.9),
                             ("p90", 1.6), ("p99", 2.5)):
            m[f"medianest_nodejs_eventloop_lag_{stat}_seconds"].set(lag * factor)

        rate = requests / seconds if seconds else 0.0
        user, system = seconds * (0.01 + 0.0015 * rate), seconds * (0.004 + 0.0005 * rate)
        m["medianest_process_cpu_user_seconds_total"].inc(user)
        m["medianest_process_cpu_system_seconds_total"].inc(system)
        m["medianest_process_cpu_seconds_total"].inc(user + system)

        sockets = self._websockets + 12  # plus the database pool and Redis
        pending = rng.randint(0, 2)
        for kind, handles in (("Socket", sockets), ("Timer", 4)):
            m["medianest_nodejs_active_handles"].labels(kind).set(handles)
        m["medianest_nodejs_active_handles_total"].set(sockets + 4)
        m["medianest_nodejs_active_requests"].labels("FSReqCallback").set(pending)
        m["medianest_nodejs_active_requests_total"].set(pending)
        for kind, resources in (("TCPSocketWrap", sockets), ("Timeout", 6), ("FSReqCallback", pending)):
            m["medianest_nodejs_active_resources"].labels(kind).set(resources)
        m["medianest_nodejs_active_resources_total"].set(sockets + 6 + pending)
        m["medianest_process_open_fds"].set(sockets + 20)
        for kind, per_second, median in (("minor", 2.0, 0.0015), ("incremental", 0.2, 0.003), ("major", 0.05, 0.02)):
            for _ in range(self._whole(f"gc:{kind}", per_second * seconds)):
                m["medianest_nodejs_gc_duration_seconds"].labels(kind).observe(self._lognormal(median, 0.5))

    def _log_records(self, requests: list[Request], now: float, seconds: float) -> list[dict[str, Any]]:
        """winston-style records of a sample of `requests` (at most log_lines_per_second)."""
        rng = self._rng
        allowed = self._whole("log", self.log_lines_per_second * seconds)
        picked = range(len(requests))
        if len(requests) > allowed:
            picked = sorted(rng.sample(picked, allowed))
        records = []
        for index in picked:
            r = requests[index]
            # Spread over the tick, so lines are not all stamped with the same millisecond.
            at = now - seconds + seconds * (index + 0.5) / len(requests)
            level = "error" if r.status_code >= 500 else "warn" if r.status_code >= 400 or r.note else "info"
            message = f"{r.method} {r.endpoint} {r.status_code}" + (f" ({r.note})" if r.note else "")
            records.append({
                "timestamp": rfc3339(at),
                "level": level,
                "service": SERVICE,
                "message": message,
                "correlationId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "traceId": f"{rng.getrandbits(128) | 1:032x}",
                "spanId": f"{rng.getrandbits(64) | 1:016x}",
                "method": r.method,
                "endpoint": r.endpoint,
                "statusCode": r.status_code,
                "durationMs": round(r.duration_seconds * 1000),
            })
        return records


def rfc3339(seconds: float) -> str:
    """winston's timestamp: UTC, milliseconds, Z (2026-01-02T03:04:05.678Z)."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- HTTP ---------------------------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    server: SimulatorServer

    def do_GET(self) -> None:
        path, simulator = urlsplit(self.path).path, self.server.simulator
        if path == "/metrics":
            self._send(200, simulator.exposition(), CONTENT_TYPE_PLAIN_0_0_4)
        elif path == "/api/health":
            self._json(*simulator.health())
        elif path == "/faults":
            self._json(200, simulator.faults.as_json())
        else:
            self._json(404, {"error": f"no {path} here: GET /metrics, /api/health, /faults; POST or DELETE /faults"})

    def do_POST(self) -> None:
        if urlsplit(self.path).path != "/faults":
            self._json(404, {"error": "only /faults accepts POST"})
            return
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            self._json(400, {"error": f"body: not JSON ({error})", "field": "body"})
            return
        try:
            faults = self.server.simulator.set_faults(body)
        except FaultError as error:
            self._json(400, {"error": str(error), "field": error.field})
            return
        self._json(200, faults.as_json())

    def do_DELETE(self) -> None:
        if urlsplit(self.path).path != "/faults":
            self._json(404, {"error": "only /faults accepts DELETE"})
            return
        self._json(200, self.server.simulator.reset_faults().as_json())

    def _json(self, status: int, body: Any) -> None:
        self._send(status, json.dumps(body, sort_keys=True).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # every scrape would print a line to stderr


class SimulatorServer(ThreadingHTTPServer):
    """The simulator behind HTTP on 127.0.0.1, ticking every TICK_SECONDS and writing its log
    lines. `stop()` (or leaving a `with` block) stops both threads and closes the log file."""

    daemon_threads = True

    def __init__(self, simulator: Simulator, port: int, log_file: str | Path) -> None:
        super().__init__((HOST, port), _Handler)
        self.simulator = simulator
        try:
            path = Path(log_file)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._log = path.open("a", encoding="utf-8")  # appended, as winston's file transport does
        except OSError:
            self.server_close()
            raise
        self._stopping = threading.Event()
        self._workers = (threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1},
                                          name="simulator-http", daemon=True),
                         threading.Thread(target=self._tick_forever, name="simulator-tick", daemon=True))

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> SimulatorServer:
        for thread in self._workers:
            thread.start()
        return self

    def _tick_forever(self) -> None:
        last = time.monotonic()
        while not self._stopping.wait(TICK_SECONDS):
            now = time.monotonic()
            records = self.simulator.tick(now - last)
            last = now
            if records:
                self._log.write("".join(json.dumps(r) + "\n" for r in records))
                self._log.flush()

    def stop(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        self.shutdown()
        for thread in self._workers:
            thread.join()
        self.server_close()
        self._log.close()

    def __enter__(self) -> SimulatorServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def serve(port: int, log_file: str | Path, rps: float = 20.0, seed: int = 1) -> SimulatorServer:
    """A running simulator on 127.0.0.1:`port` (0: any free port, see `.port`); call `.stop()`."""
    return SimulatorServer(Simulator(rps=rps, seed=seed), port, log_file).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack.sandbox.simulator", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--log-file", type=Path, required=True, help="JSON log lines are appended here")
    parser.add_argument("--rps", type=float, default=20.0, help="simulated requests per second (default 20)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the traffic model (default 1)")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server = serve(args.port, args.log_file, args.rps, args.seed)
    print(f"MediaNest simulator on {server.url} (metrics /metrics, health /api/health, faults /faults), "
          f"{args.rps:g} requests/s, logs to {args.log_file}", file=sys.stderr, flush=True)
    while not stop.wait(1):
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
