"""Loki's simple scalable deployment (`services.loki.mode: scalable`, Kubernetes with a bucket):
the same loki.yaml run as the read (`loki`), write and backend targets, one memberlist ring,
valid manifests, one scrape job, Alloy pushing to the writers and Grafana reading from the
readers, and the flows between them only. Bad combinations are refused naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from stack.bundle import build
from stack.config import ConfigError, StackConfig, load_stack
from stack.output import write_tree
from stack.shipped_checks import check_shipped
from stack.targets.kubernetes.network_policies import network_policies
from tests.kubernetes.test_manifests import objects_of, pod, prod, workloads
from tests.kubernetes.test_network_policies import BASE, OUTSIDE, P, allowed, config_with, specs_of, stack_pods

BUCKET = {"endpoint": "s3.eu-west-1.amazonaws.com", "bucket": "medianest-logs", "region": "eu-west-1"}
SCALABLE = {"mode": "scalable", "replicas": 2, "objectStorage": BUCKET}
TARGETS = {"loki": "read", "loki-write": "write", "loki-backend": "backend"}


@pytest.fixture(scope="module")
def config():
    return prod({"services": {"loki": SCALABLE}})


def test_three_targets_of_one_config_pass_kubernetes_validate(config, tmp_path: Path) -> None:
    bundle = build(config)
    write_tree(bundle.files, tmp_path)
    verdicts = {v.path: v for v in check_shipped(bundle, tmp_path)}
    for name in TARGETS:
        assert verdicts[f"kubernetes/{name}.yaml"].ok, verdicts[f"kubernetes/{name}.yaml"].output
    assert verdicts["loki/loki.yaml"].ok
    objects = objects_of(config)
    replicas = {"loki": 2, "loki-write": 3, "loki-backend": 2}
    for name, target in TARGETS.items():
        workload = workloads(objects)[name]
        assert workload["kind"] == "StatefulSet" and workload["spec"]["replicas"] == replicas[name]
        [container] = pod(workload)["containers"]
        assert container["args"] == ["-config.file=/etc/loki/loki.yaml", f"-target={target}"]
        assert {p["containerPort"] for p in container["ports"]} == {3100, 9095, 7946}
    budgets = {o["metadata"]["name"] for o in objects if o["kind"] == "PodDisruptionBudget"}
    assert set(TARGETS) <= budgets


def test_one_ring_over_memberlist_with_replicated_streams_in_the_bucket(config) -> None:
    document = yaml.safe_load(build(config).files["loki/loki.yaml"])
    namespace = config.kubernetes.namespace
    assert document["memberlist"]["join_members"] == [
        f"dns+{name}-headless.{namespace}.svc:7946" for name in TARGETS]
    common = document["common"]
    assert common["ring"]["kvstore"]["store"] == "memberlist" and common["replication_factor"] == 3
    assert "instance_addr" not in common  # each pod's own address, not loopback
    assert common["compactor_address"] == "http://loki-backend:3100"
    assert set(common["storage"]) == {"s3"} and document["compactor"]["delete_request_store"] == "s3"


def test_alloy_pushes_to_the_writers_grafana_reads_the_readers_one_job_scrapes_all(config) -> None:
    bundle = build(config)
    assert 'url = "http://loki-write:3100/loki/api/v1/push"' in bundle.files["alloy/config.alloy"]
    sources = yaml.safe_load(bundle.files["grafana/provisioning/datasources/datasources.yaml"])["datasources"]
    assert [s["url"] for s in sources if s["type"] == "loki"] == ["http://loki:3100"]
    jobs = [j for j in yaml.safe_load(bundle.files["prometheus/prometheus.yml"])["scrape_configs"]
            if j["job_name"] == config.jobs.loki]
    [job] = jobs
    assert job["kubernetes_sd_configs"][0]["selectors"] == [
        {"role": "pod", "label": "app.kubernetes.io/name in (loki,loki-backend,loki-write)"}]
    # Loki's alerts read the one job: the scalable deployment is alerted on as one Loki.
    assert {"LokiDown", "LokiRequestErrors"} <= {r.alert for _, r in bundle.alerts}


def test_the_targets_reach_each_other_and_only_alloy_writes() -> None:
    config = config_with(services={**BASE[f"{P}services"], "loki": {"mode": "scalable", "objectStorage": BUCKET}})
    specs = specs_of(config)
    policies, pods = network_policies(config, specs), {**stack_pods(config, specs), **OUTSIDE}
    for source in TARGETS:
        for destination in TARGETS:
            for port in (3100, 9095, 7946):
                assert allowed(policies, pods[source], pods[destination], port), (source, destination, port)
        assert allowed(policies, pods[source], OUTSIDE["internet"], 443), source
    assert allowed(policies, pods["alloy"], pods["loki-write"], 3100)
    assert not allowed(policies, pods["alloy"], pods["loki"], 3100)
    assert allowed(policies, pods["grafana"], pods["loki"], 3100)
    assert not allowed(policies, pods["grafana"], pods["loki-write"], 3100)
    for other in ("alertmanager", "backend", "stranger"):
        assert not allowed(policies, pods[other], pods["loki-write"], 3100), other
    # Prometheus scrapes their /metrics, and nothing more.
    for other in ("prometheus", "alertmanager", "backend", "stranger"):
        assert not allowed(policies, pods[other], pods["loki-backend"], 9095), other
        assert not allowed(policies, pods[other], pods["loki-write"], 7946), other


BAD: list[tuple[str, dict[str, Any], str]] = [
    ("scalable without a bucket", {"services": {"loki": {"mode": "scalable"}}},
     "services.loki: Value error, mode scalable needs objectStorage"),
    ("several replicas of one Loki", {"services": {"loki": {"replicas": 2}}},
     "services.loki: Value error, replicas 2 needs mode scalable"),
    ("fewer writers than copies", {"services": {"loki": SCALABLE, "lokiWrite": {"replicas": 2}}},
     "services.lokiWrite.replicas: 2 is fewer than services.loki.replicationFactor 3"),
]


@pytest.mark.parametrize(("overrides", "expected"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_a_bad_scalable_loki_is_refused_naming_the_key(overrides: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected.replace(".", r"\.")):
        prod(overrides)


def test_on_docker_loki_stays_one_process() -> None:
    data = load_stack("dev").model_dump(by_alias=True)
    data["services"]["loki"] |= {"mode": "scalable", "objectStorage": BUCKET}
    with pytest.raises(ValueError, match="services.loki.mode: scalable needs target kubernetes"):
        StackConfig.model_validate(data)
