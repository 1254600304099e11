"""Running the real tools (promtool, amtool, each component's own binary) on rendered files.

promtool unit test runs are identified by what decides their outcome: the promtool binary and
its version, the test file and every rule file it loads. Identical runs are done once per call,
and their results kept in a cache under the user's cache directory (`MEDIANEST_CACHE_DIR`, else
`$XDG_CACHE_HOME/medianest-observability`, else `~/.cache/medianest-observability`; off with
MEDIANEST_NO_CACHE=1): one small JSON file per run, written atomically, safe to delete at any time.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import hashlib
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import yaml

from stack.sandbox import processes


class ToolMissing(Exception):
    pass


def require(tool: str) -> str:
    """The absolute path of a tool, found as the sandbox finds its binaries: a judge built at the
    shipped version (never another of the same name on PATH), else Debian's package."""
    try:
        return processes.binary(tool)
    except processes.BinaryMissing as error:
        raise ToolMissing(str(error)) from None


# Where a result came from: run now, read from the cache, or shared with an identical run of the
# same call (dev and prod files that are the same).
Origin = Literal["ran", "cached", "shared"]


@dataclass(frozen=True)
class ToolRun:
    command: list[str]
    returncode: int
    output: str
    origin: Origin = "ran"

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def verdict(self) -> tuple[bool, str]:
        """(passes, what the tool said): a component's file check."""
        return self.ok, self.output


def run(command: list[str], cwd: Path | None = None) -> ToolRun:
    """`command` with its tool (by name) resolved by `require`; the result names it as given."""
    result = subprocess.run([require(command[0]), *command[1:]], cwd=cwd, capture_output=True, text=True,
                            check=False)
    return ToolRun(command, result.returncode, (result.stdout + result.stderr).strip())


def promtool_check_rules(paths: list[Path]) -> ToolRun:
    return run(["promtool", "check", "rules", *map(str, paths)])


def promtool_test_rules(path: Path) -> ToolRun:
    # Relative rule_files paths resolve from the working directory.
    return run(["promtool", "test", "rules", path.name], cwd=path.parent)


_FAILED_TEST = re.compile(r"^\s*name: (?P<name>.+),\s*$", re.MULTILINE)


def failed_test_names(output: str) -> set[str]:
    """Names of the test groups promtool reports as failed."""
    return {m.group("name") for m in _FAILED_TEST.finditer(output)}


def amtool_check_config(path: Path) -> ToolRun:
    """Alertmanager's own validation of a config file and the templates it loads."""
    return run(["amtool", "check-config", str(path)])


# amtool warns on every offline call that --config.file overrides --alertmanager.url.
_URL_WARNING = re.compile(r"^Warning: --config.file flag overrides the --alertmanager.url.\n?", re.MULTILINE)


def amtool_test_route(config: Path, labels: Mapping[str, str], receivers: Sequence[str]) -> ToolRun:
    """Whether an alert with these labels reaches exactly these receivers (exit 1 when not)."""
    run_ = run(["amtool", "config", "routes", "test", f"--config.file={config}",
                f"--verify.receivers={','.join(receivers)}",
                *(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in sorted(labels.items()))])
    return ToolRun(run_.command, run_.returncode, _URL_WARNING.sub("", run_.output).strip())


def amtool_test_routes(config: Path, cases: Sequence[tuple[Mapping[str, str], Sequence[str]]],
                       cache: ResultCache | None = None, done: Callable[[ToolRun], None] | None = None
                       ) -> list[ToolRun]:
    """amtool_test_route for each (labels, receivers), side by side; a result is identified by
    amtool, the config's content, the labels and the receivers."""
    base = hashlib.sha256(tool_identity("amtool").encode() + b"\0" + config.read_bytes())

    def one(case: tuple[Mapping[str, str], Sequence[str]]) -> ToolRun:
        labels, receivers = case
        digest = base.copy()
        digest.update(json.dumps([sorted(labels.items()), list(receivers)]).encode())
        key = digest.hexdigest()
        result = cache.get(key) if cache else None
        if result is None:
            result = amtool_test_route(config, labels, receivers)
            if cache:
                cache.put(key, result)
        if done:
            done(result)
        return result

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(one, cases))


