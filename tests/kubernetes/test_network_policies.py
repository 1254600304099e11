"""NetworkPolicies: everything denied but DNS and the flows the stack needs.

A small evaluator applies Kubernetes' semantics to the generated policies: a pod selected by any
policy of a type (Ingress, Egress) is isolated for it, and then allowed only what one of those
policies' rules allows (policies add up). A connection goes through when the source's egress and
the destination's ingress both allow it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from stack.bundle import build
from stack.cli import main
from stack.config import PROJECT, ConfigError, StackConfig, from_mapping, load_stack
from stack.services.spec import ServiceSpec
from stack.targets.kubernetes.common import NAME_LABEL, PART_OF_LABEL, labels, namespace_of
from stack.targets.kubernetes.network_policies import network_policies

P = "medianest-observability:"
BASE = {
    f"{P}environment": "prod",
    f"{P}target": "kubernetes",
    f"{P}runbookBaseUrl": "https://runbooks.example.com/alerts",
    f"{P}alerting": {
        # Receivers left out post to the local webhook (port 9099).
        "receivers": {
            "criticalAlerts": {"slack": [{"apiUrlFile": "/etc/alertmanager/secrets/slack", "channel": "#alerts"}]},
            "tickets": {"email": [{"to": "t@example.com", "from": "am@example.com",
                                   "smarthost": "smtp.example.com:587"}]},
            "deadman": {"webhook": [{"url": "https://heartbeat.example.com:8443/am"}]},
        },
    },
    f"{P}services": {
        "alertmanager": {"replicas": 2},
        "prometheus": {"replicas": 2},
        "alloy": {"logSource": "kubernetes"},
        "postgresExporter": {"dataSourceUri": "db.example.com:6432/medianest?sslmode=require"},
        "redisExporter": {"address": "redis://cache.example.com:6380"},
        "blackboxExporter": {"targets": ["https://medianest.example.com:9443/api/health"]},
    },
    f"{P}kubernetes": {
        "ingress": {"host": "grafana.example.com", "tlsSecretName": "grafana-tls"},
        "apiServerCidrs": ["10.96.0.1/32"],
        "apiServerPorts": [443],
    },
}


def config_with(**overrides: Any) -> StackConfig:
    """BASE with some top-level keys (without the project prefix) replaced."""
    return from_mapping({**BASE, **{P + key: value for key, value in overrides.items()}}, "test")


def specs_of(config: StackConfig) -> tuple[ServiceSpec, ...]:
    return build(config).services


# --- The evaluator --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pod:
    """A pod (namespace and labels), or a host outside the pod network (`ip` only). Pods on the
    host's network have their node's IP: selectors never match them, only ipBlocks."""

    namespace: str | None
    labels: dict[str, str] = field(default_factory=dict)
    ip: str | None = None
    host_network: bool = False


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, "the evaluator knows matchLabels only"
    return selector.get("matchLabels", {}).items() <= labels.items()


def peer_matches(peer: dict[str, Any], policy_namespace: str, other: Pod) -> bool:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        address = ipaddress.ip_address(other.ip) if other.ip else None
        return address is not None and address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(cidr) for cidr in block.get("except", ()))
    if other.namespace is None or other.host_network:
        return False
    if "namespaceSelector" in peer:
        in_namespace = selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": other.namespace})
    else:
        in_namespace = other.namespace == policy_namespace
    return in_namespace and selects(peer.get("podSelector", {}), other.labels)


def port_matches(ports: list[dict[str, Any]] | None, port: int, protocol: str) -> bool:
    return ports is None or any(p.get("protocol", "TCP") == protocol and p.get("port", port) == port
                                for p in ports)


def side_allows(policies: list[dict[str, Any]], kind: str, pod: Pod, other: Pod, port: int, protocol: str) -> bool:
    """Whether `pod`'s policies of `kind` let it talk to (Egress) or hear from (Ingress) `other`."""
    if pod.namespace is None:
        return True  # outside the cluster: no NetworkPolicy applies
    isolating = [p for p in policies if p["metadata"]["namespace"] == pod.namespace
                 and kind in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], pod.labels)]
    if not isolating:
        return True
    rules, peers = ("egress", "to") if kind == "Egress" else ("ingress", "from")
    return any(
        port_matches(rule.get("ports"), port, protocol)
        and (peers not in rule or any(peer_matches(peer, p["metadata"]["namespace"], other) for peer in rule[peers]))
        for p in isolating for rule in p["spec"].get(rules, []))


