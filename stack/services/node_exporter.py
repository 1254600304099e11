"""node_exporter: the host's CPU, memory, disks and filesystems, read through the host's /proc,
/sys and root filesystem mounted read-only (the container's own would describe the container).

On Kubernetes it shares the node's network (where NetworkPolicies do not apply), so it never
listens on the node's interfaces: it binds the node's loopback (`LOOPBACK_PORT`), and
kube-rbac-proxy, beside it in the pod (stack/targets/kubernetes/rbac_proxy.py), serves its
/metrics on `PORT` of the node's IP over TLS to callers the API server allows `get` on
/metrics (Prometheus, with its service-account token). The spec's port is that proxy's: what
the cluster sees. On Docker it listens on the stack's private network only, as every component.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stack.services.common import image, resources
from stack.services.component import ComponentModule, Job
from stack.services.spec import HostMount, MetricsEndpoint, Port, ServiceSpec, Workload, http_health
from stack.settings import Component, ImageRef, Memory, _image

if TYPE_CHECKING:
    from stack.config import StackConfig


class NodeExporterService(Component):
    image: ImageRef = _image("prom/node-exporter", "v1.12.1")
    memory: Memory = "64Mi"
    # Kubernetes: node exporter listens on the node's loopback only; kube-rbac-proxy serves its
    # metrics on the node's IP over TLS to callers allowed `get` on /metrics (v0.22.0: released
    # 2026-04-27 to quay.io/brancz/kube-rbac-proxy and ghcr.io/kube-rbac-proxy/kube-rbac-proxy).
    rbac_proxy_image: ImageRef = _image("quay.io/brancz/kube-rbac-proxy", "v0.22.0")


NAME = "node-exporter"
PORT = 9100
# Kubernetes: node exporter itself, on the node's loopback only, behind kube-rbac-proxy on PORT.
LOOPBACK_PORT = 9101
CONFIG_DIR = "/etc/node-exporter"
HOST_PROC = HostMount("proc", "/proc", "/host/proc")
HOST_SYS = HostMount("sys", "/sys", "/host/sys")
# A filesystem mounted after the exporter started is still seen (node_exporter's Docker example).
HOST_ROOT = HostMount("root", "/", "/host/root", follow_mounts=True)

# node_exporter 1.x's default on Linux (collector/filesystem_linux.go), plus the pods' volumes of a
# Kubernetes node and containerd's task roots: they would show every container's mounts as disks.
# Mount points are matched after the --path.rootfs prefix is stripped, so these are host paths.
MOUNT_POINTS_EXCLUDE = (
    "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+"
    "|var/lib/kubelet/.+|run/containerd/.+)($|/)"
)


# On every node, on the node's network (it listens on the node's loopback: kube-rbac-proxy in front).
WORKLOAD = Workload(placement="per-node", host_network=True, rbac_proxy_upstream=LOOPBACK_PORT)


def service(config: StackConfig) -> ServiceSpec:
    settings = config.services.node_exporter
    if config.target == "kubernetes":
        # The node's loopback: nothing but the proxy beside it (and the node itself) reaches it.
        listen, port, health = f"127.0.0.1:{LOOPBACK_PORT}", Port("https", PORT), http_health(LOOPBACK_PORT, "/")
    else:
        listen, port, health = f":{PORT}", Port("http", PORT, host_port=settings.publish), http_health(PORT, "/")
    return ServiceSpec(
        workload=WORKLOAD,
        name=NAME,
        image=image(settings.image),
        user="65534:65534",
        resources=resources(settings),
        args=(
            f"--path.procfs={HOST_PROC.path}",
            f"--path.sysfs={HOST_SYS.path}",
            f"--path.rootfs={HOST_ROOT.path}",
            f"--collector.filesystem.mount-points-exclude={MOUNT_POINTS_EXCLUDE}",
            f"--web.listen-address={listen}",
        ),
        ports=(port,),
        config_dir=CONFIG_DIR,
        host_mounts=(HOST_PROC, HOST_SYS, HOST_ROOT),
        # The host's processes, so /host/proc/1/mountinfo is the host's mount table.
        host_pid=True,
        health=health,
        metrics=MetricsEndpoint(job=config.jobs.node, port=PORT),
    )


COMPONENT = ComponentModule(
    name=NAME, settings_key="node_exporter", settings=NodeExporterService,
    service=lambda config, files, others: service(config),
    job=Job("node", "node-exporter"),
    sandbox_binary="node_exporter",
)
