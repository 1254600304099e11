"""The write path to the long-term store (`longTermStorage` not `none`): Prometheus failing to
remote-write, falling behind, or needing more shards than it may run, as kube-prometheus' mixin
watches it. They join platform.yaml's meta group; the store the stack deploys watches itself
(stack/services/victoria_metrics.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rules.alert_tests import counter, over, series, silent, under
from rules.alert_tests import fires as _fires_of
from rules.conventions import AlertSeverity, number
from rules.humanize import humanize_duration
from rules.humanize import humanize_percentage as pct
from rules.model import AlertingRule, alert
from rules.testing import AlertAt, Expected, RuleTest, Series

if TYPE_CHECKING:
    from stack.config import StackConfig

CRITICAL, WARNING = AlertSeverity.CRITICAL, AlertSeverity.WARNING

EXPECTED = {
    "PrometheusRemoteWriteFailing": Expected("critical", "platform",
                                             "Prometheus fails to write to the long-term store"),
    "PrometheusRemoteWriteBehind": Expected("critical", "platform", "The long-term store falls behind Prometheus"),
    "PrometheusRemoteWriteShardsMaxed": Expected("warning", "platform",
                                                 "Prometheus needs more remote-write shards than it may run"),
}
# The queue's labels, as Prometheus names them (remote_name is its name in prometheus.yml).
QUEUE = {"remote_name": "long-term", "url": "https://store.example/api/v1/write"}
INSTANCE = "prometheus:9090"


def alerts(config: StackConfig) -> tuple[AlertingRule, ...]:
    me = f'job="{config.jobs.prometheus}"'
    t = config.thresholds
    common = {"runbook_base_url": config.runbook_base_url}
    failed = f"rate(prometheus_remote_storage_samples_failed_total{{{me}}}[5m])"
    sent = f"rate(prometheus_remote_storage_samples_total{{{me}}}[5m])"
    return (
        # Critical: past its WAL (about 2 hours), what was not written is never kept.
        alert("PrometheusRemoteWriteFailing", f"({failed}) / (({failed}) + ({sent})) > "
              f"{number(t.remote_write_failure_ratio)}", for_="15m", severity=CRITICAL, service="platform",
              summary="Prometheus fails to write to the long-term store",
              description="{{ $value | humanizePercentage }} of the samples {{ $labels.instance }} sent to "
                          "{{ $labels.remote_name }} failed over the last 5 minutes.", **common),
        # Against the newest sample ingested, not the queue's newest: a queue blocked by a store
        # that is down stops reading the WAL, and its own newest timestamp stops with it (found by
        # tests/e2e/test_long_term_storage.py; kube-prometheus' mixin reads the same).
        alert("PrometheusRemoteWriteBehind",
              f"max_over_time(prometheus_remote_storage_highest_timestamp_in_seconds{{{me}}}[5m]) "
              "- ignoring (remote_name, url) group_right "
              f"max_over_time(prometheus_remote_storage_queue_highest_sent_timestamp_seconds{{{me}}}[5m]) "
              f"> {number(t.remote_write_lag_seconds)}", for_="15m", severity=CRITICAL, service="platform",
              summary="The long-term store falls behind Prometheus",
              description="{{ $labels.instance }} has not written its last {{ $value | humanizeDuration }} "
                          "of samples to {{ $labels.remote_name }}.", **common),
        alert("PrometheusRemoteWriteShardsMaxed",
              f"max_over_time(prometheus_remote_storage_shards_desired{{{me}}}[5m]) "
              f"> max_over_time(prometheus_remote_storage_shards_max{{{me}}}[5m])", for_="15m",
              severity=WARNING, service="platform",
              summary="Prometheus needs more remote-write shards than it may run",
              description="{{ $labels.instance }} wants {{ $value }} shards for {{ $labels.remote_name }}, more "
                          "than longTermStorage.queue.maxShards: samples queue up.", **common),
    )


def _fires(at: str, alert_name: str, description: str, /, **labels: str) -> AlertAt:
    return _fires_of(EXPECTED, at, alert_name, description, **labels)


def tests(config: StackConfig) -> tuple[RuleTest, ...]:
    t = config.thresholds
    queue = {"job": config.jobs.prometheus, "instance": INSTANCE, **QUEUE}

    def writes(failed_ratio: float) -> tuple[Series, ...]:
        return (series("prometheus_remote_storage_samples_total", counter(1000 * (1 - failed_ratio), 40), **queue),
                series("prometheus_remote_storage_samples_failed_total", counter(1000 * failed_ratio, 40), **queue))

    def lag(seconds: float) -> tuple[Series, ...]:
        # Ingested up to now (one sample a minute: 60 s a step); sent `seconds` behind.
        return (series("prometheus_remote_storage_highest_timestamp_in_seconds", "1000+60x40",
                       job=config.jobs.prometheus, instance=INSTANCE),
                series("prometheus_remote_storage_queue_highest_sent_timestamp_seconds",
                       f"{number(1000 - seconds)}+60x40", **queue))

    described = f"{INSTANCE} has not written its last "
    return (
        RuleTest(
            "Remote-write failures just over the threshold for 15 minutes page",
            series=writes(over(t.remote_write_failure_ratio)),
            alerts=(silent("10m", "PrometheusRemoteWriteFailing"),
                    _fires("25m", "PrometheusRemoteWriteFailing",
                           f"{pct(over(t.remote_write_failure_ratio))} of the samples {INSTANCE} sent to long-term "
                           "failed over the last 5 minutes.", **queue)),
        ),
        RuleTest(
            "Remote-write failures under the threshold stay silent",
            series=writes(under(t.remote_write_failure_ratio)),
            alerts=(silent("25m", "PrometheusRemoteWriteFailing"),),
        ),
        RuleTest(
            "A long-term store lagging past the threshold for 15 minutes pages",
            series=lag(over(t.remote_write_lag_seconds)),
            alerts=(silent("10m", "PrometheusRemoteWriteBehind"),
                    _fires("25m", "PrometheusRemoteWriteBehind",
                           f"{described}{humanize_duration(over(t.remote_write_lag_seconds))} of samples to "
                           "long-term.",
                           **queue)),
        ),
        RuleTest(
            "A long-term store lagging under the threshold stays silent",
            series=lag(under(t.remote_write_lag_seconds)),
            alerts=(silent("25m", "PrometheusRemoteWriteBehind"),),
        ),
        RuleTest(
            "More shards wanted than allowed for 15 minutes opens a ticket; as many as allowed stays silent",
            series=(series("prometheus_remote_storage_shards_desired", "4x10 60x30", **queue),
                    series("prometheus_remote_storage_shards_max", "50x40", **queue)),
            alerts=(silent("15m", "PrometheusRemoteWriteShardsMaxed"),
                    _fires("35m", "PrometheusRemoteWriteShardsMaxed", f"{INSTANCE} wants 60 shards for long-term, "
                           "more than longTermStorage.queue.maxShards: samples queue up.", **queue)),
        ),
    )