def allowed(policies: list[dict[str, Any]], source: Pod, destination: Pod, port: int, protocol: str = "TCP") -> bool:
    return (side_allows(policies, "Egress", source, destination, port, protocol)
            and side_allows(policies, "Ingress", destination, source, port, protocol))


# --- The cluster the flows are checked in ---------------------------------------------------------

def stack_pods(config: StackConfig, specs: tuple[ServiceSpec, ...]) -> dict[str, Pod]:
    """Each component's pod, labelled as the workloads label it."""
    return {spec.name: Pod(namespace_of(config, spec), labels(config, spec.name),
                           ip="10.0.0.10" if spec.name == "node-exporter" else None,
                           host_network=spec.name == "node-exporter")
            for spec in specs}


OUTSIDE = {
    "backend": Pod("medianest", {NAME_LABEL: "medianest-backend"}),
    "worker": Pod("medianest", {NAME_LABEL: "medianest-worker"}),  # another of MediaNest's pods
    "ingress-controller": Pod("ingress-nginx", {NAME_LABEL: "ingress-nginx"}),
    "kube-dns": Pod("kube-system", {"k8s-app": "kube-dns"}),
    "stranger": Pod("default", {"app": "curl"}),
    "api-server": Pod(None, ip="10.96.0.1"),
    "internet": Pod(None, ip="203.0.113.7"),
}


@pytest.fixture(scope="module")
def base() -> tuple[StackConfig, tuple[ServiceSpec, ...]]:
    config = config_with()
    return config, specs_of(config)


@pytest.fixture(scope="module")
def pods(base: tuple[StackConfig, tuple[ServiceSpec, ...]]) -> dict[str, Pod]:
    return {**stack_pods(*base), **OUTSIDE}


@pytest.fixture(scope="module")
def policies(base: tuple[StackConfig, tuple[ServiceSpec, ...]]) -> list[dict[str, Any]]:
    return network_policies(*base)


FLOWS = [  # source, destination, port, protocol, allowed
    # Prometheus scrapes everything, MediaNest's backend, node exporter on the host's network.
    ("prometheus", "prometheus", 9090, "TCP", True),
    ("prometheus", "alertmanager", 9093, "TCP", True),
    ("prometheus", "grafana", 3000, "TCP", True),
    ("prometheus", "loki", 3100, "TCP", True),
    ("prometheus", "jaeger", 8888, "TCP", True),
    ("prometheus", "alloy", 12345, "TCP", True),
    ("prometheus", "node-exporter", 9100, "TCP", True),
    # node exporter itself, on the node's loopback behind its kube-rbac-proxy: never a flow.
    ("prometheus", "node-exporter", 9101, "TCP", False),
    ("grafana", "node-exporter", 9100, "TCP", False),
    ("alloy", "node-exporter", 9100, "TCP", False),
    ("prometheus", "postgres-exporter", 9187, "TCP", True),
    ("prometheus", "redis-exporter", 9121, "TCP", True),
    ("prometheus", "blackbox", 9115, "TCP", True),
    ("prometheus", "backend", 3001, "TCP", True),
    ("prometheus", "api-server", 443, "TCP", True),
    ("prometheus", "worker", 3001, "TCP", False),
    ("prometheus", "jaeger", 4317, "TCP", False),
    ("prometheus", "api-server", 6443, "TCP", False),
    ("prometheus", "internet", 443, "TCP", False),
    ("prometheus", "internet", 6432, "TCP", False),
    # Alertmanager: its peers (gossip, TCP and UDP) and its receivers.
    ("alertmanager", "alertmanager", 9094, "UDP", True),
    ("alertmanager", "alertmanager", 9094, "TCP", True),
    ("alertmanager", "internet", 443, "TCP", True),
    ("alertmanager", "internet", 587, "TCP", True),
    ("alertmanager", "internet", 8443, "TCP", True),
    ("alertmanager", "internet", 9099, "TCP", True),
    ("alertmanager", "internet", 25, "TCP", False),
    ("alertmanager", "prometheus", 9090, "TCP", False),
    ("prometheus", "alertmanager", 9094, "UDP", False),
    # Grafana: its datasources, people through the ingress controller.
    ("grafana", "prometheus", 9090, "TCP", True),
    ("grafana", "loki", 3100, "TCP", True),
    ("grafana", "jaeger", 16686, "TCP", True),
    ("grafana", "alertmanager", 9093, "TCP", True),
    ("ingress-controller", "grafana", 3000, "TCP", True),
    ("grafana", "postgres-exporter", 9187, "TCP", False),
    ("grafana", "internet", 443, "TCP", False),
    ("stranger", "grafana", 3000, "TCP", False),
    ("backend", "grafana", 3000, "TCP", False),
    # Loki: logs from Alloy (MediaNest's pods' logs through the API server); traces from MediaNest.
    ("alloy", "loki", 3100, "TCP", True),
    ("alloy", "api-server", 443, "TCP", True),
    ("backend", "loki", 3100, "TCP", False),
    ("worker", "loki", 3100, "TCP", False),
    ("backend", "jaeger", 4317, "TCP", True),
    ("backend", "jaeger", 4318, "TCP", True),
    ("backend", "jaeger", 16686, "TCP", False),
    ("backend", "prometheus", 9090, "TCP", False),
    ("stranger", "loki", 3100, "TCP", False),
    ("stranger", "jaeger", 4317, "TCP", False),
    ("jaeger", "loki", 3100, "TCP", False),
    ("loki", "internet", 443, "TCP", False),
    ("alloy", "internet", 443, "TCP", False),
    # Exporters: what each queries or probes, nothing else.
    ("postgres-exporter", "internet", 6432, "TCP", True),
    ("redis-exporter", "internet", 6380, "TCP", True),
    ("blackbox", "internet", 443, "TCP", True),
    ("blackbox", "internet", 80, "TCP", True),
    ("blackbox", "internet", 9443, "TCP", True),
    ("postgres-exporter", "internet", 5432, "TCP", False),
    ("redis-exporter", "internet", 6379, "TCP", False),
    ("blackbox", "loki", 3100, "TCP", False),
    ("node-exporter", "internet", 443, "TCP", False),
    ("node-exporter", "prometheus", 9090, "TCP", False),
]


