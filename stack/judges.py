"""The judges: the binaries of the components, built from their Go modules at the versions the
images ship. A component module declares its judge (`COMPONENT.judge`: Prometheus and promtool,
Alertmanager and amtool, Jaeger, the node and blackbox exporters, kube-state-metrics), or says
why it has none (`COMPONENT.unjudged`).

Each judge is a Go module of ours under `tools/<name>/` whose go.mod declares the binaries as
`tool` dependencies at one exact version (a dependency's own `replace`/`exclude` directives do not
apply to a tool, which is why `go install pkg@version` is not used). go.mod is the one place a
version is written: the image tag the stack deploys is derived from it (`Judge.image_tag`), and a
test fails when config says otherwise.

`python -m stack.judges build` (run by `make setup`) builds each into `.tools/<name>@<version>/`
and links its binaries into `.tools/bin/`. A stamp in each directory records what it was built
from (go.mod, go.sum, the Go version, the flags): a second run only compares stamps. Only
directories holding our stamp are ever replaced or removed.

It reads the registry (stack/services) only when asked, never at import time: a component
module imports `Judge` from here.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from stack.services import components

ROOT = Path(__file__).resolve().parents[1]
MODULES = ROOT / "tools"
# Where judges are built; MEDIANEST_TOOLS_DIR moves it (a shared, pre-built directory).
STATE = Path(os.environ.get("MEDIANEST_TOOLS_DIR") or ROOT / ".tools")
BIN = STATE / "bin"
STAMP = ".stamp"
# Built binaries describe themselves like a release build: `<binary> --version` names the version.
BUILD_USER = "medianest-tools"


class JudgeMissing(RuntimeError):
    pass


def same_version(version: str) -> str:
    return version


def numbers(version: str) -> tuple[int, int, int]:
    match = re.fullmatch(r"v(\d+)\.(\d+)\.(\d+)", version)
    if match is None:
        raise ValueError(f"not a release version: {version}")
    major, minor, patch = map(int, match.groups())
    return major, minor, patch


def common_version_flags(tag: str, module_version: str) -> list[str]:
    """prometheus/common's version package (Prometheus's .promu.yml), read by `--version`."""
    package = "github.com/prometheus/common/version"
    return [f"-X {package}.Version={tag.removeprefix('v')}", f"-X {package}.Revision={module_version}",
            f"-X {package}.Branch=HEAD", f"-X {package}.BuildUser={BUILD_USER}"]


@dataclass(frozen=True)
class Judge:
    name: str  # its directory under tools/ and under .tools/
    module: str
    binaries: tuple[str, ...]
    image_repository: str
    image_tag_of: Callable[[str], str]
    version_flags: Callable[[str, str], list[str]]
    # Files the module embeds that only its release build makes (web UIs built with npm): an
    # empty page stands in, saying so. The judged code (config, rules, routing) is unchanged.
    placeholders: tuple[str, ...] = ()

    @property
    def directory(self) -> Path:
        return MODULES / self.name

    @property
    def version(self) -> str:
        """The module's version, as required by tools/<name>/go.mod."""
        return module_version(self.directory / "go.mod", self.module)

    @property
    def image_tag(self) -> str:
        return self.image_tag_of(self.version)

    @property
    def output(self) -> Path:
        return STATE / f"{self.name}@{self.version}"


@functools.cache
def judged() -> dict[str, Judge]:
    """The judge of each component that has one (`COMPONENT.judge`), by the component's name."""
    return {component.name: component.judge for component in components() if component.judge}


def all_judges() -> tuple[Judge, ...]:
    """Each judge once (vmalert is built by the store's judge)."""
    return tuple({judge.name: judge for judge in reversed(judged().values())}.values())


@functools.cache
def by_binary() -> dict[str, Judge]:
    return {binary: judge for judge in all_judges() for binary in judge.binaries}


def not_built() -> dict[str, str]:
    """Components with an image but no judge built here (`COMPONENT.unjudged` says why), by name."""
    return {component.name: component.unjudged for component in components() if component.unjudged}


PLACEHOLDER_PAGE = (
    "<!doctype html><title>{binary}</title><p>{binary} {version} built from its Go module without "
    "its web UI's compiled assets (they need an npm build): the HTTP API is complete.</p>\n")


def module_version(go_mod: Path, module: str) -> str:
    """The version `go_mod` requires of `module`."""
    text = go_mod.read_text()
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", text, re.MULTILINE)
    if match is None:
        raise ValueError(f"{go_mod}: no requirement of {module}")
    return match.group(1)


def path(binary: str) -> str:
    """The built judge's absolute path, or JudgeMissing saying how to build it."""
    judge = by_binary()[binary]
    candidate = BIN / binary
    if os.access(candidate, os.X_OK):
        return str(candidate)
    raise JudgeMissing(f"{binary} is not built: `make setup` builds it from {judge.module} "
                       f"{judge.version} (tools/{judge.name}/go.mod) into {BIN}")


# --- building ----------------------------------------------------------------------------------


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise JudgeMissing("the Go toolchain (go) is not on PATH: the judges are built from their "
                           "Go modules (README: what a machine needs)")
    return go


