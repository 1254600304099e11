"""VictoriaMetrics, single node: the long-term store the stack deploys on Docker
(`longTermStorage.mode: deploy`); on Kubernetes it deploys the cluster version (vmstorage.py,
vminsert.py, vmselect.py). Prometheus remote-writes every series to it (its replica label dropped,
so the two Prometheus of an HA pair write one series and `-dedup.minScrapeInterval` keeps one
sample per scrape interval); it keeps them for `retention`, whatever happens to Prometheus' own
TSDB, and serves them over a Prometheus-compatible query API: Grafana's "Long-term" datasource.

Why VictoriaMetrics (Apache-2.0) rather than Thanos: one process takes remote write and answers
PromQL, with no object storage to run (MinIO is AGPL, and Thanos needs a newer Go than this
machine to be built and judged), and its binary is built here at the shipped version (its
judge), so the sandbox and the Docker engine test run the real store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dashboards import datasources
from dashboards.common import timeseries
from dashboards.model import Row, Unit, prom
from rules.alert_tests import GIB, counter, series, silent
from rules.alert_tests import fires as _fires_of
from rules.catalog import Metric, MetricType
from rules.conventions import AlertSeverity
from rules.expressions import down_description, target_down
from rules.model import AlertingRule, alert
from rules.testing import AlertAt, Expected, RuleTest
from stack.images import Official
from stack.judges import Judge, same_version
from stack.services.addresses import service_address
from stack.services.common import image, resources
from stack.services.component import STACK_HEALTH, ComponentModule, Job, SandboxEndpoint
from stack.services.spec import (
    SCRAPERS,
    Flow,
    MetricsEndpoint,
    Port,
    ServiceSpec,
    StackPods,
    Volume,
    Workload,
    http_health,
    tcp,
)
from stack.settings import Component, HostPort, ImageRef, Memory, Retention, Url, VolumeSize, _image

if TYPE_CHECKING:
    from stack.config import StackConfig


class VictoriaMetricsService(Component):
    image: ImageRef = _image("victoriametrics/victoria-metrics", "v1.151.0")
    # Where Grafana reaches it: its datasource's URL.
    datasource_url: Url = "http://victoria-metrics:8428"
    memory: Memory = "1Gi"
    # How long it keeps samples (-retentionPeriod): the history every SLO period may read.
    retention: Retention = "90d"
    volume_size: VolumeSize = "50Gi"
    publish: HostPort | None = None


NAME = "victoria-metrics"
PORT = 8428
# The official image (alpine) runs as root; as nobody, the one directory it may write is /tmp,
# which its data volume takes the mode of (1777): the data directory is made inside it.
USER = "65534:65534"
DATA_DIR = "/tmp"
STORAGE_PATH = f"{DATA_DIR}/victoria-metrics"
DATA_VOLUME = "victoria-metrics-data"
# Prometheus' remote write endpoint, and the root of its Prometheus query API.
WRITE_PATH = "/api/v1/write"


def wanted(config: StackConfig) -> bool:
    """The long-term store and its evaluator are deployed (each of its components is)."""
    return config.long_term_storage.mode == "deploy"


def write_url(config: StackConfig) -> str:
    """Where Prometheus writes: its Service in the stack's namespace, or `addresses` (the sandbox)."""
    return f"http://{service_address(config, NAME, PORT)}{WRITE_PATH}"