@pytest.mark.parametrize(("source", "destination", "port", "protocol", "expected"), FLOWS,
                         ids=[f"{s}->{d}:{p}/{proto}" for s, d, p, proto, _ in FLOWS])
def test_only_the_listed_flows_are_allowed(policies: list[dict[str, Any]], pods: dict[str, Pod], source: str,
                                           destination: str, port: int, protocol: str, expected: bool) -> None:
    assert allowed(policies, pods[source], pods[destination], port, protocol) is expected


def test_every_pod_of_the_stack_resolves_names_and_nothing_else_by_default(
        policies: list[dict[str, Any]], base: tuple[StackConfig, tuple[ServiceSpec, ...]]) -> None:
    for name, pod in stack_pods(*base).items():
        for protocol in ("UDP", "TCP"):
            assert allowed(policies, pod, OUTSIDE["kube-dns"], 53, protocol), name
        assert not allowed(policies, pod, OUTSIDE["kube-dns"], 9153), name
        # An unlabelled pod next to the stack's is denied both ways too.
        neighbour = Pod(pod.namespace, {"app": "debug"})
        assert not allowed(policies, neighbour, OUTSIDE["internet"], 443), name
        assert not allowed(policies, OUTSIDE["stranger"], neighbour, 8080), name


def test_a_default_deny_per_namespace_of_the_stack(
        policies: list[dict[str, Any]], base: tuple[StackConfig, tuple[ServiceSpec, ...]]) -> None:
    config, specs = base
    namespaces = {namespace_of(config, spec) for spec in specs}
    assert config.kubernetes.node_namespace in namespaces  # node exporter runs there
    deny = {p["metadata"]["namespace"]: p["spec"] for p in policies if p["metadata"]["name"] == "default-deny"}
    assert deny == {namespace: {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]} for namespace in namespaces}


def test_policies_carry_the_stack_labels_and_one_per_component(
        policies: list[dict[str, Any]], base: tuple[StackConfig, tuple[ServiceSpec, ...]]) -> None:
    config, specs = base
    names = {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in policies}
    assert {(namespace_of(config, s), s.name) for s in specs} <= names
    assert len(names) == len(policies)  # no two objects with one name
    for policy in policies:
        assert policy["metadata"]["labels"][PART_OF_LABEL] == "medianest-observability"


def test_policies_are_deterministic(base: tuple[StackConfig, tuple[ServiceSpec, ...]]) -> None:
    config, specs = base
    assert network_policies(config, specs) == network_policies(config, tuple(reversed(specs)))


