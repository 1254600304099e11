"""Series Prometheus makes itself (scrape health, ALERTS) and the stack components' own.

Names, types, labels and buckets of Prometheus, Alertmanager and Jaeger are checked against the
versions we ship, built from their Go modules (Prometheus 3.16.0, Alertmanager 0.35.0, Jaeger
v2.12.0 with its OpenTelemetry collector 0.139): tests/e2e/test_catalog_on_shipped_binaries.py runs
each one and reads its /metrics. They were first written from sources and Debian's older builds
(Prometheus 2.42, Alertmanager 0.25); where those differ, the comments say so. Loki's and
Grafana's (AGPL, not built) come from their sources (Loki 3.x through dskit, Grafana).
"""

from rules.catalog import Metric, MetricType

C, G, H = MetricType.COUNTER, MetricType.GAUGE, MetricType.HISTOGRAM

SCRAPE = (
    Metric("up", G, "1 if the target was scraped successfully, 0 otherwise"),
    Metric("scrape_duration_seconds", G, "Duration of the scrape"),
    Metric("scrape_samples_scraped", G, "Samples the target exposed"),
    Metric("scrape_series_added", G, "Approximate number of new series in this scrape"),
    Metric("scrape_samples_post_metric_relabeling", G, "Samples remaining after relabeling"),
)

RULES = (
    Metric("ALERTS", G, "Alerts pending or firing", ("alertname", "alertstate"),
           target_labels=(), open_labels=True),
    Metric("ALERTS_FOR_STATE", G, "Start time of pending alerts", ("alertname",),
           target_labels=(), open_labels=True),
)

PROMETHEUS = (
    Metric("prometheus_build_info", G, "Build information of Prometheus",
           ("branch", "goarch", "goos", "goversion", "revision", "tags", "version")),
    Metric("prometheus_ready", G, "Whether Prometheus startup was fully completed and the server is ready"),
    Metric("prometheus_config_last_reload_successful", G, "Whether the last configuration reload succeeded"),
    Metric("prometheus_config_last_reload_success_timestamp_seconds", G,
           "Timestamp of the last successful configuration reload"),
    Metric("prometheus_rule_evaluations_total", C, "The total number of rule evaluations", ("rule_group",)),
    Metric("prometheus_rule_evaluation_failures_total", C, "The total number of rule evaluation failures",
           ("rule_group",)),
    Metric("prometheus_rule_group_iterations_missed_total", C,
           "The total number of rule group evaluations missed due to slow rule group evaluation",
           ("rule_group",)),
    Metric("prometheus_rule_group_last_duration_seconds", G,
           "The duration of the last rule group evaluation", ("rule_group",)),
    Metric("prometheus_rule_group_interval_seconds", G, "The interval of a rule group", ("rule_group",)),
    Metric("prometheus_notifications_alertmanagers_discovered", G,
           "The number of alertmanagers discovered and active"),
    Metric("prometheus_notifications_sent_total", C, "Total number of alerts sent", ("alertmanager",)),
    Metric("prometheus_notifications_errors_total", C, "Total number of sent alerts affected by errors",
           ("alertmanager",)),
    # Per Alertmanager in 3.16 (2.42: one unlabelled series): matching the queue's length to its
    # (unlabelled) capacity needs `ignoring (alertmanager)`.
    Metric("prometheus_notifications_dropped_total", C,
           "Total number of alerts dropped due to errors when sending to Alertmanager", ("alertmanager",)),
    Metric("prometheus_notifications_queue_length", G, "The number of alert notifications in the queue",
           ("alertmanager",)),
    Metric("prometheus_notifications_queue_capacity", G, "The capacity of the alert notifications queue"),
    Metric("prometheus_tsdb_head_series", G, "Total number of series in the head block"),
    Metric("prometheus_tsdb_head_samples_appended_total", C, "Total number of appended samples", ("type",)),
    Metric("prometheus_tsdb_compactions_total", C, "Total number of compactions that were executed"),
    Metric("prometheus_tsdb_compactions_failed_total", C, "Total number of compactions that failed"),
    Metric("prometheus_tsdb_reloads_failures_total", C, "Number of times the database failed to reload "
           "block data from disk"),
    Metric("prometheus_tsdb_wal_corruptions_total", C, "Total number of WAL corruptions"),
    Metric("prometheus_tsdb_wal_truncations_failed_total", C, "Total number of write log truncations that "
           "failed"),
    Metric("prometheus_tsdb_storage_blocks_bytes", G,
           "The number of bytes that are currently used for local storage by all blocks"),
    # 0 when no size retention (--storage.tsdb.retention.size) is configured.
    Metric("prometheus_tsdb_retention_limit_bytes", G, "Max number of bytes to be retained in the tsdb "
           "blocks, configured 0 means disabled"),
    Metric("prometheus_tsdb_size_retentions_total", C, "The number of times that blocks were deleted "
           "because the maximum number of bytes was exceeded"),
    Metric("prometheus_target_scrape_pool_targets", G, "Current number of targets in this scrape pool",
           ("scrape_job",)),
)