def service(config: StackConfig) -> ServiceSpec:
    settings = config.services.victoria_metrics
    return ServiceSpec(
        workload=Workload(placement="stateful"),
        # The scrapers write what they scrape to it; Grafana's flow comes from its datasource.
        flows=(Flow(SCRAPERS, StackPods(NAME), tcp(PORT)),),
        name=NAME,
        image=image(settings.image),
        user=USER,
        resources=resources(settings),
        args=(
            f"-storageDataPath={STORAGE_PATH}",
            f"-retentionPeriod={settings.retention}",
            f"-httpListenAddr=:{PORT}",
            # The samples of an HA pair (one series once Prometheus drops its replica label): one
            # kept per scrape interval.
            f"-dedup.minScrapeInterval={config.services.prometheus.scrape_interval}",
        ),
        ports=(Port("http", PORT, host_port=settings.publish),),
        config_dir="/etc/victoria-metrics",
        volumes=(Volume(DATA_VOLUME, DATA_DIR, size=settings.volume_size),),
        health=http_health(PORT, "/health"),
        metrics=MetricsEndpoint(job=config.jobs.victoria_metrics, port=PORT),
    )


def _datasource(config: StackConfig, provisioned: frozenset[str]) -> tuple[str, dict[str, Any]]:
    return config.services.victoria_metrics.datasource_url, {"httpMethod": "POST", "prometheusType": "Prometheus"}


# --- metrics, alerts and their tests, dashboard row ----------------------------------------------

C, G = MetricType.COUNTER, MetricType.GAUGE
# Checked against the shipped version, built from its Go module (v1.151.0):
# tests/e2e/test_catalog_on_shipped_binaries.py runs it and reads what it exposes.
METRICS = (
    Metric("vm_rows_inserted_total", C, "Rows inserted, by the protocol they came in", ("type",)),
    Metric("vm_rows_ignored_total", C, "Rows refused on ingestion, by reason", ("reason",)),
    Metric("vm_free_disk_space_bytes", G, "Free space on the storage's disk", ("path",)),
    Metric("vm_free_disk_space_limit_bytes", G, "Free space below which it stops accepting writes", ("path",)),
    Metric("vm_storage_is_read_only", G, "1 when the storage refuses writes (free space under its limit)",
           ("path",)),
    Metric("vm_data_size_bytes", G, "Bytes stored, by part", ("type",)),
)

CRITICAL, WARNING = AlertSeverity.CRITICAL, AlertSeverity.WARNING

# The storage's own alerts, the same on one node and on a cluster's vmstorage nodes (lib/storage
# exposes the same metrics in both builds).
STORAGE_EXPECTED = {
    "LongTermStoreReadOnly": Expected("critical", "platform", "The long-term store refuses writes"),
    "LongTermStoreDiskFillingUp": Expected("warning", "platform", "The long-term store's disk fills up"),
    "LongTermStoreRowsRejected": Expected("warning", "platform", "The long-term store rejects samples"),
}
EXPECTED = {"LongTermStoreDown": Expected("critical", "platform", "The long-term store is down"), **STORAGE_EXPECTED}
INSTANCE = f"{NAME}:{PORT}"
# Days of free space left below which the disk ticket opens (at the last 6 hours' pace).
FILL_DAYS = 4


def storage_alerts(config: StackConfig, job: str) -> tuple[AlertingRule, ...]:
    """What the storage of `job` alerts on: refusing writes, a disk filling up, samples refused."""
    me = f'job="{job}"'
    common = {"runbook_base_url": config.runbook_base_url}
    return (
        alert("LongTermStoreReadOnly", f"max_over_time(vm_storage_is_read_only{{{me}}}[5m]) == 1", for_="5m",
              severity=CRITICAL, service="platform", summary="The long-term store refuses writes",
              description="{{ $labels.instance }} has less free space at {{ $labels.path }} than its limit: "
                          "it is read-only, and history stops being kept.", **common),
        alert("LongTermStoreDiskFillingUp",
              f"predict_linear(vm_free_disk_space_bytes{{{me}}}[6h], {FILL_DAYS} * 86400) "
              f"< vm_free_disk_space_limit_bytes{{{me}}}",
              for_="1h", severity=WARNING, service="platform", summary="The long-term store's disk fills up",
              description="At the pace of the last 6 hours, {{ $labels.instance }} runs out of space at "
                          f"{{{{ $labels.path }}}} within {FILL_DAYS} days: grow its volume or shorten its "
                          "retention.", **common),
        alert("LongTermStoreRowsRejected",
              f"sum by (job, instance, reason) (rate(vm_rows_ignored_total{{{me}}}[5m])) > 0", for_="15m",
              severity=WARNING, service="platform", summary="The long-term store rejects samples",
              description="{{ $labels.instance }} refuses samples ({{ $labels.reason }}) for 15 minutes: "
                          "they are not kept.", **common),
    )


