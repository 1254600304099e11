"""MediaNest's traffic simulator: a stand-in for the Node.js backend in the sandbox.

It serves the backend's metrics (built from rules/metrics/medianest.py, so the catalog is the
only list of names), `/api/health`, and a fault injection API (`/faults`), and writes
winston-style JSON log lines. Healthy traffic keeps every MediaNest alert and SLO silent; each
fault is what makes its alert fire.

    python -m stack.sandbox.simulator --port P --log-file F [--rps 20] [--seed 1] [--otlp-endpoint URL]

`Simulator` holds the state and the traffic model (no HTTP, deterministic for a seed);
`serve()` runs it behind an HTTP server with a ticking thread.

Traces (with `--otlp-endpoint`, OTLP over HTTP; none without it): each request is a SERVER span
named after its route (`GET /api/v1/media`), with a CLIENT span per PostgreSQL query and Redis
command it makes, stamped with the simulated times (a 2.5 s latency fault gives 2.5 s spans, no
sleeping). Its trace id is the `traceId` of its log line and the `trace_id` exemplar of its
latency bucket and request counter (OpenMetrics scrapes only: the text format has no exemplars).
The traffic model is the same with or without traces: same seed, same metrics and log lines
(ids apart).
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

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
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
    """One simulated request, as the access log sees it: it ended at `end` (the clock's seconds)."""

    method: str
    endpoint: str
    status_code: int
    duration_seconds: float
    end: float
    note: str = ""
    # Its span's ids (hex), when traces are on.
    trace_id: str | None = None
    span_id: str | None = None


# --- Traces -------------------------------------------------------------------------------------

# Instrumentation scope of the simulator's spans.
TRACER = "medianest-simulator"
# Where MediaNest's backend finds PostgreSQL and Redis (docker-compose service names), and which
# database: what a real client span would say.
POSTGRES = {"db.system.name": "postgresql", "db.system": "postgresql", "db.namespace": "medianest",
            "server.address": "postgres", "server.port": 5432}
REDIS = {"db.system.name": "redis", "db.system": "redis", "db.namespace": "0",
         "server.address": "redis", "server.port": 6379}
# The batch processor's queue: a tick's spans arrive at once (~5 per request), and a full queue
# drops spans. At --rps 200 a 0.5 s tick makes ~500; this keeps 16 ticks' worth.
SPAN_QUEUE = 8192
SPAN_BATCH = 512
SPAN_DELAY_MILLIS = 1000  # spans reach the collector within about a second
EXPORT_TIMEOUT_SECONDS = 5.0
SHUTDOWN_SECONDS = 8.0  # flushing on stop waits no longer (the sandbox kills after 10 s)


# A PostgreSQL query (operation, table, seconds) or a Redis command (command, None, seconds) a
# request made: one CLIENT span. Plain tuples: the model makes millions of them with traces off.
Call = tuple[str, str | None, float]


def _call_span(call: Call) -> tuple[str, dict[str, str | int]]:
    """A call's span name and attributes (OpenTelemetry's database semantic conventions)."""
    operation, table, _ = call
    if table is None:
        command = operation.upper()
        return command, {**REDIS, "db.operation.name": command}
    summary = f"{operation} {table}"
    return summary, {**POSTGRES, "db.operation.name": operation, "db.collection.name": table,
                     "db.query.summary": summary}


def tracer_provider(exporter: SpanExporter) -> TracerProvider:
    """MediaNest's backend as a tracer provider (service.name medianest-backend, the `service`
    of its log lines: Grafana's traces-to-logs maps one to the other), exporting every span
    through a batch processor. `shutdown()` flushes it."""
    # No shutdown at exit: `SimulatorServer.stop` flushes, within SHUTDOWN_SECONDS.
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE, "service.namespace": "medianest"}),
                              shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=SPAN_QUEUE,
                                                   schedule_delay_millis=SPAN_DELAY_MILLIS,
                                                   max_export_batch_size=SPAN_BATCH))
    return provider


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL of a collector's base URL (`http://127.0.0.1:4318`), or the URL
    itself when it already ends in /v1/traces; ValueError when it is not an http(s) URL."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"{endpoint!r} is not an OTLP/HTTP endpoint: expected http(s)://HOST:PORT")
    path = parts.path.rstrip("/")
    return endpoint if path.endswith("/v1/traces") else f"{parts.scheme}://{parts.netloc}{path}/v1/traces"


