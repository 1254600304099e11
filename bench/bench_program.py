"""The whole Pulumi program for each stack under Pulumi's mock runtime: config, build, every
resource declared (dev: Docker containers; prod: Kubernetes objects). Prints the figures and
writes bench/results/program.json.

Target (issue 5): under 3 s on this machine, per stack.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from pulumi_mocks import run_program  # noqa: E402

from bench.common import write_results  # noqa: E402

TARGET_SECONDS = 3.0
# prod wants every receiver's and exporter's secret; any value does under the mocks.
PROD_SECRETS = ("pagerduty-routing-key", "slack-alerts-critical-webhook-url", "slack-business-metrics-webhook-url",
                "slack-alerts-webhook-url", "smtp-password", "deadman-token", "postgres-password", "redis-password")


def measure(stack: str, secrets: dict[str, str] | None) -> dict[str, float]:
    runs = []
    resources = 0
    for _ in range(5):
        start = time.perf_counter()
        mocks, _ = run_program(stack, secrets=secrets)
        runs.append(time.perf_counter() - start)
        resources = len(mocks.declared)
    return {"first_run_seconds": runs[0], "median_seconds": sorted(runs)[len(runs) // 2], "resources": resources}


def main() -> None:
    results = {"dev": measure("dev", None), "prod": measure("prod", {name: "x" for name in PROD_SECRETS})}
    print(f"{'case':<34}{'seconds':>10}  target")
    for stack, figures in results.items():
        print(f"{stack + ' program, first run':<34}{figures['first_run_seconds']:>10.3f}  < {TARGET_SECONDS:.0f} s")
        print(f"{stack + ' program, median of 5':<34}{figures['median_seconds']:>10.3f}  < {TARGET_SECONDS:.0f} s")
        print(f"{stack} resources declared: {figures['resources']}")
    write_results("program", {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        **{stack: figures for stack, figures in results.items()}, "target_seconds": TARGET_SECONDS,
    })


if __name__ == "__main__":
    main()
