"""What every Kubernetes manifest of the stack shares: names, labels, namespaces, metadata.

Each component's objects carry `app.kubernetes.io/name: <spec name>`; that label alone selects
its pods (Services, PDBs, NetworkPolicies, anti-affinity, service discovery).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stack.services.spec import NAME_LABEL, Port, ServiceSpec, namespace_of  # noqa: F401 - re-exported

if TYPE_CHECKING:
    from stack.config import StackConfig

PART_OF_LABEL = "app.kubernetes.io/part-of"
PART_OF = "medianest-observability"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "pulumi"

Manifest = dict[str, Any]


def selector(name: str) -> dict[str, str]:
    """The labels that select a component's pods."""
    return {NAME_LABEL: name}


def labels(config: StackConfig, name: str) -> dict[str, str]:
    return {NAME_LABEL: name, PART_OF_LABEL: PART_OF, "app.kubernetes.io/instance": config.environment,
            MANAGED_BY_LABEL: MANAGED_BY}


def metadata(config: StackConfig, name: str, namespace: str | None, component: str,
             annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    meta["labels"] = labels(config, component)
    if annotations:
        meta["annotations"] = dict(sorted(annotations.items()))
    return meta


def manifest(api_version: str, kind: str, meta: dict[str, Any], **body: Any) -> Manifest:
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, **body}


def metrics_port(spec: ServiceSpec) -> Port | None:
    """The declared port serving the component's own metrics."""
    if spec.metrics is None:
        return None
    return next((p for p in spec.ports if p.container_port == spec.metrics.port), None)
