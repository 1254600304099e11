"""MediaNest backend instrumentation (prom-client), as declared in the implementation plan.

Every name carries the `medianest_` prefix, the default Node.js and process metrics too:
`collectDefaultMetrics({prefix: 'medianest_'})` prefixes them all.
"""

from rules.catalog import Metric, MetricType

C, G, H = MetricType.COUNTER, MetricType.GAUGE, MetricType.HISTOGRAM

HTTP_LABELS = ("method", "endpoint", "status_code")

APPLICATION = (
    Metric("medianest_http_request_duration_seconds", H, "Duration of HTTP requests in seconds",
           HTTP_LABELS, buckets=(0.01, 0.05, 0.1, 0.3, 0.5, 1, 2, 5)),
    Metric("medianest_http_requests_total", C, "Total number of HTTP requests", HTTP_LABELS),
    Metric("medianest_websocket_connections_active", G, "Number of active WebSocket connections"),
    Metric("medianest_database_query_duration_seconds", H, "Database query execution time",
           ("operation", "table", "status"), buckets=(0.001, 0.01, 0.05, 0.1, 0.5, 1, 2)),
    Metric("medianest_database_connections_active", G, "Number of active database connections"),
    Metric("medianest_redis_operation_duration_seconds", H, "Redis operation execution time",
           ("command", "status"), buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5)),
    Metric("medianest_cache_hit_ratio", G, "Cache hit ratio", ("cache_type",)),
    Metric("medianest_media_requests_total", C, "Total number of media requests",
           ("type", "status", "source")),
    # A single gauge: the seed's per-user label would be one series per user (unbounded).
    Metric("medianest_user_sessions_active", G, "Number of active user sessions"),
    Metric("medianest_external_api_duration_seconds", H, "External API call duration",
           ("service", "operation", "status"), buckets=(0.1, 0.5, 1, 2, 5, 10, 30)),
    Metric("medianest_circuit_breaker_state", G,
           "Circuit breaker state (0=closed, 1=open, 2=half-open)", ("service",)),
    Metric("medianest_background_jobs_total", C, "Total number of background jobs",
           ("queue", "status")),
    Metric("medianest_background_job_duration_seconds", H, "Background job execution time",
           ("queue", "job_type"), buckets=(1, 5, 10, 30, 60, 300, 900)),
    Metric("medianest_auth_attempts_total", C, "Authentication attempts by outcome", ("status",)),
    Metric("medianest_queue_size", G, "Items waiting in a processing queue", ("queue_name",)),
)

# prom-client's collectDefaultMetrics, with the prefix applied.
NODEJS_DEFAULTS = (
    Metric("medianest_process_cpu_user_seconds_total", C, "User CPU time spent in seconds"),
    Metric("medianest_process_cpu_system_seconds_total", C, "System CPU time spent in seconds"),
    Metric("medianest_process_cpu_seconds_total", C, "Total user and system CPU time in seconds"),
    Metric("medianest_process_start_time_seconds", G, "Start time of the process since epoch"),
    Metric("medianest_process_resident_memory_bytes", G, "Resident memory size in bytes"),
    Metric("medianest_process_virtual_memory_bytes", G, "Virtual memory size in bytes"),
    Metric("medianest_process_heap_bytes", G, "Process heap size in bytes"),
    Metric("medianest_process_open_fds", G, "Number of open file descriptors"),
    Metric("medianest_process_max_fds", G, "Maximum number of open file descriptors"),
    Metric("medianest_nodejs_eventloop_lag_seconds", G, "Lag of event loop in seconds"),
    *(
        Metric(f"medianest_nodejs_eventloop_lag_{stat}_seconds", G,
               f"The {stat} of the recorded event loop delays")
        for stat in ("min", "max", "mean", "stddev", "p50", "p90", "p99")
    ),
    Metric("medianest_nodejs_active_resources", G, "Active resources keeping the loop alive",
           ("type",)),
    Metric("medianest_nodejs_active_resources_total", G, "Total active resources"),
    Metric("medianest_nodejs_active_handles", G, "Active libuv handles by type", ("type",)),
    Metric("medianest_nodejs_active_handles_total", G, "Total active handles"),
    Metric("medianest_nodejs_active_requests", G, "Active libuv requests by type", ("type",)),
    Metric("medianest_nodejs_active_requests_total", G, "Total active requests"),
    Metric("medianest_nodejs_heap_size_total_bytes", G, "Process heap size from Node.js in bytes"),
    Metric("medianest_nodejs_heap_size_used_bytes", G, "Process heap size used from Node.js in bytes"),
    Metric("medianest_nodejs_external_memory_bytes", G, "Node.js external memory size in bytes"),
    Metric("medianest_nodejs_heap_space_size_total_bytes", G, "Heap space size in bytes",
           ("space",)),
    Metric("medianest_nodejs_heap_space_size_used_bytes", G, "Heap space used in bytes",
           ("space",)),
    Metric("medianest_nodejs_heap_space_size_available_bytes", G, "Heap space available in bytes",
           ("space",)),
    Metric("medianest_nodejs_version_info", G, "Node.js version info",
           ("version", "major", "minor", "patch")),
    Metric("medianest_nodejs_gc_duration_seconds", H, "Garbage collection duration by kind",
           ("kind",), buckets=(0.001, 0.01, 0.1, 1, 2, 5)),
)

METRICS = APPLICATION + NODEJS_DEFAULTS
