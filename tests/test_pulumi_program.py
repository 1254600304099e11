"""The Pulumi program under Pulumi's mock runtime (no CLI needed): every component of the dev
stack becomes a hardened container wired as its ServiceSpec says; secrets travel only as Pulumi
secrets; data volumes survive; a bad stack config fails naming the key."""

from __future__ import annotations

import json

import pytest
import yaml
from pulumi_mocks import GENERATED_PASSWORD, IMAGE_ID, Recorded, plain_strings, run_program, unwrap

from stack.bundle import build
from stack.config import load_stack
from stack.services import deployed
from stack.targets.components import output_name
from stack.targets.docker import config_volume_name

CONTAINER = "docker:index/container:Container"
POSTGRES_PASSWORD = "pg-Secret-value-4711"
REDIS_PASSWORD = "redis-Secret-value-0815"
ADMIN_PASSWORD = "admin-Secret-value-1234"


@pytest.fixture(scope="module")
def dev() -> tuple[Recorded, dict]:
    return run_program("dev")


@pytest.fixture(scope="module")
def specs():
    return {s.name: s for s in build(load_stack("dev")).services}


def test_every_component_is_a_container_from_its_pinned_image(dev, specs) -> None:
    mocks, _ = dev
    assert sorted(mocks.containers) == [c.name for c in deployed(load_stack("dev"))]
    images = mocks.of_type("docker:index/remoteImage:RemoteImage")
    config = load_stack("dev").services
    assert images["prometheus-image"].inputs["name"] == f"prom/prometheus:{config.prometheus.image.tag}"
    assert images["grafana-image"].inputs["name"] == f"grafana/grafana:{config.grafana.image.tag}"
    for name, container in mocks.containers.items():
        assert container.inputs["name"] == f"medianest-dev-{name}"
        assert container.inputs["image"] == IMAGE_ID, "the container runs the pulled RemoteImage"
        assert images[f"{name}-image"].inputs["name"] == specs[name].image.reference
        assert ":latest" not in specs[name].image.reference


def test_a_configured_digest_pins_the_image() -> None:
    digest = "sha256:" + "ab" * 32
    mocks, _ = run_program("dev", {"services": {"loki": {"image": {
        "repository": "grafana/loki", "tag": "3.7.1", "digest": digest}}}})
    assert mocks.resources["loki-image"].inputs["name"] == f"grafana/loki:3.7.1@{digest}"


def test_containers_join_one_network_under_their_name(dev) -> None:
    mocks, _ = dev
    (network,) = mocks.of_type("docker:index/network:Network").values()
    assert network.inputs["name"] == "medianest-dev-monitoring"
    for name, container in mocks.containers.items():
        (attachment,) = container.inputs["networksAdvanced"]
        assert attachment == {"name": "medianest-dev-monitoring", "aliases": [name]}


def test_only_grafana_is_published_and_only_on_loopback(dev) -> None:
    mocks, program = dev
    published = {name: c.inputs.get("ports", []) for name, c in mocks.containers.items() if c.inputs.get("ports")}
    assert published == {"grafana": [{"internal": 3000.0, "external": 3000.0, "ip": "127.0.0.1", "protocol": "tcp"}]}
    mocks, _ = run_program("dev", {"services": {"prometheus": {"publish": 19090}}})
    assert mocks.containers["prometheus"].inputs["ports"] == [
        {"internal": 9090.0, "external": 19090.0, "ip": "127.0.0.1", "protocol": "tcp"}]


def test_health_checks_probe_the_specs_endpoints_and_up_waits_for_them(dev, specs) -> None:
    mocks, _ = dev
    for name, container in mocks.containers.items():
        health = specs[name].health
        assert health is not None, f"{name} has no health check"
        check = container.inputs["healthcheck"]
        assert check["tests"] == ["CMD", *health.command]
        assert container.inputs["wait"] is True
        assert container.inputs["waitTimeout"] > health.start_period_seconds + health.retries * health.interval_seconds
        # The probe reaches the port the component listens on.
        assert any(str(health.port) in part for part in health.command) or name == "loki"
    assert specs["prometheus"].health.command[-1] == "http://127.0.0.1:9090/-/ready"
    assert specs["loki"].health.command == ("/usr/bin/loki", "-health")


