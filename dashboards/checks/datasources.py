"""Every panel and query names a datasource that Grafana is provisioned with."""

from __future__ import annotations

from collections.abc import Iterator

from dashboards.checks import Context, PanelFinding, panels
from dashboards.model import GeneratedDashboard
from rules.checks import Finding
from rules.problems import Severity


def check(dashboard: GeneratedDashboard, context: Context) -> Iterator[PanelFinding]:
    known = ", ".join(sorted(context.datasources))
    for panel in panels(dashboard):
        refs = [panel.get("datasource")] + [t.get("datasource") for t in panel.get("targets") or []]
        for ref in {r.get("uid") for r in refs if isinstance(r, dict)}:
            if ref not in context.datasources:
                yield panel.get("title", ""), Finding(
                    Severity.ERROR, f"datasource uid {ref!r} is not provisioned (provisioned: {known})")
    for variable in (dashboard.data.get("templating") or {}).get("list") or []:
        ref = (variable.get("datasource") or {}).get("uid")
        if ref is not None and ref not in context.datasources:
            yield f"variable {variable.get('name')}", Finding(
                Severity.ERROR, f"datasource uid {ref!r} is not provisioned (provisioned: {known})")