def otlp_exporter(endpoint: str) -> SpanExporter:
    """An OTLP/HTTP (protobuf) span exporter to `endpoint` (see `traces_url`), straight to it
    whatever HTTP(S)_PROXY says."""
    import requests
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    session = requests.Session()
    session.trust_env = False  # the collector is on loopback or the stack's network, never behind a proxy
    return OTLPSpanExporter(endpoint=traces_url(endpoint), timeout=EXPORT_TIMEOUT_SECONDS, session=session)


def _nanoseconds(seconds: float) -> int:
    return round(seconds * 1e9)


# --- The simulator ------------------------------------------------------------------------------

class Simulator:
    """The backend's state and traffic model, without HTTP. `tick(seconds)` advances it; for a
    seed (and a fixed clock) the metrics and log records are the same on every run.

    With a `tracer_provider` (see `tracer_provider()`), every request is also a trace: its spans
    go to the provider's processors, its trace id to its log line and its exemplars. The provider
    belongs to the caller (`SimulatorServer.stop` shuts down the one `serve` made)."""

    def __init__(self, rps: float = 20.0, seed: int = 1, clock: Callable[[], float] = time.time,
                 log_lines_per_second: float = LOG_LINES_PER_SECOND,
                 tracer_provider: trace.TracerProvider | None = None) -> None:
        if not 0 <= rps <= 100_000:
            raise ValueError(f"rps must be from 0 to 100000, not {rps}")
        self.rps = rps
        self.log_lines_per_second = log_lines_per_second
        self.tracer_provider = tracer_provider
        self._tracer = None if tracer_provider is None else tracer_provider.get_tracer(TRACER)
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

    @property
    def tracing(self) -> bool:
        return self._tracer is not None

    def exposition(self) -> bytes:
        """The Prometheus text format (0.0.4): no exemplars."""
        return self.scrape("")[0]

    def scrape(self, accept: str | None) -> tuple[bytes, str]:
        """The body and content type a scrape with this Accept header gets: OpenMetrics (with the
        exemplars) when asked for, as Prometheus does by default; else the text format."""
        encode, content_type = choose_encoder(accept or "")
        # Under the lock: a scrape never sees a tick half applied (e.g. jobs queued, not yet completed).
        with self._lock:
            return encode(_WithoutCreated(self.registry)), content_type

    # --- time -----------------------------------------------------------------------------------

    def tick(self, seconds: float) -> list[dict[str, Any]]:
        """Advance by `seconds`: about rps x seconds requests, their database, Redis, cache,
        external and job work, and the process gauges. Returns the log records sampled."""
        if seconds < 0:
            raise ValueError("cannot tick backwards")
        with self._lock:
            now = self._clock()
            self._arrivals = {}
            count = self._whole("requests", self.rps * seconds)
            # Each ends at its share of the tick, so requests (and their log lines) are not all
            # stamped with the same millisecond.
            requests = [self._request(now - seconds + seconds * (index + 0.5) / count) for index in range(count)]
            self._jobs(seconds)
            self._gauges(seconds)
            self._process(seconds, len(requests))
            return self._log_records(requests, seconds)

    def _whole(self, key: str, amount: float) -> int:
        """The whole part of `amount`, carrying the fraction to the next tick: rates stay exact."""
        total = self._carry.get(key, 0.0) + amount
        whole = int(total)
        self._carry[key] = total - whole
        return whole

    def _lognormal(self, median: float, cap: float, sigma: float = 0.5) -> float:
        return min(self._rng.lognormvariate(math.log(median), sigma), cap)

    def _request(self, end: float) -> Request:
        """One request that ended at `end`."""
        faults, m, rng = self._faults, self.metrics, self._rng
        ep = rng.choices(ENDPOINTS, weights=[e.weight for e in ENDPOINTS])[0]
        status = self._status(ep)
        duration = self._lognormal(ep.median_seconds, HEALTHY_MAX_SECONDS)
        note = ""
        queries: list[Call] = []
        for operation, table in ep.queries:
            query = self._lognormal(0.004, 0.25, sigma=0.6) + faults.database_latency_seconds
            m["medianest_database_query_duration_seconds"].labels(operation, table, "success").observe(query)
            duration += faults.database_latency_seconds
            queries.append((operation, table, query))
        redis = list(ep.redis)
        served_from_cache = False
        if ep.cache:
            served_from_cache = rng.random() < CACHE_HIT_RATIO
            ratio = self._hit_ratio[ep.cache]
            # A moving average over the last ~50 lookups, as a hit-ratio gauge would report.
            self._hit_ratio[ep.cache] = ratio + (float(served_from_cache) - ratio) * 0.02
            redis += ["get"] if served_from_cache else ["get", "set"]
        commands: list[Call] = []
        for command in redis:
            seconds = self._lognormal(0.0006, 0.02)
            m["medianest_redis_operation_duration_seconds"].labels(command, "success").observe(seconds)
            commands.append((command, None, seconds))
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
        # The session lookup, the queries, then the cache and any other writes, one after the
        # other: a request lasts at least as long as they do.
        calls = commands[:1] + queries + commands[1:]
        duration = max(duration, sum(seconds for _, _, seconds in calls))
        duration += faults.latency_seconds
        trace_id = span_id = None
        if self._tracer is not None:
            trace_id, span_id = self._spans(ep, status, duration, end, calls)
        exemplar = None if trace_id is None else {"trace_id": trace_id}
        labels = (ep.method, ep.path, str(status))
        m["medianest_http_request_duration_seconds"].labels(*labels).observe(duration, exemplar=exemplar)
        m["medianest_http_requests_total"].labels(*labels).inc(exemplar=exemplar)
        return Request(ep.method, ep.path, status, duration, end, note, trace_id, span_id)

    def _spans(self, ep: Endpoint, status: int, duration: float, end: float, calls: list[Call]) -> tuple[str, str]:
        """The request's SERVER span, lasting `duration` up to `end`, and a CLIENT span per call,
        spread evenly over it; the server span's (trace id, span id) in hex."""
        assert self._tracer is not None
        # In whole nanoseconds from the end: each span lasts its duration to the nanosecond (a
        # float of the clock's seconds is only precise to a fraction of a microsecond).
        end_ns = _nanoseconds(end)
        start_ns = end_ns - _nanoseconds(duration)
        busy = [_nanoseconds(seconds) for _, _, seconds in calls]
        # (Never below 0: a request as long as its calls has them back to back.)
        gap = max((end_ns - start_ns - sum(busy)) // (len(calls) + 1), 0)
        attributes: dict[str, str | int] = {
            "http.request.method": ep.method, "http.route": ep.path, "url.path": ep.path, "url.scheme": "http",
            "network.protocol.version": "1.1", "http.response.status_code": status}
        if status >= 500:
            attributes["error.type"] = str(status)
        span = self._tracer.start_span(f"{ep.method} {ep.path}", kind=SpanKind.SERVER, attributes=attributes,
                                       start_time=start_ns)
        parent = trace.set_span_in_context(span)
        at = start_ns + gap
        for call, length in zip(calls, busy, strict=True):
            name, call_attributes = _call_span(call)
            child = self._tracer.start_span(name, context=parent, kind=SpanKind.CLIENT,
                                            attributes=call_attributes, start_time=at)
            child.end(end_time=min(at + length, end_ns))  # nanoseconds of rounding at most
            at += length + gap
        if status >= 500:
            # Server spans: 5xx is an error, 4xx is the client's (left unset).
            span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
        span.end(end_time=end_ns)
        context = span.get_span_context()
        return trace.format_trace_id(context.trace_id), trace.format_span_id(context.span_id)

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

    def _log_records(self, requests: list[Request], seconds: float) -> list[dict[str, Any]]:
        """winston-style records of a sample of `requests` (at most log_lines_per_second)."""
        rng = self._rng
        allowed = self._whole("log", self.log_lines_per_second * seconds)
        picked = range(len(requests))
        if len(requests) > allowed:
            picked = sorted(rng.sample(picked, allowed))
        records = []
        for index in picked:
            r = requests[index]
            level = "error" if r.status_code >= 500 else "warn" if r.status_code >= 400 or r.note else "info"
            message = f"{r.method} {r.endpoint} {r.status_code}" + (f" ({r.note})" if r.note else "")
            # Random ids stand in for a trace's when traces are off; drawn either way, so the
            # model's later draws (and so its metrics) do not depend on traces.
            correlation_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            trace_id, span_id = f"{rng.getrandbits(128) | 1:032x}", f"{rng.getrandbits(64) | 1:016x}"
            records.append({
                "timestamp": rfc3339(r.end),
                "level": level,
                "service": SERVICE,
                "message": message,
                "correlationId": correlation_id,
                "traceId": trace_id if r.trace_id is None else r.trace_id,
                "spanId": span_id if r.span_id is None else r.span_id,
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
            self._send(200, *simulator.scrape(self.headers.get("Accept")))
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
    """The simulator behind HTTP on its host (127.0.0.1 by default), ticking every TICK_SECONDS and writing its log
    lines. `stop()` (or leaving a `with` block) stops both threads, closes the log file and shuts
    down the simulator's tracer provider (flushing its spans), if it has one."""

    daemon_threads = True

    def __init__(self, simulator: Simulator, port: int, log_file: str | Path, host: str = HOST) -> None:
        super().__init__((host, port), _Handler)
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
        return f"http://{self.server_address[0]}:{self.port}"

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
        provider = self.simulator.tracer_provider
        if isinstance(provider, TracerProvider):
            # Flushes the spans not yet exported; a collector that does not answer delays the
            # exit by SHUTDOWN_SECONDS at most (the exporter retries until its timeout).
            flush = threading.Thread(target=provider.shutdown, name="simulator-trace-flush", daemon=True)
            flush.start()
            flush.join(SHUTDOWN_SECONDS)

    def __enter__(self) -> SimulatorServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def serve(port: int, log_file: str | Path, rps: float = 20.0, seed: int = 1,
          otlp_endpoint: str | None = None, host: str = HOST) -> SimulatorServer:
    """A running simulator on `host`:`port` (0: any free port, see `.port`); call `.stop()`.
    With `otlp_endpoint` (a collector's OTLP/HTTP base URL), its requests are traces sent there."""
    provider = None if otlp_endpoint is None else tracer_provider(otlp_exporter(otlp_endpoint))
    try:
        return SimulatorServer(Simulator(rps=rps, seed=seed, tracer_provider=provider), port, log_file, host).start()
    except BaseException:
        if provider is not None:
            provider.shutdown()
        raise


def _otlp_endpoint(value: str) -> str:
    try:
        traces_url(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack.sandbox.simulator", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True, help="port to listen on (0: any free port)")
    parser.add_argument("--host", default=HOST,
                        help=f"the address to listen on (default {HOST}; a Docker network's gateway to be scraped "
                             "from its containers as host.docker.internal)")
    parser.add_argument("--log-file", type=Path, required=True, help="JSON log lines are appended here")
    parser.add_argument("--rps", type=float, default=20.0, help="simulated requests per second (default 20)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the traffic model (default 1)")
    parser.add_argument("--otlp-endpoint", type=_otlp_endpoint, metavar="URL",
                        help="send a trace of every request to this OTLP/HTTP collector (e.g. http://127.0.0.1:4318; "
                             "/v1/traces is appended); without it, no traces")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server = serve(args.port, args.log_file, args.rps, args.seed, args.otlp_endpoint, args.host)
    traces = "no traces" if args.otlp_endpoint is None else f"traces to {traces_url(args.otlp_endpoint)}"
    print(f"MediaNest simulator on {server.url} (metrics /metrics, health /api/health, faults /faults), "
          f"{args.rps:g} requests/s, logs to {args.log_file}, {traces}", file=sys.stderr, flush=True)
    while not stop.wait(1):
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
