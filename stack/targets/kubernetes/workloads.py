"""One component's workload: its ConfigMaps and Secret, ServiceAccount, Services, the StatefulSet,
Deployment or DaemonSet running it, its volume claims and its PodDisruptionBudget.

- Config files are ConfigMaps named by a hash of their content (immutable): a change makes a new
  ConfigMap, the pod template names it, so the pods roll. Secrets keep their name; under Pulumi
  the pod template carries a keyed hash of their values, so a new secret value rolls the pods
  too. Rendered for kubectl there are no Secret objects at all (no values to put in them): the
  operator creates them (kubernetes-secrets/create-secrets.sh) and restarts what reads them.
- Every file and secret is projected into the spec's `config_dir`, read-only. A secret source is
  never optional: a pod whose Secret does not exist yet waits in ContainerCreating instead of
  starting without it (Grafana with no admin password file, Alertmanager with no routing key).
- Pods run with the restricted pod security profile: non-root, RuntimeDefault seccomp, no
  capabilities, no privilege escalation, read-only root filesystem where the image allows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stack.config import StackConfig
from stack.services.spec import ServiceSpec, Volume, headless_service
from stack.targets.kubernetes import rbac_proxy
from stack.targets.kubernetes.common import (
    Manifest,
    manifest,
    metadata,
    namespace_of,
    selector,
)

MIB = 1024 * 1024
TMP = "/tmp"
# Below the 1 MiB a ConfigMap may hold (etcd's object limit), with room for keys and metadata.
CONFIG_MAP_BYTES = 900 * 1024
# A spec's placement (its Workload): data per replica gets a StatefulSet (a volume claim and a
# stable name each), an agent a DaemonSet.
KINDS = {"stateless": "Deployment", "stateful": "StatefulSet", "per-node": "DaemonSet"}
CHECKSUM_ANNOTATION = "checksum/secrets"
DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"


@dataclass(frozen=True)
class SecretValues:
    """How a Secret's data and the pods' checksum of it are filled from Pulumi secrets when
    deployed (None when rendered: no Secret objects, no checksum). `data(spec)` returns the
    Secret's `stringData`."""

    data: Callable[[ServiceSpec], dict[str, Any]]
    checksum: Callable[[ServiceSpec], Any]


def workload_kind(spec: ServiceSpec) -> str:
    return KINDS[spec.workload.placement]


def quantity(size_bytes: int) -> str:
    """Bytes as a Kubernetes quantity, in Mi when whole."""
    return f"{size_bytes // MIB}Mi" if size_bytes % MIB == 0 else str(size_bytes)


def config_key(relative_path: str) -> str:
    """A ConfigMap key for a file (keys may not contain `/`)."""
    return relative_path.replace("/", "__")


def _relative(spec: ServiceSpec, path: str) -> str:
    return path.removeprefix(spec.config_dir.rstrip("/") + "/")


def config_maps(config: StackConfig, spec: ServiceSpec) -> list[Manifest]:
    """The spec's files, as few immutable ConfigMaps as the size limit allows, each named by the
    hash of what it holds."""
    chunks: list[list[Any]] = [[]]
    size = 0
    for file in sorted(spec.files, key=lambda f: f.path):
        if chunks[-1] and size + len(file.content.encode()) > CONFIG_MAP_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(file)
        size += len(file.content.encode())
    namespace = namespace_of(config, spec)
    maps = []
    for index, files in enumerate(c for c in chunks if c):
        data = {config_key(_relative(spec, f.path)): f.content for f in files}
        digest = hashlib.sha256("".join(f"{k}\0{v}\0" for k, v in data.items()).encode()).hexdigest()[:10]
        suffix = f"-{index}" if len(chunks) > 1 else ""
        maps.append(manifest("v1", "ConfigMap", metadata(config, f"{spec.name}-config{suffix}-{digest}", namespace,
                                                        spec.name), immutable=True, data=data))
    return maps


def secret_name(spec: ServiceSpec) -> str:
    """The Secret holding a component's secret files, one key per secret (named after it)."""
    return f"{spec.name}-secrets"