@pytest.mark.parametrize("stack", ["base", "prod"])
def test_every_policy_validates(stack: str, base: tuple[StackConfig, tuple[ServiceSpec, ...]]) -> None:
    config = base[0] if stack == "base" else load_stack("prod")
    specs = base[1] if stack == "base" else specs_of(config)
    for policy in network_policies(config, specs):
        kubernetes_validate.validate(policy, config.kubernetes.version, strict=True)


def test_a_single_alertmanager_has_no_gossip() -> None:
    config = config_with(services={"alertmanager": {"replicas": 1}})
    policies, pods = network_policies(config, specs_of(config)), stack_pods(config, specs_of(config))
    assert not allowed(policies, pods["alertmanager"], pods["alertmanager"], 9094, "UDP")
    assert allowed(policies, pods["grafana"], pods["alertmanager"], 9093)


def test_gossip_follows_the_ports_alertmanager_declares() -> None:
    config = config_with(services={"alertmanager": {"replicas": 2}})
    specs = specs_of(config)
    (spec,) = (s for s in specs if s.name == "alertmanager")
    assert {(p.container_port, p.protocol) for p in spec.ports} >= {(9094, "tcp"), (9094, "udp")}
    policies, pods = network_policies(config, specs), stack_pods(config, specs)
    assert allowed(policies, pods["alertmanager"], pods["alertmanager"], 9094, "UDP")
    assert allowed(policies, pods["alertmanager"], pods["alertmanager"], 9094, "TCP")


def test_disabled_components_have_no_policy_and_no_flow() -> None:
    config = config_with(services={"jaeger": {"enabled": False}, "blackboxExporter": {"enabled": False},
                                   "nodeExporter": {"enabled": False}, "alloy": {"logSource": "kubernetes"}})
    specs = specs_of(config)
    policies = network_policies(config, specs)
    names = {p["metadata"]["name"] for p in policies}
    assert names.isdisjoint({"jaeger", "blackbox", "node-exporter"})
    # Neither node exporter nor Alloy reads the host here: one namespace, one default deny.
    assert {p["metadata"]["namespace"] for p in policies} == {config.kubernetes.namespace}
    # A pod that takes the disabled Jaeger's labels gets nothing through.
    impostor = Pod(config.kubernetes.namespace, labels(config, "jaeger"))
    pods = stack_pods(config, specs)
    assert not allowed(policies, pods["grafana"], impostor, 16686)
    assert not allowed(policies, OUTSIDE["backend"], impostor, 4317)
    assert not allowed(policies, pods["prometheus"], Pod(None, ip="10.0.0.10"), 9100)


def test_without_an_ingress_nobody_reaches_grafana_from_outside() -> None:
    kubernetes = {key: value for key, value in BASE[f"{P}kubernetes"].items() if key != "ingress"}
    config = config_with(kubernetes=kubernetes)
    specs = specs_of(config)
    assert not allowed(network_policies(config, specs), OUTSIDE["ingress-controller"],
                       stack_pods(config, specs)["grafana"], 3000)


def test_with_prometheus_operator_its_namespace_scrapes_instead() -> None:
    kubernetes = {**BASE[f"{P}kubernetes"], "prometheusOperator": {"enabled": True, "prometheusNamespace": "kps"}}
    config = config_with(kubernetes=kubernetes, longTermStorage={"mode": "none"})
    # The operator's Prometheus and Alertmanager run instead of ours.
    specs = tuple(s for s in specs_of(config) if s.name not in ("prometheus", "alertmanager"))
    policies, pods = network_policies(config, specs), stack_pods(config, specs)
    operator_prometheus = Pod("kps", {NAME_LABEL: "prometheus"})
    ours = Pod(config.kubernetes.namespace, labels(config, "prometheus"))
    assert {p["metadata"]["name"] for p in policies}.isdisjoint({"prometheus", "alertmanager"})
    for name, port in [("grafana", 3000), ("loki", 3100), ("jaeger", 8888), ("alloy", 12345),
                       ("node-exporter", 9100), ("postgres-exporter", 9187), ("redis-exporter", 9121),
                       ("blackbox", 9115)]:
        assert allowed(policies, operator_prometheus, pods[name], port), name
        assert not allowed(policies, ours, pods[name], port), name
    assert not allowed(policies, operator_prometheus, pods["jaeger"], 4317)


