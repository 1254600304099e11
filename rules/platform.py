"""The platform's alerts: what MediaNest depends on (PostgreSQL, Redis, the host, the blackbox
probes) and the monitoring stack itself, with the promtool tests that prove them.

Every alert selects its scrape job by the configured name, so a renamed job follows. The tests
build their series from the configured thresholds: each alert fires just over its threshold and
stays silent just under it, or over it for less than its `for`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rules.conventions import IGNORED_FILESYSTEMS, AlertSeverity, number
from rules.expressions import down_description, postgres_connections_used, target_down
from rules.humanize import humanize_percentage as pct
from rules.humanize import value
from rules.model import RuleFile, RuleGroup, alert
from rules.testing import AlertAt, Expected, Firing, RuleTest, Series
from stack import services as registry

if TYPE_CHECKING:
    from stack.config import StackConfig

CRITICAL, WARNING, INFO = AlertSeverity.CRITICAL, AlertSeverity.WARNING, AlertSeverity.INFO


# Instances as the scrape configs name them.
NODE = "node-exporter:9100"
POSTGRES = "postgres-exporter:9187"
REDIS = "redis-exporter:9121"
PROMETHEUS = "prometheus:9090"
ALERTMANAGER = "alertmanager:9093"
LOKI = "loki:3100"
JAEGER = "jaeger:8888"
GRAFANA = "grafana:3000"
HEALTH_URL = "https://medianest.example.com/api/health"

GIB = 1024**3


def _loss_ratio(failed: str, succeeded: str, by: str, sel: str) -> str:
    """Share of items that failed, out of all attempted (the counters count them apart)."""
    failed_rate = f"sum by ({by}) (rate({failed}{{{sel}}}[5m]))"
    return f"{failed_rate} / (sum by ({by}) (rate({succeeded}{{{sel}}}[5m])) + {failed_rate})"


def exporter_alerts(config: StackConfig) -> RuleGroup:
    jobs, t = config.jobs, config.thresholds
    common = {"runbook_base_url": config.runbook_base_url}
    node = f'job="{jobs.node}"'
    fs = f"{node},{IGNORED_FILESYSTEMS}"
    pg = f'job="{jobs.postgres}"'
    redis = f'job="{jobs.redis}"'
    probe = f'job="{jobs.blackbox}"'
    return RuleGroup(name="platform.exporters", rules=(
        alert("PostgresDown", target_down(jobs.postgres, "pg_up"), for_="1m",
              severity=CRITICAL, service="database",
              summary="PostgreSQL is down",
              description=down_description("PostgreSQL (or its exporter)", "1 minute"), **common),
        alert("RedisDown", target_down(jobs.redis, "redis_up"), for_="1m",
              severity=CRITICAL, service="cache",
              summary="Redis is down",
              description=down_description("Redis (or its exporter)", "1 minute"), **common),
        alert("HostHighCpu",
              f'1 - avg by (job, instance) (rate(node_cpu_seconds_total{{{node},mode="idle"}}[5m])) '
              f"> {t.host_cpu_ratio}",
              for_="10m", severity=WARNING, service="host",
              summary="Host CPU is saturated",
              description="The CPUs of {{ $labels.instance }} are {{ $value | humanizePercentage }} "
                          "busy on average.", **common),
        alert("HostLowMemory",
              f"node_memory_MemAvailable_bytes{{{node}}} / node_memory_MemTotal_bytes{{{node}}} "
              f"< {t.host_memory_available_ratio}",
              for_="10m", severity=WARNING, service="host",
              summary="Host is running out of memory",
              description="Only {{ $value | humanizePercentage }} of the memory of "
                          "{{ $labels.instance }} is available.", **common),
        # Both conditions: a nearly full disk that stopped growing is fine, and so is a fast
        # growing one with plenty of room; readonly filesystems cannot fill.
        alert("HostFilesystemFillingUp",
              f"node_filesystem_avail_bytes{{{fs}}} / node_filesystem_size_bytes{{{fs}}} "
              f"< {t.filesystem_available_ratio} "
              f"and predict_linear(node_filesystem_avail_bytes{{{fs}}}[6h], "
              f"{number(t.filesystem_fill_hours * 3600)}) < 0 "
              f"and node_filesystem_readonly{{{fs}}} == 0",
              for_="1h", severity=WARNING, service="host",
              summary="A filesystem will be full soon",
              description="{{ $labels.mountpoint }} on {{ $labels.instance }} has "
                          "{{ $value | humanizePercentage }} of its space left and will be full "
                          f"within {number(t.filesystem_fill_hours)} hours at the current rate.",
              **common),
        alert("PostgresTooManyConnections",
              f"{postgres_connections_used(pg)} > {t.postgres_connections_ratio}",
              for_="5m", severity=WARNING, service="database",
              summary="PostgreSQL is close to its connection limit",
              description="PostgreSQL behind {{ $labels.instance }} uses "
                          "{{ $value | humanizePercentage }} of its max_connections.", **common),
        # maxmemory 0 means unlimited: no ratio to watch.
        alert("RedisMemoryHigh",
              f"redis_memory_used_bytes{{{redis}}} / redis_memory_max_bytes{{{redis}}} "
              f"> {t.redis_memory_ratio} and redis_memory_max_bytes{{{redis}}} > 0",
              for_="5m", severity=WARNING, service="cache",
              summary="Redis is close to its maxmemory",
              description="Redis behind {{ $labels.instance }} uses {{ $value | humanizePercentage }} "
                          "of its maxmemory; at the limit it evicts keys or refuses writes.", **common),
        alert("BlackboxProbeFailed", f"probe_success{{{probe}}} == 0", for_="2m",
              severity=CRITICAL, service="probe",
              summary="A MediaNest endpoint fails its probe",
              description="{{ $labels.instance }} has failed its blackbox probe for more than "
                          "2 minutes.", **common),
        alert("TlsCertificateExpiringSoon",
              f"(probe_ssl_earliest_cert_expiry{{{probe}}} - time()) / 86400 "
              f"< {number(t.certificate_expiry_days)}",
              for_="15m", severity=WARNING, service="probe",
              summary="A TLS certificate expires soon",
              description='The TLS certificate of {{ $labels.instance }} expires in '
                          '{{ printf "%.1f" $value }} days.', **common),
    ))


def meta_alerts(config: StackConfig) -> RuleGroup:
    jobs, t = config.jobs, config.thresholds
    common = {"runbook_base_url": config.runbook_base_url}
    prom = f'job="{jobs.prometheus}"'
    am = f'job="{jobs.alertmanager}"'
    loki = f'job="{jobs.loki}"'
    jaeger = f'job="{jobs.jaeger}"'
    # Jobs with their own down alert (ApplicationDown is in medianest.py): one outage, one alert.
    own_down_alert = "|".join((jobs.backend, jobs.postgres, jobs.redis, jobs.loki, jobs.jaeger))
    am_members = f"max_over_time(alertmanager_cluster_members{{{am}}}[5m])"
    return RuleGroup(name="platform.meta", rules=(
        # Routing sends it to a dead man's switch, which pages when it stops arriving.
        alert("Watchdog", "vector(1)", severity=INFO, service="platform",
              summary="Alerting pipeline heartbeat",
              description="This alert always fires. A dead man's switch outside the stack pages when "
                          "it stops arriving: then Prometheus, Alertmanager or the route between "
                          "them is broken.", **common),
        alert("TargetDown", f'up{{job!~"{own_down_alert}"}} == 0', for_="5m",
              severity=WARNING, service="platform",
              summary="A scrape target is down",
              description="{{ $labels.job }} target {{ $labels.instance }} has been down for more "
                          "than 5 minutes.", **common),
        alert("PrometheusConfigReloadFailed",
              f"max_over_time(prometheus_config_last_reload_successful{{{prom}}}[5m]) == 0",
              for_="10m", severity=WARNING, service="platform",
              summary="Prometheus cannot reload its configuration",
              description="Prometheus {{ $labels.instance }} failed to reload its configuration and "
                          "still runs the previous one.", **common),
        # Critical: the alerts of a failing group can never fire.
        alert("PrometheusRuleEvaluationFailures",
              f"increase(prometheus_rule_evaluation_failures_total{{{prom}}}[5m]) > 0",
              for_="15m", severity=CRITICAL, service="platform",
              summary="Prometheus fails to evaluate rules",
              description="Rule group {{ $labels.rule_group }} fails to evaluate on "
                          "{{ $labels.instance }}: its alerts cannot fire.", **common),
        alert("PrometheusNotConnectedToAlertmanagers",
              f"max_over_time(prometheus_notifications_alertmanagers_discovered{{{prom}}}[5m]) < 1",
              for_="10m", severity=WARNING, service="platform",
              summary="Prometheus has no Alertmanager to send alerts to",
              description="Prometheus {{ $labels.instance }} has not discovered any Alertmanager.",
              **common),
        alert("PrometheusNotificationsFailing",
              f"rate(prometheus_notifications_errors_total{{{prom}}}[5m]) "
              f"/ rate(prometheus_notifications_sent_total{{{prom}}}[5m]) > {number(t.notification_failure_ratio)}",
              for_="15m", severity=WARNING, service="platform",
              summary="Prometheus fails to send alerts to Alertmanager",
              description="{{ $value | humanizePercentage }} of the alerts Prometheus "
                          "{{ $labels.instance }} sent to {{ $labels.alertmanager }} failed over the "
                          "last 5 minutes.", **common),
        # Blocks are compacted every 2h: 4h means failures two runs in a row.
        alert("PrometheusTsdbCompactionsFailing",
              f"increase(prometheus_tsdb_compactions_failed_total{{{prom}}}[3h]) > 0",
              for_="4h", severity=WARNING, service="platform",
              summary="Prometheus fails to compact its storage",
              description="Prometheus {{ $labels.instance }} keeps failing to compact its TSDB "
                          "blocks: its disk usage grows and queries slow down.", **common),
        # Size retention 0 means only time retention applies: nothing to compare with.
        alert("PrometheusStorageFillingUp",
              f"prometheus_tsdb_storage_blocks_bytes{{{prom}}} / prometheus_tsdb_retention_limit_bytes"
              f"{{{prom}}} > {number(t.prometheus_storage_ratio)} "
              f"and prometheus_tsdb_retention_limit_bytes{{{prom}}} > 0",
              for_="30m", severity=WARNING, service="platform",
              summary="Prometheus storage is close to its size limit",
              description="The TSDB blocks of Prometheus {{ $labels.instance }} use "
                          "{{ $value | humanizePercentage }} of its size retention limit: at the "
                          "limit it deletes data younger than its time retention.", **common),
        alert("AlertmanagerConfigReloadFailed",
              f"max_over_time(alertmanager_config_last_reload_successful{{{am}}}[5m]) == 0",
              for_="10m", severity=WARNING, service="platform",
              summary="Alertmanager cannot reload its configuration",
              description="Alertmanager {{ $labels.instance }} failed to reload its configuration and "
                          "still runs the previous one.", **common),
        # Critical: these are alerts nobody receives; another integration may still carry the page.
        alert("AlertmanagerNotificationsFailing",
              "sum by (job, instance, integration) "
              f"(rate(alertmanager_notifications_failed_total{{{am}}}[5m])) "
              "/ sum by (job, instance, integration) "
              f"(rate(alertmanager_notifications_total{{{am}}}[5m])) > {number(t.notification_failure_ratio)}",
              for_="5m", severity=CRITICAL, service="platform",
              summary="Alertmanager fails to send notifications",
              description="{{ $value | humanizePercentage }} of the {{ $labels.integration }} "
                          "notifications of Alertmanager {{ $labels.instance }} failed over the last "
                          "5 minutes.", **common),
        alert("AlertmanagerClusterMembersInconsistent",
              f"{am_members} < on (job) group_left () count by (job) ({am_members})",
              for_="15m", severity=WARNING, service="platform",
              summary="Alertmanager instances do not see each other",
              description="Alertmanager {{ $labels.instance }} sees {{ $value }} cluster members, "
                          "fewer than the {{ $labels.job }} instances Prometheus scrapes.", **common),
        alert("LokiRequestErrors",
              f"sum by (job, route) (rate(loki_request_duration_seconds_count{{{loki},"
              f'status_code=~"5.."}}[5m])) '
              f"/ sum by (job, route) (rate(loki_request_duration_seconds_count{{{loki}}}[5m])) "
              f"> {number(t.loki_error_ratio)}",
              for_="15m", severity=WARNING, service="platform",
              summary="Loki is failing requests",
              description="{{ $value | humanizePercentage }} of the {{ $labels.route }} requests to "
                          "{{ $labels.job }} failed with a 5xx over the last 5 minutes.", **common),
        # Critical: Alloy buffers logs for a while only, then they are lost.
        alert("LokiDown", target_down(jobs.loki), for_="2m", severity=CRITICAL, service="platform",
              summary="Loki is down",
              description=down_description("Loki", "2 minutes"), **common),
        # Warning: traces are sampled and best effort; nothing else depends on them.
        alert("JaegerDown", target_down(jobs.jaeger), for_="5m", severity=WARNING, service="platform",
              summary="Jaeger is down",
              description=down_description("Jaeger", "5 minutes"), **common),
        alert("JaegerSpansRefused",
              _loss_ratio("otelcol_receiver_refused_spans_total", "otelcol_receiver_accepted_spans_total",
                          "job, instance, receiver", jaeger) + f" > {number(t.span_loss_ratio)}",
              for_="10m", severity=WARNING, service="platform",
              summary="Jaeger refuses spans",
              description="Jaeger {{ $labels.instance }} refuses {{ $value | humanizePercentage }} of "
                          "the spans its {{ $labels.receiver }} receiver gets: traces are lost.",
              **common),
        alert("JaegerExportFailing",
              _loss_ratio("otelcol_exporter_send_failed_spans_total", "otelcol_exporter_sent_spans_total",
                          "job, instance, exporter", jaeger) + f" > {number(t.span_loss_ratio)}",
              for_="10m", severity=WARNING, service="platform",
              summary="Jaeger fails to store spans",
              description="{{ $value | humanizePercentage }} of the spans Jaeger {{ $labels.instance }} "
                          "exports through {{ $labels.exporter }} fail to reach its storage.", **common),
    ))


# Alerts about one component of the stack, left out where it is not deployed
# (`services.<component>.enabled: false`, as in the sandbox, which has no Loki or Jaeger binary).
COMPONENT_ALERTS = {
    "loki": ("LokiRequestErrors", "LokiDown"),
    "jaeger": ("JaegerDown", "JaegerSpansRefused", "JaegerExportFailing"),
}


# With prometheus-operator (`kubernetes.prometheusOperator.enabled`) the cluster's Prometheus and
# Alertmanager evaluate our rules; they are not ours, and kube-prometheus ships their alerts.
OPERATOR_OWNED_ALERTS = (
    "PrometheusConfigReloadFailed", "PrometheusRuleEvaluationFailures", "PrometheusNotConnectedToAlertmanagers",
    "PrometheusNotificationsFailing", "PrometheusTsdbCompactionsFailing", "PrometheusStorageFillingUp",
    "AlertmanagerConfigReloadFailed", "AlertmanagerNotificationsFailing", "AlertmanagerClusterMembersInconsistent",
)


def absent_alerts(config: StackConfig) -> set[str]:
    """Alerts about components this stack does not deploy."""
    absent = {name for component, names in COMPONENT_ALERTS.items()
              if not getattr(config.services, component).enabled for name in names}
    absent |= {rule.alert for component in registry.components() if not component.deployed(config)
               for rule in component.alerts(config)}
    if config.target == "kubernetes" and config.kubernetes.prometheus_operator.enabled:
        absent.update(OPERATOR_OWNED_ALERTS)
    return absent


def _with_components(group: RuleGroup, config: StackConfig) -> RuleGroup:
    """The group and every deployed component's alerts that join it (`COMPONENT.alert_group`)."""
    joined = tuple(rule for component in registry.deployed(config) if component.alert_group == group.name
                   for rule in component.alerts(config))
    return group.model_copy(update={"rules": group.rules + joined})


