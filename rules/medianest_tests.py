"""promtool tests for MediaNest's rules: each alert fires on the failure it exists for, with
its exact labels and description, and stays silent on a close but healthy case.

Series are computed from the configured thresholds, so a test proves the threshold the stack
actually deploys. Counters are written as increments per one-minute step.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rules import medianest as m
from rules.checks.le_selector import bucket_label, le_matcher
from rules.humanize import humanize1024, humanize_duration, humanize_percentage, value
from rules.metrics import CATALOG
from rules.testing import AlertAt, Expected, ExprAt, RuleTest, Series

if TYPE_CHECKING:
    from stack.config import StackConfig

STEPS = 70  # minutes of input data; every check below evaluates within them

# What each alert carries whatever the data, stated apart from rules/medianest.py: a wrong
# severity, routing label or summary there fails these tests.
EXPECTED = {
    "ApplicationDown": Expected("critical", "medianest", "MediaNest backend is down"),
    "HighErrorRate": Expected("critical", "medianest", "MediaNest backend is failing requests"),
    "HighResponseTime": Expected("warning", "medianest", "MediaNest backend responds slowly"),
    "SlowDatabaseQueries": Expected("warning", "medianest", "MediaNest database queries are slow"),
    "DatabaseConnectionHigh": Expected("warning", "medianest", "MediaNest holds many database connections"),
    "HighMemoryUsage": Expected("warning", "medianest", "MediaNest backend uses a lot of memory"),
    "MemoryLeakSuspected": Expected("warning", "medianest", "MediaNest heap keeps growing"),
    "EventLoopLagHigh": Expected("warning", "medianest", "MediaNest event loop is lagging"),
    "ExternalServiceDown": Expected("critical", "medianest", "An external service's circuit breaker is open"),
    "BackgroundJobQueueBuildup": Expected("warning", "medianest",
                                          "Background jobs are queued faster than they finish"),
    "QueueBacklog": Expected("warning", "business", "A processing queue has a backlog"),
    "LowActiveUsers": Expected("info", "business", "No active user sessions"),
    "AuthenticationFailuresHigh": Expected("warning", "medianest", "Many authentication attempts fail"),
}


def tests(config: StackConfig) -> tuple[RuleTest, ...]:
    return (
        *_availability(config), *_errors(config), *_latency(config), *_database(config),
        *_process(config), *_dependencies(config), *_queues(config), *_business(config),
        *_auth(config),
    )


def _labels(config: StackConfig, **extra: str) -> str:
    pairs = {"job": config.jobs.backend, "instance": m.INSTANCE, **extra}
    return "{" + ",".join(f'{k}="{v}"' for k, v in pairs.items()) + "}"


def _series(config: StackConfig, metric: str, values: str, **labels: str) -> Series:
    return Series(metric + _labels(config, **labels), values)


def _counter(per_minute: float, steps: int = STEPS) -> str:
    return f"0+{per_minute:g}x{steps}"


def _fires(at: str, alert: str, labels: dict[str, str], description: str) -> AlertAt:
    return AlertAt(at, alert, (EXPECTED[alert].firing(labels, description),))


def _target(config: StackConfig) -> dict[str, str]:
    return {"job": config.jobs.backend, "instance": m.INSTANCE}


def _availability(config: StackConfig) -> list[RuleTest]:
    job = config.jobs.backend
    up = "up"
    return [
        RuleTest("A backend target down for a minute pages", (
            _series(config, up, "1 0 0 0 0"),), alerts=(
            _fires("3m", "ApplicationDown", _target(config),
                    f"The MediaNest backend cannot be reached through {m.INSTANCE} for more than 1 minute."),)),
        RuleTest("A backend that vanished from service discovery pages", (
            Series('up{job="other"}', "1x10"),), alerts=(
            _fires("3m", "ApplicationDown", {"job": job},
                    f"No {job} target is being scraped for more than 1 minute."),)),
        RuleTest("One failed scrape of the backend raises nothing", (
            _series(config, up, "1 0 1 1 1"),), alerts=(AlertAt("3m", "ApplicationDown"),)),
    ]


def _http(config: StackConfig, ok_per_minute: float, errors_per_minute: float) -> tuple[Series, ...]:
    get = {"method": "GET", "endpoint": "/api/v1/media"}
    return (
        _series(config, "medianest_http_requests_total", _counter(ok_per_minute), **get, status_code="200"),
        _series(config, "medianest_http_requests_total", _counter(errors_per_minute), **get,
                status_code="503"),
    )


# 480 requests a minute is 8 per second, and an error share that is a power of two gives rates
# and ratios binary floating point holds exactly: promtool compares expression results
# exactly, so any configured threshold yields exact expectations (600 a minute with a share of
# 0.14 gave 0.13999999999999999; shares like 7/32 still round in PromQL's rate arithmetic).
REQUESTS_PER_MINUTE = 480


def _failing_share(ratio: float) -> float:
    """The smallest power of two at least twice the threshold."""
    return min(1.0, 2.0 ** math.ceil(math.log2(2 * ratio)))


def _errors(config: StackConfig) -> list[RuleTest]:
    ratio = config.thresholds.error_ratio
    job = config.jobs.backend
    failing = _failing_share(ratio)
    healthy = 0.9 * ratio
    total = REQUESTS_PER_MINUTE
    per_second = total / 60
    endpoint = {"job": job, "endpoint": "/api/v1/media"}
    return [
        RuleTest("Twice the allowed share of 5xx for 5 minutes pages", _http(
            config, total * (1 - failing), total * failing), alerts=(
            _fires("10m", "HighErrorRate", {"job": job},
                    f"{humanize_percentage(failing)} of {job} requests failed with a 5xx over "
                    "the last 5 minutes."),), exprs=(
            ExprAt("10m", m.REQUESTS_RATE, ((f'{m.REQUESTS_RATE}{{job="{job}"}}', per_second),)),
            ExprAt("10m", m.ERRORS_RATE, ((f'{m.ERRORS_RATE}{{job="{job}"}}', per_second * failing),)),
            ExprAt("10m", m.ERROR_RATIO, ((f'{m.ERROR_RATIO}{{job="{job}"}}', failing),)),
            ExprAt("10m", m.ENDPOINT_REQUESTS_RATE, (
                (m.ENDPOINT_REQUESTS_RATE + _braces(endpoint), per_second),)),
            ExprAt("10m", m.ENDPOINT_ERROR_RATIO, ((m.ENDPOINT_ERROR_RATIO + _braces(endpoint), failing),)),
        )),
        RuleTest("Traffic without a single 5xx series has an error ratio of 0, not none", (
            _series(config, "medianest_http_requests_total", _counter(total), method="GET",
                    endpoint="/api/v1/media", status_code="200"),), exprs=(
            ExprAt("10m", m.ERROR_RATIO, ((f'{m.ERROR_RATIO}{{job="{job}"}}', 0),)),
            ExprAt("10m", m.ENDPOINT_ERROR_RATIO, ((m.ENDPOINT_ERROR_RATIO + _braces(endpoint), 0),)),
        ), alerts=(AlertAt("10m", "HighErrorRate"),)),
        RuleTest("A 5xx share just under the threshold raises nothing", _http(
            config, total * (1 - healthy), total * healthy), alerts=(AlertAt("20m", "HighErrorRate"),)),
        RuleTest("A burst of 5xx shorter than 5 minutes raises nothing", (
            # Steady successes beside the burst: with a share of 1 there would be none, and the
            # error ratio alone would stay 1 while any error is in the window.
            *_http(config, total, 0)[:1],
            _series(config, "medianest_http_requests_total", f"0x5 0+{total * failing:g}x3 _x10",
                    method="GET", endpoint="/api/v1/media", status_code="503"),
        ), alerts=(AlertAt("12m", "HighErrorRate"), AlertAt("15m", "HighErrorRate"))),
    ]


def _braces(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def _histogram(config: StackConfig, metric: str, per_minute: float, bucket_index: int,
               **labels: str) -> tuple[Series, ...]:
    """A histogram whose observations all fall in bucket `bucket_index` (0 = the first bound)."""
    bounds = CATALOG.metrics[metric].buckets
    out = []
    for i, bound in enumerate((*bounds, float("inf"))):
        le = bucket_label(bound)  # as Prometheus 3 stores it
        rate = per_minute if i >= bucket_index else 0
        out.append(_series(config, f"{metric}_bucket", _counter(rate), **labels, le=le))
    out.append(_series(config, f"{metric}_count", _counter(per_minute), **labels))
    return tuple(out)


def _quantile_in_bucket(metric: str, bucket_index: int, q: float) -> float:
    """histogram_quantile's linear interpolation when every observation is in one bucket."""
    bounds = CATALOG.metrics[metric].buckets
    lower = bounds[bucket_index - 1] if bucket_index > 0 else 0.0
    return lower + (bounds[bucket_index] - lower) * q


