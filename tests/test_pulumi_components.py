"""The stack as Pulumi components (stack/targets/components.py), under the mock runtime: every
resource has a component parent, each service's resources sit under that service's component,
every URN a stack deployed before the components had is still claimed (so `pulumi up` updates in
place and replaces no data volume, claim or StatefulSet), and another program can deploy the
stack as a library."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pulumi
import pytest
from pulumi_mocks import Recorded, run_program

from stack.config import PROJECT, ROOT
from stack.targets.components import PACKAGE, ROOT_ALIAS, Component, MonitoringStack, type_name
from stack.targets.kubernetes.common import NAME_LABEL
from tests.kubernetes.test_kubernetes_program import SECRETS

GOLDEN = ROOT / "tests" / "golden" / "urns"
VARIANTS = {
    "dev": ("dev", None, None),
    "prod": ("prod", None, SECRETS),
    "prod-operator": ("prod", {"kubernetes": {"prometheusOperator": {"enabled": True, "prometheusNamespace": "kps"}},
                               "longTermStorage": {"mode": "none"}}, SECRETS),
}
# Resources no single service owns: parented to the stack itself.
SHARED = {"network", "secrets-checksum-key", "grafana-admin-password"}


def _run(variant: str) -> tuple[str, Recorded]:
    stack, overrides, secrets = VARIANTS[variant]
    mocks, _ = run_program(stack, overrides, secrets=secrets)
    return stack, mocks


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def program(request) -> tuple[str, str, Recorded]:
    return (request.param, *_run(request.param))


def _owner(mocks: Recorded, typ: str, name: str) -> pulumi.Resource | None:
    return mocks.options[(typ, name)].parent


def test_type_names_are_pascal_case() -> None:
    assert [type_name(n) for n in ("prometheus", "node-exporter", "redis_exporter")] == [
        "Prometheus", "NodeExporter", "RedisExporter"]


def test_one_stack_component_holds_one_component_per_service(program) -> None:
    _, _, mocks = program
    types = [c.typ for c in mocks.components]
    assert types.count(f"{PACKAGE}:MonitoringStack") == 1
    services = [c for c in mocks.components if c.typ != f"{PACKAGE}:MonitoringStack"]
    assert services and all(c.typ == f"{PACKAGE}:{type_name(c.name)}" for c in services)
    for component in services:
        assert isinstance(_owner(mocks, component.typ, component.name), MonitoringStack), component.name


def test_every_resource_is_under_its_service_or_the_stack(program) -> None:
    """A Kubernetes object under the component its `app.kubernetes.io/name` names (the stack's own
    objects, namespaces and default-deny policies, under the stack); a Docker resource under the
    service it is named for; the few shared ones under the stack."""
    _, _, mocks = program
    services = {c.name for c in mocks.components if c.typ != f"{PACKAGE}:MonitoringStack"}
    for resource in mocks.declared:
        parent = _owner(mocks, resource.typ, resource.name)
        assert isinstance(parent, Component | MonitoringStack), f"{resource.typ} {resource.name} has no component"
        under = None if isinstance(parent, MonitoringStack) else parent._name  # noqa: SLF001
        if resource.typ.startswith("kubernetes:"):
            label = resource.inputs.get("metadata", {}).get("labels", {}).get(NAME_LABEL)
            expected = label if label in services else None
        else:
            expected = None if resource.name in SHARED else next(
                s for s in services if resource.name == s or resource.name.startswith(f"{s}-"))
        assert under == expected, f"{resource.typ} {resource.name} is under {under or 'the stack'}"


def test_every_urn_of_a_stack_deployed_before_the_components_is_claimed(program) -> None:
    """Each resource's alias to the stack's root is its URN from before: Pulumi then moves it
    under its component instead of deleting and recreating it."""
    variant, stack, mocks = program
    claimed: dict[str, str] = {}
    for resource in mocks.declared:
        aliases = mocks.options[(resource.typ, resource.name)].aliases or []
        assert ROOT_ALIAS in aliases, f"{resource.typ} {resource.name} has no alias to its old URN"
        urn = f"urn:pulumi:{stack}::{PROJECT}::{resource.typ}::{resource.name}"
        assert urn not in claimed, f"two resources claim {urn}"
        claimed[urn] = resource.name
    before = {_unhashed(urn) for urn in (GOLDEN / f"{variant}.txt").read_text().split()}
    assert before - {_unhashed(urn) for urn in claimed} == set(), "these would be deleted and recreated"


def _unhashed(urn: str) -> str:
    """A ConfigMap or Secret named after its content's hash is a new object whenever its content
    changes (the workload rolls to it; nothing is lost): compared by the name before the hash."""
    if "::kubernetes:core/v1:ConfigMap::" in urn or "::kubernetes:core/v1:Secret::" in urn:
        return re.sub(r"-[0-9a-f]{10}$", "-<content hash>", urn)
    return urn


def test_the_stack_deploys_from_another_program(tmp_path: Path) -> None:
    program = tmp_path / "__main__.py"
    program.write_text(
        "import pulumi\n"
        "from stack.config import load_stack\n"
        "from stack.targets.components import MonitoringStack, MonitoringStackArgs\n"
        "monitoring = MonitoringStack('observability', MonitoringStackArgs(config=load_stack('dev'), secrets={}))\n"
        "pulumi.export('prometheus', monitoring.urls['prometheus'])\n")
    mocks = Recorded()
    pulumi.runtime.set_mocks(mocks, project="someone-elses-platform", stack="staging", preview=False)
    pulumi.runtime.set_all_config({})
    found: dict = {}

    @pulumi.runtime.test
    def run() -> None:
        found.update(runpy.run_path(str(program)))

    run()
    monitoring = found["monitoring"]
    assert monitoring.urls["prometheus"].startswith("http://prometheus:9090")
    assert {c.typ for c in mocks.components} >= {f"{PACKAGE}:MonitoringStack", f"{PACKAGE}:Prometheus"}
    assert "prometheus" in mocks.containers and "grafana-admin-password" in mocks.resources
