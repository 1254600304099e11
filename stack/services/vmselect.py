"""vmselect: the long-term store's Prometheus query API on Kubernetes (`longTermStorage.mode:
deploy`), Grafana's "Long-term" datasource. Stateless replicas behind one Service; each asks every
storage node and merges their answers, one sample per scrape interval (replicated copies and the
HA pair's twins alike), and answers as long as fewer than `replicationFactor` nodes are down."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dashboards import datasources
from stack.services import victoria_metrics, vmstorage
from stack.services.addresses import service_address
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


def query_url(config: StackConfig) -> str:
    return f"http://{service_address(config, NAME, PORT)}{QUERY_PATH}"


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


# A ticket: the other replicas answer Grafana and vmalert meanwhile.
DOWN = vmstorage.ReplicaDown("LongTermStoreReaderDown", "A reader of the long-term store is down",
                             "A vmselect replica", PORT)


COMPONENT = ComponentModule(
    name=NAME, settings_key="vmselect", settings=VmselectService,
    service=lambda config, files, others: service(config),
    targets=("kubernetes",), wanted=victoria_metrics.wanted,
    job=Job("vmselect", "vmselect"),
    alerts=lambda config: DOWN.alerts(config, config.jobs.vmselect), alert_group="platform.meta",
    alert_tests=lambda config: DOWN.alert_tests(config.jobs.vmselect), expected=DOWN.expected,
    dashboard=STACK_HEALTH,
    datasources=(datasources.Provided(datasources.LONG_TERM, _datasource),),
    unjudged=vmstorage.UNJUDGED,
)
