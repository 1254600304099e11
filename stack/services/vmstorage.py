"""vmstorage: the storage nodes of the VictoriaMetrics cluster, the long-term store the Kubernetes
target deploys (`longTermStorage.mode: deploy`). vminsert spreads the samples Prometheus writes
over them, each sample on `replicationFactor` distinct nodes; vmselect asks them all and merges.
They know nothing of each other (shared nothing): a StatefulSet with a volume per node, a PDB so a
drain takes one at a time, replicas on distinct nodes.

Why the cluster rather than Thanos: the same engine and query language as the single node the
Docker target runs (its judge is built here), no object storage to run, replication and
horizontal scaling by replica counts alone. Downsampling is an enterprise feature of
VictoriaMetrics: `retention` keeps raw samples, sized by `volumeSize`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rules.alert_tests import fires as _fires_of
from rules.alert_tests import series, silent
from rules.conventions import AlertSeverity
from rules.expressions import down_description, target_down
from rules.model import AlertingRule, alert
from rules.testing import Expected, RuleTest
from stack.services import victoria_metrics
from stack.services.common import image, resources
from stack.services.component import STACK_HEALTH, ComponentModule, Job
from stack.services.spec import (
    MetricsEndpoint,
    Port,
    ServiceSpec,
    Volume,
    Workload,
    http_health,
    replica_address,
)
from stack.settings import Component, Count, ImageRef, Memory, Retention, VolumeSize, _image

if TYPE_CHECKING:
    from stack.config import StackConfig

# The cluster's images carry the single node's version with a `-cluster` suffix.
VERSION = "v1.151.0-cluster"
UNJUDGED = ("the cluster's sources live on the cluster branch of github.com/VictoriaMetrics/VictoriaMetrics, "
            "whose `-cluster` versions the Go module proxy does not serve (no version listed): the single node "
            "(same lib/storage, same metrics) is the judge of the Docker target")


class VmstorageService(Component):
    image: ImageRef = _image("victoriametrics/vmstorage", VERSION)
    memory: Memory = "2Gi"
    # How long it keeps samples (-retentionPeriod): the history every SLO period may read.
    retention: Retention = "90d"
    volume_size: VolumeSize = "100Gi"
    # Storage nodes; each sample is kept on `replicationFactor` of them, so up to
    # replicationFactor - 1 may be lost or drained without losing data or failing writes.
    replicas: Count(1, 32) = 3
    replication_factor: Count(1, 5) = 2


NAME = "vmstorage"
HTTP_PORT = 8482
INSERT_PORT = 8400  # where vminsert sends samples
SELECT_PORT = 8401  # where vmselect asks for them
DATA_DIR = "/storage"
DATA_VOLUME = "vmstorage-data"
USER = "65534:65534"


def check(config: StackConfig) -> str | None:
    settings = config.services.vmstorage
    if settings.replication_factor > settings.replicas:
        return (f"replicationFactor: {settings.replication_factor} copies need at least as many replicas "
                f"(replicas is {settings.replicas})")
    return None


def storage_nodes(config: StackConfig, port: int) -> str:
    """`-storageNode` of vminsert and vmselect: every storage node by its stable DNS name."""
    return ",".join(replica_address(NAME, i, config.kubernetes.namespace, port)
                    for i in range(config.services.vmstorage.replicas))


def dedup_interval(config: StackConfig) -> str:
    """One sample per scrape interval: the HA pair's two Prometheus write one series once the
    replica label is dropped (and replicated copies are merged at query time by the same rule)."""
    return f"-dedup.minScrapeInterval={config.services.prometheus.scrape_interval}"


def service(config: StackConfig) -> ServiceSpec:
    settings = config.services.vmstorage
    return ServiceSpec(
        workload=Workload(placement="stateful"),
        # vminsert and vmselect reach it; nothing else does (Grafana and Prometheus go through them).
        flows=(),
        name=NAME,
        image=image(settings.image),
        user=USER,
        resources=resources(settings),
        args=(
            f"-storageDataPath={DATA_DIR}",
            f"-retentionPeriod={settings.retention}",
            f"-httpListenAddr=:{HTTP_PORT}",
            f"-vminsertAddr=:{INSERT_PORT}",
            f"-vmselectAddr=:{SELECT_PORT}",
            dedup_interval(config),
        ),
        ports=(Port("http", HTTP_PORT), Port("vminsert", INSERT_PORT), Port("vmselect", SELECT_PORT)),
        config_dir="/etc/vmstorage",
        volumes=(Volume(DATA_VOLUME, DATA_DIR, size=settings.volume_size),),
        health=http_health(HTTP_PORT, "/health"),
        metrics=MetricsEndpoint(job=config.jobs.vmstorage, port=HTTP_PORT),
        replicas=settings.replicas,
    )


@dataclass(frozen=True)
class ReplicaDown:
    """The ticket of a stateless replica of the cluster (vminsert, vmselect) down for 10 minutes:
    the other replicas take its share, so it never pages."""

    alert: str
    summary: str
    what: str  # "A vminsert replica"
    port: int

    @property
    def expected(self) -> dict[str, Expected]:
        return {self.alert: Expected("warning", "platform", self.summary)}

    def alerts(self, config: StackConfig, job: str) -> tuple[AlertingRule, ...]:
        return (alert(self.alert, target_down(job), for_="10m", severity=AlertSeverity.WARNING, service="platform",
                      summary=self.summary, description=down_description(self.what, "10 minutes"),
                      runbook_base_url=config.runbook_base_url),)

    def alert_tests(self, job: str) -> tuple[RuleTest, ...]:
        instance = f"10.0.0.7:{self.port}"
        me = {"job": job, "instance": instance}
        return (RuleTest(
            f"{self.what} down for 10 minutes opens a ticket; one that restarts within minutes does not",
            series=(series("up", "1 0x15", **me),
                    series("up", "1 0x3 1x12", **{**me, "instance": f"10.0.0.8:{self.port}"})),
            alerts=(silent("8m", self.alert),
                    _fires_of(self.expected, "14m", self.alert, f"{self.what} cannot be reached through {instance} "
                              "for more than 10 minutes.", **me)),
        ),)


# --- alerts -----------------------------------------------------------------------------------------

EXPECTED = {
    "LongTermStorageNodeDown": Expected("warning", "platform", "A storage node of the long-term store is down"),
    **victoria_metrics.STORAGE_EXPECTED,
}
INSTANCE = f"{NAME}-0.{NAME}-headless.monitoring.svc:{HTTP_PORT}"


def alerts(config: StackConfig) -> tuple[AlertingRule, ...]:
    job = config.jobs.vmstorage
    copies = config.services.vmstorage.replication_factor
    return (
        # A ticket, not a page: the other copies keep writes and reads whole while fewer than
        # replicationFactor nodes are down; it pages only as LongTermStoreReadOnly or the write path.
        alert("LongTermStorageNodeDown", target_down(job), for_="15m", severity=AlertSeverity.WARNING,
              service="platform", summary="A storage node of the long-term store is down",
              description=down_description("A storage node", "15 minutes")
              + f" Samples are kept on {copies} nodes: bring it back before another one goes.",
              runbook_base_url=config.runbook_base_url),
        *victoria_metrics.storage_alerts(config, job),
    )


def alert_tests(config: StackConfig) -> tuple[RuleTest, ...]:
    job = config.jobs.vmstorage
    me = {"job": job, "instance": INSTANCE}
    copies = config.services.vmstorage.replication_factor
    return (
        RuleTest(
            "A storage node down for 15 minutes opens a ticket; a restart of a few minutes does not",
            series=(series("up", "1 0x20", **me),
                    series("up", "1 0x5 1x15", **{**me, "instance": INSTANCE.replace("-0.", "-1.")})),
            alerts=(silent("10m", "LongTermStorageNodeDown"),
                    _fires_of(EXPECTED, "18m", "LongTermStorageNodeDown",
                              f"A storage node cannot be reached through {INSTANCE} for more than 15 minutes. "
                              f"Samples are kept on {copies} nodes: bring it back before another one goes.", **me)),
        ),
        *victoria_metrics.storage_alert_tests(job, INSTANCE, DATA_DIR),
    )


COMPONENT = ComponentModule(
    name=NAME, settings_key="vmstorage", settings=VmstorageService,
    service=lambda config, files, others: service(config),
    targets=("kubernetes",), wanted=victoria_metrics.wanted, check=check,
    job=Job("vmstorage", "vmstorage"),
    metrics=victoria_metrics.METRICS, alerts=alerts, alert_group="platform.meta", alert_tests=alert_tests,
    expected=EXPECTED, dashboard=STACK_HEALTH,
    unjudged=UNJUDGED,
)