def test_external_storage_is_reached_when_configured(base: tuple[StackConfig, tuple[ServiceSpec, ...]]) -> None:
    services = {**BASE[f"{P}services"],
                "grafana": {"database": {"type": "postgres", "host": "grafana-db.example.com:5433",
                                         "name": "grafana", "user": "grafana"}},
                "jaeger": {"storage": "opensearch", "serverUrls": ["https://search.example.com:9201"]}}
    config = config_with(services=services)
    specs = specs_of(config)
    before, after = network_policies(*base), network_policies(config, specs)
    pods = stack_pods(config, specs)
    for source, port in [("grafana", 5433), ("jaeger", 9201)]:
        assert not allowed(before, pods[source], OUTSIDE["internet"], port)
        assert allowed(after, pods[source], OUTSIDE["internet"], port)
    assert not allowed(after, pods["grafana"], OUTSIDE["internet"], 9201)
    assert not allowed(after, pods["jaeger"], OUTSIDE["internet"], 5433)


# --- Safe by default: who reaches Loki, what MediaNest reaches, the API server, node exporter ----

Base = tuple[StackConfig, tuple[ServiceSpec, ...]]

def test_loki_hears_only_alloy_grafana_and_prometheus(
        policies: list[dict[str, Any]], pods: dict[str, Pod]) -> None:
    # Loki runs without auth: whoever reaches its port may push and query any stream.
    for port in (3100, 9095):
        heard = {name for name, pod in pods.items() if name != "loki" and allowed(policies, pod, pods["loki"], port)}
        assert heard == ({"alloy", "grafana", "prometheus"} if port == 3100 else set()), port


def test_medianest_reaches_only_jaegers_otlp_ports(
        policies: list[dict[str, Any]], pods: dict[str, Pod], base: Base) -> None:
    _, specs = base
    ports = sorted({(p.container_port, p.protocol.upper()) for s in specs for p in s.ports} | {(9101, "TCP")})
    for source in ("backend", "worker"):
        reached = {(spec.name, port) for spec in specs if spec.name != "node-exporter"
                   for port, protocol in ports if allowed(policies, pods[source], pods[spec.name], port, protocol)}
        assert reached == {("jaeger", 4317), ("jaeger", 4318)}, source


def test_the_api_server_is_reached_only_on_its_cidrs_and_ports(
        policies: list[dict[str, Any]], pods: dict[str, Pod], base: Base) -> None:
    config, specs = base
    assert config.kubernetes.api_server_cidrs == ("10.96.0.1/32",)
    next_door = Pod(None, ip="10.96.0.2")
    # The API's clients are the components whose workload reads it (a token, a Role).
    clients = {s.name for s in specs if s.workload.api_access}
    assert {"prometheus", "alloy"} <= clients
    for client in sorted(clients):
        assert allowed(policies, pods[client], OUTSIDE["api-server"], 443)
        assert not allowed(policies, pods[client], OUTSIDE["api-server"], 6443), "apiServerPorts is [443] here"
        for port in (443, 6443):
            assert not allowed(policies, pods[client], next_door, port), client
        # Their rule on the API server's ports names its CIDRs and nothing else.
        (policy,) = [p for p in policies if p["metadata"]["name"] == client]
        api = [r for r in policy["spec"]["egress"] if {x["port"] for x in r["ports"]} <= {443, 6443}]
        assert api == [{"to": [{"ipBlock": {"cidr": "10.96.0.1/32"}}], "ports": [{"protocol": "TCP", "port": 443}]}]
    # No other component talks to the API (Alertmanager's receivers and the blackbox probes are on
    # 443 anywhere: they are left out here, see the report; neither has a token).
    for name in {s.name for s in specs} - clients - {"alertmanager", "blackbox", "node-exporter"}:
        for port in (443, 6443):
            assert not allowed(policies, pods[name], OUTSIDE["api-server"], port), name


def test_node_exporter_is_reached_only_through_its_proxy_from_prometheus(
        policies: list[dict[str, Any]], pods: dict[str, Pod]) -> None:
    node = pods["node-exporter"]
    callers = {name for name, pod in pods.items() if name != "node-exporter" and allowed(policies, pod, node, 9100)}
    assert callers == {"prometheus"}
    assert not any(allowed(policies, pod, node, 9101) for pod in pods.values()), "node exporter's own port"
    # The policies name the proxy's port alone, never node exporter's loopback port.
    ports = {rule_port["port"] for p in policies for direction in ("ingress", "egress")
             for rule in p["spec"].get(direction, []) for rule_port in rule.get("ports", [])}
    assert 9100 in ports and 9101 not in ports
    (policy,) = [p for p in policies if p["metadata"]["name"] == "node-exporter"]
    assert policy["spec"]["ingress"] == [{
        "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                  "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}],
        "ports": [{"protocol": "TCP", "port": 9100}]}]
    assert "egress" not in policy["spec"]


