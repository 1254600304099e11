"""vminsert: where Prometheus remote-writes on Kubernetes (`longTermStorage.mode: deploy`). Stateless
replicas behind one Service; each spreads the samples over the storage nodes by a consistent hash
of their series, writing each to `replicationFactor` nodes (stack/services/vmstorage.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stack.services import victoria_metrics, vmstorage
from stack.services.addresses import service_address
from stack.services.common import image, resources
from stack.services.component import STACK_HEALTH, ComponentModule, Job
from stack.services.spec import (
    SCRAPERS,
    Flow,
    MetricsEndpoint,
    Port,
    ServiceSpec,
    StackPods,
    Workload,
    http_health,
    tcp,
)
from stack.services.victoria_metrics import store_row
from stack.settings import Component, Count, ImageRef, Memory, _image

if TYPE_CHECKING:
    from dashboards.model import Row
    from stack.config import StackConfig


class VminsertService(Component):
    image: ImageRef = _image("victoriametrics/vminsert", vmstorage.VERSION)
    memory: Memory = "512Mi"
    replicas: Count(1, 16) = 2


NAME = "vminsert"
PORT = 8480
# Tenant 0's Prometheus remote write endpoint.
WRITE_PATH = "/insert/0/prometheus/api/v1/write"


def write_url(config: StackConfig) -> str:
    return f"http://{service_address(config, NAME, PORT)}{WRITE_PATH}"


def service(config: StackConfig) -> ServiceSpec:
    settings = config.services.vminsert
    return ServiceSpec(
        workload=Workload(placement="stateless"),
        # The scrapers write to it; it writes to every storage node.
        flows=(Flow(SCRAPERS, StackPods(NAME), tcp(PORT)),
               Flow(StackPods(NAME), StackPods(vmstorage.NAME), tcp(vmstorage.INSERT_PORT))),
        name=NAME,
        image=image(settings.image),
        user=vmstorage.USER,
        resources=resources(settings),
        args=(
            f"-httpListenAddr=:{PORT}",
            f"-storageNode={vmstorage.storage_nodes(config, vmstorage.INSERT_PORT)}",
            f"-replicationFactor={config.services.vmstorage.replication_factor}",
        ),
        ports=(Port("http", PORT),),
        config_dir="/etc/vminsert",
        health=http_health(PORT, "/health"),
        metrics=MetricsEndpoint(job=config.jobs.vminsert, port=PORT),
        replicas=settings.replicas,
    )


# A ticket: the other replicas take the writes, and a write path down altogether pages as
# PrometheusRemoteWriteFailing / Behind, from the Prometheus that cannot write.
DOWN = vmstorage.ReplicaDown("LongTermStoreWriterDown", "A writer of the long-term store is down",
                             "A vminsert replica", PORT)


def dashboard_rows(config: StackConfig) -> tuple[Row, ...]:
    return (store_row(config.jobs.vminsert, config.jobs.vmstorage, "LongTermStoreWriterDown"),)


COMPONENT = ComponentModule(
    name=NAME, settings_key="vminsert", settings=VminsertService,
    service=lambda config, files, others: service(config),
    targets=("kubernetes",), wanted=victoria_metrics.wanted, remote_write_url=write_url,
    job=Job("vminsert", "vminsert"),
    alerts=lambda config: DOWN.alerts(config, config.jobs.vminsert), alert_group="platform.meta",
    alert_tests=lambda config: DOWN.alert_tests(config.jobs.vminsert), expected=DOWN.expected,
    dashboard=STACK_HEALTH, dashboard_rows=dashboard_rows,
    unjudged=vmstorage.UNJUDGED,
)
