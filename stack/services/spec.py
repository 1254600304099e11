"""What one component of the stack is, independent of where it runs.

A `ServiceSpec` is plain data: the Docker target turns it into a container, the Kubernetes target
into a workload. A component module (one per component in this package) builds it from the stack
config and the generated files; it never knows which target will run it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from stack.config import StackConfig


@dataclass(frozen=True)
class Image:
    repository: str
    tag: str
    # Only ever a digest read from a registry, set in config; never invented.
    digest: str | None = None

    @property
    def reference(self) -> str:
        """`repository:tag`, pinned to `@digest` when one is configured."""
        base = f"{self.repository}:{self.tag}"
        return f"{base}@{self.digest}" if self.digest else base


@dataclass(frozen=True)
class Port:
    name: str
    container_port: int
    protocol: Literal["tcp", "udp"] = "tcp"
    # Published on the host's loopback (Docker) when set; never on every interface.
    host_port: int | None = None


@dataclass(frozen=True)
class ConfigFile:
    """A generated file: `source` is its path in the bundle (what `render` writes), `path` where
    the component reads it."""

    source: str
    path: str
    content: str


@dataclass(frozen=True)
class SecretFile:
    """A secret the component reads from a file. Its value never appears in a spec: the target
    takes it from Pulumi secrets (`medianest-observability:secrets.<name>`) or generates it."""

    name: str
    path: str
    # Generated (a random password) when not set in config, instead of failing.
    generated: bool = False
    # The file's content made from the value, when the component wants more than the bare
    # secret (redis_exporter reads a JSON map of address to password).
    content: Callable[[str], str] | None = None

    def file_content(self, value: str) -> str:
        """What the file holds for this secret value."""
        return self.content(value) if self.content else value


@dataclass(frozen=True)
class Volume:
    """Data that must outlive the container: a named volume (Docker) or a PVC (Kubernetes)."""

    name: str
    path: str
    size: str = "1Gi"


@dataclass(frozen=True)
class HostMount:
    """A directory of the host, read-only (node exporter's /proc, Alloy's log files)."""

    name: str
    host_path: str
    path: str
    # Mounts made on the host after the container started appear in it too (rslave propagation).
    follow_mounts: bool = False


@dataclass(frozen=True)
class HealthCheck:
    """An HTTP endpoint that answers 200 when the component is ready. Kubernetes probes it
    directly; Docker runs `command` inside the container, the tool each image has to do so."""

    port: int
    path: str
    command: tuple[str, ...]
    interval_seconds: int = 10
    timeout_seconds: int = 5
    retries: int = 6
    start_period_seconds: int = 30
    # Where liveness is asked (Kubernetes), when it differs from readiness (Prometheus' /-/healthy).
    live_path: str | None = None


@dataclass(frozen=True)
class Resources:
    memory_limit_bytes: int
    cpu_limit: float | None = None

    @property
    def memory_request_bytes(self) -> int:
        # Half the limit: room to burst, but the scheduler reserves a realistic share.
        return self.memory_limit_bytes // 2


@dataclass(frozen=True)
class MetricsEndpoint:
    """Where Prometheus scrapes the component's own metrics, under which job name."""

    job: str
    port: int
    path: str = "/metrics"
    # False where its job means something else (the blackbox exporter's job is its probes, so
    # `up{job=...}` stays about MediaNest's endpoints): its own metrics are then not scraped.
    scraped: bool = True


# --- who a component talks to, and what else it needs from a cluster ---------------------------------
# Declared by each component's module on its spec; the Kubernetes target turns flows into
# NetworkPolicies and the workload facts into a workload kind, a service account token and RBAC,
# knowing no component by name. (On Docker every component shares one private network.)

Ports = tuple[tuple[int, str], ...]  # (port, "TCP" | "UDP")


@dataclass(frozen=True)
class StackPods:
    """The pods of one component of the stack, by its name."""

    name: str


@dataclass(frozen=True)
class Pods:
    """Pods outside the stack: every pod of `namespace`, or only those with `labels`."""

    namespace: str
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Hosts:
    """Addresses outside the pod network: `cidrs`, or anywhere when there are none."""

    cidrs: tuple[str, ...] = ()


ANYWHERE = Hosts()


@dataclass(frozen=True)
class Scrapers:
    """Whatever scrapes the stack's metrics: the stack's scraping component, or the cluster's
    Prometheus with prometheus-operator."""


SCRAPERS = Scrapers()
Endpoint = StackPods | Pods | Hosts | Scrapers


@dataclass(frozen=True)
class Flow:
    """Traffic the stack needs: from `source` to `destination` on `ports`. A flow with an end
    not deployed (a component switched off) or no ports is dropped."""

    source: Endpoint
    destination: Endpoint
    ports: Ports


def tcp(*ports: int) -> Ports:
    return tuple((port, "TCP") for port in sorted(set(ports)))


# Where `ApiAccess` applies to every namespace the stack's pods run in (and MediaNest's).
STACK_NAMESPACES = "<the stack's namespaces and MediaNest's>"
# Where it applies to cluster-scoped objects (nodes): a ClusterRole, never with wildcards.
CLUSTER = "<cluster-scoped>"


@dataclass(frozen=True)
class ApiAccess:
    """Kubernetes API rules a component needs, granted in each of `namespaces` (a Role each)."""

    namespaces: tuple[str, ...]
    rules: tuple[dict[str, list[str]], ...]


