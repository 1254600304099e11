"""The Stack section: components of every environment (services.json) and, for Kubernetes, the
objects of the rendered manifests, led by the ones a change would delete and recreate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from preview_helpers import config_with, export_tree, trees

from stack.preview.model import FACTS_DIR, Section, Trees
from stack.preview.services import args_changes, image_change, section

VOLUME_WARNING = ("would delete and recreate StatefulSet/monitoring/prometheus: spec.volumeClaimTemplates changed "
                  "(Kubernetes replaces the object)")


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each stack exported as it is, the base of every case."""
    root = tmp_path_factory.mktemp("bases")
    return {stack: export_tree(config_with(stack), root / stack) for stack in ("dev", "prod")}


def against(bases: dict[str, Path], tmp_path: Path, stack: str, head: dict[str, Any]) -> Trees:
    return Trees(stack, bases[stack], export_tree(config_with(stack, head), tmp_path / stack))


def details(result: Section) -> dict[str, list[str]]:
    return {c.subject: [str(d) for d in c.details] for c in result.changes}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_identical_trees_change_nothing(tmp_path: Path, stack: str) -> None:
    assert section(trees(tmp_path, stack)) == Section("Stack")


DEV = [
    ("image bump", {"services": {"prometheus": {"image": {"repository": "prom/prometheus", "tag": "v3.17.0"}}}},
     "image prom/prometheus v3.16.0 -> v3.17.0"),
    # Read from prometheus.yml (storage.tsdb.retention), where the retention is since 3.16.
    ("retention time", {"services": {"prometheus": {"retentionTime": "60d"}}}, "retention time 30d -> 60d"),
    ("retention size", {"services": {"prometheus": {"retentionSize": "20GB"}}}, "retention size 10GB -> 20GB"),
    ("memory", {"services": {"prometheus": {"memory": "4Gi"}}}, "memory limit 2Gi -> 4Gi"),
    ("published port", {"services": {"prometheus": {"publish": 9090}}},
     "port http (9090/tcp) published: not published -> host port 9090"),
]


@pytest.mark.parametrize(("head", "expected"), [c[1:] for c in DEV], ids=[c[0] for c in DEV])
def test_a_dev_component_change(bases: dict[str, Path], tmp_path: Path, head: dict[str, Any], expected: str) -> None:
    result = section(against(bases, tmp_path, "dev", head))
    assert [(c.kind, c.subject) for c in result.changes] == [("changed", "component prometheus")]
    assert expected in details(result)["component prometheus"]
    assert result.notes == () and not result.failed


def test_a_retention_change_is_a_prometheus_yml_change(bases: dict[str, Path], tmp_path: Path) -> None:
    result = section(against(bases, tmp_path, "prod", {"services": {"prometheus": {"retentionTime": "60d"}}}))
    assert details(result)["component prometheus"] == [
        "retention time 30d -> 60d", "1 config file changed: /etc/prometheus/prometheus.yml"]
    change = next(c for c in result.changes if c.subject == "component prometheus")
    assert change.data["fields"]["retention"] == {"before": {"time": "30d", "size": "45GB"},
                                                  "after": {"time": "60d", "size": "45GB"}}


def _flags_base(bases: dict[str, Path], tmp_path: Path, flags: list[str]) -> Path:
    """The dev base as exported before 3.16: retention as `flags`, none in prometheus.yml."""
    base = Path(shutil.copytree(bases["dev"], tmp_path / "base"))
    config = base / "prometheus" / "prometheus.yml"
    document = yaml.safe_load(config.read_text())
    del document["storage"]
    config.write_text(yaml.safe_dump(document))
    facts = json.loads((base / FACTS_DIR / "services.json").read_text())
    spec = facts["services"]["prometheus"]
    spec["args"][2:2] = flags
    spec["files"]["/etc/prometheus/prometheus.yml"] = "0" * 12
    (base / FACTS_DIR / "services.json").write_text(json.dumps(facts))
    return base


OLD_BASES = [
    ("the same retention moved from the flags", ["--storage.tsdb.retention.time=30d",
                                                  "--storage.tsdb.retention.size=10GB"], []),
    ("another retention in the flags", ["--storage.tsdb.retention.time=60d"],
     ["retention time 60d -> 30d", "retention size none -> 10GB"]),
    ("no retention at all: Prometheus' 15d", [], ["retention time 15d -> 30d", "retention size none -> 10GB"]),
]


@pytest.mark.parametrize(("flags", "expected"), [c[1:] for c in OLD_BASES], ids=[c[0] for c in OLD_BASES])
def test_a_base_with_retention_flags_compares_the_retention_prometheus_runs_with(
        bases: dict[str, Path], tmp_path: Path, flags: list[str], expected: list[str]) -> None:
    """The file's block wins over the flags, whole: only a limit that really moves is reported."""
    head = export_tree(config_with("dev"), tmp_path / "head")
    lines = details(section(Trees("dev", _flags_base(bases, tmp_path, flags), head)))["component prometheus"]
    assert [line for line in lines if line.startswith("retention")] == expected
    assert [line for line in lines if line.startswith("arg")] == [f"arg removed: {f}" for f in flags]
    assert "1 config file changed: /etc/prometheus/prometheus.yml" in lines


def test_a_changed_config_file_is_named(bases: dict[str, Path], tmp_path: Path) -> None:
    result = section(against(bases, tmp_path, "dev", {"services": {"grafana": {"publish": None}},
                                                      "jobs": {"backend": "api"}}))
    found = details(result)
    assert "port http (3000/tcp) published: host port 3000 -> not published" in found["component grafana"]
    changed = [line for line in found["component prometheus"] if "config file" in line]
    assert len(changed) == 1 and changed[0].startswith(
        "7 config files changed: /etc/prometheus/prometheus.yml, /etc/prometheus/rules/medianest.yaml")


