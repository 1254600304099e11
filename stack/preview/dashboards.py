"""The Dashboards section: dashboards (by uid) added, removed or changed, and their panels added,
removed or changed by title, type, queries, unit, thresholds, links or other settings. Where a
panel sits (gridPos, ids, a row's folding) is layout: it is reported only as "layout changed",
once per dashboard, when nothing else of the dashboard changed."""

from __future__ import annotations

import difflib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stack import layout
from stack.preview.model import Block, Change, Detail, Section, Trees

TITLE = "Dashboards"
DASHBOARDS_DIR = layout.GRAFANA_DASHBOARDS_DIR
PROVISIONING = layout.GRAFANA_DASHBOARD_PROVISIONING_DIR
# Where a panel sits, not what it shows.
LAYOUT_KEYS = frozenset({"gridPos", "id", "collapsed"})
# Compared on their own (the rest of a panel is compared as "other settings").
PANEL_KEYS = frozenset({"title", "type", "targets", "links", "panels"})
FIELD_DEFAULTS = ("unit", "thresholds")
# Dashboard keys that change with every save, not with the definition.
DASHBOARD_NOISE = frozenset({"id", "version", "iteration", "panels", "uid", "title"})
# A value shown inline up to this length; longer ones are just "changed".
INLINE = 80


# --- reading a tree ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Dashboard:
    uid: str
    file: str
    folder: str
    body: dict[str, Any]

    @property
    def title(self) -> str:
        return str(self.body.get("title", ""))

    @property
    def name(self) -> str:
        return f"dashboard {self.uid}" + (f" ({self.title})" if self.title else "")


@dataclass(frozen=True)
class Panel:
    row: str | None  # the title of the row it belongs to
    body: dict[str, Any]

    @property
    def title(self) -> str:
        return str(self.body.get("title") or "")

    @property
    def is_row(self) -> bool:
        return self.body.get("type") == "row"


def folders(tree: Path) -> dict[str, str]:
    """Dashboard directory (relative to grafana/dashboards) -> the Grafana folder it is provisioned in."""
    found: dict[str, str] = {}
    for path in sorted((tree / PROVISIONING).glob("*.y*ml")):
        try:
            document = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError:
            continue
        for provider in document.get("providers") or []:
            directory = str((provider.get("options") or {}).get("path", "")).rstrip("/").rsplit("/", 1)[-1]
            if directory and provider.get("folder") is not None:
                found[directory] = str(provider["folder"])
    return found


def dashboards(tree: Path) -> tuple[dict[str, Dashboard], list[str]]:
    """Dashboards by uid, and what could not be read."""
    root = tree / DASHBOARDS_DIR
    names = folders(tree)
    found: dict[str, Dashboard] = {}
    problems: list[str] = []
    for path in sorted(root.rglob("*.json")):
        relative = path.relative_to(root)
        try:
            body = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            problems.append(f"{relative}: not JSON ({error})")
            continue
        if not isinstance(body, dict):
            problems.append(f"{relative}: not a dashboard")
            continue
        uid = str(body.get("uid") or path.stem)
        directory = str(relative.parent) if relative.parent != Path(".") else ""
        folder = names.get(directory, directory or "General")
        if uid in found:
            problems.append(f"{relative}: uid {uid} is also the uid of {found[uid].file}")
            continue
        found[uid] = Dashboard(uid, str(relative), folder, body)
    return found, problems


def panels(dashboard: dict[str, Any]) -> list[Panel]:
    """Every panel and row in order, a row's nested panels (a folded row) after it."""
    found: list[Panel] = []
    row: str | None = None
    for body in dashboard.get("panels") or []:
        if not isinstance(body, dict):
            continue
        if body.get("type") == "row":
            row = str(body.get("title") or "")
            found.append(Panel(None, body))
            found += [Panel(row, nested) for nested in body.get("panels") or [] if isinstance(nested, dict)]
        else:
            found.append(Panel(row, body))
    return found


# --- identifying panels ---------------------------------------------------------------------------

