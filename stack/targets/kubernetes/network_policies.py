"""NetworkPolicies of the Kubernetes target: deny everything, then allow the flows the stack needs.

Every namespace holding a pod of the stack gets a default deny (ingress and egress) and DNS egress
to kube-dns. Each component then gets one policy named after it, made from the table in `flows`:
a flow between two of the stack's components becomes egress on the source's policy and ingress on
the destination's; a flow with something outside the stack (MediaNest's pods, the ingress
controller, the API server, receivers, databases) only the rule on the stack's side.

Flows come from the specs present: a disabled component has no spec, so no flow and no policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from stack.config import StackConfig
from stack.services import (
    alertmanager,
    blackbox_exporter,
    grafana,
    jaeger,
    loki,
    node_exporter,
    postgres_exporter,
    prometheus,
    redis_exporter,
)
from stack.services.spec import ServiceSpec
from stack.targets.kubernetes.common import PART_OF, Manifest, manifest, metadata, metrics_port, namespace_of, selector

API_VERSION = "networking.k8s.io/v1"
NAMESPACE_LABEL = "kubernetes.io/metadata.name"  # set by Kubernetes on every namespace
DEFAULT_DENY = "default-deny"
ALLOW_DNS = "allow-dns"
# Pods on the host's network have the node's IP: no pod selector matches them as a destination,
# and no policy of theirs applies. node exporter listens on the node's loopback only; its
# kube-rbac-proxy, on its declared port, is all a flow to it can reach (rbac_proxy.py).
HOST_NETWORK = frozenset({node_exporter.NAME})
ALLOY = "alloy"  # its module has no NAME

Ports = tuple[tuple[int, str], ...]  # (port, "TCP" | "UDP")


@dataclass(frozen=True)
class Component:
    """The pods of one component of the stack."""

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
Endpoint = Component | Pods | Hosts


@dataclass(frozen=True)
class Flow:
    source: Endpoint
    destination: Endpoint
    ports: Ports


def tcp(*ports: int) -> Ports:
    return tuple((port, "TCP") for port in sorted(set(ports)))


def url_port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or {"http": 80, "https": 443}[parts.scheme]


def address_port(address: str) -> int:
    """The port of `host:port`."""
    return int(address.rsplit(":", 1)[1])


def receiver_ports(config: StackConfig) -> list[int]:
    """Where Alertmanager notifies: the HTTPS APIs (PagerDuty, Slack), each email smarthost,
    each webhook, and the local webhook of the receivers left unconfigured."""
    alerting = config.alerting
    ports = set()
    for name in type(alerting.receivers).model_fields:
        integrations = getattr(alerting.receivers, name)
        if integrations is None:
            continue
        if integrations.pagerduty or integrations.slack:
            ports.add(443)
        ports.update(address_port(email.smarthost) for email in integrations.email)
        # A URL kept in a file (urlFile) is not known here: HTTPS, as every hosted webhook.
        ports.update(url_port(webhook.url) if webhook.url else 443 for webhook in integrations.webhook)
    if alerting.local_webhook_url:
        ports.add(url_port(alerting.local_webhook_url))
    return sorted(ports)


def grafana_database_ports(config: StackConfig) -> list[int]:
    # No database: Grafana keeps SQLite on its volume.
    database = config.services.grafana.database
    return [address_port(database.host)] if database else []


def jaeger_storage_ports(config: StackConfig) -> list[int]:
    # memory and badger keep spans in the pod; Elasticsearch and OpenSearch are servers.
    settings = config.services.jaeger
    if settings.storage not in ("elasticsearch", "opensearch"):
        return []
    return [url_port(url) for url in settings.server_urls]


def blackbox_ports(config: StackConfig) -> list[int]:
    return sorted({80, 443, *(url_port(url) for url in config.services.blackbox_exporter.targets)})


def flows(config: StackConfig, specs: Sequence[ServiceSpec]) -> list[Flow]:
    """Every flow the stack needs, between the components present."""
    k8s = config.kubernetes
    services = config.services
    present = {spec.name: spec for spec in specs}
    prom, am = Component(prometheus.NAME), Component(alertmanager.NAME)
    graf, lok, jae, ally = Component(grafana.NAME), Component(loki.NAME), Component(jaeger.NAME), Component(ALLOY)
    backend_pods = Pods(k8s.backend.namespace, tuple(sorted(k8s.backend.pod_labels.items())))
    # Any of MediaNest's pods may send traces, not only the backend's; nothing else of ours.
    backend_namespace = Pods(k8s.backend.namespace)
    api_server = Hosts(tuple(sorted(k8s.api_server_cidrs)))
    operator = k8s.prometheus_operator
    # prometheus-operator's Prometheus scrapes the stack instead of ours.
    scraper: Endpoint = Pods(operator.prometheus_namespace) if operator.enabled else prom
    gossip: Ports = ()
    if alertmanager.NAME in present:
        gossip = tuple(sorted((p.container_port, p.protocol.upper()) for p in present[alertmanager.NAME].ports
                              if p.container_port == alertmanager.CLUSTER_PORT))

    table = [
        # Every component's own metrics (Prometheus replicas scrape each other too).
        *(Flow(scraper, Component(spec.name), ((port.container_port, port.protocol.upper()),))
          for spec in sorted(specs, key=lambda s: s.name) if (port := metrics_port(spec))),
        # Prometheus: MediaNest's backend, alerts, and service discovery through the API server.
        Flow(prom, backend_pods, tcp(k8s.backend.port)),
        Flow(prom, am, tcp(alertmanager.PORT)),
        Flow(prom, api_server, tcp(*k8s.api_server_ports)),
        # Alertmanager: replicas gossip (silences, notification log); notifications leave the cluster.
        Flow(am, am, gossip),
        Flow(am, ANYWHERE, tcp(*receiver_ports(config))),
        # Grafana: its datasources and its database; people come through the ingress controller.
        Flow(graf, prom, tcp(prometheus.PORT)),
        Flow(graf, lok, tcp(loki.HTTP_PORT)),
        Flow(graf, jae, tcp(jaeger.UI_PORT)),
        Flow(graf, am, tcp(alertmanager.PORT)),
        Flow(graf, ANYWHERE, tcp(*grafana_database_ports(config))),
        *([Flow(Pods(k8s.ingress.controller_namespace), graf, tcp(grafana.PORT))] if k8s.ingress else []),
        # Loki: logs from Alloy alone (it reads MediaNest's pods' logs through the API server),
        # queried by Grafana, scraped by Prometheus. Loki runs without auth: nobody else may
        # push or query, MediaNest's pods included.
        Flow(ally, lok, tcp(loki.HTTP_PORT)),
        # Jaeger: traces from MediaNest's pods, on the OTLP ports only; its storage.
        Flow(backend_namespace, jae, tcp(jaeger.OTLP_GRPC_PORT, jaeger.OTLP_HTTP_PORT)),
        Flow(jae, ANYWHERE, tcp(*jaeger_storage_ports(config))),
        # Alloy discovers MediaNest's pods and reads their logs through the API server.
        *([Flow(ally, api_server, tcp(*k8s.api_server_ports))] if services.alloy.log_source == "kubernetes" else []),
        # Exporters: what each one queries or probes.
        Flow(Component(postgres_exporter.NAME), ANYWHERE,
             tcp(address_port(services.postgres_exporter.data_source_uri.split("/", 1)[0]))),
        Flow(Component(redis_exporter.NAME), ANYWHERE, tcp(urlsplit(services.redis_exporter.address).port or 6379)),
        Flow(Component(blackbox_exporter.NAME), ANYWHERE, tcp(*blackbox_ports(config))),
    ]

    def needed(flow: Flow) -> bool:
        ends = (flow.source, flow.destination)
        return bool(flow.ports) and all(e.name in present for e in ends if isinstance(e, Component))

    return [flow for flow in table if needed(flow)]


def network_policies(config: StackConfig, specs: Sequence[ServiceSpec]) -> list[Manifest]:
    """Default deny and DNS per namespace of the stack, then one policy per component, allowing
    only `flows`."""
    home = {spec.name: namespace_of(config, spec) for spec in specs}
    # Per component, per direction: the peer -> its ports, in the order of the flow table.
    ingress: dict[str, dict[Endpoint, set[tuple[int, str]]]] = {name: {} for name in home}
    egress: dict[str, dict[Endpoint, set[tuple[int, str]]]] = {name: {} for name in home}
    for flow in flows(config, specs):
        if isinstance(flow.source, Component):
            egress[flow.source.name].setdefault(flow.destination, set()).update(flow.ports)
        if isinstance(flow.destination, Component):
            ingress[flow.destination.name].setdefault(flow.source, set()).update(flow.ports)

    policies = []
    for namespace in sorted(set(home.values())):
        policies += [_default_deny(config, namespace), _allow_dns(config, namespace)]
    for name in sorted(home):
        namespace = home[name]
        policies.append(_policy(config, name, namespace, {
            "ingress": [_rule("from", _peers(peer, namespace, home, egress=False), ports)
                        for peer, ports in ingress[name].items()],
            "egress": [_rule("to", _peers(peer, namespace, home, egress=True), ports)
                       for peer, ports in egress[name].items()],
        }))
    return policies


def _policy(config: StackConfig, name: str, namespace: str, rules: dict[str, list[Any]]) -> Manifest:
    spec: dict[str, Any] = {"podSelector": {"matchLabels": selector(name)}, "policyTypes": ["Ingress", "Egress"]}
    # A direction without rules is denied: the policy selects the pods for both.
    spec.update((direction, rule) for direction, rule in rules.items() if rule)
    return manifest(API_VERSION, "NetworkPolicy", metadata(config, name, namespace, name), spec=spec)


def _default_deny(config: StackConfig, namespace: str) -> Manifest:
    # Every pod of the namespace is selected for both directions, with no rule: nothing goes.
    return manifest(API_VERSION, "NetworkPolicy", metadata(config, DEFAULT_DENY, namespace, PART_OF),
                    spec={"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})


def _allow_dns(config: StackConfig, namespace: str) -> Manifest:
    kube_dns = {"namespaceSelector": {"matchLabels": {NAMESPACE_LABEL: "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
    return manifest(API_VERSION, "NetworkPolicy", metadata(config, ALLOW_DNS, namespace, PART_OF), spec={
        "podSelector": {}, "policyTypes": ["Egress"],
        "egress": [{"to": [kube_dns], "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}],
    })


def _peers(peer: Endpoint, namespace: str, home: dict[str, str], egress: bool) -> list[dict[str, Any]] | None:
    """The `from`/`to` of a rule seen from a policy in `namespace`; None: anywhere."""
    if isinstance(peer, Component):
        if egress and peer.name in HOST_NETWORK:
            return None  # any node's IP: only the port restricts it
        selected: dict[str, Any] = {"podSelector": {"matchLabels": selector(peer.name)}}
        if home[peer.name] != namespace:  # a pod selector alone means the policy's own namespace
            selected = {"namespaceSelector": {"matchLabels": {NAMESPACE_LABEL: home[peer.name]}}, **selected}
        return [selected]
    if isinstance(peer, Pods):
        selected = {"namespaceSelector": {"matchLabels": {NAMESPACE_LABEL: peer.namespace}}}
        if peer.labels:
            selected["podSelector"] = {"matchLabels": dict(peer.labels)}
        return [selected]
    return [{"ipBlock": {"cidr": cidr}} for cidr in peer.cidrs] or None


def _rule(direction: str, peers: list[dict[str, Any]] | None, ports: set[tuple[int, str]]) -> dict[str, Any]:
    rule: dict[str, Any] = {} if peers is None else {direction: peers}
    rule["ports"] = [{"protocol": protocol, "port": port} for port, protocol in sorted(ports)]
    return rule
