"""vmselect: the long-term store's Prometheus query API on Kubernetes (`longTermStorage.mode:
deploy`), Grafana's "Long-term" datasource. Stateless replicas behind one Service; each asks every
storage node and merges their answers, one sample per scrape interval (replicated copies and the
HA pair's twins alike), and answers as long as fewer than `replicationFactor` nodes are down."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dashboards import datasources
from rules.alert_tests import fires as _fires_of
from rules.alert_tests import series, silent
from rules.conventions import AlertSeverity
from rules.expressions import down_description, target_down
from rules.model import AlertingRule, alert
from rules.testing import Expected, RuleTest
from stack.services import vmstorage
from stack.services.common import image, resources
from stack.services.component import STACK_HEALTH, ComponentModule, Job
from stack.services.spec import (
    Flow,
    MetricsEndpoint,
    Port,
    ServiceSpec,
    StackPods,
    Workload,
    http_health,
    tcp,
)
from stack.settings import Component, Count, ImageRef, Memory, Url, _image

if TYPE_CHECKING:
    from stack.config import StackConfig


class VmselectService(Component):
    image: ImageRef = _image("victoriametrics/vmselect", vmstorage.VERSION)
    # Where Grafana reaches it: its datasource's URL (tenant 0's Prometheus API).
    datasource_url: Url = "http://vmselect:8481/select/0/prometheus"
    memory: Memory = "1Gi"
    replicas: Count(1, 16) = 2


NAME = "vmselect"
PORT = 8481
# Tenant 0's Prometheus query API.
QUERY_PATH = "/select/0/prometheus"
# Its temporary blocks and caches: /tmp, the emptyDir a read-only root gets.
CACHE_DIR = "/tmp/vmselect-cache"


def wanted(config: StackConfig) -> bool:
    return config.long_term_storage.mode == "deploy"


def query_url(config: StackConfig) -> str:
    """Its Service in the stack's namespace, or `addresses`."""
    default = f"{NAME}.{config.kubernetes.namespace}.svc:{PORT}"
    return f"http://{config.addresses.get(NAME, (default,))[0]}{QUERY_PATH}"


def service(config: StackConfig) -> ServiceSpec:
    settings = config.services.vmselect
    return ServiceSpec(
        workload=Workload(placement="stateless"),
        # Its readers' flows come from their side (Grafana's datasource); it asks every storage node.
        flows=(Flow(StackPods(NAME), StackPods(vmstorage.NAME), tcp(vmstorage.SELECT_PORT)),),
        name=NAME,
        image=image(settings.image),
        user=vmstorage.USER,
        resources=resources(settings),
        args=(
            f"-httpListenAddr=:{PORT}",
            f"-storageNode={vmstorage.storage_nodes(config, vmstorage.SELECT_PORT)}",
            f"-replicationFactor={config.services.vmstorage.replication_factor}",
            vmstorage.dedup_interval(config),
            f"-cacheDataPath={CACHE_DIR}",
        ),
        ports=(Port("http", PORT),),
        config_dir="/etc/vmselect",
        health=http_health(PORT, "/health"),
        metrics=MetricsEndpoint(job=config.jobs.vmselect, port=PORT),
        replicas=settings.replicas,
    )


def _datasource(config: StackConfig, provisioned: frozenset[str]) -> tuple[str, dict[str, Any]]:
    return config.services.vmselect.datasource_url, {"httpMethod": "POST", "prometheusType": "Prometheus"}


EXPECTED = {"LongTermStoreReaderDown": Expected("warning", "platform", "A reader of the long-term store is down")}
INSTANCE = f"10.0.0.9:{PORT}"


def alerts(config: StackConfig) -> tuple[AlertingRule, ...]:
    return (alert("LongTermStoreReaderDown", target_down(config.jobs.vmselect), for_="10m",
                  severity=AlertSeverity.WARNING, service="platform",
                  summary="A reader of the long-term store is down",
                  description=down_description("A vmselect replica", "10 minutes"),
                  runbook_base_url=config.runbook_base_url),)


def alert_tests(config: StackConfig) -> tuple[RuleTest, ...]:
    me = {"job": config.jobs.vmselect, "instance": INSTANCE}
    return (RuleTest(
        "A vmselect replica down for 10 minutes opens a ticket; healthy ones stay silent",
        series=(series("up", "1 0x15", **me), series("up", "1x15", **{**me, "instance": f"10.0.0.10:{PORT}"})),
        alerts=(silent("8m", "LongTermStoreReaderDown"),
                _fires_of(EXPECTED, "14m", "LongTermStoreReaderDown", "A vmselect replica cannot be reached through "
                          f"{INSTANCE} for more than 10 minutes.", **me)),
    ),)


COMPONENT = ComponentModule(
    name=NAME, settings_key="vmselect", settings=VmselectService,
    service=lambda config, files, others: service(config),
    targets=("kubernetes",), wanted=wanted,
    job=Job("vmselect", "vmselect"),
    alerts=alerts, alert_group="platform.meta", alert_tests=alert_tests, expected=EXPECTED,
    dashboard=STACK_HEALTH,
    datasources=(datasources.Provided(datasources.LONG_TERM, _datasource),),
    unjudged=vmstorage.UNJUDGED,
)