def _buckets_around(metric: str, threshold: float) -> tuple[int, int]:
    """(bucket just under the threshold, bucket just over it): their p95 straddle it."""
    bounds = CATALOG.metrics[metric].buckets
    over = next((i for i, b in enumerate(bounds) if b > threshold), None)
    if over is None or over == 0:
        raise ValueError(f"{metric}: threshold {threshold} is outside the buckets {bounds}")
    return over - 1, over


def _latency(config: StackConfig) -> list[RuleTest]:
    job = config.jobs.backend
    metric = "medianest_http_request_duration_seconds"
    threshold = config.thresholds.response_time_p95_seconds
    under, over = _buckets_around(metric, threshold)
    if _quantile_in_bucket(metric, under, 0.95) > threshold:
        raise ValueError(f"responseTimeP95Seconds {threshold} is not testable with buckets "
                         f"{CATALOG.metrics[metric].buckets}: pick a value near a bucket bound")
    slow = _quantile_in_bucket(metric, over, 0.95)
    labels = {"method": "GET", "endpoint": "/api/v1/media", "status_code": "200"}
    exprs = tuple(
        ExprAt("15m", name.format(q=q),
               ((name.format(q=q) + _braces(sel), _quantile_in_bucket(metric, over, q / 100)),))
        for q in (50, 95, 99)
        for name, sel in ((m.LATENCY_P, {"job": job}),
                          (m.ENDPOINT_LATENCY_P, {"job": job, "endpoint": "/api/v1/media"}))
    )
    bound = CATALOG.metrics[metric].buckets[over]
    le = le_matcher(bound)
    return [
        RuleTest("p95 latency over the threshold for 10 minutes opens a ticket",
                 _histogram(config, metric, 600, over, **labels), alerts=(
                     _fires("15m", "HighResponseTime", {"job": job},
                             f"95th percentile latency of {job} is {humanize_duration(slow)} over all "
                             "endpoints."),), exprs=(*exprs,
                     ExprAt("15m", f"{m.LATENCY_BUCKETS}{{{le}}}", (
                         (f'{m.LATENCY_BUCKETS}{{job="{job}",le="{bucket_label(bound)}"}}', 10),)),
                     ExprAt("15m", f"{m.ENDPOINT_LATENCY_BUCKETS}{{{le}}}", (
                         (m.ENDPOINT_LATENCY_BUCKETS
                          + _braces({"job": job, "endpoint": "/api/v1/media", "le": bucket_label(bound)}), 10),)),
                 )),
        RuleTest("p95 latency just under the threshold raises nothing",
                 _histogram(config, metric, 600, under, **labels),
                 alerts=(AlertAt("30m", "HighResponseTime"),)),
    ]


