"""The judges are the versions that ship: each image tag the stack deploys is the version its
judge is built at (tools/<name>/go.mod), and the built binary says so itself."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from stack import judges
from stack.config import ROOT, Services, StackConfig, load_stack
from stack.services import components, jaeger, prometheus


def _images(config: StackConfig | Services) -> dict[str, dict[str, str]]:
    """Each component's image, by the component's name (Loki's scalable targets run Loki's)."""
    services = config.services if isinstance(config, StackConfig) else config
    return {component.name: getattr(services, component.settings_key).image.model_dump()
            for component in components() if "image" in type(getattr(services, component.settings_key)).model_fields}


CONFIGS = {
    "defaults": Services,
    "dev": lambda: load_stack("dev"),
    "prod": lambda: load_stack("prod"),
}


@pytest.mark.parametrize("component", sorted(judges.judged()))
@pytest.mark.parametrize("source", CONFIGS)
def test_each_image_is_the_version_of_its_judge(source: str, component: str) -> None:
    judge = judges.judged()[component]
    image = _images(CONFIGS[source]())[component]
    assert (image["repository"], image["tag"]) == (judge.image_repository, judge.image_tag), (
        f"{source}: {component}'s image is {image['repository']}:{image['tag']}, but its "
        f"judge is built from {judge.module} {judge.version} (tools/{judge.name}/go.mod), the image "
        f"{judge.image_repository}:{judge.image_tag}: change both together")


def test_every_component_has_a_judge_or_a_reason() -> None:
    judged = set(judges.judged())
    # The others say why (Grafana, Loki and Alloy: checked statically; the postgres and redis
    # exporters, cAdvisor and VictoriaMetrics' cluster: modules not served).
    assert set(_images(Services())) == judged | set(judges.not_built()) - {"loki-write", "loki-backend"}
    assert set(judges.not_built()) == {"grafana", "loki", "loki-write", "loki-backend", "alloy", "postgres-exporter",
                                       "redis-exporter", "cadvisor", "vmstorage", "vminsert", "vmselect"}
    assert judged.isdisjoint(judges.not_built()) and all(judges.not_built().values())


def test_a_tag_that_differs_from_its_judge_is_caught(tmp_path: Path) -> None:
    text = (ROOT / "Pulumi.dev.yaml").read_text().replace("tag: v3.16.0}", "tag: v3.15.0}")
    assert "tag: v3.15.0}" in text
    (tmp_path / "Pulumi.dev.yaml").write_text(text)
    image = _images(load_stack("dev", root=tmp_path))["prometheus"]
    assert image["tag"] != judges.by_binary()["prometheus"].image_tag


@pytest.mark.parametrize(("convert", "module_version", "tag"), [
    (prometheus._image_tag, "v0.316.0", "v3.16.0"),
    (prometheus._image_tag, "v0.313.5", "v3.13.5"),
    (prometheus._image_tag, "v0.400.1", "v4.0.1"),
    (jaeger._image_tag, "v1.75.0", "2.12.0"),
    (jaeger._image_tag, "v1.74.0", "2.11.0"),  # CHANGELOG.md: "v1.74.0 / v2.11.0"
    (judges.same_version, "v0.35.0", "v0.35.0"),
])
def test_module_versions_name_their_images(convert, module_version: str, tag: str) -> None:
    assert convert(module_version) == tag


def test_a_pre_release_is_not_a_judge_version() -> None:
    with pytest.raises(ValueError, match="not a release version"):
        prometheus._image_tag("v0.316.0-rc.0")


# What `<binary> --version` prints at the shipped version.
VERSION_LINES = {
    "prometheus": "prometheus, version {}",
    "promtool": "promtool, version {}",
    "alertmanager": "alertmanager, version {}",
    "amtool": "amtool, version {}",
    "node_exporter": "node_exporter, version {}",
    "blackbox_exporter": "blackbox_exporter, version {}",
    # lib/buildinfo's Version, one for every binary of the module.
    "victoria-metrics": "victoria-metrics-tags-v{}",
    "vmalert": "victoria-metrics-tags-v{}",
}


@pytest.mark.parametrize("binary", sorted(judges.by_binary()))
def test_each_built_binary_reports_the_shipped_version(binary: str) -> None:
    judge = judges.by_binary()[binary]
    if binary == "jaeger":
        command, expected = [judges.path(binary), "version"], f'"gitVersion":"v{judge.image_tag}"'
    elif binary == "kube-state-metrics":
        command, expected = [judges.path(binary), "version"], f"kube-state-metrics, version {judge.image_tag[1:]}"
    else:
        command, expected = [judges.path(binary), "--version"], VERSION_LINES[binary].format(
            judge.image_tag.removeprefix("v"))
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout + result.stderr


def test_the_judges_are_up_to_date_and_a_second_build_only_compares_stamps() -> None:
    go_version = subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True, check=True).stdout.strip()
    assert all(judges.up_to_date(judge, go_version) for judge in judges.all_judges())
    assert judges.build_all(report=lambda line: None) == {judge.name: 0.0 for judge in judges.all_judges()}


def test_a_changed_module_file_makes_its_judge_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    judge = judges.by_binary()["node_exporter"]
    modules = tmp_path / "tools"
    (modules / judge.name).mkdir(parents=True)
    for file in ("go.mod", "go.sum"):
        (modules / judge.name / file).write_bytes((judge.directory / file).read_bytes())
    monkeypatch.setattr(judges, "MODULES", modules)
    monkeypatch.setattr(judges, "STATE", tmp_path / "state")
    output = judge.output
    output.mkdir(parents=True)
    (output / "node_exporter").write_text("")
    (output / "node_exporter").chmod(0o755)
    (output / judges.STAMP).write_text(judges.stamp(judge, "go1.26.8"))
    assert judges.up_to_date(judge, "go1.26.8")
    assert not judges.up_to_date(judge, "go1.27.3")  # another Go builds it again
    with open(modules / judge.name / "go.sum", "a") as go_sum:
        go_sum.write("example.com/other v1.0.0 h1:AAAA=\n")
    assert not judges.up_to_date(judge, "go1.26.8")


def test_a_directory_it_did_not_build_is_never_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(judges, "STATE", tmp_path)
    theirs = tmp_path / "node_exporter@v1.12.1"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine")
    new = tmp_path / "new"
    new.mkdir()
    with pytest.raises(judges.JudgeMissing, match="was not built here"):
        judges._replace_ours(theirs, new)
    assert (theirs / "notes.txt").read_text() == "mine"


def test_a_missing_judge_says_how_to_build_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(judges, "BIN", tmp_path)
    with pytest.raises(judges.JudgeMissing, match=r"promtool is not built: `make setup` builds it from "
                                                  r"github.com/prometheus/prometheus v0\.316\.0"):
        judges.path("promtool")


def test_check_judges_jaegers_config_with_jaeger_itself(tmp_path: Path) -> None:
    from stack.bundle import build
    from stack.output import write_tree
    from stack.shipped_checks import check_shipped

    bundle = build(load_stack("dev"))
    write_tree(bundle.files, tmp_path / "out")
    [verdict] = [v for v in check_shipped(bundle, tmp_path / "out") if v.path == jaeger.CONFIG_FILE]
    assert (verdict.judge, verdict.ok) == ("jaeger validate", True), verdict.output
    config = tmp_path / "out" / jaeger.CONFIG_FILE
    config.write_text(config.read_text().replace("  jaeger_query:\n", "  jaeger_query:\n    no_such_field: 1\n", 1))
    [verdict] = [v for v in check_shipped(bundle, tmp_path / "out") if v.path == jaeger.CONFIG_FILE]
    assert not verdict.ok
    assert '"jaeger_query"' in verdict.output and "invalid keys: no_such_field" in verdict.output
