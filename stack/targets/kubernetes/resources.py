"""The Kubernetes target under Pulumi: each manifest of `manifests.py` becomes the
pulumi-kubernetes resource of its kind, inputs equal to the rendered manifest, plus what only the
deployed stack knows: each component's Secret holding the values (Pulumi secrets, never in a
rendered file) and the pods' keyed checksum of them. A rendered tree gets the same Secrets from
`kubernetes-secrets/create-secrets.sh` instead.

- StatefulSets, volume claims and namespaces are protected: `pulumi destroy` or a refactor
  that drops them stops with an error instead of deleting data (`pulumi state unprotect` first).
  Claims are also retained if ever deleted.
- Every namespaced object depends on its Namespace, so a first `up` creates them in order.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from stack.config import StackConfig
from stack.secrets import secret_content
from stack.services.spec import ServiceSpec
from stack.targets.components import Component
from stack.targets.kubernetes import manifests as plain
from stack.targets.kubernetes.common import NAME_LABEL, Manifest
from stack.targets.kubernetes.workloads import SecretValues

KINDS: dict[tuple[str, str], Any] = {
    ("v1", "Namespace"): k8s.core.v1.Namespace,
    ("v1", "ServiceAccount"): k8s.core.v1.ServiceAccount,
    ("v1", "ConfigMap"): k8s.core.v1.ConfigMap,
    ("v1", "Secret"): k8s.core.v1.Secret,
    ("v1", "PersistentVolumeClaim"): k8s.core.v1.PersistentVolumeClaim,
    ("v1", "Service"): k8s.core.v1.Service,
    ("apps/v1", "StatefulSet"): k8s.apps.v1.StatefulSet,
    ("apps/v1", "Deployment"): k8s.apps.v1.Deployment,
    ("apps/v1", "DaemonSet"): k8s.apps.v1.DaemonSet,
    ("policy/v1", "PodDisruptionBudget"): k8s.policy.v1.PodDisruptionBudget,
    ("rbac.authorization.k8s.io/v1", "Role"): k8s.rbac.v1.Role,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): k8s.rbac.v1.RoleBinding,
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): k8s.rbac.v1.ClusterRole,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): k8s.rbac.v1.ClusterRoleBinding,
    ("networking.k8s.io/v1", "Ingress"): k8s.networking.v1.Ingress,
    ("networking.k8s.io/v1", "NetworkPolicy"): k8s.networking.v1.NetworkPolicy,
}
PROTECTED = frozenset({"Namespace", "StatefulSet", "PersistentVolumeClaim"})
# Top-level fields besides apiVersion/kind/metadata, by their keyword in the Python SDK.
FIELDS = {"spec": "spec", "data": "data", "stringData": "string_data", "type": "type", "immutable": "immutable",
          "rules": "rules", "roleRef": "role_ref", "subjects": "subjects",
          "automountServiceAccountToken": "automount_service_account_token"}


def resource_name(item: Manifest) -> str:
    """Unique per kind (Pulumi adds the type to the URN): namespace and object name."""
    meta = item["metadata"]
    return f"{meta['namespace']}-{meta['name']}" if "namespace" in meta else meta["name"]


def secret_values(secrets: Mapping[str, pulumi.Input[str]], opts: pulumi.ResourceOptions) -> SecretValues:
    """Secrets' data from the Pulumi secrets; the pods' checksum a keyed hash of them, so it
    changes with any value without revealing one (the key is a random secret kept in state)."""
    key = random.RandomPassword("secrets-checksum-key", length=32, special=False, opts=opts).result

    def data(spec: ServiceSpec) -> dict[str, Any]:
        return {s.name: secret_content(s, secrets[s.name]) for s in sorted(spec.secrets, key=lambda s: s.name)}

    def checksum(spec: ServiceSpec) -> pulumi.Output[str]:
        names = sorted(s.name for s in spec.secrets)
        digest = pulumi.Output.all(key, *(secrets[n] for n in names)).apply(
            lambda parts: hmac.new(parts[0].encode(), "\0".join(parts[1:]).encode(), hashlib.sha256).hexdigest()[:16])
        return pulumi.Output.unsecret(digest)

    return SecretValues(data=data, checksum=checksum)


def create(item: Manifest, namespaces: Mapping[str, pulumi.Resource], owner: Component | pulumi.ResourceOptions
           ) -> pulumi.Resource:
    """The object as its pulumi-kubernetes resource, under `owner`: its component, or the stack's
    shared options for what no single component owns (namespaces)."""
    kind = item["kind"]
    meta = item["metadata"]
    depends = [namespaces[meta["namespace"]]] if meta.get("namespace") in namespaces else []
    options = pulumi.ResourceOptions(
        protect=kind in PROTECTED, retain_on_delete=kind == "PersistentVolumeClaim", depends_on=depends)
    opts = pulumi.ResourceOptions.merge(owner if isinstance(owner, pulumi.ResourceOptions) else owner.options(),
                                        options)
    body = {FIELDS[k]: v for k, v in item.items() if k not in ("apiVersion", "kind", "metadata")}
    cls = KINDS.get((item["apiVersion"], kind))
    if cls is None:  # prometheus-operator's custom resources
        return k8s.apiextensions.CustomResource(resource_name(item), api_version=item["apiVersion"], kind=kind,
                                                metadata=meta, opts=opts, **body)
    return cls(resource_name(item), metadata=meta, opts=opts, **body)


def deploy(config: StackConfig, specs: Sequence[ServiceSpec], files: dict[str, str],
           secrets: Mapping[str, pulumi.Input[str]], components: Mapping[str, Component],
           shared: pulumi.ResourceOptions) -> dict[str, str]:
    """Create every object under the component its `app.kubernetes.io/name` label names (the rest
    with `shared`); returns where each UI or API is reached by component name."""
    objects = plain.manifests(config, specs, files, secret_values(secrets, shared))
    namespaces: dict[str, pulumi.Resource] = {}
    for item in objects:
        label = item["metadata"].get("labels", {}).get(NAME_LABEL)
        resource = create(item, namespaces, components.get(label, shared))
        if item["kind"] == "Namespace":
            namespaces[item["metadata"]["name"]] = resource
    return urls(config, plain.deployed(config, specs))


def urls(config: StackConfig, specs: Sequence[ServiceSpec]) -> dict[str, str]:
    """The component behind the ingress (Grafana) at its Ingress host when there is one; the rest
    inside the cluster (kubectl port-forward to reach them from a laptop)."""
    found = {}
    for spec in specs:
        port = next((p for p in spec.ports if p.name in ("http", "ui")), None)
        if port is None:
            continue
        namespace = plain.namespace_of(config, spec)
        found[spec.name] = (f"http://{spec.name}.{namespace}.svc:{port.container_port} "
                            f"(kubectl -n {namespace} port-forward svc/{spec.name} {port.container_port})")
        if config.kubernetes.ingress and spec.workload.ingress:
            found[spec.name] = f"https://{config.kubernetes.ingress.host}"
    return found