ALERTMANAGER = (
    Metric("alertmanager_build_info", G, "Build information of Alertmanager",
           ("branch", "goarch", "goos", "goversion", "revision", "tags", "version")),
    Metric("alertmanager_config_last_reload_successful", G, "Whether the last configuration reload "
           "attempt was successful"),
    Metric("alertmanager_config_hash", G, "Hash of the currently loaded alertmanager configuration"),
    Metric("alertmanager_alerts", G, "How many alerts by state", ("state",)),
    Metric("alertmanager_alerts_received_total", C, "The total number of received alerts",
           ("status", "version")),
    Metric("alertmanager_alerts_invalid_total", C, "The total number of received alerts that were "
           "invalid", ("version",)),
    Metric("alertmanager_notifications_total", C, "The total number of attempted notifications",
           ("integration",)),
    # `reason` exists since 0.27 (clientError, serverError, other...); 0.35 has thirteen values, a
    # refused connection counting as `other`. Rules sum it away.
    Metric("alertmanager_notifications_failed_total", C, "The total number of failed notifications",
           ("integration", "reason")),
    Metric("alertmanager_notification_latency_seconds", H, "The latency of notifications in seconds",
           ("integration",), buckets=(1, 5, 10, 15, 20)),
    Metric("alertmanager_silences", G, "How many silences by state", ("state",)),
    # Not exposed when clustering is disabled (then alertmanager_cluster_enabled is 0).
    Metric("alertmanager_cluster_enabled", G, "Indicates whether the clustering is enabled or not"),
    Metric("alertmanager_cluster_members", G, "Number indicating current number of members in cluster"),
    Metric("alertmanager_cluster_failed_peers", G, "Number indicating the current number of failed peers "
           "in the cluster"),
)

# Loki's HTTP and gRPC server metrics come from dskit (instrument.DefBuckets).
LOKI = (
    Metric("loki_request_duration_seconds", H, "Time (in seconds) spent serving HTTP requests",
           ("method", "route", "status_code", "ws"),
           buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100)),
    Metric("loki_inflight_requests", G, "Current number of inflight requests", ("method", "route")),
    # Loki 3.x adds labels (retention_hours, policy, format...) depending on the version.
    Metric("loki_distributor_lines_received_total", C, "The total number of lines received per tenant",
           ("tenant",)),
    Metric("loki_distributor_bytes_received_total", C, "The total number of uncompressed bytes received "
           "per tenant", ("tenant",)),
    Metric("loki_discarded_samples_total", C, "The total number of samples that were discarded",
           ("reason", "tenant")),
    Metric("loki_discarded_bytes_total", C, "The total number of bytes that were discarded",
           ("reason", "tenant")),
)

# Jaeger v2 is an OpenTelemetry collector: its own metrics (port 8888) are the collector's, with
# the `_total` suffix the Prometheus exporter adds to counters. In 2.12 the resource attributes
# (service_instance_id, service_name, service_version) are on `target_info` only, and each series
# carries `otel_scope_name` (and an empty scope version and schema URL, which Prometheus drops):
# left out, rules sum them away. `refused` counts every span a receiver could not push: the
# collector's alpha gate receiverhelper.newReceiverMetrics, off in 2.12, would move internal
# errors to otelcol_receiver_failed_spans_total instead.
JAEGER = (
    Metric("otelcol_receiver_accepted_spans_total", C, "Number of spans successfully pushed into the "
           "pipeline", ("receiver", "transport")),
    Metric("otelcol_receiver_refused_spans_total", C, "Number of spans that could not be pushed into the "
           "pipeline", ("receiver", "transport")),
    Metric("otelcol_exporter_sent_spans_total", C, "Number of spans successfully sent to destination",
           ("exporter",)),
    Metric("otelcol_exporter_send_failed_spans_total", C, "Number of spans in failed attempts to send to "
           "destination", ("exporter",)),
    # Only once a sending queue refuses spans: the shipped jaeger_storage_exporter has its queue off.
    Metric("otelcol_exporter_enqueue_failed_spans_total", C, "Number of spans failed to be added to the "
           "sending queue", ("exporter",)),
)

GRAFANA = (
    Metric("grafana_http_request_duration_seconds", H, "Histogram of latencies for HTTP requests",
           ("handler", "status_code", "method", "status_source", "slo_group"),
           buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25)),
    Metric("grafana_http_request_in_flight", G, "A gauge of requests currently being served by Grafana"),
)

METRICS = SCRAPE + RULES + PROMETHEUS + ALERTMANAGER + LOKI + JAEGER + GRAFANA