def _database(config: StackConfig) -> list[RuleTest]:
    job = config.jobs.backend
    t = config.thresholds
    metric = "medianest_database_query_duration_seconds"
    under, over = _buckets_around(metric, t.database_query_p95_seconds)
    labels = {"operation": "SELECT", "table": "media_files", "status": "success"}
    slow = _quantile_in_bucket(metric, over, 0.95)
    connections = "medianest_database_connections_active"
    many = t.database_connections + 5
    return [
        RuleTest("p95 database query time over the threshold for 10 minutes opens a ticket",
                 _histogram(config, metric, 120, over, **labels), alerts=(
                     _fires("15m", "SlowDatabaseQueries", {"job": job},
                             f"95th percentile database query time of {job} is "
                             f"{humanize_duration(slow)}."),), exprs=(
                     ExprAt("15m", m.DB_QUERY_P95, ((f'{m.DB_QUERY_P95}{{job="{job}"}}', slow),)),)),
        RuleTest("p95 database query time under the threshold raises nothing",
                 _histogram(config, metric, 120, under, **labels),
                 alerts=(AlertAt("30m", "SlowDatabaseQueries"),)),
        RuleTest("Too many database connections for 5 minutes opens a ticket", (
            _series(config, connections, f"{many}x10"),), alerts=(
            _fires("6m", "DatabaseConnectionHigh", _target(config),
                    f"{m.INSTANCE} holds {value(many)} active database connections."),)),
        RuleTest("Database connections at the threshold raise nothing", (
            _series(config, connections, f"{t.database_connections}x30"),),
            alerts=(AlertAt("20m", "DatabaseConnectionHigh"),)),
        RuleTest("A connection spike shorter than 5 minutes raises nothing", (
            _series(config, connections, f"{many}x3 10x10"),),
            alerts=(AlertAt("4m", "DatabaseConnectionHigh"),)),
    ]