def rule_file(config: StackConfig) -> RuleFile:
    absent = absent_alerts(config)
    groups = tuple(
        group.model_copy(update={"rules": tuple(r for r in group.rules if getattr(r, "alert", None) not in absent)})
        for group in (_with_components(exporter_alerts(config), config),
                      _with_components(meta_alerts(config), config)))
    component_tests = tuple(test for component in registry.deployed(config) for test in component.alert_tests(config))
    kept = tuple(t for t in tests(config) + component_tests if not t.alerts or {a.alert for a in t.alerts} - absent)
    return RuleFile(name="platform", groups=groups, tests=kept)


# ---------------------------------------------------------------------------------------------
# Tests

# How close to a threshold the tests go, relative to it: they prove the threshold within 2%.
MARGIN = 0.02


def _over(threshold: float) -> float:
    return threshold * (1 + MARGIN)


def _under(threshold: float) -> float:
    return threshold * (1 - MARGIN)


def _s(metric: str, values: str, **labels: str) -> Series:
    return Series(metric + "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}", values)


# What each alert carries whatever the data, stated apart from the rules above: a wrong severity,
# routing label or summary there fails these tests.
EXPECTED = {
    "PostgresDown": Expected("critical", "database", "PostgreSQL is down"),
    "RedisDown": Expected("critical", "cache", "Redis is down"),
    "HostHighCpu": Expected("warning", "host", "Host CPU is saturated"),
    "HostLowMemory": Expected("warning", "host", "Host is running out of memory"),
    "HostFilesystemFillingUp": Expected("warning", "host", "A filesystem will be full soon"),
    "PostgresTooManyConnections": Expected("warning", "database", "PostgreSQL is close to its connection limit"),
    "RedisMemoryHigh": Expected("warning", "cache", "Redis is close to its maxmemory"),
    "BlackboxProbeFailed": Expected("critical", "probe", "A MediaNest endpoint fails its probe"),
    "TlsCertificateExpiringSoon": Expected("warning", "probe", "A TLS certificate expires soon"),
    "Watchdog": Expected("info", "platform", "Alerting pipeline heartbeat"),
    "TargetDown": Expected("warning", "platform", "A scrape target is down"),
    "PrometheusConfigReloadFailed": Expected("warning", "platform", "Prometheus cannot reload its configuration"),
    "PrometheusRuleEvaluationFailures": Expected("critical", "platform", "Prometheus fails to evaluate rules"),
    "PrometheusNotConnectedToAlertmanagers": Expected("warning", "platform",
                                                      "Prometheus has no Alertmanager to send alerts to"),
    "PrometheusNotificationsFailing": Expected("warning", "platform",
                                               "Prometheus fails to send alerts to Alertmanager"),
    "PrometheusTsdbCompactionsFailing": Expected("warning", "platform", "Prometheus fails to compact its storage"),
    "PrometheusStorageFillingUp": Expected("warning", "platform", "Prometheus storage is close to its size limit"),
    "AlertmanagerConfigReloadFailed": Expected("warning", "platform", "Alertmanager cannot reload its configuration"),
    "AlertmanagerNotificationsFailing": Expected("critical", "platform", "Alertmanager fails to send notifications"),
    "AlertmanagerClusterMembersInconsistent": Expected("warning", "platform",
                                                       "Alertmanager instances do not see each other"),
    "LokiRequestErrors": Expected("warning", "platform", "Loki is failing requests"),
    "LokiDown": Expected("critical", "platform", "Loki is down"),
    "JaegerDown": Expected("warning", "platform", "Jaeger is down"),
    "JaegerSpansRefused": Expected("warning", "platform", "Jaeger refuses spans"),
    "JaegerExportFailing": Expected("warning", "platform", "Jaeger fails to store spans"),
}


