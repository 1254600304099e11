"""Running the real tools (promtool, amtool, the blackbox exporter) on rendered files."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path


class ToolMissing(Exception):
    pass


# The Debian package that ships each tool.
PACKAGES = {
    "promtool": "prometheus",
    "amtool": "prometheus-alertmanager",
    "prometheus-blackbox-exporter": "prometheus-blackbox-exporter",
}


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        package = PACKAGES.get(tool, tool)
        raise ToolMissing(
            f"{tool} is not installed: `make setup` installs it (Debian: apt-get install {package})"
        )
    return path


@dataclass(frozen=True)
class ToolRun:
    command: list[str]
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run(command: list[str], cwd: Path | None = None) -> ToolRun:
    require(command[0])
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
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


def blackbox_check_config(path: Path) -> ToolRun:
    """The blackbox exporter's own validation of its config file (exit 1 on an unknown field)."""
    return run(["prometheus-blackbox-exporter", "--config.check", f"--config.file={path}"])


def promtool_test_many(paths: list[Path]) -> list[ToolRun]:
    """promtool test rules on each file, side by side (SLO scenarios simulate days)."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(promtool_test_rules, paths))


def promtool_check_config(path: Path) -> ToolRun:
    """Prometheus's own validation of prometheus.yml and every rule file it names."""
    return run(["promtool", "check", "config", path.name], cwd=path.parent)