def test_containers_are_hardened(dev, specs) -> None:
    mocks, _ = dev
    for name, container in mocks.containers.items():
        inputs = container.inputs
        assert inputs["user"] == specs[name].user and not inputs["user"].startswith(("0:", "root"))
        assert inputs["capabilities"] == {"drops": ["ALL"]}, name
        assert inputs["securityOpts"] == ["no-new-privileges:true"], name
        assert inputs["restart"] == "unless-stopped"
        assert inputs["readOnly"] is True, f"{name} has a writable root filesystem"
        assert inputs["memory"] > 0 and inputs["memorySwap"] == inputs["memory"]
        assert "privileged" not in inputs
        assert container.delete_before_replace, "a fixed container name needs delete-before-replace"
    assert mocks.containers["prometheus"].inputs["memory"] == 2048
    assert mocks.containers["node-exporter"].inputs["pidMode"] == "host"
    node = mocks.containers["node-exporter"].inputs
    assert {"hostPath": "/proc", "containerPath": "/host/proc", "readOnly": True} in node["volumes"]
    assert node["mounts"] == [{"type": "bind", "source": "/", "target": "/host/root", "readOnly": True,
                               "bindOptions": {"propagation": "rslave"}}]
    assert all("pidMode" not in c.inputs for n, c in mocks.containers.items() if n != "node-exporter")


def test_data_lives_on_named_volumes_that_are_retained(dev, specs) -> None:
    mocks, _ = dev
    volumes = mocks.volumes
    for name, container in mocks.containers.items():
        for volume in specs[name].volumes:
            resource = volumes[volume.name]
            assert resource.inputs["name"] == f"medianest-dev-{volume.name}"
            assert resource.retain_on_delete, f"{volume.name} would be deleted with the stack"
            assert {"volumeName": resource.inputs["name"], "containerPath": volume.path} in container.inputs["volumes"]
    data = {v.name for s in specs.values() for v in s.volumes}
    assert {"prometheus-data", "alertmanager-data", "grafana-data", "loki-data", "alloy-data"} <= data
    # Config volumes are derived from the bundle: replaced freely, never retained.
    assert not any(v.retain_on_delete for n, v in volumes.items() if n.endswith("-config"))


def test_configs_reach_a_read_only_config_volume_through_a_carrier_that_never_runs(dev, specs) -> None:
    """Docker refuses uploads into a container with a read-only root (pulumi-docker extracts them at
    `/`): a carrier container of the same image, writable, never started, takes them instead."""
    mocks, _ = dev
    assert set(mocks.config_carriers) == set(mocks.containers)
    for name, container in mocks.containers.items():
        spec, carrier = specs[name], mocks.config_carriers[name].inputs
        config_volume = mocks.volumes[f"{name}-config"].inputs["name"]
        assert {"volumeName": config_volume, "containerPath": spec.config_dir, "readOnly": True} in \
            container.inputs["volumes"]
        assert "uploads" not in container.inputs and container.inputs["readOnly"] is True
        assert carrier["volumes"] == [{"volumeName": config_volume, "containerPath": spec.config_dir}]
        assert carrier["start"] is False and carrier["mustRun"] is False and carrier["networkMode"] == "none"
        assert carrier["image"] == container.inputs["image"] and not carrier.get("readOnly")
        uploaded = {u["file"]: u for u in unwrap(carrier.get("uploads", []))}
        assert set(uploaded) == {f.path for f in (*spec.files, *spec.secrets)}
        for file in spec.files:
            assert uploaded[file.path]["content"] == file.content
            assert file.path.startswith(spec.config_dir + "/")
    prometheus = {u["file"] for u in unwrap(mocks.config_carriers["prometheus"].inputs["uploads"])}
    assert "/etc/prometheus/prometheus.yml" in prometheus and "/etc/prometheus/rules/medianest.yaml" in prometheus
    assert "--config.file=/etc/prometheus/prometheus.yml" in mocks.containers["prometheus"].inputs["command"]