def _process(config: StackConfig) -> list[RuleTest]:
    t = config.thresholds
    rss, heap, lag = ("medianest_process_resident_memory_bytes",
                      "medianest_nodejs_heap_size_used_bytes", "medianest_nodejs_eventloop_lag_seconds")
    big = t.resident_memory_bytes * 1.5
    growth = t.heap_growth_bytes_per_minute * 2
    slow_growth = t.heap_growth_bytes_per_minute * 0.5
    start = 100 * 1024 * 1024
    laggy = t.event_loop_lag_seconds * 3
    return [
        RuleTest("Resident memory over the limit for 15 minutes opens a ticket", (
            _series(config, rss, f"{big:g}x20"),), alerts=(
            _fires("16m", "HighMemoryUsage", _target(config),
                    f"{m.INSTANCE} resident memory is {humanize1024(big)}B."),)),
        RuleTest("Resident memory over the limit for less than 15 minutes raises nothing", (
            _series(config, rss, f"{big:g}x20"),), alerts=(AlertAt("14m", "HighMemoryUsage"),)),
        RuleTest("A heap growing twice as fast as allowed for 30 minutes opens a ticket", (
            _series(config, heap, f"{start}+{growth:g}x60"),), alerts=(
            _fires("50m", "MemoryLeakSuspected", _target(config),
                    f"The heap of {m.INSTANCE} has grown by {humanize1024(growth)}B per minute "
                    "for 30 minutes."),)),
        RuleTest("A heap growing slower than the limit raises nothing", (
            _series(config, heap, f"{start}+{slow_growth:g}x60"),),
            alerts=(AlertAt("60m", "MemoryLeakSuspected"),)),
        RuleTest("Event loop lag over the limit for 5 minutes opens a ticket", (
            _series(config, lag, f"{laggy:g}x10"),), alerts=(
            _fires("6m", "EventLoopLagHigh", _target(config),
                    f"Event loop lag on {m.INSTANCE} is {humanize_duration(laggy)}."),)),
        RuleTest("Event loop lag at the limit raises nothing", (
            _series(config, lag, f"{t.event_loop_lag_seconds:g}x30"),),
            alerts=(AlertAt("20m", "EventLoopLagHigh"),)),
    ]


def _dependencies(config: StackConfig) -> list[RuleTest]:
    job = config.jobs.backend
    breaker = "medianest_circuit_breaker_state"
    return [
        RuleTest("An open circuit breaker pages once per service", (
            _series(config, breaker, "1x5", service="plex"),
            Series(f'{breaker}{{job="{job}",instance="backend-2:3000",service="plex"}}', "1x5"),
            _series(config, breaker, "0x5", service="tmdb"),
        ), alerts=(_fires("2m", "ExternalServiceDown", {"job": job, "external_service": "plex"},
                   "The circuit breaker for plex has been open for more than 1 minute."),)),
        RuleTest("A half-open breaker, or one open for under a minute, raises nothing", (
            _series(config, breaker, "2x5", service="plex"),
            _series(config, breaker, "0 1 0 0 0", service="tmdb"),
        ), alerts=(AlertAt("1m", "ExternalServiceDown"), AlertAt("3m", "ExternalServiceDown"))),
    ]