def test_prod_replicas_change_the_statefulset(bases: dict[str, Path], tmp_path: Path) -> None:
    result = section(against(bases, tmp_path, "prod", {"services": {"alertmanager": {"replicas": 5}}}))
    found = details(result)
    assert found["component alertmanager"][0] == "replicas 3 -> 5"
    assert "arg added: --cluster.peer=alertmanager-4.alertmanager-headless.monitoring.svc:9094" \
        in found["component alertmanager"]
    statefulset = found["Kubernetes StatefulSet monitoring/alertmanager"]
    assert statefulset[0] == "replicas 3 -> 5"
    assert ("container[alertmanager] arg added: "
            "--cluster.peer=alertmanager-3.alertmanager-headless.monitoring.svc:9094") in statefulset
    # Prometheus learns the new peers: its config map gets a new name, reported as one change.
    config_map = next(c for c in result.changes if c.subject.startswith("Kubernetes ConfigMap monitoring/prometheus"))
    assert config_map.kind == "changed" and "data key prometheus.yml changed" in config_map.details
    assert result.notes == ()


def test_prod_volume_size_warns_of_the_replacement_first(bases: dict[str, Path], tmp_path: Path) -> None:
    result = section(against(bases, tmp_path, "prod", {"services": {"prometheus": {"volumeSize": "100Gi"}}}))
    assert result.notes == (VOLUME_WARNING,)
    first = result.changes[0]
    assert (first.kind, first.subject) == ("changed", "Kubernetes StatefulSet monitoring/prometheus")
    assert first.details[0] == VOLUME_WARNING
    assert "claim template[prometheus-data].spec.resources.requests.storage: 50Gi -> 100Gi" in first.details
    assert "volume prometheus-data size 50Gi -> 100Gi" in details(result)["component prometheus"]


def test_prod_network_policy_and_rbac_changes(bases: dict[str, Path], tmp_path: Path) -> None:
    result = section(against(bases, tmp_path, "prod", {"kubernetes": {"backend": {"port": 3002}},
                                                       "services": {"alloy": {"logSource": "files"}}}))
    found = details(result)
    policy = found["Kubernetes NetworkPolicy monitoring/prometheus"]
    assert policy[0] == "egress rules changed (18 -> 18 rules)"
    assert ("egress allowed: to pods app.kubernetes.io/name=medianest-backend in namespaces "
            "kubernetes.io/metadata.name=medianest on TCP 3002") in policy
    assert ("egress no longer allowed: to pods app.kubernetes.io/name=medianest-backend in namespaces "
            "kubernetes.io/metadata.name=medianest on TCP 3001") in policy
    kinds = {(c.kind, c.subject) for c in result.changes}
    assert ("removed", "Kubernetes Role medianest/medianest-alloy") in kinds
    assert ("removed", "Kubernetes RoleBinding medianest/medianest-alloy") in kinds


def test_an_old_base_without_service_facts_still_compares_the_manifests(
        bases: dict[str, Path], tmp_path: Path) -> None:
    base = Path(shutil.copytree(bases["prod"], tmp_path / "base"))
    (base / FACTS_DIR / "services.json").unlink()
    head = export_tree(config_with("prod", {"services": {"alertmanager": {"replicas": 5}}}), tmp_path / "head")
    result = section(Trees("prod", base, head))
    assert result.notes[0].startswith("the base has no service facts")
    assert "Kubernetes StatefulSet monitoring/alertmanager" in details(result)
    assert "component alertmanager" not in details(result)


IMAGES = [
    ("prom/prometheus:v3.13.0", "prom/prometheus:v3.14.0", "image prom/prometheus v3.13.0 -> v3.14.0"),
    ("registry:5000/a/b:1", "registry:5000/a/b:2", "image registry:5000/a/b 1 -> 2"),
    ("prom/prometheus:v3.13.0", f"prom/prometheus:v3.13.0@sha256:{'a' * 64}",
     f"image prom/prometheus digest none -> sha256:{'a' * 64}"),
    ("prom/prometheus:v3.13.0", "quay.io/prometheus/prometheus:v3.13.0",
     "image prom/prometheus:v3.13.0 -> quay.io/prometheus/prometheus:v3.13.0"),
]


@pytest.mark.parametrize(("before", "after", "expected"), IMAGES)
def test_image_change(before: str, after: str, expected: str) -> None:
    assert image_change(before, after) == expected


ARGS = [
    ("flags changed, others added and removed",
     ["--a=1", "--b=10GB", "--old"], ["--a=2", "--b=20GB", "--new"],
     ["arg --a 1 -> 2", "arg --b 10GB -> 20GB", "arg added: --new", "arg removed: --old"]),
    ("a flag added", ["--x"], ["--x", "--y=30d"], ["arg added: --y=30d"]),
    ("a repeated flag is added, not changed", ["--peer=a"], ["--peer=a", "--peer=b"], ["arg added: --peer=b"]),
    ("same", ["--a=1"], ["--a=1"], []),
]


@pytest.mark.parametrize(("before", "after", "expected"), [c[1:] for c in ARGS], ids=[c[0] for c in ARGS])
def test_args_changes(before: list[str], after: list[str], expected: list[str]) -> None:
    assert args_changes(before, after) == expected
