"""Local images for the dev stack: no registry is reachable here, so each component whose binary
exists on this machine gets an image built from a root filesystem assembled here, tagged exactly
as the stack config names it (`repository:tag`), laid out like the official image (binary path,
USER, WORKDIR, EXPOSE, VOLUME, the directories it creates and owns, busybox `wget` and `sh` where
the official image has them), so the same ServiceSpec runs on both.

`python -m stack.images build [--docker-host URL]` builds them with `docker import` of a
deterministic tar (sorted entries, fixed mtimes and owners): the same inputs give the same bytes.
The image carries a label with a digest of its content: an image already present with that digest
is not rebuilt, and an image at the tag without our label (pulled, or built by someone else) is
never overwritten or removed. `python -m stack.images plan` prints what would be built, and what
cannot be (Grafana, Loki, Alloy: no binary here), with the reason.

Stdlib only, plus the stack's own config.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from stack.sandbox import processes
from stack.services import components
from stack.services.component import ComponentModule

# Labels on every image built here: who built it, and from what content.
BUILDER_LABEL = "com.medianest.image-builder"
BUILDER = "stack.images"
DIGEST_LABEL = "com.medianest.image-content"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static: one static binary, every applet
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
NOBODY = 65534


class ImageError(RuntimeError):
    pass


@dataclass(frozen=True)
class Entry:
    """One entry of the root filesystem: a directory, a file (from `source` or `data`) or a symlink."""

    path: str  # absolute, in the image
    kind: str  # "dir" | "file" | "symlink"
    mode: int = 0o755
    uid: int = 0
    gid: int = 0
    source: Path | None = None
    data: bytes | None = None
    target: str | None = None  # a symlink's


@dataclass(frozen=True)
class Official:
    """What a component's official image has, from its Dockerfile: its module's `local_image`
    (the comment beside it cites the Dockerfile)."""

    # Path in the image -> the binary here, by the name `processes.binary` finds it by (a judge,
    # or Debian's package).
    binaries: Mapping[str, str]
    entrypoint: tuple[str, ...]
    expose: tuple[str, ...]
    user: str | None = None  # USER; None: the Dockerfile sets none (root unless run with --user)
    workdir: str | None = None
    volumes: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    # Directories the Dockerfile creates and owns: path -> (uid, gid, mode).
    directories: Mapping[str, tuple[int, int, int]] = field(default_factory=dict)
    # "busybox": quay.io/prometheus/busybox (every applet in /bin); "alpine": /bin/sh, /usr/bin/wget.
    base: str = "busybox"
    # Extra users for /etc/passwd and /etc/group: name -> uid (gid the same).
    users: Mapping[str, int] = field(default_factory=dict)


def not_built() -> dict[str, str]:
    """Components with no binary on this machine (`COMPONENT.no_local_image`), by name: listed,
    never built."""
    return {component.name: component.no_local_image for component in components() if component.no_local_image}


@dataclass(frozen=True)
class ImagePlan:
    component: str  # its name, as its spec's
    reference: str  # repository:tag, exactly as the stack config names it
    entrypoint: tuple[str, ...]
    user: str | None
    workdir: str | None
    expose: tuple[str, ...]
    volumes: tuple[str, ...]
    env: tuple[str, ...]
    entries: tuple[Entry, ...]

    def changes(self) -> list[str]:
        """`docker import --change` instructions (the content label is added when importing)."""
        changes = [f"ENTRYPOINT {json.dumps(list(self.entrypoint))}"]
        if self.user:
            changes.append(f"USER {self.user}")
        if self.workdir:
            changes.append(f"WORKDIR {self.workdir}")
        changes += [f"EXPOSE {port}" for port in self.expose]
        if self.volumes:
            changes.append(f"VOLUME {json.dumps(list(self.volumes))}")
        changes += [f"ENV {variable}" for variable in (PATH_ENV, *self.env)]
        return changes

    def entry(self, path: str) -> Entry | None:
        return next((e for e in self.entries if e.path == path), None)

    def which(self, command: str) -> Entry | None:
        """Where the image finds `command` (PATH lookup, symlinks followed)."""
        candidates = [command] if command.startswith("/") else [
            f"{d}/{command}" for d in PATH_ENV.removeprefix("PATH=").split(":")]
        for candidate in candidates:
            entry = self.entry(candidate)
            hops = 0
            while entry is not None and entry.kind == "symlink" and hops < 8:
                target = entry.target or ""
                resolved = target if target.startswith("/") else str(PurePosixPath(candidate).parent / target)
                entry, hops = self.entry(resolved), hops + 1
            if entry is not None and entry.kind == "file" and entry.mode & 0o111:
                return entry
        return None


# --- the root filesystem -----------------------------------------------------------------------


def _binary(name: str) -> Path:
    return Path(processes.binary(name)).resolve()


def missing_binaries(official: Official) -> list[str]:
    missing = []
    for name in official.binaries.values():
        try:
            processes.binary(name)
        except processes.BinaryMissing:
            missing.append(name)
    return missing


def shared_libraries(binary: Path) -> list[Path]:
    """The libraries a dynamically linked binary loads (`ldd`); none for a static one."""
    result = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
    if result.returncode != 0:  # "not a dynamic executable"
        return []
    libraries = []
    for line in result.stdout.splitlines():
        match = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
        if match:
            libraries.append(Path(match.group(1)))
    return sorted(set(libraries))


def _etc(official: Official) -> list[Entry]:
    users = {"root": 0, "nobody": NOBODY, **official.users}
    passwd = "".join(
        f"{name}:x:{uid}:{uid}:{name}:{'/root' if uid == 0 else '/nonexistent'}:"
        f"{'/bin/sh' if uid == 0 else '/sbin/nologin'}\n"
        for name, uid in sorted(users.items(), key=lambda item: item[1]))
    groups = {**users, "nogroup": NOBODY}
    groups.pop("nobody")
    group = "".join(f"{name}:x:{gid}:\n" for name, gid in sorted(groups.items(), key=lambda item: item[1]))
    return [Entry("/etc/passwd", "file", 0o644, data=passwd.encode()),
            Entry("/etc/group", "file", 0o644, data=group.encode()),
            Entry("/etc/nsswitch.conf", "file", 0o644, data=b"hosts: files dns\n"),
            Entry(str(CA_BUNDLE), "file", 0o644, source=CA_BUNDLE)]


def _busybox(base: str) -> list[Entry]:
    """busybox's `sh` and `wget` where the official base has them: /bin on the Prometheus busybox
    image, /bin/sh and /usr/bin/wget on alpine."""
    wget = "/bin/wget" if base == "busybox" else "/usr/bin/wget"
    return [Entry("/bin/busybox", "file", 0o755, source=BUSYBOX),
            Entry("/bin/sh", "symlink", target="/bin/busybox"),
            Entry(wget, "symlink", target="/bin/busybox")]


def entries(official: Official) -> tuple[Entry, ...]:
    """Every entry of the image's root filesystem, parents first, sorted."""
    found: dict[str, Entry] = {}
    for path, mode in (("/tmp", 0o1777), ("/etc", 0o755), ("/bin", 0o755)):
        found[path] = Entry(path, "dir", mode)
    for path, (uid, gid, mode) in official.directories.items():
        found[path] = Entry(path, "dir", mode, uid, gid)
    items = [*_etc(official), *_busybox(official.base)]
    for path, source in official.binaries.items():
        binary = _binary(source)
        items.append(Entry(path, "file", 0o755, source=binary))
        for library in shared_libraries(binary):
            items.append(Entry(str(library), "file", 0o755, source=library.resolve()))
    for item in items:
        found[item.path] = item
    for path in list(found):
        for parent in PurePosixPath(path).parents:
            if str(parent) != "/" and str(parent) not in found:
                found[str(parent)] = Entry(str(parent), "dir", 0o755)
    return tuple(found[path] for path in sorted(found))