def _fires(at: str, name: str, description: str, **labels: str) -> AlertAt:
    return AlertAt(at, name, (EXPECTED[name].firing(labels, description),))


def _silent(at: str, name: str) -> AlertAt:
    return AlertAt(at, name)


def _counter(per_minute: float, samples: int = 60) -> str:
    return f"0+{number(per_minute)}x{samples}"


def tests(config: StackConfig) -> tuple[RuleTest, ...]:
    return exporter_tests(config) + meta_tests(config)


def _down_tests(alert_name: str, what: str, job: str, instance: str, exporter_up: str) -> list[RuleTest]:
    labels = {"job": job, "instance": instance}
    described = f"{what} (or its exporter) cannot be reached through {instance} for more than 1 minute."
    return [
        RuleTest(
            f"{what} reported down by its exporter pages after 1 minute",
            series=(_s("up", "1x10", **labels), _s(exporter_up, "1 1 0x8", **labels)),
            alerts=(_silent("2m", alert_name), _fires("4m", alert_name, described, **labels)),
        ),
        RuleTest(
            f"An unreachable {what} exporter pages as {alert_name}",
            series=(_s("up", "1 1 0x8", **labels), _s(exporter_up, "1 1 stale", **labels)),
            alerts=(_fires("4m", alert_name, described, **labels),),
        ),
    ]