@pytest.mark.parametrize(("cidrs", "message"), [
    (None, "kubernetes.apiServerCidrs: required with target kubernetes"),
    ([], "kubernetes.apiServerCidrs: required with target kubernetes"),
    (["0.0.0.0/0"], "kubernetes.apiServerCidrs.0: Value error, must name the API server's addresses"),
    (["::/0"], "kubernetes.apiServerCidrs.0: Value error, must name the API server's addresses"),
    (["10.96.0.1"], "kubernetes.apiServerCidrs.0: Value error, must be a CIDR with its prefix length"),
    (["10.96.0.1/32", "fd00::1/128"], None),
    (["api.example.com"], "kubernetes.apiServerCidrs.0: Value error, must be a CIDR"),
])
def test_a_kubernetes_stack_names_its_api_server(cidrs: list[str] | None, message: str | None) -> None:
    kubernetes = {k: v for k, v in BASE[f"{P}kubernetes"].items() if k != "apiServerCidrs"}
    if cidrs is not None:
        kubernetes["apiServerCidrs"] = cidrs
    if message is None:
        assert config_with(kubernetes=kubernetes).kubernetes.api_server_cidrs == tuple(cidrs or ())
        return
    with pytest.raises(ConfigError, match=f"{P}{message}"):
        config_with(kubernetes=kubernetes)


def test_render_of_a_prod_stack_without_api_server_cidrs_exits_2(tmp_path: Path, monkeypatch, capsys) -> None:
    document = yaml.safe_load((Path(__file__).resolve().parents[2] / "Pulumi.prod.yaml").read_text())
    assert document["config"][f"{PROJECT}:kubernetes"]["apiServerCidrs"], "the shipped prod stack names it"
    del document["config"][f"{PROJECT}:kubernetes"]["apiServerCidrs"]
    (tmp_path / "Pulumi.prod.yaml").write_text(yaml.safe_dump(document))
    monkeypatch.setattr("stack.cli.ROOT", tmp_path)
    out = tmp_path / "out"
    assert main(["render", "--stack", "prod", "--out", str(out)]) == 2
    assert f"{PROJECT}:kubernetes.apiServerCidrs: required" in capsys.readouterr().err
    assert not out.exists()


def test_the_long_term_store_s_cluster_is_reached_along_its_write_and_read_paths_only() -> None:
    config = config_with(longTermStorage={"mode": "deploy"})
    specs = specs_of(config)
    policies, pods = network_policies(config, specs), {**stack_pods(config, specs), **OUTSIDE}
    # Written by Prometheus through vminsert, read by Grafana through vmselect; the storage nodes
    # take each on its own port.
    paths = [("prometheus", "vminsert", 8480), ("grafana", "vmselect", 8481),
             ("vminsert", "vmstorage", 8400), ("vmselect", "vmstorage", 8401)]
    for source, destination, port in paths:
        assert allowed(policies, pods[source], pods[destination], port), (source, destination)
    assert not allowed(policies, pods["vminsert"], pods["vmstorage"], 8401)
    assert not allowed(policies, pods["vmselect"], pods["vmstorage"], 8400)
    for other in ("grafana", "alertmanager", "loki", "backend", "stranger"):
        assert not allowed(policies, pods[other], pods["vmstorage"], 8400), other
        assert not allowed(policies, pods[other], pods["vminsert"], 8480), other
    for other in ("alertmanager", "loki", "backend", "stranger"):
        assert not allowed(policies, pods[other], pods["vmselect"], 8481), other
    for component in ("vminsert", "vmselect", "vmstorage"):
        assert not allowed(policies, pods[component], OUTSIDE["internet"], 443), component


def test_prometheus_reaches_an_external_store_on_its_port_only() -> None:
    external = {"url": "https://mimir.example.com:8443/api/v1/push", "retention": "400d"}
    config = config_with(longTermStorage={"mode": "remoteWrite", "external": external})
    specs = specs_of(config)
    policies, pods = network_policies(config, specs), stack_pods(config, specs)
    assert allowed(policies, pods["prometheus"], OUTSIDE["internet"], 8443)
    assert not allowed(policies, pods["prometheus"], OUTSIDE["internet"], 443)
    assert not allowed(policies, pods["grafana"], OUTSIDE["internet"], 8443)
