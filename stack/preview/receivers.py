"""Which receivers an alert reaches, asked of amtool on the rendered Alertmanager config (the
real routing tree), many alerts side by side."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from stack import tools


def reached_by(config: Path, labels: Mapping[str, str]) -> tuple[str, ...]:
    """The receivers, in routing-tree order; () when the config is missing."""
    if not config.exists():
        return ()
    run = tools.run(["amtool", "config", "routes", "test", f"--config.file={config}",
                     *(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in sorted(labels.items()))])
    if not run.ok:
        raise RuntimeError(f"amtool could not route {dict(labels)} with {config}: {run.output}")
    lines = [line for line in run.output.splitlines() if line and not line.startswith("Warning:")]
    return tuple(r.strip() for r in lines[-1].split(",")) if lines else ()


def reached(config: Path, label_sets: Sequence[Mapping[str, str]]) -> list[tuple[str, ...]]:
    """`reached_by` for each label set, in order."""
    with ThreadPoolExecutor(max_workers=(os.cpu_count() or 1) * 4) as pool:
        return list(pool.map(lambda labels: reached_by(config, labels), label_sets))