def exporter_tests(config: StackConfig) -> tuple[RuleTest, ...]:
    jobs, t = config.jobs, config.thresholds
    node = {"job": jobs.node, "instance": NODE}
    pg = {"job": jobs.postgres, "instance": POSTGRES}
    redis = {"job": jobs.redis, "instance": REDIS}
    probe = {"job": jobs.blackbox, "instance": HEALTH_URL}
    result = [
        *_down_tests("PostgresDown", "PostgreSQL", jobs.postgres, POSTGRES, "pg_up"),
        RuleTest(
            "No PostgreSQL exporter being scraped at all pages",
            series=(_s("up", "1x10", **node),),
            alerts=(_fires("2m", "PostgresDown", f"No {jobs.postgres} target is being scraped for "
                           "more than 1 minute.", job=jobs.postgres),),
        ),
        *_down_tests("RedisDown", "Redis", jobs.redis, REDIS, "redis_up"),
    ]

    # Idle seconds per minute of two CPUs, whose average busy ratio is `busy`.
    def cpus(busy: float) -> tuple[Series, ...]:
        skew = (1 - busy) / 2
        return tuple(_s("node_cpu_seconds_total", _counter(60 * (1 - busy - d)), cpu=cpu, mode="idle",
                        **node) for cpu, d in (("0", skew), ("1", -skew)))

    cpu_busy = _over(t.host_cpu_ratio)
    result += [
        RuleTest(
            "CPUs busy just over the threshold for 10 minutes open a ticket",
            series=cpus(cpu_busy),
            alerts=(_silent("8m", "HostHighCpu"),
                    _fires("15m", "HostHighCpu", f"The CPUs of {NODE} are {pct(cpu_busy)} busy on "
                           "average.", **node)),
        ),
        RuleTest(
            "CPUs busy just under the threshold stay silent",
            series=cpus(_under(t.host_cpu_ratio)),
            alerts=(_silent("20m", "HostHighCpu"),),
        ),
    ]

    def memory(available: float) -> tuple[Series, ...]:
        return (_s("node_memory_MemTotal_bytes", f"{8 * GIB}x30", **node),
                _s("node_memory_MemAvailable_bytes", f"{number(8 * GIB * available)}x30", **node))

    low_memory = _under(t.host_memory_available_ratio)
    result += [
        RuleTest(
            "Available memory just under the threshold for 10 minutes opens a ticket",
            series=memory(low_memory),
            alerts=(_silent("8m", "HostLowMemory"),
                    _fires("15m", "HostLowMemory", f"Only {pct(low_memory)} of the memory of {NODE} "
                           "is available.", **node)),
        ),
        RuleTest(
            "Available memory just over the threshold stays silent",
            series=memory(_over(t.host_memory_available_ratio)),
            alerts=(_silent("15m", "HostLowMemory"),),
        ),
    ]
    result += _filesystem_tests(config)

    def connections(ratio: float) -> tuple[Series, ...]:
        used = 200 * ratio
        return (_s("pg_settings_max_connections", "200x15", **pg),
                _s("pg_stat_database_numbackends", f"{number(used * 0.9)}x15", datid="16384",
                   datname="medianest", **pg),
                _s("pg_stat_database_numbackends", f"{number(used * 0.1)}x15", datid="5",
                   datname="postgres", **pg))

    busy_pg = _over(t.postgres_connections_ratio)
    result += [
        RuleTest(
            "PostgreSQL connections just over the threshold for 5 minutes open a ticket",
            series=connections(busy_pg),
            alerts=(_silent("4m", "PostgresTooManyConnections"),
                    _fires("8m", "PostgresTooManyConnections", f"PostgreSQL behind {POSTGRES} uses "
                           f"{pct(busy_pg)} of its max_connections.", **pg)),
        ),
        RuleTest(
            "PostgreSQL connections just under the threshold stay silent",
            series=connections(_under(t.postgres_connections_ratio)),
            alerts=(_silent("8m", "PostgresTooManyConnections"),),
        ),
    ]

    def redis_memory(used: float, limit: float = 512 * 1024**2) -> tuple[Series, ...]:
        return (_s("redis_memory_max_bytes", f"{number(limit)}x15", **redis),
                _s("redis_memory_used_bytes", f"{number(used)}x15", **redis))

    full_redis = _over(t.redis_memory_ratio)
    result += [
        RuleTest(
            "Redis memory just over the threshold of maxmemory for 5 minutes opens a ticket",
            series=redis_memory(512 * 1024**2 * full_redis),
            alerts=(_silent("4m", "RedisMemoryHigh"),
                    _fires("8m", "RedisMemoryHigh", f"Redis behind {REDIS} uses {pct(full_redis)} of "
                           "its maxmemory; at the limit it evicts keys or refuses writes.", **redis)),
        ),
        RuleTest(
            "Redis memory just under the threshold of maxmemory stays silent",
            series=redis_memory(512 * 1024**2 * _under(t.redis_memory_ratio)),
            alerts=(_silent("8m", "RedisMemoryHigh"),),
        ),
        RuleTest(
            "Redis without maxmemory never reports a memory ratio",
            series=redis_memory(GIB, limit=0),
            alerts=(_silent("8m", "RedisMemoryHigh"),),
        ),
        RuleTest(
            "A failing health endpoint pages after 2 minutes, a one-probe blip does not",
            series=(_s("probe_success", "1 1 0x8", **probe),
                    _s("probe_success", "1 0 1x8", job=jobs.blackbox,
                       instance="https://medianest.example.com/")),
            alerts=(_silent("3m", "BlackboxProbeFailed"),
                    _fires("5m", "BlackboxProbeFailed", f"{HEALTH_URL} has failed its blackbox probe "
                           "for more than 2 minutes.", **probe)),
        ),
    ]

    # promtool evaluates from the epoch: time() at 20m is 1200.
    def expiry(days_left_at_20m: float) -> str:
        return number(1200 + days_left_at_20m * 86400)

    soon = expiry(_under(t.certificate_expiry_days))
    result += [
        RuleTest(
            "A certificate expiring just sooner than the threshold opens a ticket after 15 minutes",
            series=(_s("probe_ssl_earliest_cert_expiry", f"{soon}x30", **probe),),
            alerts=(_silent("10m", "TlsCertificateExpiringSoon"),
                    _fires("20m", "TlsCertificateExpiringSoon", f"The TLS certificate of {HEALTH_URL} "
                           f"expires in {(float(soon) - 1200) / 86400:.1f} days.", **probe)),
        ),
        RuleTest(
            "A certificate expiring just later than the threshold stays silent",
            series=(_s("probe_ssl_earliest_cert_expiry",
                       f"{expiry(_over(t.certificate_expiry_days))}x30", **probe),),
            alerts=(_silent("20m", "TlsCertificateExpiringSoon"),),
        ),
    ]
    return tuple(result)


