"""The monitoring stack watching itself: Prometheus, Alertmanager, Loki, Jaeger, Grafana."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dashboards.common import environment, table, timeseries
from dashboards.model import DashboardSpec, Row, Unit, prom, steps

if TYPE_CHECKING:
    from stack.config import StackConfig

FOLDER = "stack"


def dashboard(config: StackConfig) -> DashboardSpec:
    j = config.jobs
    stack_jobs = "|".join((j.prometheus, j.alertmanager, j.loki, j.jaeger, j.grafana, j.alloy))
    prom_, am, loki, jaeger, grafana = (f'job="{x}"' for x in (j.prometheus, j.alertmanager, j.loki, j.jaeger,
                                                                 j.grafana))
    return DashboardSpec(
        uid="stack-health", title="MediaNest / Monitoring stack health", folder=FOLDER,
        description="Whether the monitoring stack itself works: scrapes, rules, notifications, logs, traces.",
        tags=("stack", "generated"), variables=(environment(config),),
        rows=(
            Row(title="Targets", panels=(
                table("Stack targets", "Scrape health of every stack component: 1 up, 0 down.", Unit.UP_DOWN,
                      prom(f'up{{job=~"{stack_jobs}"}}', instant=True),
                      thresholds=steps("red", (1, "green")), alerts=("TargetDown", "Watchdog"), width=24, height=6),
            )),
            Row(title="Prometheus", panels=(
                timeseries("Rule evaluation failures", "Failed rule evaluations per second per group.",
                           Unit.OPS_PER_SECOND,
                           prom(f"sum by (rule_group) (rate(prometheus_rule_evaluation_failures_total{{{prom_}}}"
                                "[$__rate_interval]))", "{{rule_group}}"),
                           alerts=("PrometheusRuleEvaluationFailures",), width=8),
                timeseries("Notifications to Alertmanager", "Alerts sent and failed per second.",
                           Unit.OPS_PER_SECOND,
                           prom(f"sum(rate(prometheus_notifications_sent_total{{{prom_}}}[$__rate_interval]))", "sent"),
                           prom(f"sum(rate(prometheus_notifications_errors_total{{{prom_}}}[$__rate_interval]))",
                                "errors"),
                           alerts=("PrometheusNotificationsFailing", "PrometheusNotConnectedToAlertmanagers"), width=8),
                timeseries("Head series", "Series in the TSDB head block.", Unit.SHORT,
                           prom(f"prometheus_tsdb_head_series{{{prom_}}}", "{{instance}}"),
                           alerts=("PrometheusStorageFillingUp",), width=8),
                timeseries("Config reloads", "1 when the last configuration reload succeeded.", Unit.UP_DOWN,
                           prom(f"prometheus_config_last_reload_successful{{{prom_}}}", "prometheus"),
                           prom(f"alertmanager_config_last_reload_successful{{{am}}}", "alertmanager"),
                           alerts=("PrometheusConfigReloadFailed", "AlertmanagerConfigReloadFailed"), min=0, max=1,
                           width=24),
            )),
            Row(title="Alertmanager", panels=(
                timeseries("Alerts", "Alerts Alertmanager holds, by state.", Unit.SHORT,
                           prom(f"sum by (state) (alertmanager_alerts{{{am}}})", "{{state}}")),
                timeseries("Notifications", "Notifications attempted and failed per second per integration.",
                           Unit.OPS_PER_SECOND,
                           prom(f"sum by (integration) (rate(alertmanager_notifications_total{{{am}}}"
                                "[$__rate_interval]))", "{{integration}}"),
                           prom(f"sum by (integration) (rate(alertmanager_notifications_failed_total{{{am}}}"
                                "[$__rate_interval]))", "{{integration}} failed"),
                           alerts=("AlertmanagerNotificationsFailing",)),
            )),
            Row(title="Loki, Jaeger and Grafana", panels=(
                timeseries("Loki requests by status", "Loki HTTP requests per second by status code.",
                           Unit.REQUESTS_PER_SECOND,
                           prom(f"sum by (status_code) (rate(loki_request_duration_seconds_count{{{loki}}}"
                                "[$__rate_interval]))", "{{status_code}}"),
                           alerts=("LokiRequestErrors", "LokiDown"), width=8),
                timeseries("Loki ingestion", "Log lines received and discarded per second.", Unit.OPS_PER_SECOND,
                           prom(f"sum(rate(loki_distributor_lines_received_total{{{loki}}}[$__rate_interval]))",
                                "received"),
                           prom(f"sum(rate(loki_discarded_samples_total{{{loki}}}[$__rate_interval]))",
                                "discarded"), width=8),
                timeseries("Jaeger spans", "Spans accepted, refused and failed to store per second.",
                           Unit.OPS_PER_SECOND,
                           prom(f"sum(rate(otelcol_receiver_accepted_spans_total{{{jaeger}}}[$__rate_interval]))",
                                "accepted"),
                           prom(f"sum(rate(otelcol_receiver_refused_spans_total{{{jaeger}}}[$__rate_interval]))",
                                "refused"),
                           prom(f"sum(rate(otelcol_exporter_send_failed_spans_total{{{jaeger}}}[$__rate_interval]))",
                                "export failed"),
                           alerts=("JaegerSpansRefused", "JaegerExportFailing", "JaegerDown"), width=8),
                timeseries("Grafana request p95", "95th percentile Grafana HTTP response time.", Unit.SECONDS,
                           prom("histogram_quantile(0.95, sum by (le) (rate(grafana_http_request_duration_seconds_"
                                f"bucket{{{grafana}}}[$__rate_interval])))", "p95")),
                timeseries("Grafana requests in flight", "Requests Grafana is serving now.", Unit.SHORT,
                           prom(f"sum(grafana_http_request_in_flight{{{grafana}}})", "in flight")),
            )),
        ),
    )
