"""kube-rbac-proxy in front of node exporter, as kube-prometheus runs it
(jsonnet/kube-prometheus/components/node-exporter.libsonnet, kube-rbac-proxy.libsonnet).

node exporter shares the node's network namespace, where NetworkPolicies do not apply: whatever
it listens on is open to anything that reaches the node. So it binds the node's loopback
(`node_exporter.LOOPBACK_PORT`), and a second container of its pod, kube-rbac-proxy, serves it
on the node's IP only (`--secure-listen-address=[$(IP)]:9100`, IP the pod's, i.e. the node's):

- TLS with the proxy's own self-signed certificate, made in memory at start (no
  `--tls-cert-file`): scrapers skip verification (`insecure_skip_verify`), as kube-prometheus'.
- Every request carries a bearer token the proxy checks with a TokenReview, then asks the API
  server with a SubjectAccessReview whether that identity may `get` the non-resource URL
  `/metrics`; only Prometheus' ServiceAccount may (rbac.py). `--allow-paths=/metrics`: nothing
  else of node exporter is served.
- The proxy needs a token to send those reviews (ClusterRole `tokenreviews`/`subjectaccessreviews`
  `create`, rbac.py). The pod mounts no token by default; a projected service-account token
  volume is mounted into the proxy's container alone, where client-go's in-cluster config
  looks (token, ca.crt, namespace). It runs as the pod's user, so the token file, owned by the
  pod's single user (mode 0600), is readable to it.

Flags checked against kube-rbac-proxy's cmd/kube-rbac-proxy/app/options (secure-listen-address,
upstream, allow-paths, tls-min-version); `--logtostderr` is gone since v0.16 (klog flags removed).
"""

from __future__ import annotations

from typing import Any

from stack.config import StackConfig
from stack.services.spec import ServiceSpec

NAME = "kube-rbac-proxy"
# Where client-go's in-cluster config reads the pod's identity.
TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_VOLUME = "kube-api-access"
# The proxied path: node exporter's metrics, nothing else (its landing page included).
METRICS_PATH = "/metrics"


def proxied(spec: ServiceSpec) -> bool:
    """Its metrics served through the proxy (its Workload's `rbac_proxy_upstream`)."""
    return spec.workload.rbac_proxy_upstream is not None


def container(config: StackConfig, spec: ServiceSpec) -> dict[str, Any]:
    """The proxy's container: it owns the component's declared ports (on the node's IP)."""
    ports = [{"name": p.name, "containerPort": p.container_port, "protocol": p.protocol.upper()}
             for p in spec.ports]
    if spec.host_pid:  # host network: the node's port is the container's, declared for the scheduler
        ports = [{**p, "hostPort": p["containerPort"]} for p in ports]
    (port,) = spec.ports

    def probe(failure_threshold: int) -> dict[str, Any]:
        # A TCP check: an HTTP one would need a token (the proxy guards every path).
        return {"tcpSocket": {"port": port.name}, "periodSeconds": 10, "timeoutSeconds": 5,
                "failureThreshold": failure_threshold}

    return {
        "name": NAME,
        "image": spec.workload.rbac_proxy_image.reference,
        "imagePullPolicy": "IfNotPresent",
        "args": [
            f"--secure-listen-address=[$(IP)]:{port.container_port}",
            f"--upstream=http://127.0.0.1:{spec.workload.rbac_proxy_upstream}/",
            f"--allow-paths={METRICS_PATH}",
            "--tls-min-version=VersionTLS13",
        ],
        "env": [{"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
        "ports": ports,
        "resources": {"requests": {"cpu": "10m", "memory": "20Mi"}, "limits": {"memory": "40Mi"}},
        "readinessProbe": probe(3),
        "livenessProbe": probe(6),
        "volumeMounts": [{"name": TOKEN_VOLUME, "mountPath": TOKEN_DIR, "readOnly": True}],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
        },
    }


def token_volume() -> dict[str, Any]:
    """What Kubernetes would mount into every container with automountServiceAccountToken,
    made by hand for the proxy's container alone."""
    return {"name": TOKEN_VOLUME, "projected": {"defaultMode": 0o444, "sources": [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}}
