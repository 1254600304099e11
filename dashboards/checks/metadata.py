"""Every panel says what it shows (a description) and in what unit; no Angular panel types,
which Grafana 12 removed (graph, singlestat...)."""

from __future__ import annotations

from collections.abc import Iterator

from dashboards.checks import Context, PanelFinding, panels
from dashboards.model import VALUE_PANELS, GeneratedDashboard, PanelKind
from rules.checks import Finding
from rules.problems import Severity

ANGULAR = {"graph": "timeseries", "singlestat": "stat", "table-old": "table", "grafana-piechart-panel": "piechart",
           "grafana-worldmap-panel": "geomap"}
KNOWN = {str(k) for k in PanelKind} | {"row"}


def check(dashboard: GeneratedDashboard, context: Context) -> Iterator[PanelFinding]:
    if not dashboard.data.get("title"):
        yield None, Finding(Severity.ERROR, "dashboard has no title")
    for panel in panels(dashboard):
        title, kind = panel.get("title", ""), panel.get("type", "")
        if kind in ANGULAR:
            yield title, Finding(Severity.ERROR, f"{kind} is an Angular panel, gone since Grafana 12: "
                                 f"use {ANGULAR[kind]}")
            continue
        if kind not in KNOWN:
            yield title, Finding(Severity.ERROR, f"unknown panel type {kind!r} (known: {', '.join(sorted(KNOWN))})")
        if kind == "row":
            continue
        if not title:
            yield title, Finding(Severity.ERROR, "panel has no title")
        if not (panel.get("description") or "").strip():
            yield title, Finding(Severity.ERROR, "panel has no description: say what it shows and what "
                                 "good looks like")
        unit = ((panel.get("fieldConfig") or {}).get("defaults") or {}).get("unit")
        if kind in VALUE_PANELS and not unit:
            yield title, Finding(Severity.ERROR, "panel has no unit")
        if kind not in ("text",) and not panel.get("targets"):
            yield title, Finding(Severity.ERROR, "panel has no query")
