"""`python -m stack diff` of two commits, all stacks, in a temporary git repository holding a copy
of this project. Prints the total and its split (exporting both trees, the rules section with
its promtool unit tests and amtool, the other sections, writing the report) and writes
bench/results/diff.json.

Targets on this machine: under 15 s for a typical change (issue 8), under 10 s for an SLO
objective change (issue 13). Every measurement starts with an empty promtool result cache.

Cases:
- typical: a threshold raised, an alert added, a dashboard panel removed, an image bumped.
- slo: an SLO objective lowered: its burn alerts change, and their promtool scenarios run.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from bench.common import write_results  # noqa: E402
from stack.preview import diff, report  # noqa: E402

TARGET_SECONDS = {"typical": 15.0, "slo": 10.0}
REPEAT = 3
TYPICAL = [
    ("Pulumi.dev.yaml", "errorRatio: 0.05", "errorRatio: 0.07"),
    ("Pulumi.dev.yaml", "tag: v3.16.0}", "tag: v3.17.0}"),
    ("stack/services/redis_exporter.py", '"1 minute"), **common),\n        # maxmemory 0',
     '"1 minute"), **common),\n'
     '        alert("RedisRejectingConnections", "increase(redis_rejected_connections_total[5m]) > 0",\n'
     '              for_="5m", severity=WARNING, service="cache", summary="Redis rejects connections",\n'
     '              description="Redis rejected {{ $value }} connections over 5 minutes.", **common),\n'
     '        # maxmemory 0'),
    ("stack/services/node_exporter.py", '        timeseries("Load average", "1 minute load average per host.", '
     'Unit.SHORT,\n                   prom(f"node_load1{{{node}}}", "{{instance}}")),\n', ""),
]
SLO = [("rules/slos.py", 'objective=Decimal("99.9")', 'objective=Decimal("99.5")')]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def project_copy(root: Path) -> None:
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            check=True, capture_output=True).stdout.decode().split("\0")
    for relative in filter(None, listed):
        if (ROOT / relative).is_file():
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / relative, root / relative)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "bench@example.com")
    git(root, "config", "user.name", "bench")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")


def commit(root: Path, name: str, edits: list[tuple[str, str, str]]) -> None:
    for path, old, new in edits:
        text = (root / path).read_text()
        assert text.count(old) == 1, f"{name}: {old!r} not once in {path}"
        (root / path).write_text(text.replace(old, new))
    git(root, "commit", "-q", "-am", name)


def measure(root: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as cache:
        os.environ["MEDIANEST_CACHE_DIR"] = cache  # cold: nothing from an earlier run
        start = time.perf_counter()
        result = diff.diff(root, "HEAD~1", "all")
        sections = time.perf_counter() - start
    written = time.perf_counter()
    report.markdown(result)
    report.as_json(result)
    report_seconds = time.perf_counter() - written
    timings = result.timings
    rules_and_tests = timings.get("Alerts and recording rules", 0.0)
    others = sum(v for k, v in timings.items() if k not in ("export", "Alerts and recording rules"))
    return {"total": sections + report_seconds, "export": timings["export"], "rules_and_tests": rules_and_tests,
            "other_sections": others, "report": report_seconds,
            "changes": sum(len(s.changes) for _, secs in result.stacks for s in secs)}


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def main() -> None:
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-diff-") as tmp:
        root = Path(tmp) / "project"
        project_copy(root)
        commit(root, "typical change", TYPICAL)
        results["typical"] = median_of([measure(root) for _ in range(REPEAT)])
        commit(root, "slo objective", SLO)
        results["slo"] = median_of([measure(root) for _ in range(REPEAT)])
    print(f"{'case':<10}{'total':>8}{'export':>8}{'rules+tests':>13}{'others':>8}{'report':>8}{'changes':>9}  target")
    for case, figures in results.items():
        target = f"< {TARGET_SECONDS[case]:.0f} s"
        print(f"{case:<10}{figures['total']:>8.2f}{figures['export']:>8.2f}{figures['rules_and_tests']:>13.2f}"
              f"{figures['other_sections']:>8.2f}{figures['report']:>8.3f}{figures['changes']:>9.0f}  {target}")
    write_results("diff", {"machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
                           "target_seconds": TARGET_SECONDS, **results})


if __name__ == "__main__":
    main()