def secret(config: StackConfig, spec: ServiceSpec, values: SecretValues | None) -> Manifest | None:
    """The component's Secret with its values, under Pulumi; nothing when rendered (a Secret of
    placeholders would start the pods with known values, and overwrite real ones on re-apply)."""
    if not spec.secrets or values is None:
        return None
    return manifest("v1", "Secret", metadata(config, secret_name(spec), namespace_of(config, spec), spec.name),
                    type="Opaque", stringData=values.data(spec))


def service_account(config: StackConfig, spec: ServiceSpec) -> Manifest:
    # No token unless the pod reads the API (its Workload's api_access): a compromised exporter gets nothing.
    return manifest("v1", "ServiceAccount", metadata(config, spec.name, namespace_of(config, spec), spec.name),
                    automountServiceAccountToken=False)


def _service_ports(spec: ServiceSpec) -> list[dict[str, Any]]:
    return [{"name": p.name, "port": p.container_port, "targetPort": p.name, "protocol": p.protocol.upper()}
            for p in spec.ports]


def services(config: StackConfig, spec: ServiceSpec) -> list[Manifest]:
    """A ClusterIP Service (what clients use, `<name>:<port>`), and for a StatefulSet the headless
    Service that gives each replica its DNS name (Alertmanager's gossip peers, Prometheus' targets)."""
    if not spec.ports:
        return []
    namespace = namespace_of(config, spec)
    objects = [manifest("v1", "Service", metadata(config, spec.name, namespace, spec.name),
                        spec={"type": "ClusterIP", "selector": selector(spec.name), "ports": _service_ports(spec)})]
    if workload_kind(spec) == "StatefulSet":
        objects.append(manifest("v1", "Service", metadata(config, headless_service(spec.name), namespace, spec.name),
                                spec={"clusterIP": "None", "selector": selector(spec.name),
                                      # Peers must find each other before they are ready.
                                      "publishNotReadyAddresses": True, "ports": _service_ports(spec)}))
    return objects


def _probe(spec: ServiceSpec, path: str, failure_threshold: int) -> dict[str, Any]:
    assert spec.health is not None
    health = spec.health
    if rbac_proxy.proxied(spec):
        # Listening on the node's loopback, where the kubelet's probes (sent to the pod's IP)
        # cannot reach: asked from inside the container, as the Docker target does.
        check: dict[str, Any] = {"exec": {"command": list(health.command)}}
    else:
        check = {"httpGet": {"path": path, "port": health.port}}
    return {**check, "periodSeconds": health.interval_seconds, "timeoutSeconds": health.timeout_seconds,
            "failureThreshold": failure_threshold}


