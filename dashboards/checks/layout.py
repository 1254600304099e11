"""Panel ids are unique, panels stay on the 24-column grid and never overlap."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from itertools import combinations

from dashboards.checks import Context, PanelFinding, panels
from dashboards.model import GRID_WIDTH, GeneratedDashboard
from rules.checks import Finding
from rules.problems import Severity


def check(dashboard: GeneratedDashboard, context: Context) -> Iterator[PanelFinding]:
    every = panels(dashboard)
    counts = Counter(p.get("id") for p in every)
    for panel in every:
        if panel.get("id") is None:
            yield panel.get("title", ""), Finding(Severity.ERROR, "panel has no id")
        elif counts[panel.get("id")] > 1:
            yield panel.get("title", ""), Finding(Severity.ERROR, f"panel id {panel['id']} is used by "
                                                  f"{counts[panel['id']]} panels: ids must be unique")
    top = dashboard.data.get("panels") or []
    for panel in top:
        pos = panel.get("gridPos") or {}
        if not pos:
            yield panel.get("title", ""), Finding(Severity.ERROR, "panel has no gridPos")
        elif pos.get("x", 0) < 0 or pos.get("x", 0) + pos.get("w", 0) > GRID_WIDTH:
            yield panel.get("title", ""), Finding(Severity.ERROR, f"panel spans x {pos.get('x')} to "
                                                  f"{pos.get('x', 0) + pos.get('w', 0)}, off the "
                                                  f"{GRID_WIDTH}-column grid")
    for a, b in combinations(top, 2):
        if _overlap(a.get("gridPos") or {}, b.get("gridPos") or {}):
            yield a.get("title", ""), Finding(Severity.ERROR, f"overlaps panel {b.get('title')!r} "
                                              f"({a.get('gridPos')} and {b.get('gridPos')})")


def _overlap(a: dict[str, int], b: dict[str, int]) -> bool:
    if not a or not b:
        return False
    return (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
            and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])
