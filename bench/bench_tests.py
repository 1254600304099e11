"""How fast the proof is (issue 13). Prints a table and writes bench/results/tests.json:

- `python -m stack test` per stack and for both, cold (an empty result cache) and cached;
- `python -m stack slo report` (every detection time confirmed by promtool), cold;
- `make test-fast` wall time and its CPU split by test file (promtool and the other tools the
  tests run included);
- with --tiers, on a fresh clone (virtualenv and pip install included; Debian's packages are
  whatever this machine has): `make test` and `make test-all` wall times and their CPU split.

Targets on the 2-core machine: `stack test --stack all` under 20 s cold and 2 s cached, `slo
report` under 30 s, `make test-fast` under 2 minutes, `make test` under 10 minutes. The preview
of an SLO objective change (under 10 s) is bench_diff.py's `slo` case.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import write_results  # noqa: E402

PYTHON = str(ROOT / ".venv" / "bin" / "python")
TARGETS = {"stack test all cold": 20.0, "stack test all cached": 2.0, "slo report": 30.0,
           "make test-fast": 120.0, "make test": 600.0}


def timed_command(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return seconds


def stack_commands() -> dict[str, float]:
    figures = {}
    for stacks in ("dev", "prod", "all"):
        with tempfile.TemporaryDirectory(prefix="bench-cache-") as cache:
            env = {**os.environ, "MEDIANEST_CACHE_DIR": cache}
            command = [PYTHON, "-m", "stack", "test", "--stack", stacks]
            figures[f"stack test {stacks} cold"] = timed_command(command, ROOT, env)
            figures[f"stack test {stacks} cached"] = timed_command(command, ROOT, env)
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as cache:
        env = {**os.environ, "MEDIANEST_CACHE_DIR": cache}
        figures["slo report"] = timed_command([PYTHON, "-m", "stack", "slo", "report", "--stack", "dev"], ROOT, env)
    return figures


def make_tier(target: str, cwd: Path) -> tuple[float, dict[str, dict[str, float]]]:
    """Wall seconds of `make <target>` and the CPU and wall seconds per test file."""
    with tempfile.TemporaryDirectory(prefix="bench-cpu-") as out:
        env = {**os.environ, "BENCH_CPU_OUT": out, "PYTHONPATH": str(cwd),
               "PYTEST_ADDOPTS": "-p bench.pytest_cpu"}
        env.pop("MEDIANEST_CACHE_DIR", None)  # the suite makes its own
        seconds = timed_command(["make", target], cwd, env)
        split: dict[str, dict[str, float]] = defaultdict(lambda: {"cpu": 0.0, "wall": 0.0})
        for share in Path(out).glob("*.json"):
            data = json.loads(share.read_text())
            for what in ("cpu", "wall"):
                for file, value in data[what].items():
                    split[file][what] += value
    return seconds, dict(sorted(split.items(), key=lambda kv: -kv[1]["cpu"]))


def fresh_clone(root: Path) -> Path:
    clone = root / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    return clone


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiers", action="store_true", help="also make test and make test-all on a fresh clone")
    args = parser.parse_args()
    figures = stack_commands()
    seconds, split = make_tier("test-fast", ROOT)
    figures["make test-fast"] = seconds
    splits = {"make test-fast": split}
    if args.tiers:
        with tempfile.TemporaryDirectory(prefix="bench-tiers-") as tmp:
            clone = fresh_clone(Path(tmp))
            for target in ("test", "test-all"):
                seconds, split = make_tier(target, clone)
                figures[f"make {target}"] = seconds
                splits[f"make {target}"] = split
    print(f"{'what':<26}{'seconds':>9}  target")
    for what, value in figures.items():
        target = f"< {TARGETS[what]:.0f} s" if what in TARGETS else ""
        verdict = "" if not target else ("ok" if value < TARGETS[what] else "MISSED")
        print(f"{what:<26}{value:>9.1f}  {target} {verdict}")
    for tier, split in splits.items():
        print(f"\nCPU by test file, {tier} (seconds; wall as run in sequence on its worker):")
        for file, spent in list(split.items())[:15]:
            print(f"  {file:<58}{spent['cpu']:>8.1f} cpu{spent['wall']:>8.1f} wall")
    write_results("tests", {"machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
                            "targets_seconds": TARGETS, "seconds": figures, "cpu_by_file": splits})


if __name__ == "__main__":
    main()