def keys(base: list[Panel], head: list[Panel]) -> tuple[list[str], list[str]]:
    """A name for each panel of both sides: its title when the title is unique in the dashboard
    (on both sides), else "row / title", else its id."""
    def plain(p: Panel) -> str:
        return ("row " if p.is_row else "") + p.title

    def in_row(p: Panel) -> str:
        return f"{p.row} / {p.title}" if p.row is not None else p.title

    def by_id(p: Panel) -> str:
        return f"{'row' if p.is_row else 'panel'} id {p.body.get('id')}"

    names: list[list[str]] = []
    plain_counts = [Counter(plain(p) for p in side if p.title) for side in (base, head)]
    row_counts = [Counter(in_row(p) for p in side if p.title) for side in (base, head)]
    for side in (base, head):
        found = []
        for p in side:
            if p.title and all(c[plain(p)] <= 1 for c in plain_counts):
                found.append(plain(p))
            elif p.title and all(c[in_row(p)] <= 1 for c in row_counts):
                found.append(in_row(p))
            else:
                found.append(by_id(p))
        names.append(found)
    return names[0], names[1]


def queries(panel: dict[str, Any]) -> dict[str, str]:
    """The panel's query text by refId (PromQL and LogQL `expr`, or a data source's `query`)."""
    found = {}
    for n, target in enumerate(panel.get("targets") or []):
        ref = str(target.get("refId") or f"#{n + 1}")
        text = target.get("expr", target.get("query"))
        found[ref] = text if isinstance(text, str) else json.dumps(text, sort_keys=True)
    return found


def field_default(panel: dict[str, Any], key: str) -> Any:
    return ((panel.get("fieldConfig") or {}).get("defaults") or {}).get(key)


def thresholds(panel: dict[str, Any]) -> str:
    """Threshold steps as read in Grafana: "green, red from 0.05" (percentage mode marked)."""
    value = field_default(panel, "thresholds")
    if not value:
        return "none"
    steps = [f"{s.get('color')}" + (f" from {_number(s['value'])}" if s.get("value") is not None else "")
             for s in value.get("steps") or []]
    mode = value.get("mode", "absolute")
    return ", ".join(steps) + (f" ({mode})" if mode != "absolute" else "")


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def links(panel: dict[str, Any]) -> list[str]:
    return [f"{link.get('title') or '(untitled)'}: {link.get('url', '')}" for link in panel.get("links") or []]


# --- comparing ------------------------------------------------------------------------------------------

