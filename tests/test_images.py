"""The dev stack's local images (stack/images.py): each image's plan stays in sync with the shipped
config and the specs that run on it, and the root filesystem's tar is byte-identical across builds.
The images run the dev stack on a real engine in tests/e2e/test_docker_stack.py."""

from __future__ import annotations

import io
import os
import re
import tarfile
from dataclasses import replace
from pathlib import Path, PurePosixPath

import pytest

from stack import images
from stack.bundle import build
from stack.config import load_stack
from stack.services import components, postgres_exporter
from stack.services.spec import ServiceSpec
from stack.targets.docker import TMP

# The components whose image is built here, by name.
BUILT = {component.name: component for component in components() if component.local_image}


@pytest.fixture(scope="module")
def dev():
    config = load_stack("dev")
    return config, {spec.name: spec for spec in build(config).services}


def _plan(dev, name: str) -> tuple[images.ImagePlan, ServiceSpec]:
    config, specs = dev
    image = BUILT[name].settings_of(config).image
    return images.plan(BUILT[name], f"{image.repository}:{image.tag}"), specs[name]


def _passwd(plan: images.ImagePlan) -> dict[str, int]:
    entry = plan.entry("/etc/passwd")
    assert entry is not None and entry.data is not None
    return {line.split(":")[0]: int(line.split(":")[2]) for line in entry.data.decode().splitlines()}


def _uid(plan: images.ImagePlan, user: str) -> int:
    name = user.split(":")[0]
    return int(name) if name.isdigit() else _passwd(plan)[name]


def _inside(path: str, directory: str) -> bool:
    return PurePosixPath(path) == PurePosixPath(directory) or PurePosixPath(directory) in PurePosixPath(path).parents


def test_every_docker_component_is_built_or_says_why_not(dev) -> None:
    _, specs = dev
    on_docker = {c.name for c in components() if "docker" in c.targets}
    assert set(specs) <= on_docker
    for component in components():
        if component.name in on_docker:
            assert (component.local_image is None) != (component.no_local_image is None), component.name
    assert set(images.not_built()) == {"grafana", "loki", "alloy", "cadvisor"}


@pytest.mark.parametrize("component", sorted(BUILT))
def test_image_plan_fits_the_spec(dev, component: str) -> None:
    config, _ = dev
    plan, spec = _plan(dev, component)
    configured = BUILT[component].settings_of(config).image
    assert plan.reference == f"{configured.repository}:{configured.tag}" == f"{spec.image.repository}:{spec.image.tag}"
    # The Docker target passes the spec's args as the command: the image's entrypoint runs them.
    first = spec.args[0] if spec.args else ""
    entrypoint = first if first.startswith("/") else plan.entrypoint[0]
    assert plan.which(entrypoint) is not None, f"{component}: no executable {entrypoint} in the image"
    # The spec's user exists in the image; where the image sets USER, it is the spec's.
    uid = _uid(plan, spec.user)
    assert uid in _passwd(plan).values()
    if plan.user is not None:
        assert _uid(plan, plan.user) == uid
    # Every data volume is a directory of the image its user can write (a new named volume takes
    # the image directory's owner and mode).
    for volume in spec.volumes:
        directory = plan.entry(volume.path)
        assert directory is not None and directory.kind == "dir", f"{component}: no {volume.path} in the image"
        assert directory.uid == uid or directory.mode & 0o002, f"{component}: {volume.path} not writable by {uid}"
    # Every path an argument names is in a volume (data, config, host mount, /tmp) or in the image.
    mounted = [spec.config_dir, TMP, *(v.path for v in spec.volumes), *(m.path for m in spec.host_mounts)]
    for argument in spec.args:
        for path in re.findall(r"(?:^|=)(/[^\s,=]*)", argument):
            assert any(_inside(path, m) for m in mounted) or plan.entry(path) is not None, (
                f"{component}: {argument} names {path}, neither mounted nor in the image")
    # The config volume is mounted under a directory the image has.
    assert plan.entry(str(PurePosixPath(spec.config_dir).parent)) is not None or PurePosixPath(
        spec.config_dir).parent == PurePosixPath("/")
    # The health check's command exists in the image (busybox wget where the official has it).
    assert spec.health is not None
    assert plan.which(spec.health.command[0]) is not None, f"{component}: no {spec.health.command[0]}"
    assert plan.entry(str(images.CA_BUNDLE)) is not None


def _small_plan(tmp_path: Path) -> images.ImagePlan:
    """The Prometheus image's plan with its binaries swapped for small files (the tar's layout and
    headers are what is compared, not 150 MB of binary)."""
    plan = images.plan(BUILT["prometheus"], "prom/prometheus:test")
    swapped = []
    for entry in plan.entries:
        if entry.source is not None:
            fake = tmp_path / entry.path.strip("/").replace("/", "_")
            fake.write_bytes(entry.path.encode() * 100)
            entry = replace(entry, source=fake)
        swapped.append(entry)
    return replace(plan, entries=tuple(swapped))


def _tar(plan: images.ImagePlan) -> bytes:
    out = io.BytesIO()
    images.write_tar(plan, out)
    return out.getvalue()


def test_tar_is_byte_identical_across_builds(tmp_path: Path) -> None:
    plan = _small_plan(tmp_path)
    first = _tar(plan)
    for entry in plan.entries:  # new mtimes and modes on the sources change nothing
        if entry.source is not None:
            os.utime(entry.source, (1_700_000_000, 1_700_000_000))
            entry.source.chmod(0o600)
    assert _tar(plan) == first
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert all(m.mtime == 0 and m.uname == "" and m.gname == "" for m in members)
    owned = {m.name: (m.uid, m.gid, m.mode) for m in members}
    assert owned["prometheus"] == (65534, 65534, 0o775)
    assert owned["bin/prometheus"][2] == 0o755
    assert images.content_digest(plan) == images.content_digest(plan)
    changed = replace(plan, entries=tuple(replace(e, data=b"x") if e.path == "/etc/group" else e
                                          for e in plan.entries))
    assert images.content_digest(changed) != images.content_digest(plan)


def test_dynamically_linked_exporters_carry_their_libraries() -> None:
    official = postgres_exporter.LOCAL_IMAGE
    # Debian's prometheus-postgres-exporter (make setup installs it): BinaryMissing when it is not.
    binary = images._binary(official.binaries["/bin/postgres_exporter"])
    libraries = images.shared_libraries(binary)
    assert libraries, "Debian's exporter is dynamically linked"
    paths = {entry.path for entry in images.entries(official)}
    assert {str(library) for library in libraries} <= paths
