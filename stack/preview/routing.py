"""The Routing section: receivers, routes, inhibit rules, timings and global settings of the
rendered Alertmanager config, and the existing alerts that now reach another receiver (asked of
amtool on both configs).

No secret is ever printed: a setting whose name says it holds one (password, token, key, URL...)
is shown as "changed", a URL by its host only; `*_file` settings are paths and shown as they are.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from stack import layout
from stack.preview import receivers as amtool
from stack.preview import trees as exported
from stack.preview.model import Change, Detail, Section, Trees
from stack.secret_names import may_hold_secret

TITLE = "Routing"
ROOT = "route"
SEP = " > "
# Alertmanager's defaults for the root route (children inherit their parent's values).
TIMINGS = ("group_wait", "group_interval", "repeat_interval")
ROOT_DEFAULTS: dict[str, Any] = {"group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h",
                                 "group_by": [], "continue": False}
# Route keys with their own report line (the rest are compared generically).
ROUTE_KEYS = ("receiver", "matchers", "continue", "group_by", *TIMINGS,
              "mute_time_intervals", "active_time_intervals")
ROUTE_MATCHER_KEYS = frozenset({"matchers", "match", "match_re"})
CONFIG_KEYS = frozenset({"global", "route", "receivers", "inhibit_rules", "templates"})
# Settings an integration is named by (see integration()).
NAMED_BY = ("channel", "to", "url", "url_file", "chat_id")

T = TypeVar("T")
# A tree with no prometheus.yml (see alerts()).
NO_TREE = Path("/nonexistent/stack-preview-tree")


# --- values as a reviewer reads them ------------------------------------------------------------

def secret(key: str) -> bool:
    """Whether a setting of this dotted name may hold a secret (a `*_file` setting holds a path).
    No section's exception applies: VictorOps' routing key is masked like PagerDuty's."""
    return may_hold_secret(str(key).rsplit(".", 1)[-1])