def _uploaded_retention(mocks: Recorded) -> dict:
    uploads = {u["file"]: u for u in unwrap(mocks.config_carriers["prometheus"].inputs["uploads"])}
    return yaml.safe_load(uploads["/etc/prometheus/prometheus.yml"]["content"])["storage"]["tsdb"]["retention"]


def test_prometheus_exposes_no_lifecycle_or_admin_api_and_keeps_retention_from_config(dev) -> None:
    mocks, _ = dev
    command = mocks.containers["prometheus"].inputs["command"]
    assert not any("enable-lifecycle" in a or "enable-admin-api" in a for a in command)
    # Retention travels in the uploaded prometheus.yml; its flags are deprecated since 3.16.
    assert not any(a.startswith("--storage.tsdb.retention") for a in command)
    assert _uploaded_retention(mocks) == {"time": "30d", "size": "10GB"}
    mocks, _ = run_program("dev", {"services": {"prometheus": {"retentionTime": "60d"}}})
    assert _uploaded_retention(mocks) == {"time": "60d", "size": "10GB"}


def _secret_values(mocks: Recorded) -> list[tuple[str, str, bool]]:
    return [(name, text, secret) for name, r in mocks.resources.items() for text, secret in plain_strings(r.inputs)]


def test_no_secret_value_appears_in_plain_text() -> None:
    secrets = {"postgres-password": POSTGRES_PASSWORD, "redis-password": REDIS_PASSWORD,
               "grafana-admin-password": ADMIN_PASSWORD}
    mocks, _ = run_program("dev", {"services": {"postgresExporter": {"password": True},
                                                "redisExporter": {"password": True}}}, secrets)
    seen = set()
    for resource, text, secret in _secret_values(mocks):
        for value in secrets.values():
            if value in text:
                assert secret, f"{resource} carries a secret value in plain text"
                seen.add(value)
    assert seen == set(secrets.values()), "each secret reaches its container (as a secret)"
    uploads = mocks.config_carriers["postgres-exporter"].inputs["uploads"]
    assert unwrap(uploads) != uploads, "uploads holding a secret are a Pulumi secret"
    secret_file = {u["file"]: u for u in unwrap(uploads)}["/etc/postgres-exporter/secrets/postgres-password"]
    assert secret_file == {"file": "/etc/postgres-exporter/secrets/postgres-password", "content": POSTGRES_PASSWORD,
                           "owner": "65534", "group": "65534", "permissions": "0400"}
    env = mocks.containers["postgres-exporter"].inputs["envs"]
    assert "DATA_SOURCE_PASS_FILE=/etc/postgres-exporter/secrets/postgres-password" in env
    # redis_exporter reads a JSON map of its address to the password.
    redis = {u["file"]: u for u in unwrap(mocks.config_carriers["redis-exporter"].inputs["uploads"])}
    assert json.loads(redis["/etc/redis-exporter/secrets/redis-password"]["content"]) == {
        "redis://host.docker.internal:6379": REDIS_PASSWORD}


def test_grafana_admin_password_is_generated_as_a_secret_and_exported(dev) -> None:
    mocks, program = dev
    assert "grafana-admin-password" in mocks.of_type("random:index/randomPassword:RandomPassword")
    for resource, text, secret in _secret_values(mocks):
        if GENERATED_PASSWORD in text:
            assert secret, f"{resource} carries the generated password in plain text"
    env = mocks.containers["grafana"].inputs["envs"]
    assert "GF_SECURITY_ADMIN_PASSWORD__FILE=/etc/grafana/secrets/admin-password" in env
    assert not any("GF_SECURITY_ADMIN_PASSWORD=" in e for e in env)


