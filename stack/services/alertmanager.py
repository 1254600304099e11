"""Alertmanager: the generated routing config and templates; silences and the notification log
on a volume, so a restart neither forgets a silence nor notifies twice."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath

from stack.config import StackConfig
from stack.services.common import image, mounted, resources
from stack.services.spec import (
    MetricsEndpoint,
    Port,
    SecretFile,
    ServiceSpec,
    Volume,
    http_health,
    replica_address,
)

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


def service(config: StackConfig, files: Mapping[str, str]) -> ServiceSpec:
    settings = config.services.alertmanager
    cluster_flags, cluster_ports, pod_env = _cluster(config)
    return ServiceSpec(
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
        files=mounted(files, "alertmanager/", CONFIG_DIR, exclude=("alertmanager/tests/",)),
        # Each receiver's secret is set as `secrets.<file name>`.
        secrets=tuple(SecretFile(PurePosixPath(path).name, path) for path in config.alerting.secret_files()),
        volumes=(Volume("alertmanager-data", DATA_DIR, size=settings.volume_size),),
        health=http_health(PORT, "/-/ready", live_path="/-/healthy"),
        metrics=MetricsEndpoint(job=config.jobs.alertmanager, port=PORT),
    )