def _queues(config: StackConfig) -> list[RuleTest]:
    job = config.jobs.backend
    jobs_total = "medianest_background_jobs_total"
    backlog = config.thresholds.queue_backlog_items
    return [
        RuleTest("Jobs queued faster than they finish for 30 minutes open a ticket", (
            _series(config, jobs_total, _counter(60), queue="transcode", status="queued"),
            _series(config, jobs_total, _counter(30), queue="transcode", status="completed"),
            _series(config, jobs_total, _counter(6), queue="transcode", status="failed"),
        ), alerts=(_fires("50m", "BackgroundJobQueueBuildup", {"job": job, "queue": "transcode"},
                   "Queue transcode receives 1.00 jobs/s, more than it finishes."),)),
        RuleTest("A stalled queue that finishes nothing opens a ticket", (
            _series(config, jobs_total, _counter(60), queue="metadata", status="queued"),
        ), alerts=(_fires("50m", "BackgroundJobQueueBuildup", {"job": job, "queue": "metadata"},
                   "Queue metadata receives 1.00 jobs/s, more than it finishes."),)),
        RuleTest("A queue that keeps up raises nothing", (
            _series(config, jobs_total, _counter(60), queue="transcode", status="queued"),
            _series(config, jobs_total, _counter(54), queue="transcode", status="completed"),
            _series(config, jobs_total, _counter(6), queue="transcode", status="failed"),
        ), alerts=(AlertAt("60m", "BackgroundJobQueueBuildup"),)),
        RuleTest("A queue over its backlog limit for 15 minutes opens a ticket", (
            _series(config, "medianest_queue_size", f"{backlog + 10}x20", queue_name="uploads"),
        ), alerts=(_fires("16m", "QueueBacklog", {**_target(config), "queue_name": "uploads"},
                   f"Queue uploads has {value(backlog + 10)} items pending."),)),
        RuleTest("A queue at its backlog limit raises nothing", (
            _series(config, "medianest_queue_size", f"{backlog}x30", queue_name="uploads"),
        ), alerts=(AlertAt("20m", "QueueBacklog"),)),
    ]


def _business(config: StackConfig) -> list[RuleTest]:
    job = config.jobs.backend
    sessions = "medianest_user_sessions_active"
    return [
        RuleTest("No active sessions for 30 minutes is recorded as info", (
            _series(config, sessions, "0x40"),), alerts=(
            _fires("31m", "LowActiveUsers", {"job": job},
                    f"No active user sessions on {job} for 30 minutes."),)),
        RuleTest("A single active session keeps LowActiveUsers quiet", (
            _series(config, sessions, "1x40"),), alerts=(AlertAt("35m", "LowActiveUsers"),)),
    ]


def _auth(config: StackConfig) -> list[RuleTest]:
    t = config.thresholds
    job = config.jobs.backend
    attempts = "medianest_auth_attempts_total"
    busy = max(t.auth_min_attempts_per_second * 60 * 4, 12.0)  # attempts per minute
    bad = min(t.auth_failure_ratio * 2, 1.0)
    quiet = t.auth_min_attempts_per_second * 60 * 0.5
    return [
        RuleTest("A high share of failed logins under real traffic opens a ticket", (
            _series(config, attempts, _counter(busy * (1 - bad)), status="success"),
            _series(config, attempts, _counter(busy * bad), status="failure"),
        ), alerts=(_fires("25m", "AuthenticationFailuresHigh", {"job": job},
                   f"{humanize_percentage(bad)} of authentication attempts on {job} failed over "
                   "10 minutes."),)),
        RuleTest("The same failure share in a quiet hour raises nothing", (
            _series(config, attempts, _counter(quiet * (1 - bad)), status="success"),
            _series(config, attempts, _counter(quiet * bad), status="failure"),
        ), alerts=(AlertAt("30m", "AuthenticationFailuresHigh"),)),
        RuleTest("A failure share just under the threshold raises nothing", (
            _series(config, attempts, _counter(busy * (1 - 0.9 * t.auth_failure_ratio)), status="success"),
            _series(config, attempts, _counter(busy * 0.9 * t.auth_failure_ratio), status="failure"),
        ), alerts=(AlertAt("30m", "AuthenticationFailuresHigh"),)),
    ]