def _probes(spec: ServiceSpec) -> dict[str, Any]:
    if spec.health is None:
        return {}
    health = spec.health
    return {
        # Slow starts (a Prometheus replaying its WAL) are the startup probe's business, so the
        # liveness probe can stay strict without killing a pod that is still starting.
        "startupProbe": _probe(spec, health.live_path or health.path,
                               max(1, -(-health.start_period_seconds // health.interval_seconds)) + health.retries),
        "readinessProbe": _probe(spec, health.path, 3),
        "livenessProbe": _probe(spec, health.live_path or health.path, health.retries),
    }


def _resources(spec: ServiceSpec) -> dict[str, Any]:
    resources = spec.resources
    requests: dict[str, Any] = {"memory": quantity(resources.memory_request_bytes)}
    limits: dict[str, Any] = {"memory": quantity(resources.memory_limit_bytes)}
    if resources.cpu_limit is not None:
        limits["cpu"] = str(resources.cpu_limit)
        requests["cpu"] = f"{max(1, round(resources.cpu_limit * 500))}m"
    else:
        # Something to schedule by; no CPU limit (throttling hurts more than it protects).
        requests["cpu"] = "50m"
    return {"requests": requests, "limits": limits}


def _env(spec: ServiceSpec) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in sorted(spec.env.items())]
    env += [{"name": k, "valueFrom": {"fieldRef": {"fieldPath": v}}} for k, v in sorted(spec.pod_env.items())]
    return env


def _user(spec: ServiceSpec) -> tuple[int, int]:
    uid, _, gid = spec.user.partition(":")
    return int(uid), int(gid or uid)


def _config_volume(spec: ServiceSpec, maps: list[Manifest]) -> dict[str, Any] | None:
    sources: list[dict[str, Any]] = [
        {"configMap": {"name": m["metadata"]["name"],
                       "items": [{"key": key, "path": key.replace("__", "/")} for key in m["data"]]}}
        for m in maps
    ]
    if spec.secrets:
        # Readable by the component's group alone (fsGroup): 0440. Not optional: without its
        # Secret the pod waits (ContainerCreating) rather than start with no secret files.
        sources.append({"secret": {"name": secret_name(spec), "optional": False, "items": [
            {"key": s.name, "path": _relative(spec, s.path), "mode": 0o440}
            for s in sorted(spec.secrets, key=lambda s: s.name)]}})
    if not sources:
        return None
    return {"name": "config", "projected": {"defaultMode": 0o444, "sources": sources}}


def _data_volumes(spec: ServiceSpec) -> list[dict[str, Any]]:
    """Volumes that are not claims: agents keep their positions in an emptyDir (a DaemonSet has no
    per-pod claims); a Deployment mounts its own claim."""
    kind = workload_kind(spec)
    if kind == "DaemonSet":
        return [{"name": v.name, "emptyDir": {"sizeLimit": v.size}} for v in spec.volumes]
    if kind == "Deployment":
        return [{"name": v.name, "persistentVolumeClaim": {"claimName": v.name}} for v in spec.volumes]
    return []


def _pod_spec(config: StackConfig, spec: ServiceSpec, maps: list[Manifest]) -> dict[str, Any]:
    uid, gid = _user(spec)
    mounts: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    config_volume = _config_volume(spec, maps)
    if config_volume:
        volumes.append(config_volume)
        mounts.append({"name": "config", "mountPath": spec.config_dir, "readOnly": True})
    mounts += [{"name": v.name, "mountPath": v.path} for v in spec.volumes]
    volumes += _data_volumes(spec)
    if spec.read_only_root and not any(v.path == TMP for v in spec.volumes):
        # Scratch space that never touches the image: the root filesystem stays read-only.
        volumes.append({"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}})
        mounts.append({"name": "tmp", "mountPath": TMP})
    for host in spec.host_mounts:
        volumes.append({"name": host.name, "hostPath": {"path": host.host_path, "type": "Directory"}})
        mount: dict[str, Any] = {"name": host.name, "mountPath": host.path, "readOnly": True}
        if host.follow_mounts:
            mount["mountPropagation"] = "HostToContainer"
        mounts.append(mount)
    container: dict[str, Any] = {
        "name": spec.name,
        "image": spec.image.reference,
        "imagePullPolicy": "IfNotPresent",
        "args": list(spec.args),
        "env": _env(spec),
        # A proxied component's ports are its proxy's; it listens on the loopback only.
        "ports": [] if rbac_proxy.proxied(spec) else [
            {"name": p.name, "containerPort": p.container_port, "protocol": p.protocol.upper()} for p in spec.ports],
        "resources": _resources(spec),
        **_probes(spec),
        "volumeMounts": mounts,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": spec.read_only_root,
            "runAsNonRoot": True,
        },
    }
    for key in ("args", "env", "ports"):
        if not container[key]:
            del container[key]
    pod: dict[str, Any] = {
        "serviceAccountName": spec.name,
        "automountServiceAccountToken": bool(spec.workload.api_access),
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": uid,
            "runAsGroup": gid,
            "fsGroup": gid,
            # Walk a large volume only when its owner is wrong (a Prometheus TSDB has many files).
            "fsGroupChangePolicy": "OnRootMismatch",
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": volumes,
        # Time to flush: Prometheus writes its head block, Alertmanager its snapshot.
        "terminationGracePeriodSeconds": 60 if workload_kind(spec) == "StatefulSet" else 30,
    }
    if spec.host_pid:
        # The host's processes and network interfaces: what node exporter reports on.
        pod.update(hostPID=True, hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet")
    if rbac_proxy.proxied(spec):
        pod["containers"].append(rbac_proxy.container(config, spec))
        volumes.append(rbac_proxy.token_volume())
    if workload_kind(spec) == "DaemonSet":
        # Every node, control plane included: a node without its agent is a blind spot.
        pod["tolerations"] = [{"operator": "Exists"}]
    affinity = anti_affinity(config, spec)
    if affinity:
        pod["affinity"] = affinity
    if not volumes:
        del pod["volumes"]
    return pod


def anti_affinity(config: StackConfig, spec: ServiceSpec) -> dict[str, Any] | None:
    """Replicas on different nodes: an HA pair on one node dies with it."""
    if spec.replicas < 2:
        return None
    term = {"labelSelector": {"matchLabels": selector(spec.name)}, "topologyKey": "kubernetes.io/hostname"}
    if config.kubernetes.anti_affinity == "required":
        rule: dict[str, Any] = {"requiredDuringSchedulingIgnoredDuringExecution": [term]}
    else:
        rule = {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": term}]}
    return {"podAntiAffinity": rule}


def _claim_spec(config: StackConfig, volume: Volume) -> dict[str, Any]:
    claim: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": volume.size}}}
    if config.kubernetes.storage_class:
        claim["storageClassName"] = config.kubernetes.storage_class
    return claim


def volume_claims(config: StackConfig, spec: ServiceSpec) -> list[Manifest]:
    """A Deployment's claims (one replica with data: Grafana on SQLite, Jaeger on Badger)."""
    if workload_kind(spec) != "Deployment":
        return []
    return [manifest("v1", "PersistentVolumeClaim", metadata(config, v.name, namespace_of(config, spec), spec.name),
                     spec=_claim_spec(config, v)) for v in spec.volumes]


def workload(config: StackConfig, spec: ServiceSpec, maps: list[Manifest], values: SecretValues | None) -> Manifest:
    kind = workload_kind(spec)
    annotations = {CHECKSUM_ANNOTATION: values.checksum(spec)} if spec.secrets and values is not None else {}
    if rbac_proxy.proxied(spec):
        # `kubectl logs` and `exec` pick the component, not its proxy.
        annotations[DEFAULT_CONTAINER_ANNOTATION] = spec.name
    template: dict[str, Any] = {"metadata": {"labels": metadata(config, spec.name, None, spec.name)["labels"]},
                                "spec": _pod_spec(config, spec, maps)}
    if annotations:
        template["metadata"]["annotations"] = annotations
    body: dict[str, Any] = {"selector": {"matchLabels": selector(spec.name)}}
    if kind != "DaemonSet":
        body["replicas"] = spec.replicas
    if kind == "StatefulSet":
        body.update(
            serviceName=headless_service(spec.name),
            # Replicas are peers, not a sequence: start them together.
            podManagementPolicy="Parallel",
            updateStrategy={"type": "RollingUpdate"},
            # Deleting or scaling down the StatefulSet never deletes data.
            persistentVolumeClaimRetentionPolicy={"whenDeleted": "Retain", "whenScaled": "Retain"},
            volumeClaimTemplates=[{"metadata": {"name": v.name}, "spec": _claim_spec(config, v)}
                                  for v in spec.volumes],
        )
    elif kind == "Deployment" and spec.volumes:
        # A ReadWriteOnce claim cannot be mounted by the old and the new pod at once.
        body["strategy"] = {"type": "Recreate"}
    elif kind == "DaemonSet":
        body["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}
    body["template"] = template
    return manifest("apps/v1", kind, metadata(config, spec.name, namespace_of(config, spec), spec.name), spec=body)


def disruption_budget(config: StackConfig, spec: ServiceSpec) -> Manifest | None:
    """A drained node takes at most one replica at a time."""
    if spec.replicas < 2:
        return None
    return manifest("policy/v1", "PodDisruptionBudget",
                    metadata(config, spec.name, namespace_of(config, spec), spec.name),
                    spec={"maxUnavailable": 1, "selector": {"matchLabels": selector(spec.name)}})


def component(config: StackConfig, spec: ServiceSpec, values: SecretValues | None) -> list[Manifest]:
    """Every object of one component, in the order they can be applied."""
    maps = config_maps(config, spec) if spec.files else []
    objects = [service_account(config, spec), *maps, secret(config, spec, values), *volume_claims(config, spec),
               *services(config, spec), workload(config, spec, maps, values), disruption_budget(config, spec)]
    return [o for o in objects if o is not None]