@dataclass(frozen=True)
class Workload:
    """How a component runs on a cluster: `stateful` (a stable name and a volume per replica),
    `per-node` (one on every node) or `stateless`; on the node's network; the API access it needs
    (none: its pods get no service account token); whether it scrapes the others' metrics."""

    placement: Literal["stateless", "stateful", "per-node"] = "stateless"
    host_network: bool = False
    api_access: tuple[ApiAccess, ...] = ()
    scraper: bool = False
    # It listens on this loopback port only, and kube-rbac-proxy serves its metrics on its
    # declared port to callers allowed to `get` them (node exporter on the host's network).
    rbac_proxy_upstream: int | None = None
    # The kube-rbac-proxy image serving it then (from its own settings).
    rbac_proxy_image: Image | None = None
    # With prometheus-operator, the cluster's own instance takes its place (Prometheus, Alertmanager).
    replaced_by_operator: bool = False
    # Reached by people through the cluster's ingress controller (Grafana), when one is configured.
    ingress: bool = False
    # What the stack's scraper needs from the API to scrape this component's jobs (the kubelets'
    # /metrics/cadvisor: nodes to discover, nodes/metrics to read), granted to the scraper.
    scraper_access: tuple[ApiAccess, ...] = ()


@dataclass(frozen=True)
class ServiceSpec:
    name: str  # also its DNS name on the stack's network
    image: Image
    user: str  # uid:gid, never root
    resources: Resources
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    ports: tuple[Port, ...] = ()
    # Every file and secret lives under `config_dir`: the Docker target backs it with one
    # volume so configs can be delivered into a container whose root filesystem is read-only.
    config_dir: str = "/etc/medianest"
    files: tuple[ConfigFile, ...] = ()
    secrets: tuple[SecretFile, ...] = ()
    volumes: tuple[Volume, ...] = ()
    host_mounts: tuple[HostMount, ...] = ()
    health: HealthCheck | None = None
    metrics: MetricsEndpoint | None = None
    # False only where the image must write outside its volumes and /tmp.
    read_only_root: bool = True
    # Extra groups (e.g. the Docker socket's group for a log agent reading container logs).
    groups: tuple[str, ...] = ()
    # The host's PID namespace (node exporter: per-process metrics of the host).
    host_pid: bool = False
    # How many run side by side (Kubernetes); more than one only where the component is built for it.
    replicas: int = 1
    # Environment variables set from the pod itself (Kubernetes downward API: name -> field path,
    # e.g. POD_NAME -> metadata.name); Docker has no such thing.
    pod_env: dict[str, str] = field(default_factory=dict)
    workload: Workload = Workload()
    # The flows it needs besides being scraped (that one every component gets).
    flows: tuple[Flow, ...] = ()

    def __post_init__(self) -> None:
        prefix = self.config_dir.rstrip("/") + "/"
        outside = [f.path for f in (*self.files, *self.secrets) if not f.path.startswith(prefix)]
        if outside:
            raise ValueError(f"{self.name}: files must live under {self.config_dir}: {', '.join(outside)}")
        paths = [f.path for f in (*self.files, *self.secrets)]
        shared = sorted({p for p in paths if paths.count(p) > 1})
        if shared:
            raise ValueError(f"{self.name}: two files or secrets at {', '.join(shared)}")
        if self.user.split(":")[0] in ("0", "root"):
            raise ValueError(f"{self.name}: must not run as root")

    @property
    def address(self) -> str:
        """host:port of its metrics endpoint on the stack's network."""
        assert self.metrics is not None
        return f"{self.name}:{self.metrics.port}"

    def port(self, name: str) -> Port:
        return next(p for p in self.ports if p.name == name)


def headless_service(name: str) -> str:
    """The headless Service governing a StatefulSet (Kubernetes): gives each replica a DNS name."""
    return f"{name}-headless"


def replica_address(name: str, index: int, namespace: str, port: int) -> str:
    """host:port of one replica of a StatefulSet, through its headless Service."""
    return f"{name}-{index}.{headless_service(name)}.{namespace}.svc:{port}"


def wget(port: int, path: str) -> tuple[str, ...]:
    """The probe for images built on busybox or alpine (Prometheus', Grafana's, the exporters')."""
    return ("wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{port}{path}")


def http_health(port: int, path: str, live_path: str | None = None, **timing: int) -> HealthCheck:
    return HealthCheck(port=port, path=path, command=wget(port, path), live_path=live_path, **timing)


# --- Kubernetes facts every target and the scrape config agree on ----------------------------------

# A pod's own service-account token, where Kubernetes mounts it (for pods that read the API).
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
SERVICE_ACCOUNT_TOKEN = f"{SERVICE_ACCOUNT_DIR}/token"

# The label naming a component's pods and objects (`app.kubernetes.io/name: <spec name>`).
NAME_LABEL = "app.kubernetes.io/name"


def namespace_of(config: StackConfig, spec: ServiceSpec) -> str:
    """node exporter (host PID, network and paths) runs in the privileged namespace; the rest in
    the restricted one."""
    host_access = spec.host_pid or bool(spec.host_mounts)
    settings = config.kubernetes
    return settings.node_namespace if host_access else settings.namespace
