"""The Pulumi program for the prod stack under Pulumi's mock runtime: each rendered manifest
becomes the pulumi-kubernetes resource of its kind with the same inputs; secret values travel only
as Pulumi secrets; data-holding objects are protected."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi_mocks import SECRET_SIG, Recorded, plain_strings, run_program, unwrap

from stack.bundle import build
from stack.config import load_stack
from stack.targets.kubernetes.manifests import manifests, object_key
from stack.targets.kubernetes.resources import resource_name
from stack.targets.kubernetes.workloads import CHECKSUM_ANNOTATION

SECRETS = {
    "pagerduty-routing-key": "pd-Routing-key-1111",
    "slack-alerts-critical-webhook-url": "https://hooks.slack.com/services/T0/B0/critical-2222",
    "slack-business-metrics-webhook-url": "https://hooks.slack.com/services/T0/B0/business-3333",
    "slack-alerts-webhook-url": "https://hooks.slack.com/services/T0/B0/alerts-4444",
    "smtp-password": "smtp-Password-5555",
    "deadman-token": "deadman-Token-6666",
    "postgres-password": "pg-Password-7777",
    "redis-password": "redis-Password-8888",
    "grafana-admin-password": "admin-Password-9999",
}


@pytest.fixture(scope="module")
def prod() -> tuple[Recorded, dict]:
    return run_program("prod", secrets=SECRETS)


def kubernetes_resources(mocks: Recorded) -> dict[tuple[str, str], Any]:
    """(kind, Pulumi name) -> the resource's inputs, numbers as they were written."""
    return {(r.inputs["kind"], r.name): normalized(r.inputs) for r in mocks.declared if r.typ.startswith("kubernetes:")}


def normalized(value: Any) -> Any:
    """Wire values back to Python's: integral floats as ints (the mock runtime sends numbers as
    floats), secrets unwrapped."""
    value = unwrap(value)
    if isinstance(value, dict):
        return {k: normalized(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalized(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def rendered() -> list[dict[str, Any]]:
    config = load_stack("prod")
    bundle = build(config)
    return manifests(config, bundle.services, bundle.files)


def without_secret_values(item: dict[str, Any]) -> dict[str, Any]:
    """A manifest without what only the deployed stack knows: Secrets' values and their checksum."""
    item = {k: v for k, v in item.items() if k != "stringData"}
    template = item.get("spec", {}).get("template", {}).get("metadata", {})
    if CHECKSUM_ANNOTATION in template.get("annotations", {}):
        template = {**template, "annotations": {k: v for k, v in template["annotations"].items()
                                                if k != CHECKSUM_ANNOTATION}}
        if not template["annotations"]:
            del template["annotations"]
        item = {**item, "spec": {**item["spec"], "template": {**item["spec"]["template"], "metadata": template}}}
    return item


def test_the_pulumi_resources_equal_the_rendered_manifests(prod) -> None:
    mocks, _ = prod
    declared = kubernetes_resources(mocks)
    expected = {(o["kind"], resource_name(o)): o for o in rendered()}
    # Pulumi adds what only it knows: each component's Secret, with the values.
    assert sorted(declared) == sorted([*expected, *(k for k in declared if k[0] == "Secret")])
    assert {name for kind, name in declared if kind == "Secret"} == {
        "monitoring-alertmanager-secrets", "monitoring-grafana-secrets", "monitoring-postgres-exporter-secrets",
        "monitoring-redis-exporter-secrets"}
    for key, manifest in expected.items():
        assert without_secret_values(declared[key]) == without_secret_values(manifest), object_key(manifest)


def test_secrets_hold_the_values_as_pulumi_secrets(prod) -> None:
    mocks, _ = prod
    secrets = {r.name: r.inputs for r in mocks.declared if r.typ == "kubernetes:core/v1:Secret"}
    alertmanager = secrets["monitoring-alertmanager-secrets"]["stringData"]
    assert SECRET_SIG in alertmanager, "the whole stringData travels as a secret"
    assert unwrap(alertmanager)["pagerduty-routing-key"] == SECRETS["pagerduty-routing-key"]
    # redis_exporter reads a JSON map of address to password.
    redis = unwrap(secrets["monitoring-redis-exporter-secrets"]["stringData"])
    assert SECRETS["redis-password"] in redis["redis-password"] and redis["redis-password"].startswith("{")


def test_no_secret_value_appears_in_plain_text(prod) -> None:
    mocks, _ = prod
    for resource in mocks.declared:
        for text, secret in plain_strings(resource.inputs):
            for name, value in SECRETS.items():
                assert secret or value not in text, f"{name} in plain text in {resource.typ} {resource.name}"


def checksums(mocks: Recorded) -> dict[str, str]:
    return {r.name: r.inputs["spec"]["template"]["metadata"]["annotations"][CHECKSUM_ANNOTATION]
            for r in mocks.declared if r.typ.startswith("kubernetes:apps/")
            and CHECKSUM_ANNOTATION in r.inputs["spec"]["template"]["metadata"].get("annotations", {})}


def test_a_new_secret_value_rolls_only_the_pods_that_read_it(prod) -> None:
    mocks, _ = prod
    before = checksums(mocks)
    assert before and all(isinstance(v, str) and len(v) == 16 for v in before.values()), "not a secret output"
    changed, _ = run_program("prod", secrets={**SECRETS, "smtp-password": "rotated-Password-0000"})
    after = checksums(changed)
    assert {n for n in before if before[n] != after[n]} == {"monitoring-alertmanager"}


def test_data_and_namespaces_are_protected_and_claims_retained(prod) -> None:
    mocks, _ = prod
    protected = {(r.inputs["kind"], r.name) for r in mocks.declared if r.protect}
    assert protected == {
        ("Namespace", "monitoring"), ("Namespace", "monitoring-node"),
        ("StatefulSet", "monitoring-prometheus"), ("StatefulSet", "monitoring-alertmanager"),
        ("StatefulSet", "monitoring-loki"), ("StatefulSet", "monitoring-vmstorage"),
        ("PersistentVolumeClaim", "monitoring-grafana-data"), ("PersistentVolumeClaim", "monitoring-jaeger-data"),
    }
    claims = [r for r in mocks.declared if r.typ == "kubernetes:core/v1:PersistentVolumeClaim"]
    assert claims and all(c.retain_on_delete for c in claims)


def test_stack_outputs_point_at_the_cluster(prod) -> None:
    _, program = prod
    assert program["urls"]["grafana"] == "https://grafana.medianest.com"
    assert program["urls"]["prometheus"].startswith("http://prometheus.monitoring.svc:9090")


def test_a_missing_secret_fails_naming_the_key() -> None:
    with pytest.raises(Exception, match=r"medianest-observability:secrets.smtp-password: missing"):
        run_program("prod", secrets={k: v for k, v in SECRETS.items() if k != "smtp-password"})


def test_a_bad_prod_config_fails_naming_the_key() -> None:
    with pytest.raises(Exception, match=r"medianest-observability:kubernetes.nodeNamespace: String should match"):
        run_program("prod", {"kubernetes": {"nodeNamespace": "Node_Exporters"}}, secrets=SECRETS)
