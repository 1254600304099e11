"""A pytest plugin for bench_tests.py: CPU seconds per test file, the tools a test ran included
(promtool, amtool, the sandbox's binaries: children the test waited for). Each xdist worker
writes its share to $BENCH_CPU_OUT/<worker>.json. Load it with `-p bench.pytest_cpu`."""

from __future__ import annotations

import json
import os
import resource
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

_cpu: dict[str, float] = defaultdict(float)
_wall: dict[str, float] = defaultdict(float)


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    cpu, wall = _cpu_seconds(), time.perf_counter()
    yield
    _cpu[item.location[0]] += _cpu_seconds() - cpu
    _wall[item.location[0]] += time.perf_counter() - wall


def pytest_sessionfinish(session: pytest.Session) -> None:
    out = os.environ.get("BENCH_CPU_OUT")
    if not out or not _cpu:
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    path = Path(out) / f"{worker}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cpu": _cpu, "wall": _wall}))