def _filesystem_tests(config: StackConfig) -> list[RuleTest]:
    jobs, t = config.jobs, config.thresholds
    size, hours, ratio = 100 * GIB, t.filesystem_fill_hours, t.filesystem_available_ratio
    # Both conditions become true together at `start`; the alert must then hold for 1h.
    start, at = 20, 90

    def filesystem(mountpoint: str, left: float, full_in_hours: float, fstype: str = "ext4",
                   readonly: int = 0, device: str = "/dev/sda1") -> tuple[Series, ...]:
        """A filesystem with `left` of its space left at `start`, shrinking linearly so that it is
        full `full_in_hours` later."""
        per_minute = left / (full_in_hours * 60)
        labels = {"job": jobs.node, "instance": NODE, "device": device, "fstype": fstype,
                  "mountpoint": mountpoint}
        return (_s("node_filesystem_size_bytes", f"{size}x120", **labels),
                _s("node_filesystem_avail_bytes",
                   f"{number(size * (left + start * per_minute))}-{number(size * per_minute)}x120", **labels),
                _s("node_filesystem_readonly", f"{readonly}x120", **labels))

    # Each firing filesystem reaches one threshold exactly at `start` and is past the other all
    # along: that threshold 2% tighter would start the alert half an hour later, 2% looser half an
    # hour sooner, and one of the two checks below would fail.
    def fs_labels(mountpoint: str, device: str) -> dict[str, str]:
        return {"job": jobs.node, "instance": NODE, "device": device, "fstype": "ext4",
                "mountpoint": mountpoint}

    def described(mountpoint: str, left: float, full_in_hours: float) -> Firing:
        left_at = left * (1 - (at - start) / (full_in_hours * 60))
        device = "/dev/sdb1" if mountpoint == "/srv/media" else "/dev/sda1"
        return EXPECTED["HostFilesystemFillingUp"].firing(fs_labels(mountpoint, device),
                                                          f"{mountpoint} on {NODE} has {pct(left_at)} of its "
                                                          f"space left and will be full within {number(hours)} "
                                                          "hours at the current rate.")

    return [
        RuleTest(
            "Filesystems low on space and full within the horizon open a ticket after 1 hour",
            series=(*filesystem("/srv/media", ratio, hours / 2, device="/dev/sdb1"),
                    *filesystem("/var/lib/docker", ratio / 2, hours),
                    *filesystem("/run", ratio, hours / 2, fstype="tmpfs", device="tmpfs")),
            alerts=(_silent(f"{at - 15}m", "HostFilesystemFillingUp"),
                    AlertAt(f"{at}m", "HostFilesystemFillingUp", (
                        described("/srv/media", ratio, hours / 2),
                        described("/var/lib/docker", ratio / 2, hours)))),
        ),
        RuleTest(
            "Filesystems low on space but filling slowly, filling fast but with room, or readonly "
            "stay silent",
            series=(*filesystem("/srv/media", ratio / 2, hours * 1.5, device="/dev/sdb1"),
                    *filesystem("/var/lib/docker", ratio * 1.2, hours / 2),
                    *filesystem("/mnt/archive", ratio / 2, hours / 2, readonly=1, device="/dev/sdc1")),
            alerts=(_silent(f"{at}m", "HostFilesystemFillingUp"),),
        ),
    ]