def _run(command: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise JudgeMissing(f"`{' '.join(command)}` in {cwd} failed:\n{(result.stdout + result.stderr).strip()}")
    return result.stdout


def _flags(judge: Judge) -> list[str]:
    return ["-trimpath", "-ldflags", " ".join(["-s", "-w", *judge.version_flags(judge.image_tag, judge.version)])]


def stamp(judge: Judge, go_version: str) -> str:
    """What a build depends on: the module files, the Go version and the flags."""
    digest = hashlib.sha256()
    for file in ("go.mod", "go.sum"):
        digest.update((judge.directory / file).read_bytes())
    digest.update(json.dumps([go_version, _flags(judge), list(judge.placeholders)]).encode())
    return digest.hexdigest()


def up_to_date(judge: Judge, go_version: str) -> bool:
    output = judge.output
    try:
        recorded = (output / STAMP).read_text().strip()
    except FileNotFoundError:
        return False
    return recorded == stamp(judge, go_version) and all(os.access(output / b, os.X_OK) for b in judge.binaries)


def _source_copy(judge: Judge, go: str, scratch: Path) -> Path:
    """The module's source (from the module cache) copied into `scratch`, with the placeholders
    added: a build-time go.mod replaces the module with it (the module cache is read-only)."""
    info = json.loads(_run([go, "mod", "download", "-json", f"{judge.module}@{judge.version}"], judge.directory))
    source = scratch / "source"
    shutil.copytree(info["Dir"], source)
    for directory, _, _ in os.walk(source):
        os.chmod(directory, 0o755)
    for relative in judge.placeholders:
        page = source / relative
        page.parent.mkdir(parents=True, exist_ok=True)
        text = PLACEHOLDER_PAGE.format(binary=judge.name, version=judge.image_tag).encode()
        # mtime 0: the same bytes at every build.
        page.write_bytes(gzip.compress(text, mtime=0) if relative.endswith(".gz") else text)
    return source


def build(judge: Judge, go: str, go_version: str) -> None:
    """Build every binary of `judge` into its output directory, atomically: a failed build leaves
    the previous one (and nothing half-written)."""
    STATE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{judge.name}-", dir=STATE) as scratch_name:
        scratch = Path(scratch_name)
        out = scratch / "bin"
        command = [go, "build", *_flags(judge), "-o", str(out) + "/"]
        if judge.placeholders:
            source = _source_copy(judge, go, scratch)
            modfile = scratch / "go.mod"
            modfile.write_text((judge.directory / "go.mod").read_text()
                               + f"\nreplace {judge.module} => {source}\n")
            shutil.copy(judge.directory / "go.sum", scratch / "go.sum")
            command.insert(2, f"-modfile={modfile}")
        # GOFLAGS from the environment (-mod=vendor...) must not change what is built.
        env = {**os.environ, "GOFLAGS": "-buildvcs=false", "CGO_ENABLED": "0"}
        _run([*command, "tool"], judge.directory, env)
        missing = [b for b in judge.binaries if not (out / b).is_file()]
        if missing:
            raise JudgeMissing(f"tools/{judge.name}: go build made no {', '.join(missing)}")
        (out / STAMP).write_text(stamp(judge, go_version) + "\n")
        _replace_ours(judge.output, out)
    _link(judge)
    _remove_other_versions(judge)


def _replace_ours(target: Path, new: Path) -> None:
    if target.exists():
        if not (target / STAMP).exists():
            raise JudgeMissing(f"{target} exists but was not built here (no {STAMP}): not replacing it")
        shutil.rmtree(target)
    new.rename(target)


def _link(judge: Judge) -> None:
    BIN.mkdir(parents=True, exist_ok=True)
    for binary in judge.binaries:
        link = BIN / binary
        temporary = BIN / f".{binary}.new"
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(Path("..") / judge.output.name / binary)
        temporary.replace(link)


def _remove_other_versions(judge: Judge) -> None:
    for other in STATE.glob(f"{judge.name}@*"):
        if other != judge.output and (other / STAMP).exists():
            shutil.rmtree(other)


def build_all(judges: Sequence[Judge] | None = None, report: Callable[[str], None] = print) -> dict[str, float]:
    """Build what is not up to date; seconds spent per judge (0 when up to date)."""
    go = _go()
    go_version = _run([go, "env", "GOVERSION"], ROOT).strip()
    spent: dict[str, float] = {}
    for judge in all_judges() if judges is None else judges:
        if up_to_date(judge, go_version):
            _link(judge)  # a removed .tools/bin is restored without a build
            spent[judge.name] = 0.0
            continue
        report(f"building {judge.name} {judge.version} (image {judge.image_tag}) with {go_version}...")
        began = time.monotonic()
        build(judge, go, go_version)
        spent[judge.name] = time.monotonic() - began
        report(f"built {', '.join(judge.binaries)} in {spent[judge.name]:.0f} s")
    return spent


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack.judges", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build", help="build the judges that are not up to date into .tools/")
    commands.add_parser("list", help="each judge: module, version, image tag, where it is built")
    args = parser.parse_args(argv)
    if args.command == "list":
        for judge in all_judges():
            print(f"{judge.name}\t{judge.module} {judge.version}\t{judge.image_repository}:{judge.image_tag}"
                  f"\t{', '.join(judge.binaries)}")
        for component, reason in not_built().items():
            print(f"{component}\tno judge built here: {reason}")
        return 0
    try:
        build_all()
    except JudgeMissing as error:
        print(f"judges: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
