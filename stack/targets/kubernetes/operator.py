"""Operator mode: on a cluster that already runs prometheus-operator (kube-prometheus-stack), the
stack deploys no Prometheus or Alertmanager of its own; it hands the operator custom resources
(monitoring.coreos.com/v1) instead:

- a `PrometheusRule` per generated rule file, its `spec.groups` exactly the file's groups;
- a `ServiceMonitor` per component with a metrics endpoint (not Prometheus or Alertmanager:
  they are not deployed in this mode);
- a `PodMonitor` for MediaNest's backend, whose pods are selected by label and port number;
- what a component adds (`operator_monitors`: a `Probe` per blackbox module for MediaNest's health
  endpoints).

Every object lives in the stack's namespace and carries `kubernetes.prometheusOperator.labels`,
the labels the operator's ruleSelector, serviceMonitorSelector, podMonitorSelector and
probeSelector match. Each scrape sets `job` to the configured job name by relabeling: the alerts
select on those names, and the operator would otherwise name the job after the Service (or
`<namespace>/<name>` of the monitor).

Field names checked against the prometheus-operator API reference
(https://prometheus-operator.dev/docs/api-reference/api/) and its Go types
(pkg/apis/monitoring/v1: servicemonitor_types.go, podmonitor_types.go, probe_types.go, types.go):
`ServiceMonitorSpec.selector/namespaceSelector.matchNames/endpoints[].port,path,interval,relabelings`,
`RelabelConfig.sourceLabels/targetLabel/regex/replacement/action`,
`PodMetricsEndpoint.portNumber` (added in v0.79.0, prometheus-operator PR #7150; the older
`targetPort` is deprecated), `Endpoint.scheme/bearerTokenFile/tlsConfig.insecureSkipVerify` (as
kube-prometheus' node-exporter ServiceMonitor), `ProbeSpec.jobName/prober.url,path/module/interval/
targets.staticConfig.static`, `PrometheusRuleSpec.groups`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from stack import layout
from stack import services as registry
from stack.config import StackConfig
from stack.services.spec import SERVICE_ACCOUNT_TOKEN, ServiceSpec
from stack.targets.kubernetes import rbac_proxy
from stack.targets.kubernetes.common import (
    NAME_LABEL,
    PART_OF,
    PART_OF_LABEL,
    Manifest,
    manifest,
    metadata,
    metrics_port,
    namespace_of,
)

API_VERSION = "monitoring.coreos.com/v1"
# Prefix of every object's name: the stack shares its namespace with kube-prometheus-stack,
# whose own monitors are named after the same components (grafana, node-exporter...).
PREFIX = "medianest"
RULES_COMPONENT = "prometheus-rules"
RULES = f"{layout.RULES_DIR}/"


def operator_manifests(config: StackConfig, files: Mapping[str, str],
                       specs: Sequence[ServiceSpec]) -> list[Manifest]:
    """The custom resources handed to prometheus-operator, in a stable order."""
    return [
        *prometheus_rules(config, files),
        # Not what the operator replaces, nor what is scraped only for its probes (the blackbox exporter).
        *(service_monitor(config, spec) for spec in specs
          if spec.metrics and spec.metrics.scraped and not spec.workload.replaced_by_operator),
        backend_pod_monitor(config),
        *component_monitors(config, specs),
    ]


def _meta(config: StackConfig, name: str, component: str) -> dict[str, Any]:
    """Common metadata in the stack's namespace, plus the labels the operator selects on (they win
    over ours on a clash: without them the operator ignores the object)."""
    meta = metadata(config, f"{PREFIX}-{name}", config.kubernetes.namespace, component)
    meta["labels"] = {**meta["labels"], **config.kubernetes.prometheus_operator.labels}
    return meta


def _job(job: str) -> dict[str, str]:
    """Our relabelings run after the operator's own, so this `job` is the one stored."""
    return {"action": "replace", "targetLabel": "job", "replacement": job}


def _instance(source: str) -> dict[str, Any]:
    """`instance` as the stack's own Prometheus sets it on Kubernetes: the pod's name (the node's
    for node exporter), not an address that changes with every restart."""
    return {"action": "replace", "sourceLabels": [source], "targetLabel": "instance"}


