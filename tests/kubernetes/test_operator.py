"""Operator mode: the custom resources handed to prometheus-operator carry the bundle's rules
unchanged (and promtool accepts them), scrape every deployed component under its configured job
name, probe each health endpoint once, and carry the labels the operator selects on."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from stack import tools
from stack.bundle import Bundle, build, rules_path
from stack.config import PROJECT, StackConfig, from_mapping, stack_file
from stack.dump import dump_yaml
from stack.services import alertmanager, blackbox_exporter, prometheus
from stack.targets.kubernetes.common import NAME_LABEL, metrics_port, namespace_of
from stack.targets.kubernetes.operator import API_VERSION, operator_manifests

OPERATOR_LABELS = {"release": "kube-prometheus-stack", "team": "medianest"}
# One of each scheme, so both blackbox modules get a Probe.
TARGETS = ("https://medianest.com/api/health", "https://medianest.com/api/ready",
           "http://medianest-backend.medianest.svc:3001/health")


def _operator_config(**kubernetes: object) -> StackConfig:
    """The prod stack with prometheus-operator enabled, as a user would configure it."""
    document = yaml.safe_load(stack_file("prod").read_text())["config"]
    key = f"{PROJECT}:kubernetes"
    # Our own namespace: the operator's (kube-prometheus-stack's `monitoring`) is not ours to lock down.
    document[key] = {**document.get(key, {}), "namespace": "medianest-monitoring", **kubernetes,
                     "prometheusOperator": {"enabled": True, "labels": OPERATOR_LABELS}}
    # The cluster's Prometheus writes where its own resource says, not where we would.
    document[f"{PROJECT}:longTermStorage"] = {"mode": "none"}
    return from_mapping(document, "Pulumi.prod.yaml")


@pytest.fixture(scope="module")
def config() -> StackConfig:
    return _operator_config()


@pytest.fixture(scope="module")
def bundle(config: StackConfig) -> Bundle:
    return build(config)


@pytest.fixture(scope="module")
def manifests(config: StackConfig, bundle: Bundle) -> list[dict]:
    return operator_manifests(config, bundle.files, bundle.services)


def _of_kind(manifests: list[dict], kind: str) -> list[dict]:
    return [m for m in manifests if m["kind"] == kind]


def _job_relabelings(endpoint: dict) -> list[dict]:
    return [r for r in endpoint["relabelings"] if r.get("targetLabel") == "job"]


def test_rules_are_the_bundles_group_for_group(config: StackConfig, bundle: Bundle, manifests: list[dict]) -> None:
    rules = {m["metadata"]["name"]: m for m in _of_kind(manifests, "PrometheusRule")}
    assert set(rules) == {f"medianest-{f.name}" for f in bundle.rule_files}
    for rule_file in bundle.rule_files:
        rule = rules[f"medianest-{rule_file.name}"]
        assert rule["apiVersion"] == API_VERSION
        assert rule["metadata"]["namespace"] == config.kubernetes.namespace
        assert rule["spec"]["groups"] == [g.to_dict() for g in rule_file.groups]
        # And exactly what the standalone Prometheus loads from the shipped file.
        assert rule["spec"]["groups"] == yaml.safe_load(bundle.files[rules_path(rule_file.name)])["groups"]


def test_promtool_accepts_every_rule_spec(manifests: list[dict], tmp_path: Path) -> None:
    paths = []
    for rule in _of_kind(manifests, "PrometheusRule"):
        path = tmp_path / f"{rule['metadata']['name']}.yaml"
        path.write_text(dump_yaml({"groups": rule["spec"]["groups"]}))
        paths.append(path)
    assert paths
    run = tools.promtool_check_rules(paths)
    assert run.ok, run.output


def test_promtool_rejects_a_broken_rule_spec(manifests: list[dict], tmp_path: Path) -> None:
    """The check above can fail: a rule spec with a broken expression does not pass."""
    groups = _of_kind(manifests, "PrometheusRule")[0]["spec"]["groups"]
    broken = [{**groups[0], "rules": [{**groups[0]["rules"][0], "expr": "rate(up[5m]"}]}]
    path = tmp_path / "broken.yaml"
    path.write_text(dump_yaml({"groups": broken}))
    assert not tools.promtool_check_rules([path]).ok


def test_every_deployed_component_is_scraped_under_its_job(config: StackConfig, bundle: Bundle,
                                                          manifests: list[dict]) -> None:
    monitors = {m["spec"]["selector"]["matchLabels"][NAME_LABEL]: m for m in _of_kind(manifests, "ServiceMonitor")}
    expected = {s.name: s for s in bundle.services
                if s.metrics and s.name not in (prometheus.NAME, alertmanager.NAME, blackbox_exporter.NAME)}
    assert set(monitors) == set(expected)
    # The exporter is reached through the Probes, under the probes' job, as with our Prometheus.
    assert blackbox_exporter.NAME not in monitors
    for name, spec in expected.items():
        monitor = monitors[name]
        assert monitor["spec"]["namespaceSelector"] == {"matchNames": [namespace_of(config, spec)]}
        [endpoint] = monitor["spec"]["endpoints"]
        assert endpoint["port"] == metrics_port(spec).name
        assert endpoint["path"] == spec.metrics.path
        assert _job_relabelings(endpoint) == [
            {"action": "replace", "targetLabel": "job", "replacement": spec.metrics.job}]


def test_each_monitor_finds_one_service_of_the_kubernetes_target(config: StackConfig, bundle: Bundle,
                                                                 manifests: list[dict]) -> None:
    """What the operator would discover: the Services the Kubernetes target creates that match a
    ServiceMonitor's labels and namespace and survive its keep relabeling (a StatefulSet also has
    a headless Service with the same labels)."""
    # Imported here: the Kubernetes target is built alongside, and only this test depends on it.
    from stack.targets.kubernetes.workloads import services

    emitted = [s for spec in bundle.services for s in services(config, spec)]
    for monitor in _of_kind(manifests, "ServiceMonitor"):
        [endpoint] = monitor["spec"]["endpoints"]
        [keep] = [r for r in endpoint["relabelings"] if r["action"] == "keep"]
        assert keep["sourceLabels"] == ["__meta_kubernetes_service_name"]
        found = [s for s in emitted
                 if monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()
                 and s["metadata"]["namespace"] in monitor["spec"]["namespaceSelector"]["matchNames"]
                 and re.fullmatch(keep["regex"], s["metadata"]["name"])]
        assert len(found) == 1, monitor["metadata"]["name"]
        assert endpoint["port"] in {p["name"] for p in found[0]["spec"]["ports"]}


def test_prometheus_and_alertmanager_are_not_monitored(manifests: list[dict]) -> None:
    selected = {m["spec"]["selector"]["matchLabels"][NAME_LABEL] for m in _of_kind(manifests, "ServiceMonitor")}
    assert not selected & {prometheus.NAME, alertmanager.NAME}
    names = {m["metadata"]["name"] for m in manifests}
    assert not names & {f"medianest-{prometheus.NAME}", f"medianest-{alertmanager.NAME}"}


def test_backend_pods_are_scraped_by_label_and_port_number(config: StackConfig, manifests: list[dict]) -> None:
    [monitor] = _of_kind(manifests, "PodMonitor")
    backend = config.kubernetes.backend
    assert monitor["metadata"]["namespace"] == config.kubernetes.namespace
    assert monitor["spec"]["selector"] == {"matchLabels": backend.pod_labels}
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [backend.namespace]}
    [endpoint] = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["portNumber"] == backend.port
    assert endpoint["path"] == config.backend.metrics_path
    assert _job_relabelings(endpoint) == [
        {"action": "replace", "targetLabel": "job", "replacement": config.jobs.backend}]


def test_every_object_carries_the_operators_selector_labels(config: StackConfig, manifests: list[dict]) -> None:
    assert {m["kind"] for m in manifests} == {"PrometheusRule", "ServiceMonitor", "PodMonitor", "Probe"}
    for m in manifests:
        assert m["apiVersion"] == API_VERSION
        assert m["metadata"]["namespace"] == config.kubernetes.namespace
        assert OPERATOR_LABELS.items() <= m["metadata"]["labels"].items(), m["metadata"]["name"]
        assert m["metadata"]["labels"]["app.kubernetes.io/part-of"] == "medianest-observability"
    names = [(m["kind"], m["metadata"]["name"]) for m in manifests]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("targets", [None, TARGETS], ids=["prod", "both-modules"])
def test_each_health_endpoint_is_probed_once(targets: tuple[str, ...] | None) -> None:
    config = _operator_config()
    if targets is not None:
        services = config.services.model_copy(update={
            "blackbox_exporter": config.services.blackbox_exporter.model_copy(update={"targets": targets})})
        config = config.model_copy(update={"services": services})
    bundle = build(config)
    found = _of_kind(operator_manifests(config, bundle.files, bundle.services), "Probe")
    probed = Counter(url for p in found for url in p["spec"]["targets"]["staticConfig"]["static"])
    assert probed == Counter(config.services.blackbox_exporter.targets)
    for probe in found:
        assert probe["spec"]["jobName"] == config.jobs.blackbox
        assert probe["spec"]["prober"]["url"] == f"blackbox.{config.kubernetes.namespace}.svc:{blackbox_exporter.PORT}"
        for url in probe["spec"]["targets"]["staticConfig"]["static"]:
            assert probe["spec"]["module"] == blackbox_exporter.probe_module(url)
    assert len({p["spec"]["module"] for p in found}) == len(found)


def test_no_blackbox_no_probe(config: StackConfig, bundle: Bundle) -> None:
    specs = [s for s in bundle.services if s.name != blackbox_exporter.NAME]
    assert not _of_kind(operator_manifests(config, bundle.files, specs), "Probe")


def test_output_is_deterministic(config: StackConfig, bundle: Bundle, manifests: list[dict]) -> None:
    again = operator_manifests(config, bundle.files, bundle.services)
    assert again == manifests
    assert dump_yaml(again) == dump_yaml(manifests)
    # And independent of the order the files arrive in.
    shuffled = dict(reversed(list(bundle.files.items())))
    assert operator_manifests(config, shuffled, bundle.services) == manifests


def test_node_exporter_is_scraped_through_its_kube_rbac_proxy(manifests: list[dict]) -> None:
    monitors = _of_kind(manifests, "ServiceMonitor")
    (monitor,) = [m for m in monitors if m["metadata"]["name"] == "medianest-node-exporter"]
    [endpoint] = monitor["spec"]["endpoints"]
    # As kube-prometheus' node-exporter ServiceMonitor: HTTPS to the proxy, the Prometheus' own token.
    assert endpoint["port"] == "https" and endpoint["scheme"] == "https"
    assert endpoint["bearerTokenFile"] == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    assert endpoint["tlsConfig"] == {"insecureSkipVerify": True}
    others = [m["spec"]["endpoints"][0] for m in monitors if m is not monitor]
    assert others and not any("scheme" in e or "bearerTokenFile" in e for e in others)