def plan(component: ComponentModule, reference: str) -> ImagePlan:
    official = component.local_image
    assert official is not None, component.name
    return ImagePlan(component.name, reference, official.entrypoint, official.user, official.workdir,
                     official.expose, official.volumes, official.env, entries(official))


def write_tar(image: ImagePlan, out: IO[bytes]) -> None:
    """The root filesystem as a tar: sorted, mtime 0, numeric owners only: the same bytes every time."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.GNU_FORMAT) as tar:
        for entry in image.entries:
            info = tarfile.TarInfo(entry.path.lstrip("/"))
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, entry.uid, entry.gid, "", ""
            info.mode = entry.mode
            if entry.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif entry.kind == "symlink":
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, entry.target or "", 0o777
                tar.addfile(info)
            elif entry.data is not None:
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
            else:
                assert entry.source is not None
                with open(entry.source, "rb") as source:
                    info.size = os.fstat(source.fileno()).st_size
                    tar.addfile(info, source)


class _Hasher(io.RawIOBase):
    def __init__(self) -> None:
        self.digest = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.digest.update(data)
        return len(data)


def content_digest(image: ImagePlan) -> str:
    """sha256 of the tar and of the image's settings: what the content label records."""
    hasher = _Hasher()
    write_tar(image, hasher)
    hasher.digest.update(json.dumps([image.reference, image.changes()]).encode())
    return "sha256:" + hasher.digest.hexdigest()


# --- which components, from the stack config -----------------------------------------------------


