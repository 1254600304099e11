"""Least-privilege access to the Kubernetes API: a Role per namespace a component reads, never a
wildcard. Only Prometheus (service discovery of pods) and Alloy (pod logs) read the API.

Two ClusterRoles exist for node exporter's kube-rbac-proxy (rbac_proxy.py), as kube-prometheus
has them, since neither grant can be namespaced: the proxy may create TokenReviews and
SubjectAccessReviews (who is asking, and may they `get` /metrics: it reads nothing), and
Prometheus may `get` the non-resource URL /metrics (what the proxy asks about; no resource at
all). They are named after the namespace of the ServiceAccount they bind, so two stacks in one
cluster do not share them.
"""

from __future__ import annotations

from collections.abc import Sequence

from stack.config import StackConfig
from stack.services import prometheus
from stack.services.spec import ServiceSpec
from stack.targets.kubernetes import rbac_proxy
from stack.targets.kubernetes.common import Manifest, manifest, metadata, namespace_of

RBAC = "rbac.authorization.k8s.io/v1"
READ = ["get", "list", "watch"]


def _role(config: StackConfig, spec: ServiceSpec, namespace: str, rules: list[dict]) -> list[Manifest]:
    """A Role in `namespace` and its binding to the component's ServiceAccount."""
    name = f"medianest-{spec.name}"
    role = manifest(RBAC, "Role", metadata(config, name, namespace, spec.name), rules=rules)
    binding = manifest(
        RBAC, "RoleBinding", metadata(config, name, namespace, spec.name),
        roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        subjects=[{"kind": "ServiceAccount", "name": spec.name, "namespace": namespace_of(config, spec)}],
    )
    return [role, binding]


def _cluster_role(config: StackConfig, spec: ServiceSpec, purpose: str, rules: list[dict]) -> list[Manifest]:
    """A ClusterRole and its binding to the component's ServiceAccount."""
    name = f"medianest-{namespace_of(config, spec)}-{spec.name}-{purpose}"
    role = manifest(RBAC, "ClusterRole", metadata(config, name, None, spec.name), rules=rules)
    binding = manifest(
        RBAC, "ClusterRoleBinding", metadata(config, name, None, spec.name),
        roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        subjects=[{"kind": "ServiceAccount", "name": spec.name, "namespace": namespace_of(config, spec)}],
    )
    return [role, binding]


def _prometheus_namespaces(config: StackConfig, specs: Sequence[ServiceSpec]) -> list[str]:
    """Where the pods Prometheus scrapes live: the stack's namespaces and MediaNest's."""
    return sorted({config.kubernetes.backend.namespace, *(namespace_of(config, s) for s in specs)})


def rbac(config: StackConfig, specs: Sequence[ServiceSpec]) -> list[Manifest]:
    objects: list[Manifest] = []
    proxied = any(rbac_proxy.proxied(s) for s in specs)
    for spec in specs:
        if rbac_proxy.proxied(spec):
            objects += _cluster_role(config, spec, "auth", [
                {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
                {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]},
            ])
        if spec.name == prometheus.NAME and proxied:
            objects += _cluster_role(config, spec, "metrics", [
                {"nonResourceURLs": [rbac_proxy.METRICS_PATH], "verbs": ["get"]}])
        if spec.name == prometheus.NAME:
            for namespace in _prometheus_namespaces(config, specs):
                objects += _role(config, spec, namespace, [{"apiGroups": [""], "resources": ["pods"], "verbs": READ}])
        elif spec.name == "alloy" and config.services.alloy.log_source == "kubernetes":
            objects += _role(config, spec, config.kubernetes.backend.namespace, [
                {"apiGroups": [""], "resources": ["pods"], "verbs": READ},
                {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
            ])
    return objects
