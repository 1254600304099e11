"""How long the judges take to build: cold (nothing built, an empty Go build cache; the module
cache is kept unless --with-downloads) and warm (`python -m stack.judges build` and
`make setup` when everything is up to date: what every `make test` pays).

    .venv/bin/python bench/bench_judges.py [--skip-cold] [--with-downloads]   (make bench-judges)

Writes bench/results/judges.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent)]
from bench.common import ROOT, timed, write_results  # noqa: E402


def _seconds(command: list[str], env: dict[str, str] | None = None) -> float:
    began = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - began


def cold(with_downloads: bool) -> dict[str, float]:
    """Every judge built into an empty directory with an empty build cache: seconds per judge
    (as the builder reports them) and in all."""
    with tempfile.TemporaryDirectory(prefix="bench-judges-") as scratch:
        env = {**os.environ, "MEDIANEST_TOOLS_DIR": f"{scratch}/tools", "GOCACHE": f"{scratch}/go-build"}
        if with_downloads:
            env["GOMODCACHE"] = f"{scratch}/mod"
        code = ("import json; from stack import judges; "
                "print(json.dumps(judges.build_all(report=lambda line: None)))")
        began = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                                capture_output=True, text=True)
        total = time.perf_counter() - began
        if with_downloads:  # the module cache is read-only: make it removable
            subprocess.run(["chmod", "-R", "u+w", f"{scratch}/mod"], check=False)
    return {**{f"{name}_s": round(s, 1) for name, s in json.loads(result.stdout).items()}, "total_s": round(total, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-cold", action="store_true", help="only the warm figures")
    parser.add_argument("--with-downloads", action="store_true",
                        help="cold includes downloading every module (an empty module cache)")
    args = parser.parse_args()
    _seconds(["make", "-s", "setup"])  # everything built, so the warm figures are warm
    results: dict[str, object] = {
        "warm_judges_build_s": round(timed(lambda: _seconds([sys.executable, "-m", "stack.judges", "build"]), 5), 3),
        "warm_make_setup_s": round(timed(lambda: _seconds(["make", "-s", "setup"]), 5), 3),
        "cpus": os.cpu_count(),
        "go": subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True, check=True).stdout.strip(),
    }
    print(f"warm: judges build {results['warm_judges_build_s']:.2f} s, make setup {results['warm_make_setup_s']:.2f} s")
    if not args.skip_cold:
        results["cold"] = cold(args.with_downloads)
        results["cold_with_downloads"] = args.with_downloads
        print(f"cold: {results['cold']}")
    write_results("judges", results)


if __name__ == "__main__":
    main()
