"""Every manifest of the Kubernetes target, as plain dicts: what `render` writes for
`kubectl apply` and what `resources.py` hands to pulumi-kubernetes, from the same functions.

Secrets are the only difference. The Pulumi program passes their values (Pulumi secrets) and
gets each component's Secret, and a keyed checksum of it on the pods. Rendered, there is no value
to write: `kubernetes/` holds no Secret at all (a placeholder would start Grafana with a known
admin password, and re-applying the directory would overwrite the real Secrets), and
`kubernetes-secrets/create-secrets.sh` beside it creates the same Secrets from files
(secrets_script.py). Either way the pods mount them non-optional: no Secret, no start.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stack import layout
from stack.config import StackConfig
from stack.dump import HEADER, dump_yaml
from stack.services.spec import ServiceSpec
from stack.targets.kubernetes import network_policies, operator, rbac, secrets_script, workloads
from stack.targets.kubernetes.common import Manifest, manifest, metadata, namespace_of
from stack.targets.kubernetes.workloads import SecretValues


def deployed(config: StackConfig, specs: Sequence[ServiceSpec]) -> list[ServiceSpec]:
    """The components we run. With prometheus-operator, the cluster's Prometheus and Alertmanager
    evaluate our rules instead of ours."""
    if config.kubernetes.prometheus_operator.enabled:
        return [s for s in specs if not s.workload.replaced_by_operator]
    return list(specs)


def namespaces(config: StackConfig, specs: Sequence[ServiceSpec]) -> list[Manifest]:
    """The stack's namespaces with pod security enforced: `restricted` wherever possible;
    `privileged` only where node exporter needs the host (and nothing else runs)."""
    used = sorted({namespace_of(config, s) for s in specs} | {config.kubernetes.namespace})
    objects = []
    for name in used:
        level = "restricted" if name == config.kubernetes.namespace else "privileged"
        labels = {**metadata(config, name, None, "namespace")["labels"],
                  "pod-security.kubernetes.io/enforce": level,
                  "pod-security.kubernetes.io/audit": "restricted",
                  "pod-security.kubernetes.io/warn": "restricted"}
        objects.append(manifest("v1", "Namespace", {"name": name, "labels": labels}))
    return objects


def ingress(config: StackConfig, specs: Sequence[ServiceSpec]) -> list[Manifest]:
    """The component people reach (its Workload's `ingress`: Grafana) behind the cluster's ingress
    controller, TLS only."""
    settings = config.kubernetes.ingress
    spec = next((s for s in specs if s.workload.ingress), None)
    if settings is None or spec is None:
        return []
    meta = metadata(config, spec.name, namespace_of(config, spec), spec.name, annotations=settings.annotations)
    body: dict[str, Any] = {
        "tls": [{"hosts": [settings.host], "secretName": settings.tls_secret_name}],
        "rules": [{"host": settings.host, "http": {"paths": [{
            "path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": spec.name, "port": {"name": "http"}}}}]}}],
    }
    if settings.class_name:
        body = {"ingressClassName": settings.class_name, **body}
    return [manifest("networking.k8s.io/v1", "Ingress", meta, spec=body)]


def manifests(config: StackConfig, specs: Sequence[ServiceSpec], files: dict[str, str],
              values: SecretValues | None = None) -> list[Manifest]:
    """Every object, in an order `kubectl apply` accepts (namespaces first); Secrets only with
    their `values` (Pulumi)."""
    running = deployed(config, specs)
    objects = namespaces(config, running)
    for spec in running:
        objects += workloads.component(config, spec, values)
    objects += rbac.rbac(config, running)
    objects += ingress(config, running)
    objects += network_policies.network_policies(config, running)
    if config.kubernetes.prometheus_operator.enabled:
        objects += operator.operator_manifests(config, files, running)
    return objects


def rendered_files(config: StackConfig, specs: Sequence[ServiceSpec], files: dict[str, str]) -> dict[str, str]:
    """What `render` writes for a user without Pulumi: `kubernetes/*.yaml` (no Secret) and, beside
    it, `kubernetes-secrets/create-secrets.sh`, which creates the Secrets those pods wait for."""
    return {**render_files(manifests(config, specs, files)),
            layout.KUBERNETES_SECRETS_SCRIPT: secrets_script.script(config, deployed(config, specs))}


def object_key(item: Manifest) -> str:
    """A manifest's identity: kind/namespace/name."""
    meta = item["metadata"]
    return f"{item['kind']}/{meta.get('namespace', '')}/{meta['name']}"


def _file_of(item: Manifest) -> str:
    """Which rendered file holds an object: one per component, namespaces first (kubectl applies
    a directory's files in name order)."""
    if item["kind"] == "Namespace":
        return f"{layout.KUBERNETES_DIR}/00-namespaces.yaml"
    component = item["metadata"]["labels"]["app.kubernetes.io/name"]
    if item["kind"] == "NetworkPolicy":
        return f"{layout.KUBERNETES_DIR}/90-network-policies.yaml"
    return f"{layout.KUBERNETES_DIR}/{component}.yaml"


def render_files(objects: Sequence[Manifest]) -> dict[str, str]:
    """`kubernetes/*.yaml`: each component's objects in one multi-document file."""
    grouped: dict[str, list[Manifest]] = {}
    for item in objects:
        grouped.setdefault(_file_of(item), []).append(item)
    return {path: HEADER + "---\n".join(dump_yaml(item).removeprefix(HEADER) for item in items)
            for path, items in sorted(grouped.items())}


# Fields Kubernetes will not change in place: a different value means delete and recreate.
IMMUTABLE = {
    "StatefulSet": (("spec", "selector"), ("spec", "serviceName"), ("spec", "podManagementPolicy"),
                    ("spec", "volumeClaimTemplates")),
    "Deployment": (("spec", "selector"),),
    "DaemonSet": (("spec", "selector"),),
    "PersistentVolumeClaim": (("spec", "accessModes"), ("spec", "storageClassName")),
}


def _field(item: Manifest, path: tuple[str, ...]) -> Any:
    value: Any = item
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def replacements(before: Sequence[Manifest], after: Sequence[Manifest]) -> list[str]:
    """Objects holding data, or selecting pods, that a change would delete and recreate: a
    StatefulSet whose claim templates change, a claim whose class changes, an object that goes
    away. Each line names the object and the field."""
    old = {object_key(o): o for o in before}
    new = {object_key(o): o for o in after}
    found = []
    for key, item in sorted(old.items()):
        if item["kind"] not in IMMUTABLE:
            continue
        if key not in new:
            found.append(f"{key}: deleted")
            continue
        for path in IMMUTABLE[item["kind"]]:
            if _field(item, path) != _field(new[key], path):
                found.append(f"{key}: {'.'.join(path)} changed (Kubernetes replaces the object)")
        if item["kind"] == "PersistentVolumeClaim":
            size_before = _field(item, ("spec", "resources", "requests", "storage"))
            size_after = _field(new[key], ("spec", "resources", "requests", "storage"))
            if size_before != size_after:
                found.append(f"{key}: spec.resources.requests.storage {size_before} -> {size_after} "
                             "(expand only, with a storage class that allows it)")
    return found

