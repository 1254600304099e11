"""The Dashboards section on exported trees: dashboards and panels added, removed and changed."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from preview_helpers import trees

from stack.config import load_stack
from stack.preview import dashboards
from stack.preview.model import Block, Change, Section, Trees

OVERVIEW = "medianest/medianest-overview.json"
# The dev stack's error ratio threshold, the Error ratio panel's red step (read, never pinned).
SHIPPED_RATIO = load_stack("dev").thresholds.error_ratio
SLOS = "slo/medianest-slos.json"
HEALTH = "stack/stack-health.json"
OF_OVERVIEW = "of dashboard medianest-overview"


def edit(tree: Path, file: str, change: Callable[[dict[str, Any]], None]) -> None:
    path = tree / dashboards.DASHBOARDS_DIR / file
    body = json.loads(path.read_text())
    change(body)
    path.write_text(json.dumps(body, indent=2))


def panel(body: dict[str, Any], title: str) -> dict[str, Any]:
    return next(p for p in body["panels"] if p.get("title") == title)


def by_subject(section: Section) -> dict[str, Change]:
    return {c.subject: c for c in section.changes}


def test_identical_trees_report_nothing(same: Trees) -> None:
    assert dashboards.section(same) == Section("Dashboards")


def _remove_panel(body: dict[str, Any]) -> None:
    body["panels"].remove(panel(body, "Request rate"))


def _query(body: dict[str, Any]) -> None:
    target = panel(body, "Error ratio by endpoint")["targets"][0]
    target["expr"] = target["expr"].replace("ratio_rate5m", "ratio_rate1m")


def _unit(body: dict[str, Any]) -> None:
    panel(body, "p95 latency")["fieldConfig"]["defaults"]["unit"] = "ms"


def _thresholds(body: dict[str, Any]) -> None:
    steps = panel(body, "Error ratio")["fieldConfig"]["defaults"]["thresholds"]["steps"]
    steps[1]["value"] = 0.02
    steps.append({"color": "purple", "value": 0.5})


def _link(body: dict[str, Any]) -> None:
    panel(body, "Error ratio")["links"][0]["url"] = "https://wiki.medianest.example/HighErrorRate"


def _query_added(body: dict[str, Any]) -> None:
    targets = panel(body, "Request rate")["targets"]
    targets.append({**targets[0], "refId": "B", "expr": "sum(up)"})


def _legend(body: dict[str, Any]) -> None:
    panel(body, "Latency p95 and p99")["targets"][1]["legendFormat"] = "99th percentile"


def _retitle(body: dict[str, Any]) -> None:
    panel(body, "Queue size")["title"] = "Queue length"


def _type(body: dict[str, Any]) -> None:
    panel(body, "Request rate")["type"] = "gauge"


def _description(body: dict[str, Any]) -> None:
    panel(body, "Request rate")["description"] = "Requests per second."


def _dashboard_title(body: dict[str, Any]) -> None:
    body["title"] = "MediaNest / Overview"
    body["refresh"] = "30s"


def _layout(body: dict[str, Any]) -> None:
    for p in body["panels"]:
        p["gridPos"]["y"] += 1
    body["panels"][2], body["panels"][3] = body["panels"][3], body["panels"][2]


def _row_removed(body: dict[str, Any]) -> None:
    body["panels"].remove(panel(body, "External services"))


@pytest.mark.parametrize(("change", "kind", "subject", "details"), [
    (_remove_panel, "removed", f"panel 'Request rate' {OF_OVERVIEW}",
     ("type: stat", "row: Traffic, errors and latency",
      'query A: sum(job:medianest_http_requests:rate5m{job="medianest-backend"})', "unit: reqps")),
    (_unit, "changed", f"panel 'p95 latency' {OF_OVERVIEW}", ("unit: s -> ms",)),
    (_thresholds, "changed", f"panel 'Error ratio' {OF_OVERVIEW}",
     (f"thresholds: green, red from {SHIPPED_RATIO} -> green, red from 0.02, purple from 0.5",)),
    (_link, "changed", f"panel 'Error ratio' {OF_OVERVIEW}",
     ("link removed: Runbook: HighErrorRate: https://runbooks.medianest.example/alerts/HighErrorRate",
      "link added: Runbook: HighErrorRate: https://wiki.medianest.example/HighErrorRate")),
    (_query_added, "changed", f"panel 'Request rate' {OF_OVERVIEW}", ("query B added: sum(up)",)),
    (_legend, "changed", f"panel 'Latency p95 and p99' {OF_OVERVIEW}",
     ("query B.legendFormat: p99 -> 99th percentile",)),
    (_retitle, "changed", f"panel 'Queue size' {OF_OVERVIEW}", ("title: Queue size -> Queue length",)),
    (_type, "changed", f"panel 'Request rate' {OF_OVERVIEW}", ("type: stat -> gauge",)),
    (_description, "changed", f"panel 'Request rate' {OF_OVERVIEW}",
     ("description: Requests per second over all endpoints (5m rate). -> Requests per second.",)),
    (_dashboard_title, "changed", "dashboard medianest-overview (MediaNest / Overview)",
     ("title: MediaNest / System overview -> MediaNest / Overview", "refresh: 1m -> 30s")),
    (_layout, "changed", "dashboard medianest-overview (MediaNest / System overview)", ("layout changed",)),
], ids=lambda v: v.__name__.strip("_") if callable(v) else None)
def test_dashboard_edits(same: Trees, change: Callable[[dict[str, Any]], None], kind: str, subject: str,
                         details: tuple[str, ...]) -> None:
    edit(same.head, OVERVIEW, change)
    section = dashboards.section(same)
    assert [(c.kind, c.subject, c.details) for c in section.changes] == [(kind, subject, details)]
    assert not section.notes and not section.failed


def test_a_removed_row_moves_its_panels_to_the_row_above(same: Trees) -> None:
    edit(same.head, OVERVIEW, _row_removed)
    assert [(c.kind, c.subject, c.details) for c in dashboards.section(same).changes] == [
        ("changed", f"panel 'External API p95' {OF_OVERVIEW}", ("row: External services -> Database and Redis",)),
        ("changed", f"panel 'Circuit breakers' {OF_OVERVIEW}", ("row: External services -> Database and Redis",)),
        ("removed", f"row 'External services' {OF_OVERVIEW}", ()),
    ]


def test_a_changed_query_is_shown_as_a_diff(same: Trees) -> None:
    edit(same.head, OVERVIEW, _query)
    (change,) = dashboards.section(same).changes
    assert change.subject == f"panel 'Error ratio by endpoint' {OF_OVERVIEW}"
    assert change.details[0] == "query A changed:"
    block = change.details[1]
    assert isinstance(block, Block) and block.lang == "diff"
    assert "-job_endpoint:medianest_http_request_errors:ratio_rate5m{" in block.text
    assert "+job_endpoint:medianest_http_request_errors:ratio_rate1m{" in block.text
    assert change.data["queries"]["A"]["after"].startswith("job_endpoint:medianest_http_request_errors:ratio_rate1m")


def test_several_edits_and_a_new_dashboard(same: Trees) -> None:
    for change in (_remove_panel, _query, _unit, _thresholds):
        edit(same.head, OVERVIEW, change)
    # Only moved: the dashboard says so once.
    edit(same.head, HEALTH, lambda body: body["panels"][3]["gridPos"].update(x=6))
    new = json.loads((same.head / dashboards.DASHBOARDS_DIR / HEALTH).read_text())
    new.update(uid="medianest-capacity", title="MediaNest / Capacity")
    (same.head / dashboards.DASHBOARDS_DIR / "medianest" / "capacity.json").write_text(json.dumps(new))
    section = dashboards.section(same)
    assert [(c.kind, c.subject) for c in section.changes] == [
        ("added", "dashboard medianest-capacity (MediaNest / Capacity)"),
        ("changed", f"panel 'Error ratio' {OF_OVERVIEW}"),
        ("changed", f"panel 'p95 latency' {OF_OVERVIEW}"),
        ("changed", f"panel 'Error ratio by endpoint' {OF_OVERVIEW}"),
        # In the head's order, removed panels last (in the base's order).
        ("removed", f"panel 'Request rate' {OF_OVERVIEW}"),
        ("changed", "dashboard stack-health (MediaNest / Monitoring stack health)"),
    ]
    added = section.changes[0]
    assert added.details[:2] == ("folder: MediaNest", "18 panels in 8 rows")
    assert added.data["file"] == "medianest/capacity.json"
    assert section.changes[-1].details == ("layout changed",)
    assert section == dashboards.section(same)


def test_a_removed_and_a_moved_dashboard(same: Trees) -> None:
    root = same.head / dashboards.DASHBOARDS_DIR
    (root / HEALTH).unlink()
    (root / OVERVIEW).rename(root / "infrastructure" / "medianest-overview.json")
    changes = by_subject(dashboards.section(same))
    assert changes["dashboard stack-health (MediaNest / Monitoring stack health)"].kind == "removed"
    moved = changes["dashboard medianest-overview (MediaNest / System overview)"]
    assert moved.details == ("folder: MediaNest -> Infrastructure",)
    assert moved.data["folder"] == {"before": "MediaNest", "after": "Infrastructure"}


def test_repeated_titles_are_told_apart_by_their_row(same: Trees) -> None:
    def objective(body: dict[str, Any]) -> None:
        body["panels"][7]["targets"][0]["expr"] = "0.99"  # api-latency's "Objective"
    edit(same.head, SLOS, objective)
    (change,) = dashboards.section(same).changes
    assert change.subject == ("panel 'Objective' (row 'api-latency: 95% of requests to the critical endpoints "
                              "complete within 1s (30d)') of dashboard medianest-slos")


def test_panels_of_a_folded_row_are_compared(same: Trees) -> None:
    def fold(body: dict[str, Any]) -> None:
        panels = body["panels"]
        start = next(i for i, p in enumerate(panels) if p.get("title") == "Background jobs and queues")
        panels[start]["collapsed"] = True
        panels[start]["panels"] = panels[start + 1:]
        del panels[start + 1:]
    edit(same.base, OVERVIEW, fold)
    edit(same.head, OVERVIEW, fold)
    edit(same.head, OVERVIEW, lambda body: body["panels"][-1]["panels"][-1]["fieldConfig"]["defaults"]
         .update(unit="none"))
    (change,) = dashboards.section(same).changes
    assert (change.subject, change.details) == (f"panel 'Queue size' {OF_OVERVIEW}", ("unit: short -> none",))


def test_a_threshold_changed_through_config(tmp_path: Path) -> None:
    section = dashboards.section(trees(tmp_path, "dev", base={"thresholds": {"errorRatio": 0.04}},
                                       head={"thresholds": {"errorRatio": 0.07}}))
    assert [(c.kind, c.subject, c.details) for c in section.changes] == [
        ("changed", f"panel '{title}' {OF_OVERVIEW}", ("thresholds: green, red from 0.04 -> green, red from 0.07",))
        for title in ("Error ratio", "Error ratio by endpoint")
    ]
    assert section.changes[0].data["thresholds"]["after"]["steps"][1] == {"color": "red", "value": 0.07}


def test_missing_and_unreadable_dashboards_are_notes(same: Trees) -> None:
    (same.head / dashboards.DASHBOARDS_DIR / "broken.json").write_text("{")
    section = dashboards.section(same)
    assert section.failed and section.notes[0].startswith("head: broken.json: not JSON")
    shutil.rmtree(same.base / dashboards.DASHBOARDS_DIR)
    section = dashboards.section(same)
    assert section.notes[0] == "The base has no dashboards: every dashboard of the head is new."
    assert {c.kind for c in section.changes} == {"added"}