def test_a_rule_change_replaces_no_data_volume(dev, specs) -> None:
    before, _ = dev
    # Only the medianest rule file (and its tests) use this threshold.
    after, _ = run_program("dev", {"thresholds": {"heapGrowthBytesPerMinute": 2097152}})
    changed = {n for n, v in before.volumes.items() if after.volumes[n].inputs != v.inputs}
    assert changed == {"prometheus-config"}, "a rule change touches Prometheus's config volume alone"
    # A fresh config volume (no stale rule file survives); the data volume stays mounted as it was.
    mounts = before.containers["prometheus"].inputs["volumes"], after.containers["prometheus"].inputs["volumes"]
    assert mounts[0][0] != mounts[1][0] and mounts[0][1:] == mounts[1][1:]
    data = {v.name for s in specs.values() for v in s.volumes}
    assert data <= set(before.volumes) and not data & changed


def test_config_volume_name_hashes_files_and_secret_names_never_values() -> None:
    config = load_stack("dev")
    spec = next(s for s in build(config).services if s.name == "grafana")
    name = config_volume_name(config, spec)
    assert name.startswith("medianest-dev-grafana-config-") and len(name.rsplit("-", 1)[1]) == 12
    assert config_volume_name(config, spec) == name


def test_stack_outputs_urls_and_the_admin_password(dev) -> None:
    _, program = dev
    assert program["urls"]["grafana"] == "http://127.0.0.1:3000"
    assert program["urls"]["prometheus"].startswith("http://prometheus:9090")
    assert set(program["urls"]) >= {"grafana", "prometheus", "alertmanager", "jaeger"}
    assert set(program["monitoring"].generated_secrets) == {"grafana-admin-password"}
    assert [output_name(n) for n in ("grafana-admin-password", "node-exporter", "prometheus")] == [
        "grafanaAdminPassword", "nodeExporter", "prometheus"]


def test_a_stack_without_grafana_deploys_and_exports_no_admin_password() -> None:
    """Found on the real engine's test stack: the program exported Grafana's password unconditionally."""
    mocks, program = run_program("dev", {"services": {"grafana": {"enabled": False}}})
    assert "grafana" not in mocks.containers and "prometheus" in mocks.containers
    assert not mocks.of_type("random:index/randomPassword:RandomPassword")
    assert "grafana" not in program["urls"]
    assert program["monitoring"].generated_secrets == {}


def test_a_missing_required_secret_fails_naming_the_key() -> None:
    with pytest.raises(Exception, match=r"medianest-observability:secrets.postgres-password: missing; set it with "
                                        r"`pulumi config set --secret --path 'secrets.postgres-password'"):
        run_program("dev", {"services": {"postgresExporter": {"password": True}}})


def test_an_unknown_secret_fails_naming_the_key_and_the_valid_ones() -> None:
    with pytest.raises(Exception, match=r"secrets.grafana-pasword: unknown secret; valid: grafana-admin-password"):
        run_program("dev", secrets={"grafana-pasword": "x"})


def test_bad_config_fails_naming_the_key() -> None:
    with pytest.raises(Exception, match=r"medianest-observability:thresholds.errorRatio: Input should be less than 1"):
        run_program("dev", {"thresholds": {"errorRatio": 2}})
    with pytest.raises(Exception, match=r"medianest-observability:services.prometheus.image.tag: .*never latest"):
        run_program("dev", {"services": {"prometheus": {"image": {"repository": "prom/prometheus", "tag": "latest"}}}})
    with pytest.raises(Exception, match=r"medianest-observability:services.grafana.memroy: unknown key"):
        run_program("dev", {"services": {"grafana": {"memroy": "1Gi"}}})

