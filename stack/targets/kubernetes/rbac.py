"""Least-privilege access to the Kubernetes API: a Role per namespace a component reads (its
Workload's `api_access`: Prometheus's service discovery of pods, Alloy's pod logs), never a
wildcard.

A component that reads cluster-scoped objects says so (`CLUSTER`): a ClusterRole naming exactly
those resources and verbs. What the scraper needs to scrape a component (`scraper_access`: the
kubelets' metrics) is granted to the scraper, named after that component.

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
from stack.services.spec import CLUSTER, STACK_NAMESPACES, ServiceSpec
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


def _namespaces(config: StackConfig, specs: Sequence[ServiceSpec], named: tuple[str, ...]) -> list[str]:
    """The namespaces an ApiAccess names, STACK_NAMESPACES being the stack's own and MediaNest's."""
    stack = {config.kubernetes.backend.namespace, *(namespace_of(config, s) for s in specs)}
    return sorted({n for name in named for n in (stack if name == STACK_NAMESPACES else {name})})


def rbac(config: StackConfig, specs: Sequence[ServiceSpec]) -> list[Manifest]:
    objects: list[Manifest] = []
    proxied = any(rbac_proxy.proxied(s) for s in specs)
    for spec in specs:
        if rbac_proxy.proxied(spec):
            objects += _cluster_role(config, spec, "auth", [
                {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
                {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]},
            ])
        if spec.workload.scraper and proxied:
            objects += _cluster_role(config, spec, "metrics", [
                {"nonResourceURLs": [rbac_proxy.METRICS_PATH], "verbs": ["get"]}])
        accesses = [("api", access) for access in spec.workload.api_access]
        if spec.workload.scraper:
            accesses += [(f"scrape-{other.name}", access)
                         for other in specs for access in other.workload.scraper_access]
        for purpose, access in accesses:
            rules = [dict(rule) for rule in access.rules]
            if CLUSTER in access.namespaces:
                objects += _cluster_role(config, spec, purpose, rules)
            for namespace in _namespaces(config, specs, tuple(n for n in access.namespaces if n != CLUSTER)):
                objects += _role(config, spec, namespace, rules)
    return objects