def alerts(config: StackConfig) -> tuple[AlertingRule, ...]:
    job = config.jobs.victoria_metrics
    return (
        # Critical: Prometheus queues what it cannot write for a while only, then drops it.
        alert("LongTermStoreDown", target_down(job), for_="5m", severity=CRITICAL, service="platform",
              summary="The long-term store is down", description=down_description("The long-term store", "5 minutes"),
              runbook_base_url=config.runbook_base_url),
        *storage_alerts(config, job),
    )


def storage_alert_tests(job: str, instance: str, path: str) -> tuple[RuleTest, ...]:
    """`storage_alerts` firing on their failure and silent on a healthy store."""
    me = {"job": job, "instance": instance}
    disk = {"path": path, **me}
    limit = 100_000_000

    def fires(at: str, alert_name: str, description: str, /, **labels: str) -> AlertAt:
        return _fires_of(STORAGE_EXPECTED, at, alert_name, description, **labels)

    return (
        RuleTest(
            "A read-only long-term store pages after 5 minutes; writable stays silent",
            series=(series("vm_storage_is_read_only", "0x5 1x15", **disk),),
            alerts=(silent("5m", "LongTermStoreReadOnly"),
                    fires("15m", "LongTermStoreReadOnly", f"{instance} has less free space at {path} "
                          "than its limit: it is read-only, and history stops being kept.", **disk)),
        ),
        RuleTest(
            f"A disk that fills within {FILL_DAYS} days opens a ticket after an hour",
            # 20 GiB free, losing a tenth of a GiB a minute: empty in about 3.3 hours.
            series=(series("vm_free_disk_space_bytes", f"{20 * GIB}-{GIB // 10}x150", **disk),
                    series("vm_free_disk_space_limit_bytes", f"{limit}x150", **disk)),
            alerts=(silent("50m", "LongTermStoreDiskFillingUp"),
                    fires("2h", "LongTermStoreDiskFillingUp", f"At the pace of the last 6 hours, {instance} "
                          f"runs out of space at {path} within {FILL_DAYS} days: grow its volume or "
                          "shorten its retention.", **disk)),
        ),
        RuleTest(
            f"A disk with more than {FILL_DAYS} days left at its pace stays silent",
            # 500 GiB free, losing 1 GiB an hour: three weeks.
            series=(series("vm_free_disk_space_bytes", f"{500 * GIB}-{GIB // 60}x400", **disk),
                    series("vm_free_disk_space_limit_bytes", f"{limit}x400", **disk)),
            alerts=(silent("6h", "LongTermStoreDiskFillingUp"),),
        ),
        RuleTest(
            "Samples refused for 15 minutes open a ticket; none refused stays silent",
            series=(series("vm_rows_ignored_total", counter(10, 30), reason="too_many_labels", **me),
                    series("vm_rows_ignored_total", "0x30", reason="big_timestamp", **me)),
            alerts=(silent("10m", "LongTermStoreRowsRejected"),
                    fires("25m", "LongTermStoreRowsRejected", f"{instance} refuses samples (too_many_labels) "
                          "for 15 minutes: they are not kept.", reason="too_many_labels", **me)),
        ),
    )