def plans(stack: str = "dev") -> tuple[list[ImagePlan], dict[str, str]]:
    """The images to build (components whose binaries exist) and the others, with the reason."""
    from stack.config import load_stack

    config = load_stack(stack)
    built: list[ImagePlan] = []
    skipped: dict[str, str] = {}
    for component in components():
        settings = component.settings_of(config)
        if not component.deployed(config):
            skipped[component.name] = "not deployed by the stack config"
            continue
        if component.local_image is None:
            skipped[component.name] = component.no_local_image or "no image recipe"
            continue
        missing = missing_binaries(component.local_image)
        if missing:
            skipped[component.name] = f"no binary here: {', '.join(missing)}"
            continue
        built.append(plan(component, f"{settings.image.repository}:{settings.image.tag}"))
    if not os.access(BUSYBOX, os.X_OK) and built:
        raise ImageError(f"{BUSYBOX} is missing: `apt-get install busybox-static` (the images' sh and wget)")
    return built, skipped


# --- docker --------------------------------------------------------------------------------------


def _docker(docker_host: str | None) -> list[str]:
    docker = shutil.which("docker")
    if docker is None:
        raise ImageError("the docker CLI is missing (`apt-get install docker.io`)")
    return [docker, *(["--host", docker_host] if docker_host else [])]


def _labels(docker: Sequence[str], reference: str) -> tuple[str, dict[str, str]] | None:
    """The image id and labels at `reference`, or None when there is none."""
    result = subprocess.run([*docker, "image", "inspect", "--format", "{{.Id}} {{json .Config.Labels}}", reference],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return None
    image_id, _, labels = result.stdout.strip().partition(" ")
    return image_id, json.loads(labels) or {}


def build(image: ImagePlan, docker_host: str | None = None) -> str:
    """Import `image` unless the same content is there; returns what was done."""
    docker = _docker(docker_host)
    digest = content_digest(image)
    present = _labels(docker, image.reference)
    if present is not None:
        old_id, labels = present
        if labels.get(BUILDER_LABEL) != BUILDER:
            raise ImageError(f"{image.reference} exists and was not built by {BUILDER} (no {BUILDER_LABEL} "
                             f"label): not overwriting it")
        if labels.get(DIGEST_LABEL) == digest:
            return "up to date"
    changes = [*image.changes(), f"LABEL {BUILDER_LABEL}={BUILDER} {DIGEST_LABEL}={digest}"]
    command = [*docker, "import", *(a for c in changes for a in ("--change", c)), "-", image.reference]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdin is not None
    try:
        write_tar(image, process.stdin)
    except BrokenPipeError:
        pass
    finally:
        process.stdin.close()
    assert process.stdout is not None and process.stderr is not None
    stdout, stderr = process.stdout.read(), process.stderr.read()
    process.wait()
    if process.returncode != 0:
        raise ImageError(f"docker import of {image.reference} failed: {(stdout + stderr).decode().strip()}")
    if present is not None:
        # Our previous build, now untagged: remove it (an error means a container still uses it).
        subprocess.run([*docker, "image", "rm", present[0]], capture_output=True, check=False)
        return "rebuilt"
    return "built"


def build_all(images: Sequence[ImagePlan], docker_host: str | None = None,
              report: Callable[[str], None] = print) -> dict[str, str]:
    """Build each image; one refused (an image not ours at its tag) does not stop the others."""
    done, refused = {}, []
    for image in images:
        try:
            done[image.reference] = build(image, docker_host)
        except ImageError as error:
            refused.append(str(error))
            done[image.reference] = "refused"
        report(f"{image.reference}: {done[image.reference]}")
    if refused:
        raise ImageError("\n".join(refused))
    return done


def _describe(images: Sequence[ImagePlan], skipped: Mapping[str, str]) -> Iterator[str]:
    for image in images:
        yield f"{image.component}\t{image.reference}\t{' '.join(image.entrypoint)}\tuser {image.user or '(root)'}"
    for component, reason in skipped.items():
        yield f"{component}\tnot built: {reason}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack.images", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build_command = commands.add_parser("build", help="build the dev stack's images on a Docker engine")
    build_command.add_argument("--docker-host", default=os.environ.get("DOCKER_HOST"),
                               help="the engine (default: DOCKER_HOST, else the docker CLI's)")
    build_command.add_argument("--stack", default="dev")
    plan_command = commands.add_parser("plan", help="what would be built, and what cannot be")
    plan_command.add_argument("--stack", default="dev")
    args = parser.parse_args(argv)
    try:
        images, skipped = plans(args.stack)
        if args.command == "plan":
            print("\n".join(_describe(images, skipped)))
            return 0
        build_all(images, args.docker_host)
        for component, reason in skipped.items():
            print(f"{component}: not built: {reason}")
    except ImageError as error:
        print(f"images: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
