"""Runbook links on panels point at alerts that exist, with the alerts' own runbook URL."""

from __future__ import annotations

from collections.abc import Iterator

from dashboards.checks import Context, PanelFinding, panels
from dashboards.model import GeneratedDashboard
from rules.checks import Finding
from rules.problems import Severity


def check(dashboard: GeneratedDashboard, context: Context) -> Iterator[PanelFinding]:
    base = context.runbook_base_url.rstrip("/") + "/"
    for panel in panels(dashboard):
        for link in panel.get("links") or []:
            url = link.get("url", "")
            if url.startswith(base):
                alert = url[len(base):]
                if alert not in context.alerts:
                    yield panel.get("title", ""), Finding(
                        Severity.ERROR, f"runbook link to {alert!r}, which is not an alert of this stack")
            elif (link.get("title") or "").startswith("Runbook"):
                yield panel.get("title", ""), Finding(
                    Severity.ERROR, f"runbook link {url!r} is not under runbookBaseUrl {context.runbook_base_url}")
