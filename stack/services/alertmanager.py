"""Alertmanager: the generated routing config and templates; silences and the notification log
on a volume, so a restart neither forgets a silence nor notifies twice."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from stack import layout
from stack.services.addresses import address_port, url_port
from stack.services.common import image, mounted, resources
from stack.services.component import ComponentModule, Job
from stack.services.spec import (
    ANYWHERE,
    Flow,
    MetricsEndpoint,
    Port,
    SecretFile,
    ServiceSpec,
    StackPods,
    Volume,
    Workload,
    http_health,
    replica_address,
    tcp,
)
from stack.settings import Component, Count, ImageRef, Memory, VolumeSize, _image

if TYPE_CHECKING:
    from stack.config import StackConfig


class AlertmanagerService(Component):
    image: ImageRef = _image("prom/alertmanager", "v0.35.0")
    memory: Memory = "128Mi"
    # More than one forms a gossip cluster (Kubernetes target): notifications deduplicated, silences shared.
    replicas: Count(1, 7) = 1
    volume_size: VolumeSize = "1Gi"


NAME = "alertmanager"
PORT = 9093
CLUSTER_PORT = 9094
CONFIG_DIR = "/etc/alertmanager"
DATA_DIR = "/alertmanager"


def replica_addresses(config: StackConfig, port: int) -> list[str]:
    """Every replica of the cluster on `port`, by its stable DNS name (Kubernetes StatefulSet)."""
    return [replica_address(NAME, i, config.kubernetes.namespace, port)
            for i in range(config.services.alertmanager.replicas)]


def _cluster(config: StackConfig) -> tuple[tuple[str, ...], tuple[Port, ...], dict[str, str]]:
    """Gossip flags, ports and pod environment: a cluster only when there are several replicas.
    Peers share silences and the notification log, so each alert is notified once."""
    if config.services.alertmanager.replicas == 1:
        return ("--cluster.listen-address=",), (), {}
    peers = tuple(f"--cluster.peer={a}" for a in replica_addresses(config, CLUSTER_PORT))
    flags = (f"--cluster.listen-address=0.0.0.0:{CLUSTER_PORT}",
             # The pod's own IP: the listen address 0.0.0.0 cannot be advertised to peers.
             f"--cluster.advertise-address=$(POD_IP):{CLUSTER_PORT}", *peers)
    ports = (Port("cluster-tcp", CLUSTER_PORT, "tcp"), Port("cluster-udp", CLUSTER_PORT, "udp"))
    return flags, ports, {"POD_IP": "status.podIP"}


def receiver_ports(config: StackConfig) -> list[int]:
    """Where Alertmanager notifies: the HTTPS APIs (PagerDuty, Slack), each email smarthost,
    each webhook, and the local webhook of the receivers left unconfigured."""
    alerting = config.alerting
    ports = set()
    for name in type(alerting.receivers).model_fields:
        integrations = getattr(alerting.receivers, name)
        if integrations is None:
            continue
        if integrations.pagerduty or integrations.slack:
            ports.add(443)
        ports.update(address_port(email.smarthost) for email in integrations.email)
        # A URL kept in a file (urlFile) is not known here: HTTPS, as every hosted webhook.
        ports.update(url_port(webhook.url) if webhook.url else 443 for webhook in integrations.webhook)
    if alerting.local_webhook_url:
        ports.add(url_port(alerting.local_webhook_url))
    return sorted(ports)


def flows(config: StackConfig, ports: tuple[Port, ...]) -> tuple[Flow, ...]:
    """Replicas gossip (silences, notification log); notifications leave the cluster."""
    gossip = tuple(sorted((p.container_port, p.protocol.upper()) for p in ports if p.container_port == CLUSTER_PORT))
    return (Flow(StackPods(NAME), StackPods(NAME), gossip),
            Flow(StackPods(NAME), ANYWHERE, tcp(*receiver_ports(config))))


def service(config: StackConfig, files: Mapping[str, str]) -> ServiceSpec:
    settings = config.services.alertmanager
    cluster_flags, cluster_ports, pod_env = _cluster(config)
    return ServiceSpec(
        workload=Workload(placement="stateful", replaced_by_operator=True),
        flows=flows(config, cluster_ports),
        name=NAME,
        image=image(settings.image),
        user="65534:65534",
        resources=resources(settings),
        args=(
            f"--config.file={CONFIG_DIR}/alertmanager.yml",
            f"--storage.path={DATA_DIR}",
            f"--web.listen-address=:{PORT}",
            *cluster_flags,
        ),
        ports=(Port("http", PORT, host_port=settings.publish), *cluster_ports),
        pod_env=pod_env,
        replicas=settings.replicas,
        config_dir=CONFIG_DIR,
        files=mounted(files, f"{layout.ALERTMANAGER_DIR}/", CONFIG_DIR,
                      exclude=(f"{layout.ALERTMANAGER_TESTS_DIR}/",)),
        # Each receiver's secret is set as `secrets.<file name>`.
        secrets=tuple(SecretFile(PurePosixPath(path).name, path) for path in config.alerting.secret_files()),
        volumes=(Volume("alertmanager-data", DATA_DIR, size=settings.volume_size),),
        health=http_health(PORT, "/-/ready", live_path="/-/healthy"),
        metrics=MetricsEndpoint(job=config.jobs.alertmanager, port=PORT),
    )


COMPONENT = ComponentModule(
    name=NAME, settings_key="alertmanager", settings=AlertmanagerService,
    service=lambda config, files, others: service(config, files),
    job=Job("alertmanager", "alertmanager"), required="they are the alerting path",
    sandbox_binary="alertmanager",
)
