"""NetworkPolicies of the Kubernetes target: deny everything, then allow the flows the stack needs.

Every namespace holding a pod of the stack gets a default deny (ingress and egress) and DNS egress
to kube-dns. Each component then gets one policy named after it, made from the flows its spec declares (and
every component's metrics flow from the scraper), as `flows` lists them:
a flow between two of the stack's components becomes egress on the source's policy and ingress on
the destination's; a flow with something outside the stack (MediaNest's pods, the ingress
controller, the API server, receivers, databases) only the rule on the stack's side.

Flows come from the specs present: a disabled component has no spec, so no flow and no policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stack.config import StackConfig
from stack.services.spec import Endpoint, Flow, Pods, Scrapers, ServiceSpec, StackPods
from stack.targets.kubernetes.common import PART_OF, Manifest, manifest, metadata, metrics_port, namespace_of, selector

API_VERSION = "networking.k8s.io/v1"
NAMESPACE_LABEL = "kubernetes.io/metadata.name"  # set by Kubernetes on every namespace
DEFAULT_DENY = "default-deny"
ALLOW_DNS = "allow-dns"


def flows(config: StackConfig, specs: Sequence[ServiceSpec]) -> list[Flow]:
    """Every flow the stack needs, between the components present: each component's metrics
    scraped by the component that scrapes (or prometheus-operator's Prometheus), then the flows
    each spec declares."""
    present = {spec.name: spec for spec in specs}
    operator = config.kubernetes.prometheus_operator
    scrapers: list[Endpoint] = ([Pods(operator.prometheus_namespace)] if operator.enabled else
                                [StackPods(s.name) for s in specs if s.workload.scraper])
    table = [
        # Every component's own metrics (Prometheus replicas scrape each other too).
        *(Flow(scraper, StackPods(spec.name), ((port.container_port, port.protocol.upper()),))
          for scraper in scrapers for spec in sorted(specs, key=lambda s: s.name) if (port := metrics_port(spec))),
        *(flow for spec in sorted(specs, key=lambda s: s.name) for flow in spec.flows
          if not isinstance(flow.source, Scrapers)),
        # Flows from whatever scrapes (the kubelets' metrics): from each scraper.
        *(Flow(scraper, flow.destination, flow.ports) for spec in sorted(specs, key=lambda s: s.name)
          for flow in spec.flows if isinstance(flow.source, Scrapers) for scraper in scrapers),
    ]

    def needed(flow: Flow) -> bool:
        ends = (flow.source, flow.destination)
        return bool(flow.ports) and all(e.name in present for e in ends if isinstance(e, StackPods))

    return [flow for flow in table if needed(flow)]


def network_policies(config: StackConfig, specs: Sequence[ServiceSpec]) -> list[Manifest]:
    """Default deny and DNS per namespace of the stack, then one policy per component, allowing
    only `flows`."""
    home = {spec.name: namespace_of(config, spec) for spec in specs}
    host_network = {spec.name for spec in specs if spec.workload.host_network}
    # Per component, per direction: the peer -> its ports, in the order of the flow table.
    ingress: dict[str, dict[Endpoint, set[tuple[int, str]]]] = {name: {} for name in home}
    egress: dict[str, dict[Endpoint, set[tuple[int, str]]]] = {name: {} for name in home}
    for flow in flows(config, specs):
        if isinstance(flow.source, StackPods):
            egress[flow.source.name].setdefault(flow.destination, set()).update(flow.ports)
        if isinstance(flow.destination, StackPods):
            ingress[flow.destination.name].setdefault(flow.source, set()).update(flow.ports)

    policies = []
    for namespace in sorted(set(home.values())):
        policies += [_default_deny(config, namespace), _allow_dns(config, namespace)]
    for name in sorted(home):
        namespace = home[name]
        policies.append(_policy(config, name, namespace, {
            "ingress": [_rule("from", _peers(peer, namespace, home, host_network, egress=False), ports)
                        for peer, ports in ingress[name].items()],
            "egress": [_rule("to", _peers(peer, namespace, home, host_network, egress=True), ports)
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


def _peers(peer: Endpoint, namespace: str, home: dict[str, str], host_network: set[str],
           egress: bool) -> list[dict[str, Any]] | None:
    """The `from`/`to` of a rule seen from a policy in `namespace`; None: anywhere. Pods on the
    host's network have the node's IP: no pod selector matches them as a destination (node
    exporter listens on the node's loopback; its kube-rbac-proxy's port is all a flow reaches)."""
    if isinstance(peer, StackPods):
        if egress and peer.name in host_network:
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
