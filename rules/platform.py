"""The monitoring stack's own alerts (Prometheus, Alertmanager, the Watchdog, scrape targets down)
with the promtool tests that prove them, and the machinery that builds platform.yaml: the alerts
of every deployed component (`COMPONENT.alerts` of the modules in stack/services: the exporters,
Loki, Jaeger...) join the group their `alert_group` names.

Every alert selects its scrape job by the configured name, so a renamed job follows. The tests
build their series from the configured thresholds: each alert fires just over its threshold and
stays silent just under it, or over it for less than its `for`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rules import remote_write
from rules.alert_tests import GIB, counter, over, series, silent, under
from rules.alert_tests import fires as _fires_of
from rules.conventions import AlertSeverity, number
from rules.expressions import target_down
from rules.humanize import humanize_percentage as pct
from rules.humanize import value
from rules.model import RuleFile, RuleGroup, alert
from rules.testing import AlertAt, Expected, RuleTest, Series
from stack import services as registry

if TYPE_CHECKING:
    from stack.config import StackConfig

CRITICAL, WARNING, INFO = AlertSeverity.CRITICAL, AlertSeverity.WARNING, AlertSeverity.INFO

# The group the exporters' alerts join (their `alert_group`, the default).
EXPORTERS_GROUP = "platform.exporters"
META_GROUP = "platform.meta"

# Instances as the scrape configs name them.
PROMETHEUS = "prometheus:9090"
ALERTMANAGER = "alertmanager:9093"


def jobs_with_own_down_alert(config: StackConfig) -> tuple[str, ...]:
    """Jobs with their own down alert, which TargetDown leaves to it (one outage, one alert): the
    backend's (ApplicationDown, in medianest.py) and every component's job one of its alerts
    watches with `target_down`."""
    own = [config.jobs.backend]
    for component in registry.components():
        if component.job is None:
            continue
        job = getattr(config.jobs, component.job.key)
        if any(target_down(job) in rule.expr for rule in component.alerts(config)):
            own.append(job)
    return tuple(own)


def meta_alerts(config: StackConfig) -> RuleGroup:
    jobs, t = config.jobs, config.thresholds
    common = {"runbook_base_url": config.runbook_base_url}
    prom = f'job="{jobs.prometheus}"'
    am = f'job="{jobs.alertmanager}"'
    own_down_alert = "|".join(jobs_with_own_down_alert(config))
    am_members = f"max_over_time(alertmanager_cluster_members{{{am}}}[5m])"
    return RuleGroup(name=META_GROUP, rules=(
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
        *(remote_write.alerts(config) if writes_long_term(config) else ()),
    ))


# With prometheus-operator (`kubernetes.prometheusOperator.enabled`) the cluster's Prometheus and
# Alertmanager evaluate our rules; they are not ours, and kube-prometheus ships their alerts.
OPERATOR_OWNED_ALERTS = (
    "PrometheusConfigReloadFailed", "PrometheusRuleEvaluationFailures", "PrometheusNotConnectedToAlertmanagers",
    "PrometheusNotificationsFailing", "PrometheusTsdbCompactionsFailing", "PrometheusStorageFillingUp",
    "AlertmanagerConfigReloadFailed", "AlertmanagerNotificationsFailing", "AlertmanagerClusterMembersInconsistent",
)


def absent_alerts(config: StackConfig) -> set[str]:
    """Alerts about components this stack does not deploy (`enabled: false`, or not made for its
    target), but none a deployed component defines too; and the alerts of a Prometheus and
    Alertmanager that are not ours (prometheus-operator)."""
    absent = {rule.alert for component in registry.components() if not component.deployed(config)
              for rule in component.alerts(config)}
    absent -= {rule.alert for component in registry.deployed(config) for rule in component.alerts(config)}
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
        for group in (_with_components(RuleGroup(name=EXPORTERS_GROUP, rules=()), config),
                      _with_components(meta_alerts(config), config)))
    groups = tuple(group for group in groups if group.rules)
    component_tests = tuple(test for component in registry.deployed(config) for test in component.alert_tests(config))
    kept = tuple(t for t in tests(config) + component_tests if not t.alerts or {a.alert for a in t.alerts} - absent)
    return RuleFile(name="platform", groups=groups, tests=kept)


# ---------------------------------------------------------------------------------------------
# Tests

# What each alert carries whatever the data, stated apart from the rules above: a wrong severity,
# routing label or summary there fails these tests.
EXPECTED = {
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
}


def _fires(at: str, alert_name: str, description: str, /, **labels: str) -> AlertAt:
    return _fires_of(EXPECTED, at, alert_name, description, **labels)


def writes_long_term(config: StackConfig) -> bool:
    """Prometheus remote-writes to a long-term store (rules/remote_write.py watches the path)."""
    return config.long_term_storage.mode != "none"


def tests(config: StackConfig) -> tuple[RuleTest, ...]:
    return meta_tests(config) + (remote_write.tests(config) if writes_long_term(config) else ())


def meta_tests(config: StackConfig) -> tuple[RuleTest, ...]:
    jobs, t = config.jobs, config.thresholds
    prom = {"job": jobs.prometheus, "instance": PROMETHEUS}
    am = {"job": jobs.alertmanager, "instance": ALERTMANAGER}
    own = jobs_with_own_down_alert(config)
    # TargetDown's example: the first component scraped with no down alert of its own.
    down_job = next(job for component in registry.deployed(config) if component.job and not component.scrapes_others
                    and (job := getattr(jobs, component.job.key)) not in own)
    down = {"job": down_job, "instance": f"{down_job}:80"}
    result = [
        RuleTest(
            "The Watchdog always fires",
            series=(series("up", "1x5", **prom),),
            alerts=(_fires("1m", "Watchdog", "This alert always fires. A dead man's switch outside the stack pages "
                           "when it stops arriving: then Prometheus, Alertmanager or the route between them "
                           "is broken."),),
        ),
        RuleTest(
            "A target down for 5 minutes opens a ticket, unless it has its own down alert",
            series=(series("up", "1 0x10", **down),
                    *(series("up", "1 0x10", job=job, instance=f"{job}:80") for job in own),
                    series("up", "1x10", **prom)),
            alerts=(silent("4m", "TargetDown"),
                    _fires("7m", "TargetDown", f"{down_job} target {down_job}:80 has been down for more "
                           "than 5 minutes.", **down)),
        ),
        RuleTest(
            "A failed Prometheus configuration reload opens a ticket after 10 minutes",
            series=(series("prometheus_config_last_reload_successful", "1 0x30", **prom),),
            alerts=(silent("12m", "PrometheusConfigReloadFailed"),
                    _fires("18m", "PrometheusConfigReloadFailed", f"Prometheus {PROMETHEUS} failed to "
                           "reload its configuration and still runs the previous one.", **prom)),
        ),
    ]
    failing_group = "/etc/prometheus/rules/medianest.yaml;medianest.alerts"
    result += [
        RuleTest(
            "A rule group failing for 15 minutes pages; a healthy group stays silent",
            series=(series("prometheus_rule_evaluation_failures_total", "0x5 1+1x30", rule_group=failing_group,
                       **prom),
                    series("prometheus_rule_evaluation_failures_total", "0x35",
                       rule_group="/etc/prometheus/rules/platform.yaml;platform.meta", **prom)),
            alerts=(silent("15m", "PrometheusRuleEvaluationFailures"),
                    _fires("25m", "PrometheusRuleEvaluationFailures", f"Rule group {failing_group} fails "
                           f"to evaluate on {PROMETHEUS}: its alerts cannot fire.",
                           rule_group=failing_group, **prom)),
        ),
        RuleTest(
            "Prometheus without Alertmanagers for 10 minutes opens a ticket",
            series=(series("prometheus_notifications_alertmanagers_discovered", "1 0x30", **prom),),
            alerts=(silent("12m", "PrometheusNotConnectedToAlertmanagers"),
                    _fires("18m", "PrometheusNotConnectedToAlertmanagers", f"Prometheus {PROMETHEUS} has "
                           "not discovered any Alertmanager.", **prom)),
        ),
    ]

    am_url = "http://alertmanager:9093/api/v2/alerts"

    def notifications(error_ratio: float) -> tuple[Series, ...]:
        return (series("prometheus_notifications_sent_total", counter(100, 40), alertmanager=am_url, **prom),
                series("prometheus_notifications_errors_total", counter(100 * error_ratio, 40),
                   alertmanager=am_url, **prom))

    result += [
        RuleTest(
            "Prometheus failing to send alerts just over the threshold opens a ticket after 15 minutes",
            series=notifications(2 * t.notification_failure_ratio),
            alerts=(silent("10m", "PrometheusNotificationsFailing"),
                    _fires("25m", "PrometheusNotificationsFailing",
                           f"{pct(2 * t.notification_failure_ratio)} of the alerts Prometheus {PROMETHEUS} "
                           f"sent to {am_url} failed over the last 5 minutes.", alertmanager=am_url,
                           **prom)),
        ),
        RuleTest(
            "Prometheus failing to send alerts under the threshold stays silent",
            series=notifications(t.notification_failure_ratio / 2),
            alerts=(silent("25m", "PrometheusNotificationsFailing"),),
        ),
        # Compactions run every 2h; the failure counter steps when one fails.
        RuleTest(
            "Compactions failing run after run open a ticket",
            series=(series("prometheus_tsdb_compactions_failed_total", "0x60 1x120 2x120 3x60", **prom),),
            alerts=(silent("4h30m", "PrometheusTsdbCompactionsFailing"),
                    _fires("5h30m", "PrometheusTsdbCompactionsFailing", f"Prometheus {PROMETHEUS} keeps "
                           "failing to compact its TSDB blocks: its disk usage grows and queries slow "
                           "down.", **prom)),
        ),
        RuleTest(
            "A single failed compaction stays silent",
            series=(series("prometheus_tsdb_compactions_failed_total", "0x60 1x300", **prom),),
            alerts=(silent("3h", "PrometheusTsdbCompactionsFailing"),
                    silent("5h30m", "PrometheusTsdbCompactionsFailing")),
        ),
    ]

    def storage(ratio: float, limit: float, instance: str) -> tuple[Series, ...]:
        labels = {"job": jobs.prometheus, "instance": instance}
        return (series("prometheus_tsdb_retention_limit_bytes", f"{number(limit)}x60", **labels),
                series("prometheus_tsdb_storage_blocks_bytes", f"{number(20 * GIB * ratio)}x60", **labels))

    full = over(t.prometheus_storage_ratio)
    result += [
        RuleTest(
            "Prometheus storage just over the threshold of its size limit opens a ticket after 30 "
            "minutes",
            series=storage(full, 20 * GIB, PROMETHEUS),
            alerts=(silent("20m", "PrometheusStorageFillingUp"),
                    _fires("40m", "PrometheusStorageFillingUp", f"The TSDB blocks of Prometheus "
                           f"{PROMETHEUS} use {pct(full)} of its size retention limit: at the limit it "
                           "deletes data younger than its time retention.", **prom)),
        ),
        RuleTest(
            "Prometheus storage just under the threshold, or without a size limit, stays silent",
            series=(*storage(under(t.prometheus_storage_ratio), 20 * GIB, "prometheus-0:9090"),
                    *storage(full, 0, "prometheus-1:9090")),
            alerts=(silent("40m", "PrometheusStorageFillingUp"),),
        ),
        RuleTest(
            "A failed Alertmanager configuration reload opens a ticket after 10 minutes",
            series=(series("alertmanager_config_last_reload_successful", "1 0x30", **am),),
            alerts=(silent("12m", "AlertmanagerConfigReloadFailed"),
                    _fires("18m", "AlertmanagerConfigReloadFailed", f"Alertmanager {ALERTMANAGER} failed "
                           "to reload its configuration and still runs the previous one.", **am)),
        ),
    ]

    def am_notifications(failed_ratio: float) -> tuple[Series, ...]:
        return (series("alertmanager_notifications_total", counter(20, 20), integration="webhook", **am),
                series("alertmanager_notifications_failed_total", counter(20 * failed_ratio, 20),
                   integration="webhook", reason="serverError", **am),
                series("alertmanager_notifications_failed_total", "0x20", integration="webhook",
                   reason="clientError", **am))

    result += [
        RuleTest(
            "Alertmanager failing notifications just over the threshold pages after 5 minutes",
            series=am_notifications(2 * t.notification_failure_ratio),
            alerts=(silent("4m", "AlertmanagerNotificationsFailing"),
                    _fires("10m", "AlertmanagerNotificationsFailing",
                           f"{pct(2 * t.notification_failure_ratio)} of the webhook notifications of "
                           f"Alertmanager {ALERTMANAGER} failed over the last 5 minutes.",
                           integration="webhook", **am)),
        ),
        RuleTest(
            "Alertmanager failing notifications under the threshold stays silent",
            series=am_notifications(t.notification_failure_ratio / 2),
            alerts=(silent("10m", "AlertmanagerNotificationsFailing"),),
        ),
    ]

    def members(*counts: int) -> tuple[Series, ...]:
        return tuple(series("alertmanager_cluster_members", f"{n}x30", job=jobs.alertmanager,
                        instance=f"alertmanager-{i}:9093") for i, n in enumerate(counts))

    split = {"job": jobs.alertmanager, "instance": "alertmanager-1:9093"}
    result += [
        RuleTest(
            "An Alertmanager that does not see its peer opens a ticket after 15 minutes",
            series=members(2, 1),
            alerts=(silent("10m", "AlertmanagerClusterMembersInconsistent"),
                    _fires("20m", "AlertmanagerClusterMembersInconsistent", "Alertmanager "
                           f"alertmanager-1:9093 sees {value(1)} cluster members, fewer than the "
                           f"{jobs.alertmanager} instances Prometheus scrapes.", **split)),
        ),
        RuleTest(
            "Alertmanagers that see each other stay silent",
            series=members(2, 2),
            alerts=(silent("20m", "AlertmanagerClusterMembersInconsistent"),),
        ),
    ]

    return tuple(result)
