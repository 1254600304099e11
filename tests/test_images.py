"""The dev stack's local images (stack/images.py): each image's plan stays in sync with the shipped
config and the specs that run on it, the root filesystem's tar is byte-identical across builds,
and (slow) each image runs on a real Docker engine as the Docker target runs it and answers its
health check."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import tarfile
import time
from dataclasses import replace
from pathlib import Path, PurePosixPath

import pytest

from stack import images
from stack.bundle import build
from stack.config import load_stack
from stack.services.spec import ServiceSpec
from stack.targets.docker import TMP
from tests.docker_engine import DockerEngine

OFFICIAL = {official.component: official for official in images.OFFICIAL}


@pytest.fixture(scope="module")
def dev():
    config = load_stack("dev")
    return config, {spec.name: spec for spec in build(config).services}


def _plan(dev, component: str) -> tuple[images.ImagePlan, ServiceSpec]:
    config, specs = dev
    official = OFFICIAL[component]
    image = getattr(config.services, official.attribute).image
    return images.plan(official, f"{image.repository}:{image.tag}"), specs[official.service]


def _passwd(plan: images.ImagePlan) -> dict[str, int]:
    entry = plan.entry("/etc/passwd")
    assert entry is not None and entry.data is not None
    return {line.split(":")[0]: int(line.split(":")[2]) for line in entry.data.decode().splitlines()}


def _uid(plan: images.ImagePlan, user: str) -> int:
    name = user.split(":")[0]
    return int(name) if name.isdigit() else _passwd(plan)[name]


def _inside(path: str, directory: str) -> bool:
    return PurePosixPath(path) == PurePosixPath(directory) or PurePosixPath(directory) in PurePosixPath(path).parents


def test_every_dev_component_is_built_or_listed_with_a_reason(dev) -> None:
    _, specs = dev
    listed = {OFFICIAL[c].service for c in OFFICIAL} | {attribute for attribute, _ in images.NOT_BUILT.values()}
    assert set(specs) <= listed
    assert set(images.NOT_BUILT) == {"grafana", "loki", "alloy"}
    assert all(reason for _, reason in images.NOT_BUILT.values())


@pytest.mark.parametrize("component", sorted(OFFICIAL))
def test_image_plan_fits_the_spec(dev, component: str) -> None:
    config, _ = dev
    plan, spec = _plan(dev, component)
    configured = getattr(config.services, OFFICIAL[component].attribute).image
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
    plan = images.plan(OFFICIAL["prometheus"], "prom/prometheus:test")
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
    official = OFFICIAL["postgresExporter"]
    # Debian's prometheus-postgres-exporter (make setup installs it): BinaryMissing when it is not.
    binary = images._binary(official.binaries["/bin/postgres_exporter"])
    libraries = images.shared_libraries(binary)
    assert libraries, "Debian's exporter is dynamically linked"
    paths = {entry.path for entry in images.entries(official)}
    assert {str(library) for library in libraries} <= paths


# --- on a real engine ----------------------------------------------------------------------------


def _config_tar(spec: ServiceSpec) -> bytes:
    """What the Docker target uploads into the config volume: files 0444, secrets 0400 for the user."""
    uid, _, gid = spec.user.partition(":")
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        items = [(f.path, f.content.encode(), 0, 0, 0o444) for f in spec.files]
        items += [(s.path, s.file_content("test-secret").encode(), int(uid), int(gid or uid), 0o400)
                  for s in spec.secrets]
        directories = sorted({str(p) for path, *_ in items for p in PurePosixPath(path).relative_to(
            spec.config_dir).parents if str(p) != "."})
        for directory in directories:
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for path, data, owner, group, mode in sorted(items):
            info = tarfile.TarInfo(str(PurePosixPath(path).relative_to(spec.config_dir)))
            info.size, info.uid, info.gid, info.mode = len(data), owner, group, mode
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _root_propagates() -> bool:
    """Whether / is a shared or slave mount here: Docker refuses an rslave bind of a private one
    (\"path / is mounted on / but it is not a shared or slave mount\")."""
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            fields = line.split()
            if fields[4] == "/":
                optional = fields[6:fields.index("-")]
                return any(f.startswith(("shared:", "master:")) for f in optional)
    return False


def _run(engine: DockerEngine, spec: ServiceSpec, network: str) -> str:
    name = f"images-test-{spec.name}"
    command = ["create", "--name", name, "--user", spec.user, "--read-only", "--cap-drop", "ALL",
               "--security-opt", "no-new-privileges:true", "--network", network, "--network-alias", spec.name,
               "--memory", str(spec.resources.memory_limit_bytes),
               "-v", f"{name}-config:{spec.config_dir}"]
    if not any(v.path == TMP for v in spec.volumes):
        command += ["--tmpfs", f"{TMP}:rw,noexec,nosuid,size=64m"]
    command += [a for v in spec.volumes for a in ("-v", f"{name}-{v.name}:{v.path}")]
    for mount in spec.host_mounts:
        # The target's rslave bind where the host allows it; on a host whose / is private (this
        # sandbox) a plain read-only bind: only mounts made later on the host would differ.
        follow = mount.follow_mounts and (mount.host_path != "/" or _root_propagates())
        propagation = ",bind-propagation=rslave" if follow else ""
        command += ["--mount", f"type=bind,source={mount.host_path},target={mount.path},readonly{propagation}"]
    command += [a for group in spec.groups for a in ("--group-add", group)]
    command += [a for k, v in sorted(spec.env.items()) for a in ("-e", f"{k}={v}")]
    if spec.host_pid:
        command += ["--pid", "host"]
    engine.docker(*command, f"{spec.image.repository}:{spec.image.tag}", *spec.args)
    # Into the config volume of the created container, as the target's uploads are.
    upload = subprocess.run([*engine.cli, "cp", "-", f"{name}:{spec.config_dir}"], input=_config_tar(spec),
                            capture_output=True, check=False)
    assert upload.returncode == 0, f"docker cp into {name}: {upload.stderr.decode()}"
    engine.docker("start", name)
    return name


@pytest.mark.slow
def test_images_run_as_the_docker_target_runs_them(dev) -> None:
    _, specs = dev
    plans, skipped = images.plans("dev")
    assert {p.component for p in plans} == set(OFFICIAL), f"not built: {skipped}"
    with DockerEngine.started() as engine:
        assert set(images.build_all(plans, engine.host).values()) == {"built"}
        assert set(images.build_all(plans, engine.host).values()) == {"up to date"}
        engine.docker("network", "create", "--driver", "bridge", "images-test")
        running = {plan.component: (specs[plan.service], _run(engine, specs[plan.service], "images-test"))
                   for plan in plans}
        failing: dict[str, str] = {}
        deadline = time.monotonic() + 90
        pending = dict(running)
        while pending and time.monotonic() < deadline:
            for component, (spec, name) in list(pending.items()):
                assert spec.health is not None
                check = engine.docker("exec", name, *spec.health.command, check=False, timeout=30)
                if check.returncode == 0:
                    del pending[component]
                else:
                    state = json.loads(engine.docker("inspect", "--format", "{{json .State}}", name).stdout)
                    failing[component] = f"{check.stdout}{check.stderr} state={state.get('Status')}"
            time.sleep(1)
        report = {component: (failing[component], engine.docker("logs", "--tail", "20", name, check=False).stderr)
                  for component, (_, name) in pending.items()}
        assert not pending, f"no healthy answer from: {report}"
