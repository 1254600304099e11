"""MediaNest's own dashboards: the system overview and the business metrics.

Queries read the recorded series of rules/medianest.py where one exists; rates use
`$__rate_interval`; panels that watch an alert link to its runbook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dashboards.common import bar_gauge, endpoint, environment, instance, stat, table, timeseries
from dashboards.model import DashboardSpec, Row, Unit, prom, steps
from rules import medianest as rec

if TYPE_CHECKING:
    from stack.config import StackConfig

FOLDER = "medianest"


def system_overview(config: StackConfig) -> DashboardSpec:
    job = f'job="{config.jobs.backend}"'
    inst = f'{job}, instance=~"$instance"'
    ep = f'{job}, endpoint=~"$endpoint"'
    t = config.thresholds
    p95, p99 = rec.LATENCY_P.format(q=95), rec.LATENCY_P.format(q=99)

    def quantile(metric: str, by: str, selector: str) -> str:
        return (f"histogram_quantile(0.95, sum by (le, {by}) "
                f"(rate({metric}_bucket{{{selector}}}[$__rate_interval])))")

    return DashboardSpec(
        uid="medianest-overview", title="MediaNest / System overview", folder=FOLDER,
        description="Traffic, errors, latency, sessions, dependencies and background work of the backend.",
        tags=("medianest", "generated"),
        variables=(environment(config), instance(config.jobs.backend), endpoint(config)),
        rows=(
            Row(title="Traffic, errors and latency", panels=(
                stat("Request rate", "Requests per second over all endpoints (5m rate).", Unit.REQUESTS_PER_SECOND,
                     prom(f"sum({rec.REQUESTS_RATE}{{{job}}})")),
                stat("Error ratio", "Share of requests answered with a 5xx. Red from the HighErrorRate threshold.",
                     Unit.PERCENT_UNIT, prom(f"{rec.ERROR_RATIO}{{{job}}}"),
                     thresholds=steps("green", (t.error_ratio, "red")), alerts=("HighErrorRate",)),
                stat("p95 latency", "95th percentile response time over all endpoints.", Unit.SECONDS,
                     prom(f"{p95}{{{job}}}"), thresholds=steps("green", (t.response_time_p95_seconds, "red")),
                     alerts=("HighResponseTime",)),
                stat("Active sessions", "Users with an active session now.", Unit.SHORT,
                     prom(f"sum(medianest_user_sessions_active{{{job}}})"), alerts=("LowActiveUsers",)),
                timeseries("Request rate by endpoint", "Requests per second per endpoint (recorded 5m rate).",
                           Unit.REQUESTS_PER_SECOND, prom(f"{rec.ENDPOINT_REQUESTS_RATE}{{{ep}}}", "{{endpoint}}")),
                timeseries("Error ratio by endpoint", "Share of 5xx responses per endpoint.", Unit.PERCENT_UNIT,
                           prom(f"{rec.ENDPOINT_ERROR_RATIO}{{{ep}}}", "{{endpoint}}"),
                           thresholds=steps("green", (t.error_ratio, "red")), alerts=("HighErrorRate",)),
                timeseries("Latency p95 and p99", "Response time percentiles over all endpoints.", Unit.SECONDS,
                           prom(f"{p95}{{{job}}}", "p95"), prom(f"{p99}{{{job}}}", "p99"),
                           thresholds=steps("green", (t.response_time_p95_seconds, "red")),
                           alerts=("HighResponseTime",)),
                timeseries("p95 latency by endpoint", "95th percentile response time per endpoint.", Unit.SECONDS,
                           prom(f"{rec.ENDPOINT_LATENCY_P.format(q=95)}{{{ep}}}", "{{endpoint}}")),
                timeseries("Responses by status code", "Requests per second per instance and status code.",
                           Unit.REQUESTS_PER_SECOND,
                           prom(f"sum by (instance, status_code) (rate(medianest_http_requests_total{{{inst}}}"
                                "[$__rate_interval]))", "{{instance}} {{status_code}}", exemplar=True), width=24),
            )),
            Row(title="Backend process", panels=(
                timeseries("Resident memory", "Resident memory of each backend process.", Unit.BYTES,
                           prom(f"medianest_process_resident_memory_bytes{{{inst}}}", "{{instance}}"),
                           thresholds=steps("green", (t.resident_memory_bytes, "red")), alerts=("HighMemoryUsage",),
                           width=6),
                timeseries("Heap used", "V8 heap in use; steady growth suggests a leak.", Unit.BYTES,
                           prom(f"medianest_nodejs_heap_size_used_bytes{{{inst}}}", "{{instance}}"),
                           alerts=("MemoryLeakSuspected",), width=6),
                timeseries("Event loop lag", "How late the event loop runs callbacks.", Unit.SECONDS,
                           prom(f"medianest_nodejs_eventloop_lag_seconds{{{inst}}}", "{{instance}}"),
                           thresholds=steps("green", (t.event_loop_lag_seconds, "red")), alerts=("EventLoopLagHigh",),
                           width=6),
                timeseries("WebSocket connections", "Open WebSocket connections per instance.", Unit.SHORT,
                           prom(f"medianest_websocket_connections_active{{{inst}}}", "{{instance}}"), width=6),
            )),
            Row(title="Database and Redis", panels=(
                timeseries("Database query p95", "95th percentile query time, overall and per operation.",
                           Unit.SECONDS, prom(f"{rec.DB_QUERY_P95}{{{job}}}", "all"),
                           prom(quantile("medianest_database_query_duration_seconds", "operation", inst),
                                "{{operation}}", exemplar=True),
                           thresholds=steps("green", (t.database_query_p95_seconds, "red")),
                           alerts=("SlowDatabaseQueries",), width=8),
                timeseries("Database connections", "Connections the backend holds to PostgreSQL.", Unit.SHORT,
                           prom(f"medianest_database_connections_active{{{inst}}}", "{{instance}}"),
                           thresholds=steps("green", (t.database_connections, "red")),
                           alerts=("DatabaseConnectionHigh",), width=8),
                timeseries("Redis operation p95", "95th percentile Redis command time per command.", Unit.SECONDS,
                           prom(quantile("medianest_redis_operation_duration_seconds", "command", inst),
                                "{{command}}"), width=8),
                timeseries("Cache hit ratio", "Share of cache lookups served from the cache, per cache.",
                           Unit.PERCENT_UNIT, prom(f"avg by (cache_type) (medianest_cache_hit_ratio{{{inst}}})",
                                                   "{{cache_type}}"), min=0, max=1, width=24),
            )),
            Row(title="External services", panels=(
                timeseries("External API p95", "95th percentile call time per external service.", Unit.SECONDS,
                           prom(quantile("medianest_external_api_duration_seconds", "service", inst), "{{service}}",
                                exemplar=True)),
                bar_gauge("Circuit breakers", "Breaker state per external service: 0 closed, 1 open, 2 half-open.",
                          Unit.NONE, prom(f"max by (service) (medianest_circuit_breaker_state{{{job}}})",
                                          "{{service}}", instant=True),
                          thresholds=steps("green", (1, "red"), (2, "orange")), min=0, max=2,
                          alerts=("ExternalServiceDown",)),
            )),
            Row(title="Background jobs and queues", panels=(
                timeseries("Jobs by queue and status", "Jobs per second per queue and status.",
                           Unit.OPS_PER_SECOND,
                           prom(f"sum by (queue, status) (rate(medianest_background_jobs_total{{{job}}}"
                                "[$__rate_interval]))", "{{queue}} {{status}}"),
                           alerts=("BackgroundJobQueueBuildup",), width=8),
                timeseries("Job duration p95", "95th percentile job run time per queue.", Unit.SECONDS,
                           prom(quantile("medianest_background_job_duration_seconds", "queue", job), "{{queue}}"),
                           width=8),
                timeseries("Queue size", "Items waiting per processing queue.", Unit.SHORT,
                           prom(f"sum by (queue_name) (medianest_queue_size{{{job}}})", "{{queue_name}}"),
                           thresholds=steps("green", (t.queue_backlog_items, "red")), alerts=("QueueBacklog",),
                           width=8),
            )),
        ),
    )


def business(config: StackConfig) -> DashboardSpec:
    job = f'job="{config.jobs.backend}"'
    media = "medianest_media_requests_total"
    auth = "medianest_auth_attempts_total"
    return DashboardSpec(
        uid="medianest-business", title="MediaNest / Business metrics", folder=FOLDER,
        description="Sessions, uploads, media requests and sign-ins: what users do and whether it works.",
        tags=("medianest", "business", "generated"),
        variables=(environment(config),),
        rows=(
            Row(title="Users", panels=(
                stat("Active sessions", "Users with an active session now.", Unit.SHORT,
                     prom(f"sum(medianest_user_sessions_active{{{job}}})"), alerts=("LowActiveUsers",)),
                stat("Upload success rate", "Share of media uploads that succeeded over the time range.",
                     Unit.PERCENT_UNIT,
                     prom(f'sum(increase({media}{{{job},type="upload",status="success"}}[$__range])) '
                          f'/ sum(increase({media}{{{job},type="upload"}}[$__range]))'),
                     thresholds=steps("red", (0.9, "orange"), (0.95, "green"))),
                stat("Sign-in failure ratio", "Share of authentication attempts that failed (10m).",
                     Unit.PERCENT_UNIT,
                     prom(f'sum(rate({auth}{{{job},status="failure"}}[$__rate_interval])) '
                          f"/ sum(rate({auth}{{{job}}}[$__rate_interval]))"),
                     thresholds=steps("green", (config.thresholds.auth_failure_ratio, "red")),
                     alerts=("AuthenticationFailuresHigh",)),
                stat("Media requests", "Media requests over the time range.", Unit.SHORT,
                     prom(f"sum(increase({media}{{{job}}}[$__range]))")),
                timeseries("Active sessions over time", "Active user sessions.", Unit.SHORT,
                           prom(f"sum(medianest_user_sessions_active{{{job}}})", "sessions")),
                timeseries("Upload success rate over time", "Share of uploads that succeed.", Unit.PERCENT_UNIT,
                           prom(f'sum(rate({media}{{{job},type="upload",status="success"}}[$__rate_interval])) '
                                f'/ sum(rate({media}{{{job},type="upload"}}[$__rate_interval]))', "success"),
                           min=0, max=1),
            )),
            Row(title="Media requests", panels=(
                timeseries("Media requests by type and source", "Media requests per second by type and source.",
                           Unit.OPS_PER_SECOND,
                           prom(f"sum by (type, source) (rate({media}{{{job}}}[$__rate_interval]))",
                                "{{type}} / {{source}}"), stacked=True),
                table("Media requests by type, source and status", "Requests over the time range.", Unit.SHORT,
                      prom(f"sum by (type, source, status) (increase({media}{{{job}}}[$__range]))", instant=True)),
            )),
            Row(title="Authentication", panels=(
                timeseries("Authentication outcomes", "Sign-in attempts per second by outcome.",
                           Unit.OPS_PER_SECOND,
                           prom(f"sum by (status) (rate({auth}{{{job}}}[$__rate_interval]))", "{{status}}"),
                           stacked=True, alerts=("AuthenticationFailuresHigh",), width=24),
            )),
        ),
    )
