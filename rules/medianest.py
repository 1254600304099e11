"""MediaNest's own alerts and recording rules: what wakes someone up about the backend.

Thresholds come from the stack config; the seeds' intent is kept and their mistakes are not
(see ../shared/FACTS.md): the scrape job is `medianest-backend`, ratios are aggregated before
dividing, quantiles sum buckets by `le`, and metrics carry the `medianest_` prefix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rules.conventions import AlertSeverity, number
from rules.expressions import down_description, or_zero, target_down
from rules.model import RuleGroup, alert, record

if TYPE_CHECKING:
    from stack.config import StackConfig

CRITICAL, WARNING, INFO = AlertSeverity.CRITICAL, AlertSeverity.WARNING, AlertSeverity.INFO

# Recorded series (level:metric:operations), read by the alerts below, the SLOs and dashboards.
REQUESTS_RATE = "job:medianest_http_requests:rate5m"
ERRORS_RATE = "job:medianest_http_request_errors:rate5m"
ERROR_RATIO = "job:medianest_http_request_errors:ratio_rate5m"
ENDPOINT_REQUESTS_RATE = "job_endpoint:medianest_http_requests:rate5m"
ENDPOINT_ERROR_RATIO = "job_endpoint:medianest_http_request_errors:ratio_rate5m"
LATENCY_BUCKETS = "job_le:medianest_http_request_duration_seconds_bucket:rate5m"
ENDPOINT_LATENCY_BUCKETS = "job_endpoint_le:medianest_http_request_duration_seconds_bucket:rate5m"
LATENCY_P = "job:medianest_http_request_duration_seconds:p{q}_5m"
ENDPOINT_LATENCY_P = "job_endpoint:medianest_http_request_duration_seconds:p{q}_5m"
DB_QUERY_P95 = "job:medianest_database_query_duration_seconds:p95_5m"

INSTANCE = "backend:3000"


def recording_rules(job: str) -> RuleGroup:
    sel = f'job="{job}"'
    http = "medianest_http_requests_total"
    buckets = "medianest_http_request_duration_seconds_bucket"
    rules = [
        record(REQUESTS_RATE, f"sum by (job) (rate({http}{{{sel}}}[5m]))"),
        record(ERRORS_RATE, or_zero(f'sum by (job) (rate({http}{{{sel},status_code=~"5.."}}[5m]))',
                                    f"sum by (job) (rate({http}{{{sel}}}[5m]))")),
        record(ERROR_RATIO, f"{ERRORS_RATE} / {REQUESTS_RATE}"),
        record(ENDPOINT_REQUESTS_RATE, f"sum by (job, endpoint) (rate({http}{{{sel}}}[5m]))"),
        record(ENDPOINT_ERROR_RATIO,
               or_zero(f'sum by (job, endpoint) (rate({http}{{{sel},status_code=~"5.."}}[5m]))',
                       ENDPOINT_REQUESTS_RATE) + f" / {ENDPOINT_REQUESTS_RATE}"),
        record(LATENCY_BUCKETS, f"sum by (job, le) (rate({buckets}{{{sel}}}[5m]))"),
        record(ENDPOINT_LATENCY_BUCKETS, f"sum by (job, endpoint, le) (rate({buckets}{{{sel}}}[5m]))"),
    ]
    for q in (50, 95, 99):
        rules.append(record(LATENCY_P.format(q=q), f"histogram_quantile(0.{q}, {LATENCY_BUCKETS})"))
        rules.append(record(ENDPOINT_LATENCY_P.format(q=q),
                            f"histogram_quantile(0.{q}, {ENDPOINT_LATENCY_BUCKETS})"))
    rules.append(record(DB_QUERY_P95, "histogram_quantile(0.95, sum by (job, le) "
                        f"(rate(medianest_database_query_duration_seconds_bucket{{{sel}}}[5m])))"))
    return RuleGroup(name="medianest.recording", rules=tuple(rules))


def alerts(config: StackConfig) -> RuleGroup:
    job = config.jobs.backend
    t = config.thresholds
    sel = f'job="{job}"'
    common = {"runbook_base_url": config.runbook_base_url}
    jobs_total = "medianest_background_jobs_total"
    auth = "medianest_auth_attempts_total"
    return RuleGroup(name="medianest.alerts", rules=(
        alert("ApplicationDown", target_down(job), for_="1m",
              severity=CRITICAL, service="medianest",
              summary="MediaNest backend is down",
              description=down_description("The MediaNest backend", "1 minute"), **common),
        alert("HighErrorRate", f"{ERROR_RATIO}{{{sel}}} > {number(t.error_ratio)}", for_="5m",
              severity=CRITICAL, service="medianest",
              summary="MediaNest backend is failing requests",
              description="{{ $value | humanizePercentage }} of {{ $labels.job }} requests failed "
                          "with a 5xx over the last 5 minutes.", **common),
        alert("HighResponseTime", f"{LATENCY_P.format(q=95)}{{{sel}}} > {number(t.response_time_p95_seconds)}",
              for_="10m", severity=WARNING, service="medianest",
              summary="MediaNest backend responds slowly",
              description="95th percentile latency of {{ $labels.job }} is "
                          "{{ $value | humanizeDuration }} over all endpoints.", **common),
        alert("SlowDatabaseQueries", f"{DB_QUERY_P95}{{{sel}}} > {number(t.database_query_p95_seconds)}",
              for_="10m", severity=WARNING, service="medianest",
              summary="MediaNest database queries are slow",
              description="95th percentile database query time of {{ $labels.job }} is "
                          "{{ $value | humanizeDuration }}.", **common),
        alert("DatabaseConnectionHigh",
              f"medianest_database_connections_active{{{sel}}} > {number(t.database_connections)}",
              for_="5m", severity=WARNING, service="medianest",
              summary="MediaNest holds many database connections",
              description="{{ $labels.instance }} holds {{ $value }} active database connections.",
              **common),
        alert("HighMemoryUsage",
              f"medianest_process_resident_memory_bytes{{{sel}}} > {number(t.resident_memory_bytes)}",
              for_="15m", severity=WARNING, service="medianest",
              summary="MediaNest backend uses a lot of memory",
              description="{{ $labels.instance }} resident memory is {{ $value | humanize1024 }}B.",
              **common),
        alert("MemoryLeakSuspected",
              f"deriv(medianest_nodejs_heap_size_used_bytes{{{sel}}}[15m]) * 60 "
              f"> {number(t.heap_growth_bytes_per_minute)}",
              for_="30m", severity=WARNING, service="medianest",
              summary="MediaNest heap keeps growing",
              description="The heap of {{ $labels.instance }} has grown by "
                          "{{ $value | humanize1024 }}B per minute for 30 minutes.", **common),
        alert("EventLoopLagHigh",
              f"medianest_nodejs_eventloop_lag_seconds{{{sel}}} > {number(t.event_loop_lag_seconds)}",
              for_="5m", severity=WARNING, service="medianest",
              summary="MediaNest event loop is lagging",
              description="Event loop lag on {{ $labels.instance }} is "
                          "{{ $value | humanizeDuration }}.", **common),
        alert("ExternalServiceDown",
              # The metric's `service` names the external service; ours routes the alert.
              f'max by (job, external_service) (label_replace(medianest_circuit_breaker_state{{{sel}}} '
              f'== 1, "external_service", "$1", "service", "(.*)"))',
              for_="1m", severity=CRITICAL, service="medianest",
              summary="An external service's circuit breaker is open",
              description="The circuit breaker for {{ $labels.external_service }} has been open for "
                          "more than 1 minute.", **common),
        alert("BackgroundJobQueueBuildup",
              f'sum by (job, queue) (rate({jobs_total}{{{sel},status="queued"}}[15m])) > ('
              f'sum by (job, queue) (rate({jobs_total}{{{sel},status=~"completed|failed"}}[15m])) or '
              f'sum by (job, queue) (rate({jobs_total}{{{sel},status="queued"}}[15m])) * 0)',
              for_="30m", severity=WARNING, service="medianest",
              summary="Background jobs are queued faster than they finish",
              # Two decimals: humanize writes 0.5 as "500m" (and a rate of 0.9999… as "1000m").
              description="Queue {{ $labels.queue }} receives {{ printf \"%.2f\" $value }} jobs/s, "
                          "more than it finishes.", **common),
        alert("QueueBacklog", f"medianest_queue_size{{{sel}}} > {number(t.queue_backlog_items)}",
              for_="15m", severity=WARNING, service="business",
              summary="A processing queue has a backlog",
              description="Queue {{ $labels.queue_name }} has {{ $value }} items pending.",
              **common),
        alert("LowActiveUsers", f"sum by (job) (medianest_user_sessions_active{{{sel}}}) < 1",
              for_="30m", severity=INFO, service="business",
              summary="No active user sessions",
              description="No active user sessions on {{ $labels.job }} for 30 minutes.", **common),
        alert("AuthenticationFailuresHigh",
              f'sum by (job) (rate({auth}{{{sel},status="failure"}}[10m])) '
              f"/ sum by (job) (rate({auth}{{{sel}}}[10m])) > {number(t.auth_failure_ratio)} "
              f"and sum by (job) (rate({auth}{{{sel}}}[10m])) > {number(t.auth_min_attempts_per_second)}",
              for_="10m", severity=WARNING, service="medianest",
              summary="Many authentication attempts fail",
              description="{{ $value | humanizePercentage }} of authentication attempts on "
                          "{{ $labels.job }} failed over 10 minutes.", **common),
    ))