def _inline(value: Any) -> str:
    if value is None:
        return "unset"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= INLINE else "(long value)"


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaves as dotted paths; lists of named items (template variables, queries) by name."""
    if isinstance(value, dict):
        found: dict[str, Any] = {}
        for k, v in value.items():
            found.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return found
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for name in ("name", "refId"):
            named = [v.get(name) for v in value]
            if all(isinstance(n, str) for n in named) and len(set(named)) == len(named):
                found = {}
                for n, v in zip(named, value, strict=True):
                    found.update(_flat(v, f"{prefix}[{n}]"))
                return found
    return {prefix: value}


def other_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """`path: old -> new` for each leaf that differs."""
    a, b = _flat(before), _flat(after)
    lines = []
    for path in sorted(set(a) | set(b)):
        if a.get(path) == b.get(path):
            continue
        old, new = _inline(a.get(path)), _inline(b.get(path))
        lines.append(f"{path}: {old} -> {new}" if "(long value)" not in (old, new) else f"{path} changed")
    return lines


def _without(panel: dict[str, Any]) -> dict[str, Any]:
    """What of a panel is neither layout nor compared on its own."""
    rest = {k: v for k, v in panel.items() if k not in LAYOUT_KEYS | PANEL_KEYS}
    defaults = (rest.get("fieldConfig") or {}).get("defaults")
    if isinstance(defaults, dict):
        rest["fieldConfig"] = {**rest["fieldConfig"],
                               "defaults": {k: v for k, v in defaults.items() if k not in FIELD_DEFAULTS}}
    return rest


def _target_rest(panel: dict[str, Any]) -> dict[str, Any]:
    """Query settings beside the query text (legend, interval, data source), by refId."""
    found = {}
    for n, target in enumerate(panel.get("targets") or []):
        ref = str(target.get("refId") or f"#{n + 1}")
        found[ref] = {k: v for k, v in target.items() if k not in ("expr", "query", "refId")}
    return found


def expression_diff(before: str, after: str) -> Block:
    lines = difflib.unified_diff(before.splitlines(), after.splitlines(), "base", "head", lineterm="", n=3)
    return Block("\n".join(lines))


def panel_changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[list[Detail], dict[str, Any]]:
    details: list[Detail] = []
    data: dict[str, Any] = {}
    for key in ("title", "type"):
        if before.get(key) != after.get(key):
            details.append(f"{key}: {_inline(before.get(key))} -> {_inline(after.get(key))}")
            data[key] = {"before": before.get(key), "after": after.get(key)}
    old_queries, new_queries = queries(before), queries(after)
    changed_queries: dict[str, Any] = {}
    for ref in sorted(set(old_queries) | set(new_queries)):
        old, new = old_queries.get(ref), new_queries.get(ref)
        if old == new:
            continue
        changed_queries[ref] = {"before": old, "after": new}
        if old is None:
            details.append(f"query {ref} added: {new}")
        elif new is None:
            details.append(f"query {ref} removed: {old}")
        else:
            details.append(f"query {ref} changed:")
            details.append(expression_diff(old, new))
    if changed_queries:
        data["queries"] = changed_queries
    query_settings = other_changes(_target_rest(before), _target_rest(after))
    # A query added or removed is reported above, its settings with it.
    query_settings = [line for line in query_settings
                      if line.split(".", 1)[0] in set(old_queries) & set(new_queries)]
    for line in query_settings:
        details.append(f"query {line}")
    if query_settings:
        data["query_settings"] = query_settings
    if field_default(before, "unit") != field_default(after, "unit"):
        details.append(f"unit: {_inline(field_default(before, 'unit'))} -> {_inline(field_default(after, 'unit'))}")
        data["unit"] = {"before": field_default(before, "unit"), "after": field_default(after, "unit")}
    if field_default(before, "thresholds") != field_default(after, "thresholds"):
        details.append(f"thresholds: {thresholds(before)} -> {thresholds(after)}")
        data["thresholds"] = {"before": field_default(before, "thresholds"),
                              "after": field_default(after, "thresholds")}
    old_links, new_links = links(before), links(after)
    if old_links != new_links:
        removed = [link for link in old_links if link not in new_links]
        added = [link for link in new_links if link not in old_links]
        details += [f"link removed: {link}" for link in removed]
        details += [f"link added: {link}" for link in added]
        if not (added or removed):
            details.append("links reordered")
        data["links"] = {"before": old_links, "after": new_links}
    others = other_changes(_without(before), _without(after))
    details += others
    if others:
        data["other"] = others
    return details, data


def _panel_summary(panel: Panel) -> tuple[list[Detail], dict[str, Any]]:
    body = panel.body
    if panel.is_row:
        return [], {"row": panel.title}
    lines: list[Detail] = [f"type: {body.get('type')}"]
    if panel.row:
        lines.append(f"row: {panel.row}")
    lines += [f"query {ref}: {text}" for ref, text in queries(body).items()]
    if field_default(body, "unit") is not None:
        lines.append(f"unit: {field_default(body, 'unit')}")
    if field_default(body, "thresholds"):
        lines.append(f"thresholds: {thresholds(body)}")
    lines += [f"link: {link}" for link in links(body)]
    return lines, {"title": panel.title, "type": body.get("type"), "row": panel.row, "queries": queries(body),
                   "unit": field_default(body, "unit"), "thresholds": field_default(body, "thresholds"),
                   "links": links(body)}


def _layout(panel: dict[str, Any]) -> Any:
    return {k: panel.get(k) for k in LAYOUT_KEYS}


def _pairs(base: list[Panel], head: list[Panel]) -> tuple[list[tuple[int, int]], list[int], list[int], list[str],
                                                          list[str]]:
    """Panels paired by name; then a renamed panel: same type and queries, or same id, type and place."""
    base_names, head_names = keys(base, head)
    passes = [
        lambda side, names, i: names[i],
        lambda side, names, i: ("same content", side[i].is_row, side[i].body.get("type"),
                                json.dumps(queries(side[i].body), sort_keys=True)) if queries(side[i].body) else None,
        lambda side, names, i: ("same place", side[i].body.get("id"), side[i].body.get("type"),
                                json.dumps(side[i].body.get("gridPos"), sort_keys=True)),
    ]
    left_base, left_head = list(range(len(base))), list(range(len(head)))
    pairs: list[tuple[int, int]] = []
    for key in passes:
        waiting: dict[Any, list[int]] = {}
        for i in left_base:
            k = key(base, base_names, i)
            if k is not None:
                waiting.setdefault(k, []).append(i)
        still = []
        for j in left_head:
            k = key(head, head_names, j)
            if k is not None and waiting.get(k):
                pairs.append((waiting[k].pop(0), j))
            else:
                still.append(j)
        paired = {i for i, _ in pairs}
        left_base = [i for i in left_base if i not in paired]
        left_head = still
    return sorted(pairs, key=lambda p: p[1]), left_base, left_head, base_names, head_names


def _subject(panel: Panel, name: str, dashboard: Dashboard) -> str:
    noun = "row" if panel.is_row else "panel"
    shown = panel.title or name
    where = f" (row {panel.row!r})" if panel.row and not panel.is_row and name.startswith(f"{panel.row} / ") else ""
    return f"{noun} {shown!r}{where} of dashboard {dashboard.uid}"


def compare_dashboard(before: Dashboard, after: Dashboard) -> Iterator[Change]:
    details: list[Detail] = []
    data: dict[str, Any] = {"uid": after.uid}
    if before.title != after.title:
        details.append(f"title: {before.title} -> {after.title}")
        data["title"] = {"before": before.title, "after": after.title}
    if before.folder != after.folder:
        details.append(f"folder: {before.folder} -> {after.folder}")
        data["folder"] = {"before": before.folder, "after": after.folder}
    settings = other_changes({k: v for k, v in before.body.items() if k not in DASHBOARD_NOISE},
                             {k: v for k, v in after.body.items() if k not in DASHBOARD_NOISE})
    details += settings
    if settings:
        data["settings"] = settings
    old, new = panels(before.body), panels(after.body)
    pairs, removed, added, old_names, new_names = _pairs(old, new)
    panel_events: list[tuple[int, Change]] = []
    moved = False
    for i, j in pairs:
        changed, facts = panel_changes(old[i].body, new[j].body)
        if old[i].row != new[j].row and not old[i].is_row:
            changed.append(f"row: {old[i].row} -> {new[j].row}")
            facts["row"] = {"before": old[i].row, "after": new[j].row}
        if changed:
            panel_events.append((j, Change("changed", _subject(old[i], old_names[i], before), tuple(changed),
                                           {"dashboard": after.uid, "panel": old_names[i], **facts})))
        elif _layout(old[i].body) != _layout(new[j].body):
            moved = True
    if [i for i, _ in sorted(pairs, key=lambda p: p[1])] != sorted(i for i, _ in pairs):
        moved = True
    for j in added:
        lines, facts = _panel_summary(new[j])
        panel_events.append((j, Change("added", _subject(new[j], new_names[j], after), tuple(lines),
                                       {"dashboard": after.uid, "panel": new_names[j], **facts})))
    for i in removed:
        lines, facts = _panel_summary(old[i])
        panel_events.append((len(new) + i, Change("removed", _subject(old[i], old_names[i], before), tuple(lines),
                                                  {"dashboard": after.uid, "panel": old_names[i], **facts})))
    if moved and not details and not panel_events:
        details.append("layout changed")
        data["layout"] = True
    if details:
        yield Change("changed", after.name, tuple(details), data)
    for _, change in sorted(panel_events, key=lambda e: e[0]):
        yield change


def _dashboard_summary(dashboard: Dashboard) -> tuple[list[Detail], dict[str, Any]]:
    found = panels(dashboard.body)
    titles = [p.title for p in found if not p.is_row]
    rows = [p.title for p in found if p.is_row]
    lines: list[Detail] = [f"folder: {dashboard.folder}", f"{len(titles)} panels in {len(rows)} rows"]
    if titles:
        lines.append("panels: " + ", ".join(repr(t) for t in titles))
    return lines, {"uid": dashboard.uid, "title": dashboard.title, "folder": dashboard.folder,
                   "file": dashboard.file, "rows": rows, "panels": titles}


def section(trees: Trees) -> Section:
    base_dir, head_dir = (t / DASHBOARDS_DIR for t in (trees.base, trees.head))
    notes: list[str] = []
    if not base_dir.is_dir() and not head_dir.is_dir():
        return Section(TITLE)
    if not base_dir.is_dir():
        notes.append("The base has no dashboards: every dashboard of the head is new.")
    if not head_dir.is_dir():
        notes.append("The head has no dashboards.")
    before, base_problems = dashboards(trees.base)
    after, head_problems = dashboards(trees.head)
    notes += [f"base: {p}" for p in base_problems]
    notes += [f"head: {p}" for p in head_problems]
    changes: list[Change] = []
    for uid in sorted(set(before) | set(after)):
        if uid not in after:
            lines, data = _dashboard_summary(before[uid])
            changes.append(Change("removed", before[uid].name, tuple(lines), data))
        elif uid not in before:
            lines, data = _dashboard_summary(after[uid])
            changes.append(Change("added", after[uid].name, tuple(lines), data))
        elif before[uid].body != after[uid].body or before[uid].folder != after[uid].folder:
            changes += list(compare_dashboard(before[uid], after[uid]))
    return Section(TITLE, tuple(changes), tuple(notes), failed=bool(head_problems))
