"""The whole Pulumi program for the dev stack under Pulumi's mock runtime: config, build, every
resource declared. Prints the figures and writes bench/results/program.json.

Target (issue 5): under 3 s on this machine.
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from pulumi_mocks import run_program  # noqa: E402

from bench.common import write_results  # noqa: E402

TARGET_SECONDS = 3.0


def main() -> None:
    runs = []
    resources = 0
    for _ in range(5):
        start = time.perf_counter()
        mocks, _ = run_program("dev")
        runs.append(time.perf_counter() - start)
        resources = len(mocks.resources)
    first, median = runs[0], sorted(runs)[len(runs) // 2]
    print(f"{'case':<34}{'seconds':>10}  target")
    print(f"{'dev program, first run':<34}{first:>10.3f}  < {TARGET_SECONDS:.0f} s")
    print(f"{'dev program, median of 5':<34}{median:>10.3f}  < {TARGET_SECONDS:.0f} s")
    print(f"resources declared: {resources}")
    write_results("program", {
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "dev_first_run_seconds": first, "dev_median_seconds": median, "resources": resources,
        "target_seconds": TARGET_SECONDS,
    })


if __name__ == "__main__":
    main()
