"""The harness that applies the program's Docker resources to a real engine (tests/docker_harness.py),
without an engine: it plans as Pulumi does, applies uploads and durations as pulumi-docker does,
refuses an input it does not know, and the test stack it deploys stays in sync with the shipped
dev config and the images stack/images.py can build."""

from __future__ import annotations

import io
import tarfile

import pytest
from docker_harness import (
    CONTAINER,
    VOLUME,
    Applied,
    HarnessError,
    Ports,
    _known,
    _upload_tar,
    duration_ns,
    engine_stack_overrides,
    plan,
)
from pulumi_mocks import Recorded, Resource, merged, run_program, stack_config

from rules.problems import Severity
from stack import images
from stack.bundle import build
from stack.config import StackConfig
from stack.sandbox.run import UNAVAILABLE
from stack.services import components, postgres_exporter

PORTS = Ports(simulator=3001, sink=9099, postgres=5432, redis=6379, prometheus=19090, alertmanager=19093)


@pytest.mark.parametrize(("value", "nanoseconds"), [
    ("30s", 30 * 10**9), ("2s", 2 * 10**9), ("1m30s", 90 * 10**9), ("500ms", 5 * 10**8), ("1h", 3600 * 10**9),
])
def test_durations_read_as_go_reads_them(value: str, nanoseconds: int) -> None:
    assert duration_ns(value) == nanoseconds


@pytest.mark.parametrize("value", ["30", "s", "30 s", "1d", ""])
def test_a_malformed_duration_is_refused(value: str) -> None:
    with pytest.raises(HarnessError, match="not a duration"):
        duration_ns(value)


def test_an_upload_carries_its_owner_group_and_mode_in_the_tar() -> None:
    data = _upload_tar("postgres-exporter-config-carrier", {
        "file": "/etc/postgres-exporter/secrets/postgres-password", "content": "s3cret", "permissions": "0400",
        "owner": "65534", "group": "65534"})
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        (member,) = tar.getmembers()
        assert (member.name, member.mode, member.uid, member.gid) == (
            "etc/postgres-exporter/secrets/postgres-password", 0o400, 65534, 65534)
        assert tar.extractfile(member).read() == b"s3cret"


def test_an_upload_field_the_harness_does_not_apply_is_refused() -> None:
    with pytest.raises(HarnessError, match="does not apply upload fields source"):
        _upload_tar("c", {"file": "/etc/x", "content": "", "source": "/host/file"})


def test_an_input_the_harness_does_not_apply_is_refused_naming_it() -> None:
    resource = Resource(CONTAINER, "prometheus", {"name": "x", "privileged": True})
    with pytest.raises(HarnessError, match="prometheus: the harness does not apply privileged"):
        _known(resource, resource.inputs, {"name"})


def _recorded(*resources: Resource) -> Recorded:
    recorded = Recorded()
    recorded.declared.extend(resources)
    return recorded


def test_plan_creates_replaces_keeps_and_deletes_as_pulumi_previews() -> None:
    kept = Resource(VOLUME, "prometheus-data", {"name": "medianest-dev-prometheus-data"})
    old = Resource(CONTAINER, "prometheus", {"name": "medianest-dev-prometheus", "command": ["--a"]})
    gone = Resource(CONTAINER, "loki", {"name": "medianest-dev-loki"})
    state = {(r.typ, r.name): Applied(r, f"id-{r.name}") for r in (kept, old, gone)}
    new = Resource(CONTAINER, "prometheus", {"name": "medianest-dev-prometheus", "command": ["--b"]})
    added = Resource(VOLUME, "jaeger-config", {"name": "medianest-dev-jaeger-config-0"})
    steps = [str(step) for step in plan(state, _recorded(kept, new, added)).steps]
    assert steps == ["same Volume prometheus-data", "create Volume jaeger-config", "replace Container prometheus",
                     "delete Container loki"]


def test_a_resource_type_the_harness_does_not_apply_is_refused() -> None:
    with pytest.raises(HarnessError, match="does not apply docker:index/service:Service"):
        plan({}, _recorded(Resource("docker:index/service:Service", "swarm", {})))


# --- the test stack ----------------------------------------------------------------------------------


def test_the_test_stack_is_dev_with_exactly_the_unbuildable_components_off() -> None:
    overrides = engine_stack_overrides(PORTS, "medianest", "postgres_exporter")
    off = {name for name, settings in overrides["services"].items() if settings.get("enabled") is False}
    assert off == set(UNAVAILABLE)
    # Of what runs on Docker, what is off is exactly what has no image built here.
    on_docker = {c.settings_key for c in components() if "docker" in c.targets}
    assert off & on_docker == {c.settings_key for c in components() if c.name in images.not_built()}


def test_the_test_stack_builds_cleanly_and_deploys_only_images_built_here() -> None:
    """The config refuses unknown keys: a key renamed in the shipped config fails here, not on the engine."""
    overrides = engine_stack_overrides(PORTS, "medianest", "postgres_exporter")
    config = StackConfig.model_validate(merged({k.split(":", 1)[1]: v for k, v in stack_config("dev").items()},
                                               overrides))
    bundle = build(config)
    assert not [p.render() for p in bundle.problems() if p.severity >= Severity.ERROR]
    built = {plan.reference for plan in images.plans("dev")[0]}
    assert {spec.image.reference for spec in bundle.services} <= built
    mocks, _ = run_program("dev", overrides, secrets={postgres_exporter.PASSWORD.name: "x"})
    images_declared = {r.inputs["name"] for r in mocks.of_type("docker:index/remoteImage:RemoteImage").values()}
    assert images_declared == {spec.image.reference for spec in bundle.services}