def meta_tests(config: StackConfig) -> tuple[RuleTest, ...]:
    jobs, t = config.jobs, config.thresholds
    prom = {"job": jobs.prometheus, "instance": PROMETHEUS}
    am = {"job": jobs.alertmanager, "instance": ALERTMANAGER}
    loki = {"job": jobs.loki, "instance": LOKI}
    jaeger = {"job": jobs.jaeger, "instance": JAEGER}
    grafana = {"job": jobs.grafana, "instance": GRAFANA}
    result = [
        RuleTest(
            "The Watchdog always fires",
            series=(_s("up", "1x5", **prom),),
            alerts=(_fires("1m", "Watchdog", "This alert always fires. A dead man's switch outside the stack pages "
                           "when it stops arriving: then Prometheus, Alertmanager or the route between them "
                           "is broken."),),
        ),
        RuleTest(
            "A target down for 5 minutes opens a ticket, unless it has its own down alert",
            series=(_s("up", "1 0x10", **grafana),
                    _s("up", "1 0x10", job=jobs.postgres, instance=POSTGRES),
                    _s("up", "1x10", **prom)),
            alerts=(_silent("4m", "TargetDown"),
                    _fires("7m", "TargetDown", f"{jobs.grafana} target {GRAFANA} has been down for more "
                           "than 5 minutes.", **grafana)),
        ),
        RuleTest(
            "A failed Prometheus configuration reload opens a ticket after 10 minutes",
            series=(_s("prometheus_config_last_reload_successful", "1 0x30", **prom),),
            alerts=(_silent("12m", "PrometheusConfigReloadFailed"),
                    _fires("18m", "PrometheusConfigReloadFailed", f"Prometheus {PROMETHEUS} failed to "
                           "reload its configuration and still runs the previous one.", **prom)),
        ),
    ]
    failing_group = "/etc/prometheus/rules/medianest.yaml;medianest.alerts"
    result += [
        RuleTest(
            "A rule group failing for 15 minutes pages; a healthy group stays silent",
            series=(_s("prometheus_rule_evaluation_failures_total", "0x5 1+1x30", rule_group=failing_group,
                       **prom),
                    _s("prometheus_rule_evaluation_failures_total", "0x35",
                       rule_group="/etc/prometheus/rules/platform.yaml;platform.meta", **prom)),
            alerts=(_silent("15m", "PrometheusRuleEvaluationFailures"),
                    _fires("25m", "PrometheusRuleEvaluationFailures", f"Rule group {failing_group} fails "
                           f"to evaluate on {PROMETHEUS}: its alerts cannot fire.",
                           rule_group=failing_group, **prom)),
        ),
        RuleTest(
            "Prometheus without Alertmanagers for 10 minutes opens a ticket",
            series=(_s("prometheus_notifications_alertmanagers_discovered", "1 0x30", **prom),),
            alerts=(_silent("12m", "PrometheusNotConnectedToAlertmanagers"),
                    _fires("18m", "PrometheusNotConnectedToAlertmanagers", f"Prometheus {PROMETHEUS} has "
                           "not discovered any Alertmanager.", **prom)),
        ),
    ]

    am_url = "http://alertmanager:9093/api/v2/alerts"

    def notifications(error_ratio: float) -> tuple[Series, ...]:
        return (_s("prometheus_notifications_sent_total", _counter(100, 40), alertmanager=am_url, **prom),
                _s("prometheus_notifications_errors_total", _counter(100 * error_ratio, 40),
                   alertmanager=am_url, **prom))

    result += [
        RuleTest(
            "Prometheus failing to send alerts just over the threshold opens a ticket after 15 minutes",
            series=notifications(2 * t.notification_failure_ratio),
            alerts=(_silent("10m", "PrometheusNotificationsFailing"),
                    _fires("25m", "PrometheusNotificationsFailing",
                           f"{pct(2 * t.notification_failure_ratio)} of the alerts Prometheus {PROMETHEUS} "
                           f"sent to {am_url} failed over the last 5 minutes.", alertmanager=am_url,
                           **prom)),
        ),
        RuleTest(
            "Prometheus failing to send alerts under the threshold stays silent",
            series=notifications(t.notification_failure_ratio / 2),
            alerts=(_silent("25m", "PrometheusNotificationsFailing"),),
        ),
        # Compactions run every 2h; the failure counter steps when one fails.
        RuleTest(
            "Compactions failing run after run open a ticket",
            series=(_s("prometheus_tsdb_compactions_failed_total", "0x60 1x120 2x120 3x60", **prom),),
            alerts=(_silent("4h30m", "PrometheusTsdbCompactionsFailing"),
                    _fires("5h30m", "PrometheusTsdbCompactionsFailing", f"Prometheus {PROMETHEUS} keeps "
                           "failing to compact its TSDB blocks: its disk usage grows and queries slow "
                           "down.", **prom)),
        ),
        RuleTest(
            "A single failed compaction stays silent",
            series=(_s("prometheus_tsdb_compactions_failed_total", "0x60 1x300", **prom),),
            alerts=(_silent("3h", "PrometheusTsdbCompactionsFailing"),
                    _silent("5h30m", "PrometheusTsdbCompactionsFailing")),
        ),
    ]

    def storage(ratio: float, limit: float, instance: str) -> tuple[Series, ...]:
        labels = {"job": jobs.prometheus, "instance": instance}
        return (_s("prometheus_tsdb_retention_limit_bytes", f"{number(limit)}x60", **labels),
                _s("prometheus_tsdb_storage_blocks_bytes", f"{number(20 * GIB * ratio)}x60", **labels))

    full = _over(t.prometheus_storage_ratio)
    result += [
        RuleTest(
            "Prometheus storage just over the threshold of its size limit opens a ticket after 30 "
            "minutes",
            series=storage(full, 20 * GIB, PROMETHEUS),
            alerts=(_silent("20m", "PrometheusStorageFillingUp"),
                    _fires("40m", "PrometheusStorageFillingUp", f"The TSDB blocks of Prometheus "
                           f"{PROMETHEUS} use {pct(full)} of its size retention limit: at the limit it "
                           "deletes data younger than its time retention.", **prom)),
        ),
        RuleTest(
            "Prometheus storage just under the threshold, or without a size limit, stays silent",
            series=(*storage(_under(t.prometheus_storage_ratio), 20 * GIB, "prometheus-0:9090"),
                    *storage(full, 0, "prometheus-1:9090")),
            alerts=(_silent("40m", "PrometheusStorageFillingUp"),),
        ),
        RuleTest(
            "A failed Alertmanager configuration reload opens a ticket after 10 minutes",
            series=(_s("alertmanager_config_last_reload_successful", "1 0x30", **am),),
            alerts=(_silent("12m", "AlertmanagerConfigReloadFailed"),
                    _fires("18m", "AlertmanagerConfigReloadFailed", f"Alertmanager {ALERTMANAGER} failed "
                           "to reload its configuration and still runs the previous one.", **am)),
        ),
    ]

    def am_notifications(failed_ratio: float) -> tuple[Series, ...]:
        return (_s("alertmanager_notifications_total", _counter(20, 20), integration="webhook", **am),
                _s("alertmanager_notifications_failed_total", _counter(20 * failed_ratio, 20),
                   integration="webhook", reason="serverError", **am),
                _s("alertmanager_notifications_failed_total", "0x20", integration="webhook",
                   reason="clientError", **am))

    result += [
        RuleTest(
            "Alertmanager failing notifications just over the threshold pages after 5 minutes",
            series=am_notifications(2 * t.notification_failure_ratio),
            alerts=(_silent("4m", "AlertmanagerNotificationsFailing"),
                    _fires("10m", "AlertmanagerNotificationsFailing",
                           f"{pct(2 * t.notification_failure_ratio)} of the webhook notifications of "
                           f"Alertmanager {ALERTMANAGER} failed over the last 5 minutes.",
                           integration="webhook", **am)),
        ),
        RuleTest(
            "Alertmanager failing notifications under the threshold stays silent",
            series=am_notifications(t.notification_failure_ratio / 2),
            alerts=(_silent("10m", "AlertmanagerNotificationsFailing"),),
        ),
    ]

    def members(*counts: int) -> tuple[Series, ...]:
        return tuple(_s("alertmanager_cluster_members", f"{n}x30", job=jobs.alertmanager,
                        instance=f"alertmanager-{i}:9093") for i, n in enumerate(counts))

    split = {"job": jobs.alertmanager, "instance": "alertmanager-1:9093"}
    result += [
        RuleTest(
            "An Alertmanager that does not see its peer opens a ticket after 15 minutes",
            series=members(2, 1),
            alerts=(_silent("10m", "AlertmanagerClusterMembersInconsistent"),
                    _fires("20m", "AlertmanagerClusterMembersInconsistent", "Alertmanager "
                           f"alertmanager-1:9093 sees {value(1)} cluster members, fewer than the "
                           f"{jobs.alertmanager} instances Prometheus scrapes.", **split)),
        ),
        RuleTest(
            "Alertmanagers that see each other stay silent",
            series=members(2, 2),
            alerts=(_silent("20m", "AlertmanagerClusterMembersInconsistent"),),
        ),
    ]

    push = {"method": "POST", "route": "loki_api_v1_push", "ws": "false", **loki}

    def loki_requests(error_ratio: float) -> tuple[Series, ...]:
        return (_s("loki_request_duration_seconds_count", _counter(100 * (1 - error_ratio), 30),
                   status_code="204", **push),
                _s("loki_request_duration_seconds_count", _counter(100 * error_ratio, 30),
                   status_code="500", **push))

    result += [
        RuleTest(
            "Loki failing requests over the threshold for 15 minutes opens a ticket",
            series=loki_requests(2 * t.loki_error_ratio),
            alerts=(_silent("10m", "LokiRequestErrors"),
                    _fires("20m", "LokiRequestErrors", f"{pct(2 * t.loki_error_ratio)} of the "
                           f"loki_api_v1_push requests to {jobs.loki} failed with a 5xx over the last "
                           "5 minutes.", job=jobs.loki, route="loki_api_v1_push")),
        ),
        RuleTest(
            "Loki failing requests under the threshold stays silent",
            series=loki_requests(t.loki_error_ratio / 2),
            alerts=(_silent("20m", "LokiRequestErrors"),),
        ),
        RuleTest(
            "Loki down for 2 minutes pages",
            series=(_s("up", "1 0x10", **loki),),
            alerts=(_silent("2m", "LokiDown"),
                    _fires("4m", "LokiDown", f"Loki cannot be reached through {LOKI} for more than "
                           "2 minutes.", **loki)),
        ),
        RuleTest(
            "Jaeger down for 5 minutes opens a ticket",
            series=(_s("up", "1 0x10", **jaeger),),
            alerts=(_silent("5m", "JaegerDown"),
                    _fires("7m", "JaegerDown", f"Jaeger cannot be reached through {JAEGER} for more "
                           "than 5 minutes.", **jaeger)),
        ),
    ]

    receiver = {"receiver": "otlp", "transport": "grpc", **jaeger}

    def refused(ratio: float) -> tuple[Series, ...]:
        return (_s("otelcol_receiver_accepted_spans_total", _counter(1000 * (1 - ratio), 30), **receiver),
                _s("otelcol_receiver_refused_spans_total", _counter(1000 * ratio, 30), **receiver))

    exporter = {"exporter": "jaeger_storage_exporter", **jaeger}

    def export_failed(ratio: float) -> tuple[Series, ...]:
        return (_s("otelcol_exporter_sent_spans_total", _counter(1000 * (1 - ratio), 30), **exporter),
                _s("otelcol_exporter_send_failed_spans_total", _counter(1000 * ratio, 30), **exporter))

    lost = 2 * t.span_loss_ratio
    result += [
        RuleTest(
            "Jaeger refusing spans over the threshold for 10 minutes opens a ticket",
            series=refused(lost),
            alerts=(_silent("8m", "JaegerSpansRefused"),
                    _fires("15m", "JaegerSpansRefused", f"Jaeger {JAEGER} refuses {pct(lost)} of the "
                           "spans its otlp receiver gets: traces are lost.", receiver="otlp", **jaeger)),
        ),
        RuleTest(
            "Jaeger refusing spans under the threshold stays silent",
            series=refused(t.span_loss_ratio / 2),
            alerts=(_silent("15m", "JaegerSpansRefused"),),
        ),
        RuleTest(
            "Jaeger failing to store spans over the threshold for 10 minutes opens a ticket",
            series=export_failed(lost),
            alerts=(_silent("8m", "JaegerExportFailing"),
                    _fires("15m", "JaegerExportFailing", f"{pct(lost)} of the spans Jaeger {JAEGER} "
                           "exports through jaeger_storage_exporter fail to reach its storage.",
                           exporter="jaeger_storage_exporter", **jaeger)),
        ),
        RuleTest(
            "Jaeger failing to store spans under the threshold stays silent",
            series=export_failed(t.span_loss_ratio / 2),
            alerts=(_silent("15m", "JaegerExportFailing"),),
        ),
    ]
    return tuple(result)