def alert_tests(config: StackConfig) -> tuple[RuleTest, ...]:
    job = config.jobs.victoria_metrics
    me = {"job": job, "instance": INSTANCE}
    return (
        RuleTest(
            "The long-term store down for 5 minutes pages",
            series=(series("up", "1 0x10", **me),),
            alerts=(silent("4m", "LongTermStoreDown"),
                    _fires_of(EXPECTED, "7m", "LongTermStoreDown", f"The long-term store cannot be reached through "
                              f"{INSTANCE} for more than 5 minutes.", **me)),
        ),
        *storage_alert_tests(job, INSTANCE, STORAGE_PATH),
    )


def dashboard_rows(config: StackConfig) -> tuple[Row, ...]:
    return (store_row(config.jobs.victoria_metrics, config.jobs.victoria_metrics, "LongTermStoreDown"),)


def store_row(insert_job: str, storage_job: str, down_alert: str) -> Row:
    """The store's row on the stack's health dashboard: what comes in (where remote write is
    received), what is refused, what is left (where samples are stored)."""
    me, storage = f'job="{insert_job}"', f'job="{storage_job}"'
    return Row(title="Long-term store", panels=(
        timeseries("Samples written", "Samples received per second over Prometheus remote write, and refused.",
                   Unit.OPS_PER_SECOND,
                   prom(f'sum(rate(vm_rows_inserted_total{{{me}, type="promremotewrite"}}[$__rate_interval]))',
                        "written"),
                   prom(f"sum by (reason) (rate(vm_rows_ignored_total{{{storage}}}[$__rate_interval]))",
                        "refused: {{reason}}"),
                   alerts=("LongTermStoreRowsRejected", down_alert), width=12),
        timeseries("Free disk space", "Free space on the store's disk, and the limit under which it "
                   "turns read-only.", Unit.BYTES,
                   prom(f"min(vm_free_disk_space_bytes{{{storage}}})", "free"),
                   prom(f"min(vm_free_disk_space_limit_bytes{{{storage}}})", "read-only below"),
                   alerts=("LongTermStoreDiskFillingUp", "LongTermStoreReadOnly"), width=12),
    ))


def _version_flags(tag: str, module_version: str) -> list[str]:
    """lib/buildinfo: `-version` prints it, and ShortVersion reads the tag from it."""
    return [f"-X github.com/VictoriaMetrics/VictoriaMetrics/lib/buildinfo.Version=victoria-metrics-tags-{tag}"]


JUDGE = Judge("victoria_metrics", "github.com/VictoriaMetrics/VictoriaMetrics", ("victoria-metrics", "vmalert"),
              "victoriametrics/victoria-metrics", same_version, _version_flags)
# app/victoria-metrics/deployment/Dockerfile: alpine base with CA certificates, EXPOSE 8428,
# ENTRYPOINT /victoria-metrics-prod, no USER.
LOCAL_IMAGE = Official({"/victoria-metrics-prod": "victoria-metrics"}, ("/victoria-metrics-prod",), ("8428/tcp",),
                       base="alpine")
SANDBOX_ENDPOINT = SandboxEndpoint(PORT, "the long-term store's Prometheus query API: /api/v1/query, /api/v1/labels")


COMPONENT = ComponentModule(
    name=NAME, settings_key="victoria_metrics", settings=VictoriaMetricsService,
    service=lambda config, files, others: service(config),
    # On Kubernetes the store is a cluster: stack/services/vmstorage.py, vminsert.py, vmselect.py.
    targets=("docker",),
    wanted=wanted, remote_write_url=write_url,
    job=Job("victoria_metrics", "victoria-metrics"),
    metrics=METRICS, alerts=alerts, alert_group="platform.meta", alert_tests=alert_tests, expected=EXPECTED,
    dashboard=STACK_HEALTH, dashboard_rows=dashboard_rows,
    datasources=(datasources.Provided(datasources.LONG_TERM, _datasource),),
    sandbox_binary="victoria-metrics", sandbox_endpoint=SANDBOX_ENDPOINT,
    judge=JUDGE, local_image=LOCAL_IMAGE,
)