def _holds_secret(value: Any) -> bool:
    if isinstance(value, dict):
        return any(secret(k) or _holds_secret(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_secret(v) for v in value)
    return False


def shown(key: str, value: Any) -> str:
    """A setting's value, safe to print: secrets masked, URLs by their host."""
    name = key.rsplit(".", 1)[-1].lower()
    if value is None:
        return "unset"
    if not secret(key) and not _holds_secret(value):
        return value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
    if "url" in name and isinstance(value, str):
        return f"a URL on {host(value)}"
    return "(secret, not shown)"


def host(url: str) -> str:
    """The host (and port) of a URL, never its user, path or query (they may hold a token)."""
    try:
        parts = urlsplit(url)
        name = parts.hostname or "?"
        return f"{name}:{parts.port}" if parts.port else name
    except ValueError:
        return "?"


def flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys (lists stay whole)."""
    if isinstance(value, dict):
        found: dict[str, Any] = {}
        for k, v in value.items():
            found.update(flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return found
    return {prefix: value}


def setting_changes(before: dict[str, Any], after: dict[str, Any], skip: Iterable[str] = ()) -> list[str]:
    """`key: old -> new` for every leaf setting that differs (secrets masked)."""
    a, b = flat(before), flat(after)
    skipped = set(skip)
    lines = []
    for key in sorted(set(a) | set(b)):
        if key.split(".", 1)[0] in skipped or a.get(key) == b.get(key):
            continue
        old, new = shown(key, a.get(key)), shown(key, b.get(key))
        lines.append(f"{key}: {old} -> {new}" if old != new else f"{key} changed")
    return lines


# --- matchers -----------------------------------------------------------------------------------

_MATCHER = re.compile(r'^\s*(?P<name>[^=!~\s]+|"[^"]*")\s*(?P<op>=~|!~|!=|=)\s*(?P<value>.*?)\s*$')


def parsed(text: str) -> tuple[str, str, str] | None:
    """A matcher string as (label, operator, value); None when it is not understood."""
    found = _MATCHER.match(text)
    if not found:
        return None
    name, op, value = found["name"].strip('"'), found["op"], found["value"]
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            value = json.loads(value)
        except ValueError:
            value = value[1:-1]
    return name, op, value


def _matcher(text: str) -> str:
    """One matcher in a canonical spelling: name="value" (quotes and spaces normalized)."""
    found = parsed(text)
    if found is None:
        return text.strip()
    name, op, value = found
    return f"{name}{op}{json.dumps(value, ensure_ascii=False)}"


def matchers(node: dict[str, Any], prefix: str = "") -> tuple[str, ...]:
    """`<prefix>matchers`, `<prefix>match` and `<prefix>match_re` as one sorted tuple."""
    found = [_matcher(m) for m in node.get(f"{prefix}matchers") or []]
    found += [f"{k}={json.dumps(str(v), ensure_ascii=False)}" for k, v in (node.get(f"{prefix}match") or {}).items()]
    found += [f"{k}=~{json.dumps(str(v), ensure_ascii=False)}"
              for k, v in (node.get(f"{prefix}match_re") or {}).items()]
    return tuple(sorted(found))


def listed(values: Sequence[str]) -> str:
    return ", ".join(values) if values else "none"


# --- pairing base and head items ------------------------------------------------------------------

def pair(base: Sequence[T], head: Sequence[T],
         keys: Sequence[Callable[[T], Hashable]]) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Pair items of both sides, pass by pass (each key looser than the one before), in order.
    Returns the pairs (base index, head index) in head order, the unpaired base and head indexes."""
    left_base, left_head = list(range(len(base))), list(range(len(head)))
    pairs: list[tuple[int, int]] = []
    for key in keys:
        waiting: dict[Hashable, list[int]] = {}
        for i in left_base:
            waiting.setdefault(key(base[i]), []).append(i)
        still_head = []
        for j in left_head:
            candidates = waiting.get(key(head[j]))
            if candidates:
                pairs.append((candidates.pop(0), j))
            else:
                still_head.append(j)
        paired = {i for i, _ in pairs}
        left_base = [i for i in left_base if i not in paired]
        left_head = still_head
    return sorted(pairs, key=lambda p: p[1]), left_base, left_head


# --- receivers --------------------------------------------------------------------------------------

def integrations(receiver: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """{"slack": [config, ...], ...} of a receiver."""
    return {k.removesuffix("_configs"): list(v or []) for k, v in sorted(receiver.items())
            if k.endswith("_configs")}


def integration(kind: str, config: dict[str, Any]) -> str:
    """An integration as a reviewer names it: "slack #alerts", "email to x@y", "webhook to host"."""
    if kind == "slack" and config.get("channel"):
        return f"slack {config['channel']}"
    if kind == "email" and config.get("to"):
        return f"email to {config['to']}"
    if kind in {"webhook", "msteams", "msteamsv2", "discord", "webex", "rocketchat", "jira"}:
        if isinstance(config.get("url"), str):
            return f"{kind} to {host(config['url'])}"
        if config.get("url_file"):
            return f"{kind} to the URL in {config['url_file']}"
    if kind == "telegram" and config.get("chat_id") is not None:
        return f"telegram chat {config['chat_id']}"
    return kind


def described(receiver: dict[str, Any]) -> list[str]:
    return [integration(kind, c) for kind, configs in integrations(receiver).items() for c in configs] \
        or ["no integration: notifications are dropped"]


def receiver_changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    details: list[str] = []
    data: dict[str, Any] = {"added": [], "removed": [], "changed": []}
    a, b = integrations(before), integrations(after)
    for kind in sorted(set(a) | set(b)):
        olds, news = a.get(kind, []), b.get(kind, [])
        pairs, removed, added = pair(olds, news, [lambda c, k=kind: integration(k, c), lambda c: 0])
        for i in removed:
            details.append(f"removed {integration(kind, olds[i])}")
            data["removed"].append(integration(kind, olds[i]))
        for j in added:
            details.append(f"added {integration(kind, news[j])}")
            data["added"].append(integration(kind, news[j]))
        for i, j in pairs:
            old, new = integration(kind, olds[i]), integration(kind, news[j])
            # A new channel, address or host is already in the integration's name.
            settings = setting_changes(olds[i], news[j], skip=NAMED_BY if old != new else ())
            if old == new and not settings:
                continue
            name = f"{old} -> {new}" if old != new else old
            details.append(f"{name}" + (f": {'; '.join(settings)}" if settings else ""))
            data["changed"].append({"before": old, "after": new, "settings": settings})
    if not (a or b) and before != after:
        details.append("settings changed")
    return details, data


def receivers_section(base: dict[str, Any], head: dict[str, Any]) -> list[Change]:
    by_name = [{r.get("name"): r for r in config.get("receivers") or []} for config in (base, head)]
    before, after = by_name
    changes = []
    for name in sorted(set(before) | set(after), key=str):
        if name not in after:
            changes.append(Change("removed", f"receiver {name}", tuple(described(before[name])),
                                  {"receiver": name, "integrations": described(before[name])}))
        elif name not in before:
            changes.append(Change("added", f"receiver {name}", tuple(described(after[name])),
                                  {"receiver": name, "integrations": described(after[name])}))
        elif before[name] != after[name]:
            details, data = receiver_changes(before[name], after[name])
            changes.append(Change("changed", f"receiver {name}", tuple(details),
                                  {"receiver": name, "before": described(before[name]),
                                   "after": described(after[name]), **data}))
    return changes


# --- routes -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Route:
    """A route with what it inherits: `path` names it in the tree."""

    path: str
    node: dict[str, Any]
    effective: dict[str, Any]

    @property
    def receiver(self) -> str | None:
        return self.effective.get("receiver")

    @property
    def matchers(self) -> tuple[str, ...]:
        return matchers(self.node)

    @property
    def children(self) -> list[dict[str, Any]]:
        return list(self.node.get("routes") or [])


def label(node: dict[str, Any], receiver: str | None) -> str:
    found = matchers(node)
    return f"{receiver or '?'}" + (f" ({', '.join(found)})" if found else "")


def child(parent: Route, node: dict[str, Any]) -> Route:
    inherited = {k: v for k, v in parent.effective.items() if k not in ("continue",)}
    effective = {**inherited, "continue": False, **{k: node[k] for k in ("receiver", "group_by", *TIMINGS,
                                                                        "continue") if k in node}}
    return Route(parent.path + SEP + label(node, effective.get("receiver")), node, effective)


def root(config: dict[str, Any]) -> Route:
    node = config.get("route") or {}
    return Route(ROOT, node, {**ROOT_DEFAULTS, **{k: node[k] for k in ("receiver", "group_by", *TIMINGS, "continue")
                                                  if k in node}})


def _value(route: Route, key: str) -> Any:
    if key == "matchers":
        return list(route.matchers)
    return route.node.get(key)


def _shown_route_value(route: Route, key: str) -> str:
    if key == "matchers":
        return listed(route.matchers)
    if key in route.node:
        value = route.node[key]
    elif key == "continue":
        return "false"
    elif key in route.effective:
        inherited = route.effective[key]
        value_text = listed(inherited) if isinstance(inherited, list) else shown(key, inherited)
        return f"{value_text} (inherited)" if route.path != ROOT else f"{value_text} (default)"
    else:
        return "unset"
    return listed([str(v) for v in value]) if isinstance(value, list) else shown(key, value)


def route_changes(before: Route, after: Route) -> tuple[list[str], dict[str, Any]]:
    details: list[str] = []
    data: dict[str, Any] = {}
    for key in ROUTE_KEYS:
        if key == "receiver":
            old, new = before.receiver, after.receiver
        else:
            old, new = _value(before, key), _value(after, key)
        if key == "continue":
            old, new = bool(old), bool(new)
        if key in {"group_by"} and old is not None and new is not None:
            old, new = sorted(old), sorted(new)
        if old == new:
            continue
        details.append(f"{key}: {_shown_route_value(before, key)} -> {_shown_route_value(after, key)}")
        data[key] = {"before": old, "after": new}
    skip = {*ROUTE_KEYS, *ROUTE_MATCHER_KEYS, "routes"}
    others = setting_changes({k: v for k, v in before.node.items() if k not in skip},
                             {k: v for k, v in after.node.items() if k not in skip})
    details += others
    if others:
        data["other"] = others
    return details, data


def _route_data(route: Route) -> dict[str, Any]:
    return {"path": route.path, "receiver": route.receiver, "matchers": list(route.matchers),
            "continue": bool(route.node.get("continue", False)),
            **{k: route.node[k] for k in ("group_by", *TIMINGS) if k in route.node}}


def _route_summary(route: Route) -> list[str]:
    lines = [f"receiver: {route.receiver}", f"matchers: {listed(route.matchers)}"]
    if route.node.get("continue"):
        lines.append("continue: true")
    lines += [f"{k}: {_shown_route_value(route, k)}" for k in ("group_by", *TIMINGS) if k in route.node]
    return lines


def _subtree(route: Route) -> Iterator[Route]:
    yield route
    for node in route.children:
        yield from _subtree(child(route, node))


def compare_routes(before: Route, after: Route, position: tuple[int, int] | None = None) -> Iterator[Change]:
    """Changes of a paired route and its subtree, in tree order."""
    details, data = route_changes(before, after)
    if position and position[0] != position[1]:
        details.append(f"order among its siblings: {position[0] + 1} -> {position[1] + 1} (the first match wins "
                       "unless a route continues)")
        data["order"] = {"before": position[0] + 1, "after": position[1] + 1}
    if details:
        yield Change("changed", before.path, tuple(details),
                     {"path": before.path, "path_after": after.path, **data})
    olds = [child(before, n) for n in before.children]
    news = [child(after, n) for n in after.children]
    pairs, removed, added = pair(olds, news, [
        lambda r: (r.matchers, r.receiver),
        lambda r: r.matchers,
        lambda r: r.receiver,
    ])
    # The order of the routes that stay: rank among the paired siblings, before and after.
    base_rank = {i: n for n, i in enumerate(sorted(i for i, _ in pairs))}
    head_rank = {j: n for n, j in enumerate(sorted(j for _, j in pairs))}
    events: list[tuple[int, int, Iterator[Change]]] = []
    for i, j in pairs:
        events.append((j, 0, compare_routes(olds[i], news[j], (base_rank[i], head_rank[j]))))
    for j in added:
        events.append((j, 0, iter([Change("added", news[j].path, tuple(_route_summary(news[j])),
                                          {"path": news[j].path, "route": _route_data(news[j]),
                                           "subroutes": [_route_data(r) for r in _subtree(news[j])][1:]})])))
    for i in removed:
        events.append((len(news) + i, 1, iter([Change("removed", olds[i].path,
                                                      tuple(_route_summary(olds[i])),
                                                      {"path": olds[i].path, "route": _route_data(olds[i]),
                                                       "subroutes": [_route_data(r)
                                                                     for r in _subtree(olds[i])][1:]})])))
    for _, _, found in sorted(events, key=lambda e: (e[0], e[1])):
        yield from found


# --- inhibit rules -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Inhibition:
    source: tuple[str, ...]
    target: tuple[str, ...]
    equal: tuple[str, ...]

    @classmethod
    def of(cls, rule: dict[str, Any]) -> Inhibition:
        return cls(matchers(rule, "source_"), matchers(rule, "target_"), tuple(sorted(rule.get("equal") or [])))

    @property
    def name(self) -> str:
        return f"inhibit rule ({listed(self.source)} mutes {listed(self.target)})"

    def lines(self) -> list[str]:
        return [f"source: {listed(self.source)}", f"target: {listed(self.target)}", f"equal: {listed(self.equal)}"]

    def data(self) -> dict[str, Any]:
        return {"source": list(self.source), "target": list(self.target), "equal": list(self.equal)}


def inhibit_section(base: dict[str, Any], head: dict[str, Any]) -> list[Change]:
    olds = [Inhibition.of(r) for r in base.get("inhibit_rules") or []]
    news = [Inhibition.of(r) for r in head.get("inhibit_rules") or []]
    pairs, removed, added = pair(olds, news, [
        lambda r: r, lambda r: (r.source, r.target), lambda r: r.source, lambda r: r.target])
    changes = []
    for i, j in pairs:
        old, new = olds[i], news[j]
        if old == new:
            continue
        details = [f"{part}: {listed(getattr(old, part))} -> {listed(getattr(new, part))}"
                   for part in ("source", "target", "equal") if getattr(old, part) != getattr(new, part)]
        changes.append(Change("changed", old.name, tuple(details), {"before": old.data(), "after": new.data()}))
    changes += [Change("added", news[j].name, tuple(news[j].lines()), news[j].data()) for j in added]
    changes += [Change("removed", olds[i].name, tuple(olds[i].lines()), olds[i].data()) for i in removed]
    return changes


# --- global settings, templates, time intervals ----------------------------------------------------------

def global_section(base: dict[str, Any], head: dict[str, Any]) -> list[Change]:
    changes = []
    settings = setting_changes(base.get("global") or {}, head.get("global") or {})
    if settings:
        changes.append(Change("changed", "global settings", tuple(settings), {"settings": settings}))
    old_templates, new_templates = list(base.get("templates") or []), list(head.get("templates") or [])
    if old_templates != new_templates:
        line = f"templates: {listed(old_templates)} -> {listed(new_templates)}"
        changes.append(Change("changed", "notification templates", (line,),
                              {"before": old_templates, "after": new_templates}))
    for key in sorted((set(base) | set(head)) - CONFIG_KEYS):
        old, new = base.get(key), head.get(key)
        if old == new:
            continue
        if key in {"time_intervals", "mute_time_intervals"}:
            changes += _named_list(key, old or [], new or [])
        else:
            changes.append(Change("changed", f"setting {key}", tuple(setting_changes({key: old}, {key: new})),
                                  {"key": key}))
    return changes


def _named_list(key: str, before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[Change]:
    a = {item.get("name"): item for item in before}
    b = {item.get("name"): item for item in after}
    noun = key.removesuffix("s").replace("_", " ")
    changes = []
    for name in sorted(set(a) | set(b), key=str):
        if name not in b:
            changes.append(Change("removed", f"{noun} {name}", (), {"name": name}))
        elif name not in a:
            changes.append(Change("added", f"{noun} {name}", (), {"name": name}))
        elif a[name] != b[name]:
            lines = setting_changes(a[name], b[name])
            changes.append(Change("changed", f"{noun} {name}", tuple(lines), {"name": name, "settings": lines}))
    return changes


# --- alerts reaching another receiver ------------------------------------------------------------------

@dataclass(frozen=True)
class Alert:
    key: Hashable
    name: str
    labels: dict[str, str]


def _distinguishing(labels: Sequence[dict[str, str]]) -> list[str]:
    """The fewest labels that tell same-named alerts apart (greedy: the most telling first)."""
    keys = sorted({k for ls in labels for k in ls} - {"alertname"})
    chosen: list[str] = []
    while len({tuple(ls.get(k) for k in chosen) for ls in labels}) < len(labels):
        options = [k for k in keys if k not in chosen]
        if not options:
            break
        best = max(options, key=lambda k: (len({tuple(ls.get(c) for c in [*chosen, k]) for ls in labels}),
                                           -options.index(k)))
        chosen.append(best)
    return chosen


def alerts(tree: Path) -> list[Alert]:
    """Every alerting rule with the labels it reaches Alertmanager with. Same-named rules (one
    burn-rate alert per SLO and tier) are told apart by file and order, shown by their labels."""
    rules = [r for r in exported.rules(tree) if r.is_alert]
    by_name: dict[str, list[exported.Rule]] = {}
    for rule in rules:
        by_name.setdefault(rule.name, []).append(rule)
    # alert_labels reads prometheus.yml for each rule: read its external labels once, and take the
    # rule's own labels from alert_labels with no tree (no external labels), merged the same way.
    external = exported.external_labels(tree)
    found = []
    for name, same in by_name.items():
        labels = [{**external, **exported.alert_labels(NO_TREE, r)} for r in same]
        if len(same) == 1:
            found.append(Alert(name, name, labels[0]))
            continue
        shown_keys = _distinguishing(labels)
        seen: dict[str, int] = {}
        for rule, ls in zip(same, labels, strict=True):
            n = seen[rule.file] = seen.get(rule.file, -1) + 1
            text = ", ".join(f"{k}={json.dumps(ls.get(k, ''), ensure_ascii=False)}" for k in shown_keys)
            found.append(Alert((name, rule.file, n), f"{name}{{{text}}}", ls))
    return found


def _route_matchers(node: dict[str, Any]) -> Iterator[str | tuple[str, str, str]]:
    """Every matcher of a routing tree, parsed (the text when it is not understood)."""
    for text in node.get("matchers") or []:
        yield parsed(text) or text
    yield from ((k, "=", str(v)) for k, v in (node.get("match") or {}).items())
    yield from ((k, "=~", str(v)) for k, v in (node.get("match_re") or {}).items())
    for sub in node.get("routes") or []:
        yield from _route_matchers(sub)


def projection(*configs: dict[str, Any]) -> Callable[[dict[str, str]], dict[str, str]]:
    """What of an alert's labels the routing trees can tell apart: a label no matcher names is
    dropped, and a value no equality matcher names becomes one stand-in value (regular expressions
    keep their labels' values). Alerts with the same projection reach the same receivers, so amtool
    is asked once for them. The identity when a matcher is not understood."""
    literals: dict[str, set[str]] = {}
    regex: set[str] = set()
    for config in configs:
        for found in _route_matchers(config.get("route") or {}):
            if isinstance(found, str):
                return dict
            name, op, value = found
            literals.setdefault(name, set())
            if op in ("=~", "!~"):
                regex.add(name)
            else:
                literals[name].add(value)

    def project(labels: dict[str, str]) -> dict[str, str]:
        kept = {}
        for name, values in literals.items():
            value = labels.get(name, "")
            if value == "":
                continue
            if name in regex or value in values:
                kept[name] = value
            else:
                kept[name] = "other" + "_" * max((len(v) for v in values), default=0)
        return kept

    return project


def skeleton(node: dict[str, Any]) -> dict[str, Any]:
    """What of a routing tree decides where an alert goes (not when nor how it is grouped)."""
    return {"receiver": node.get("receiver"), "matchers": matchers(node), "continue": bool(node.get("continue")),
            "routes": [skeleton(sub) for sub in node.get("routes") or []]}


def rerouted(trees: Trees, base: dict[str, Any], head: dict[str, Any]) -> list[dict[str, Any]]:
    """Alerts of both trees whose receivers differ (amtool on each side's config). An alert with
    the same labels under the same routing tree reaches the same receivers: amtool is not asked."""
    olds = {a.key: a for a in alerts(trees.base)}
    news = {a.key: a for a in alerts(trees.head)}
    same_routes = skeleton(base.get("route") or {}) == skeleton(head.get("route") or {})
    both = [k for k in olds if k in news and not (same_routes and olds[k].labels == news[k].labels)]
    if not both:
        return []
    project = projection(base, head)
    with ThreadPoolExecutor(max_workers=2) as pool:
        before_run = pool.submit(_reach, trees.base / layout.ALERTMANAGER_CONFIG,
                                 [project(olds[k].labels) for k in both])
        after_run = pool.submit(_reach, trees.head / layout.ALERTMANAGER_CONFIG,
                                [project(news[k].labels) for k in both])
        # The head's error first: a broken head fails the section.
        after = after_run.result()
        before = before_run.result()
    found = [{"alert": olds[k].name, "before": list(b), "after": list(a)}
             for k, b, a in zip(both, before, after, strict=True) if b != a]
    return sorted(found, key=lambda f: f["alert"])


def _reach(config: Path, label_sets: list[dict[str, str]]) -> list[tuple[str, ...]]:
    """amtool once per distinct label set."""
    distinct = sorted({json.dumps(ls, sort_keys=True) for ls in label_sets})
    answers = dict(zip(distinct, amtool.reached(config, [json.loads(d) for d in distinct]), strict=True))
    return [answers[json.dumps(ls, sort_keys=True)] for ls in label_sets]


def rerouted_change(found: list[dict[str, Any]]) -> Change:
    details: list[Detail] = [f"{f['alert']}: {listed(f['before'])} -> {listed(f['after'])}" for f in found]
    what = "alert now reaches" if len(found) == 1 else "alerts now reach"
    return Change("changed", f"{len(found)} existing {what} other receivers", tuple(details),
                  {"alerts": found})


# --- the section ------------------------------------------------------------------------------------------

def section(trees: Trees) -> Section:
    base_path, head_path = (t / layout.ALERTMANAGER_CONFIG for t in (trees.base, trees.head))
    notes: list[str] = []
    if not base_path.exists() and not head_path.exists():
        return Section(TITLE)
    if not base_path.exists():
        notes.append("The base has no Alertmanager config: everything in the head's is new.")
    if not head_path.exists():
        notes.append("The head has no Alertmanager config: Alertmanager is no longer generated.")
    base, head = exported.alertmanager_config(trees.base), exported.alertmanager_config(trees.head)
    if base == head:
        return Section(TITLE, notes=tuple(notes))
    changes: list[Change] = []
    failed = False
    if base_path.exists() and head_path.exists():
        try:
            found = rerouted(trees, base, head)
        except RuntimeError as error:
            # The head's config is broken when amtool cannot route with it (the base's was deployed).
            failed = str(head_path) in str(error)
            notes.append(f"Which alerts reach which receivers is unknown: {error}")
            found = []
        if found:
            changes.append(rerouted_change(found))
    changes += global_section(base, head)
    if base.get("route") != head.get("route"):
        changes += list(compare_routes(root(base), root(head)))
    changes += receivers_section(base, head)
    changes += inhibit_section(base, head)
    return Section(TITLE, tuple(changes), tuple(notes), failed)