def promtool_test_many(paths: Sequence[Path], cache: ResultCache | None = None,
                       done: Callable[[ToolRun], None] | None = None) -> list[ToolRun]:
    """promtool test rules on each file, side by side; each distinct run once, and not at all
    when `cache` holds its result. `done` is called once per file as its result arrives."""
    keys = [run_key(path) for path in paths]
    firsts: dict[str, int] = {}
    for index, key in enumerate(keys):
        firsts.setdefault(key, index)
    out: list[ToolRun | None] = [None] * len(paths)

    def settle(key: str, result: ToolRun) -> None:
        for index in (i for i, k in enumerate(keys) if k == key):
            out[index] = result if index == firsts[key] else replace(result, origin="shared")
            if done:
                done(out[index])

    def run_one(key: str) -> tuple[str, ToolRun]:
        result = promtool_test_rules(paths[firsts[key]])
        if cache:
            cache.put(key, result)
        return key, result

    missing = []
    for key in firsts:
        found = cache.get(key) if cache else None
        if found:
            settle(key, found)
        else:
            missing.append(key)
    # promtool waits on its own storage's disk writes: more runs than cores keep both busy.
    with ThreadPoolExecutor(max_workers=2 * (os.cpu_count() or 1)) as pool:
        for future in as_completed([pool.submit(run_one, key) for key in missing]):
            settle(*future.result())
    return [result for result in out if result is not None]


@functools.cache
def tool_identity(tool: str) -> str:
    """The binary a result came from: its version and the file itself (a rebuilt or upgraded
    tool never reuses another's results)."""
    path = require(tool)
    version = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    stat = os.stat(path)
    return f"{os.path.realpath(path)} {stat.st_size} {stat.st_mtime_ns}\n{version.stdout}{version.stderr}"


def run_key(test_file: Path) -> str:
    """A promtool test run's identity: the tool, the test file's name and content, and each rule
    file it loads (resolved as promtool does, from the test file's directory), by name and content."""
    digest = hashlib.sha256(tool_identity("promtool").encode())
    text = test_file.read_bytes()
    digest.update(b"\0test\0" + test_file.name.encode() + b"\0" + text)
    document = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    for pattern in document.get("rule_files") or []:
        for match in sorted(glob.glob(str(pattern), root_dir=test_file.parent)):
            digest.update(b"\0rules\0" + match.encode() + b"\0" + (test_file.parent / match).read_bytes())
    return digest.hexdigest()


_caching = True


@contextlib.contextmanager
def caching(enabled: bool) -> Iterator[None]:
    """Within the block, result_cache() gives a cache only if `enabled` (a command's --no-cache)."""
    global _caching
    before, _caching = _caching, enabled
    try:
        yield
    finally:
        _caching = before


def result_cache(tool: str = "promtool") -> ResultCache | None:
    """The cache of a tool's results, or None when turned off (--no-cache, MEDIANEST_NO_CACHE=1)."""
    return ResultCache(tool=tool) if _caching and not os.environ.get("MEDIANEST_NO_CACHE") else None


def cache_directory() -> Path:
    configured = os.environ.get("MEDIANEST_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "medianest-observability"


class ResultCache:
    """A tool's results by run key. A result that cannot be read is a miss, never an error."""

    def __init__(self, directory: Path | None = None, tool: str = "promtool") -> None:
        self.directory = (directory or cache_directory()) / tool

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> ToolRun | None:
        try:
            data = json.loads(self._path(key).read_text())
            return ToolRun(list(data["command"]), int(data["returncode"]), str(data["output"]), "cached")
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, key: str, result: ToolRun) -> None:
        # Only what promtool decided: passed (0) or failed (1); a crash or a kill is not a result.
        if result.returncode not in (0, 1):
            return
        path = self._path(key)
        temporary = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
            with os.fdopen(fd, "w") as out:
                json.dump({"command": result.command, "returncode": result.returncode, "output": result.output}, out)
            os.replace(temporary, path)
        except OSError:
            # A cache that cannot be written only costs time.
            if temporary:
                Path(temporary).unlink(missing_ok=True)


def promtool_check_config(path: Path) -> ToolRun:
    """Prometheus's own validation of prometheus.yml and every rule file it names."""
    return run(["promtool", "check", "config", path.name], cwd=path.parent)