def prometheus_rules(config: StackConfig, files: Mapping[str, str]) -> list[Manifest]:
    """One PrometheusRule per generated rule file (`prometheus/rules/<name>.yaml`)."""
    rules = []
    for path in sorted(p for p in files if p.startswith(RULES) and p.endswith(".yaml")):
        name = path.removeprefix(RULES).removesuffix(".yaml")
        groups = yaml.safe_load(files[path])["groups"]
        rules.append(manifest(API_VERSION, "PrometheusRule", _meta(config, name, RULES_COMPONENT),
                              spec={"groups": groups}))
    return rules


def service_monitor(config: StackConfig, spec: ServiceSpec) -> Manifest:
    """Scrapes a component through its Service, on the port named after the spec's metrics port."""
    assert spec.metrics is not None
    port = metrics_port(spec)
    assert port is not None, f"{spec.name}: its metrics port is not declared"
    # A pod on the host's network is its node.
    instance = "__meta_kubernetes_pod_node_name" if spec.workload.host_network else "__meta_kubernetes_pod_name"
    # node exporter is behind kube-rbac-proxy (rbac_proxy.py): HTTPS with its self-signed
    # certificate and the operator's Prometheus' own token, as kube-prometheus' ServiceMonitor
    # (kube-prometheus-stack's Prometheus may `get` /metrics). bearerTokenFile is deprecated
    # since operator v0.73 for `authorization`, which takes a Secret, not the pod's own token.
    proxied = {"scheme": "https", "bearerTokenFile": SERVICE_ACCOUNT_TOKEN,
               "tlsConfig": {"insecureSkipVerify": True}} if rbac_proxy.proxied(spec) else {}
    return manifest(API_VERSION, "ServiceMonitor", _meta(config, spec.name, spec.name), spec={
        # Part-of too: kube-prometheus-stack's own Grafana Service is also `app.kubernetes.io/name: grafana`.
        "selector": {"matchLabels": {NAME_LABEL: spec.name, PART_OF_LABEL: PART_OF}},
        "namespaceSelector": {"matchNames": [namespace_of(config, spec)]},
        "endpoints": [{
            "port": port.name,
            "path": spec.metrics.path,
            **proxied,
            # The pace the rules' windows were written for, not the cluster Prometheus' default.
            "interval": registry.scraper_settings(config).scrape_interval,
            "relabelings": [
                # A StatefulSet's headless Service (`<name>-headless`) carries the same labels:
                # keep the ClusterIP Service alone, or each pod would be scraped twice.
                {"action": "keep", "sourceLabels": ["__meta_kubernetes_service_name"], "regex": spec.name},
                _job(spec.metrics.job),
                _instance(instance),
            ],
        }],
    })


def backend_pod_monitor(config: StackConfig) -> Manifest:
    """MediaNest's backend has no Service of ours: its pods are selected by their labels, in their
    own namespace, on the numeric container port. The PodMonitor lives with the stack's other
    objects (where the operator already reads) and reaches across by `namespaceSelector`."""
    backend = config.kubernetes.backend
    return manifest(API_VERSION, "PodMonitor", _meta(config, "backend", config.jobs.backend), spec={
        "selector": {"matchLabels": dict(sorted(backend.pod_labels.items()))},
        "namespaceSelector": {"matchNames": [backend.namespace]},
        "podMetricsEndpoints": [{
            "portNumber": backend.port,
            "path": config.backend.metrics_path,
            "scheme": config.backend.scheme,
            "interval": registry.scraper_settings(config).scrape_interval,
            "relabelings": [_job(config.jobs.backend), _instance("__meta_kubernetes_pod_name")],
        }],
    })


def component_monitors(config: StackConfig, specs: Sequence[ServiceSpec]) -> list[Manifest]:
    """What a deployed component hands the operator beyond its ServiceMonitor (`operator_monitors`:
    the blackbox exporter's Probes), with the metadata the operator selects on."""
    by_name = registry.by_name()
    return [manifest(API_VERSION, kind, _meta(config, name, spec.name), spec=body)
            for spec in specs for kind, name, body in by_name[spec.name].operator_monitors(config, spec)]
