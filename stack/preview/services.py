"""The "Stack" section: what a change does to the running stack of one environment.

Per component (`.preview/services.json`, written by `stack/preview/facts.py`, Docker included):
image, replicas, Prometheus' retention, memory and CPU, arguments, environment, ports, volumes,
host access, user, config files (by content hash) and secrets (by name). For the Kubernetes
target, also the objects of `kubernetes/*.yaml` added, removed or changed, led by the objects the
change would delete and recreate (`replacements`): those are data-safety warnings, repeated in
the notes.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml

from stack import layout
from stack.preview.model import Change, Section, Trees
from stack.services import prometheus
from stack.targets.kubernetes.manifests import object_key, replacements

TITLE = "Stack"
FACTS = "services.json"
# Prometheus' retention: `storage.tsdb.retention` of prometheus.yml since 3.16 deprecated these
# flags (an older base has them); with neither, Prometheus keeps 15d.
RETENTION_FLAG = "--storage.tsdb.retention."
RETENTION_KEYS = ("time", "size", "percentage")
DEFAULT_RETENTION = {"time": "15d"}
# Config files named in a detail, the rest counted.
MAX_LISTED = 10
# Field changes described for one Kubernetes object, the rest counted.
MAX_FIELDS = 12
# ConfigMaps are immutable and named by a hash of their content: a new hash is the same map changed.
HASHED_NAME = re.compile(r"^(?P<stem>.+)-[0-9a-f]{10}$")
_MISSING = object()
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Manifest = dict[str, Any]


# --- components (services.json) -------------------------------------------------------------


def load(trees: Trees, side: Literal["base", "head"]) -> dict[str, Any] | None:
    """`{"target": ..., "services": {name: spec}}`; None when the side has no such facts."""
    path = trees.facts(side, FACTS)
    return json.loads(path.read_text()) if path.exists() else None


def _listed(items: Sequence[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    return shown + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


def _image_parts(reference: str) -> tuple[str, str, str | None]:
    """repository, tag, digest of `repository:tag[@digest]` (a registry's port is not a tag)."""
    name, _, digest = reference.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1:], digest or None
    return name, "", digest or None


def image_change(before: str, after: str) -> str:
    """`image prom/prometheus v3.13.0 -> v3.14.0` when only the tag (or digest) moves."""
    old_repo, old_tag, old_digest = _image_parts(before)
    new_repo, new_tag, new_digest = _image_parts(after)
    if old_repo != new_repo:
        return f"image {before} -> {after}"
    parts = []
    if old_tag != new_tag:
        parts.append(f"{old_tag} -> {new_tag}")
    if old_digest != new_digest:
        parts.append(f"digest {old_digest or 'none'} -> {new_digest or 'none'}")
    return f"image {old_repo} {', '.join(parts)}"


def memory(value: int | None) -> str:
    """Bytes as a Kubernetes quantity (`2Gi`, `512Mi`); "no limit" for None."""
    if value is None:
        return "no limit"
    for unit, name in ((1024**4, "Ti"), (1024**3, "Gi"), (1024**2, "Mi"), (1024, "Ki")):
        if value % unit == 0:
            return f"{value // unit}{name}"
    return f"{value}B"


def cpu(value: float | None) -> str:
    if value is None:
        return "no limit"
    return f"{value:g}"


def _flag(arg: str) -> tuple[str, str] | None:
    if not arg.startswith("-") or "=" not in arg:
        return None
    name, _, value = arg.partition("=")
    return name, value


def args_changes(before: Sequence[str], after: Sequence[str]) -> list[str]:
    """Flags whose value changed, then arguments added or removed."""
    old, new = Counter(before), Counter(after)
    removed = list((old - new).elements())
    added = list((new - old).elements())
    lines: list[str] = []
    # A flag given once on each side with another value: one "changed" line.
    old_flags = Counter(f[0] for a in before if (f := _flag(a)))
    new_flags = Counter(f[0] for a in after if (f := _flag(a)))
    for arg in list(removed):
        flag = _flag(arg)
        if flag is None or old_flags[flag[0]] != 1 or new_flags[flag[0]] != 1:
            continue
        other = next((a for a in added if (f := _flag(a)) and f[0] == flag[0]), None)
        if other is None:
            continue
        removed.remove(arg)
        added.remove(other)
        lines.append(f"arg {flag[0]} {flag[1]} -> {other.partition('=')[2]}")
    lines += [f"arg added: {a}" for a in added]
    lines += [f"arg removed: {a}" for a in removed]
    return lines


def retention(tree: Path, args: Sequence[str]) -> dict[str, str]:
    """The retention a Prometheus runs with: its config file's block, whole, when there is one
    (an absent key there is no limit), else its flags, else Prometheus' default."""
    path = tree / layout.PROMETHEUS_CONFIG
    block = yaml.load(path.read_text(), Loader=LOADER) if path.exists() else None
    for key in ("storage", "tsdb", "retention"):
        block = block.get(key) if isinstance(block, dict) else None
    if isinstance(block, dict):
        return {key: str(block[key]) for key in RETENTION_KEYS if block.get(key)}
    flags = dict(f for arg in args if (f := _flag(arg)) and f[0].startswith(RETENTION_FLAG))
    return {name.removeprefix(RETENTION_FLAG): value for name, value in flags.items()} or dict(DEFAULT_RETENTION)


def retention_changes(before: dict[str, str] | None, after: dict[str, str] | None) -> list[str]:
    """`retention time 15d -> 30d`, one line per limit that moved; "none" is no limit."""
    if before is None or after is None:
        return []
    return [f"retention {key} {before.get(key, 'none')} -> {after.get(key, 'none')}"
            for key in RETENTION_KEYS if before.get(key) != after.get(key)]


def _keyed(items: Sequence[dict[str, Any]], *fields: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {tuple(item.get(f) for f in fields): item for item in items}


def _port(port: dict[str, Any]) -> str:
    published = f", published on host port {port['published']}" if port.get("published") else ", not published"
    return f"{port['name']} ({port['port']}/{port['protocol']}{published})"


def ports_changes(before: Sequence[dict[str, Any]], after: Sequence[dict[str, Any]]) -> list[str]:
    old, new = _keyed(before, "name", "protocol"), _keyed(after, "name", "protocol")
    lines = []
    for key in sorted(set(old) | set(new), key=str):
        was, now = old.get(key), new.get(key)
        if was is None and now is not None:
            lines.append(f"port added: {_port(now)}")
        elif now is None and was is not None:
            lines.append(f"port removed: {_port(was)}")
        elif was is not None and now is not None and was != now:
            if was["port"] != now["port"]:
                lines.append(f"port {key[0]} {was['port']}/{was['protocol']} -> {now['port']}/{now['protocol']}")
            if was.get("published") != now.get("published"):
                old_pub = f"host port {was['published']}" if was.get("published") else "not published"
                new_pub = f"host port {now['published']}" if now.get("published") else "not published"
                lines.append(f"port {key[0]} ({now['port']}/{now['protocol']}) published: {old_pub} -> {new_pub}")
    return lines


def _volume(volume: dict[str, Any]) -> str:
    return f"{volume['name']} at {volume['path']} ({volume.get('size') or 'no size'})"


def volumes_changes(before: Sequence[dict[str, Any]], after: Sequence[dict[str, Any]]) -> list[str]:
    old, new = _keyed(before, "name"), _keyed(after, "name")
    lines = []
    for key in sorted(set(old) | set(new), key=str):
        was, now = old.get(key), new.get(key)
        if was is None and now is not None:
            lines.append(f"volume added: {_volume(now)}")
        elif now is None and was is not None:
            lines.append(f"volume removed: {_volume(was)}")
        elif was is not None and now is not None:
            if was.get("size") != now.get("size"):
                lines.append(f"volume {key[0]} size {was.get('size')} -> {now.get('size')}")
            if was["path"] != now["path"]:
                lines.append(f"volume {key[0]} mounted at {was['path']} -> {now['path']}")
    return lines


def _set_changes(label: str, before: Sequence[Any], after: Sequence[Any], show=str) -> list[str]:
    old, new = [show(x) for x in before], [show(x) for x in after]
    added = [x for x in new if x not in old]
    removed = [x for x in old if x not in new]
    return ([f"{label} added: {_listed(added)}"] if added else []) + (
        [f"{label} removed: {_listed(removed)}"] if removed else [])


def env_changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Values shown: the environment holds no secret (secrets are files, named by *_FILE)."""
    lines = []
    for name in sorted(set(before) | set(after)):
        if name not in before:
            lines.append(f"env added: {name}={after[name]}")
        elif name not in after:
            lines.append(f"env removed: {name} (was {before[name]})")
        elif before[name] != after[name]:
            lines.append(f"env {name}: {before[name]} -> {after[name]}")
    return lines


def files_changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    changed = sorted(p for p in set(before) & set(after) if before[p] != after[p])
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    lines = []
    if changed:
        lines.append(f"{len(changed)} config file{'s' if len(changed) != 1 else ''} changed: {_listed(changed)}")
    if added:
        lines.append(f"config file{'s' if len(added) != 1 else ''} added: {_listed(added)}")
    if removed:
        lines.append(f"config file{'s' if len(removed) != 1 else ''} removed: {_listed(removed)}")
    return lines


def _user(user: str | None) -> str:
    if user is None:
        return "image default"
    return f"{user} (root)" if user.split(":")[0] in ("0", "root") else user


def _on(value: Any) -> str:
    return "on" if value else "off"


def component_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """One line per change of a component's spec, the ones that matter most first."""
    lines = []
    if before.get("image") != after.get("image"):
        lines.append(image_change(before["image"], after["image"]))
    if before.get("replicas") != after.get("replicas"):
        lines.append(f"replicas {before.get('replicas')} -> {after.get('replicas')}")
    lines += retention_changes(before.get("retention"), after.get("retention"))
    lines += args_changes(before.get("args", []), after.get("args", []))
    if before.get("memory_limit_bytes") != after.get("memory_limit_bytes"):
        lines.append(f"memory limit {memory(before.get('memory_limit_bytes'))} -> "
                     f"{memory(after.get('memory_limit_bytes'))}")
    if before.get("cpu_limit") != after.get("cpu_limit"):
        lines.append(f"CPU limit {cpu(before.get('cpu_limit'))} -> {cpu(after.get('cpu_limit'))}")
    lines += volumes_changes(before.get("volumes", []), after.get("volumes", []))
    lines += ports_changes(before.get("ports", []), after.get("ports", []))
    lines += env_changes(before.get("env", {}), after.get("env", {}))
    lines += _set_changes("host mount", before.get("host_mounts", []), after.get("host_mounts", []),
                          lambda m: f"{m['host_path']} at {m['path']}")
    if bool(before.get("host_pid")) != bool(after.get("host_pid")):
        lines.append(f"host PID namespace {_on(before.get('host_pid'))} -> {_on(after.get('host_pid'))}")
    if bool(before.get("read_only_root")) != bool(after.get("read_only_root")):
        lines.append(f"read-only root filesystem {_on(before.get('read_only_root'))} -> "
                     f"{_on(after.get('read_only_root'))}")
    if before.get("user") != after.get("user"):
        lines.append(f"user {_user(before.get('user'))} -> {_user(after.get('user'))}")
    lines += _set_changes("group", before.get("groups", []), after.get("groups", []))
    lines += files_changes(before.get("files", {}), after.get("files", {}))
    lines += _set_changes("secret", before.get("secrets", []), after.get("secrets", []))
    return lines


def component_summary(spec: dict[str, Any]) -> list[str]:
    """An added or removed component in a few lines."""
    lines = [f"image {spec['image']}", f"replicas {spec.get('replicas', 1)}",
             f"memory limit {memory(spec.get('memory_limit_bytes'))}, CPU limit {cpu(spec.get('cpu_limit'))}"]
    lines += [f"volume {_volume(v)}" for v in spec.get("volumes", [])]
    lines += [f"port {_port(p)}" for p in spec.get("ports", []) if p.get("published")]
    lines += [f"host mount {m['host_path']} at {m['path']}" for m in spec.get("host_mounts", [])]
    if spec.get("host_pid"):
        lines.append("host PID namespace")
    if not spec.get("read_only_root", True):
        lines.append("writable root filesystem")
    if (spec.get("user") or "").split(":")[0] in ("0", "root"):
        lines.append(f"user {_user(spec.get('user'))}")
    if spec.get("secrets"):
        lines.append(f"secrets: {', '.join(spec['secrets'])}")
    return lines


def _changed_fields(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {k: {"before": before.get(k), "after": after.get(k)}
            for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)}


def with_retention(facts: dict[str, Any], tree: Path) -> dict[str, Any]:
    """The facts with Prometheus' retention added, read from the tree's prometheus.yml (and its args)."""
    spec = facts.get("services", {}).get(prometheus.NAME)
    if spec is None:
        return facts
    spec = {**spec, "retention": retention(tree, spec.get("args", []))}
    return {**facts, "services": {**facts["services"], prometheus.NAME: spec}}


def components(base: dict[str, Any], head: dict[str, Any]) -> list[Change]:
    changes = []
    if base.get("target") != head.get("target"):
        changes.append(Change("changed", "target", (f"target {base.get('target')} -> {head.get('target')}",),
                              {"before": base.get("target"), "after": head.get("target")}))
    old, new = base.get("services", {}), head.get("services", {})
    for name in sorted(set(old) | set(new)):
        was, now = old.get(name), new.get(name)
        if was is None:
            changes.append(Change("added", f"component {name}", tuple(component_summary(now)),
                                  {"component": name, "after": now}))
        elif now is None:
            changes.append(Change("removed", f"component {name}", tuple(component_summary(was)),
                                  {"component": name, "before": was}))
        elif was != now:
            lines = component_changes(was, now) or ["spec changed"]
            changes.append(Change("changed", f"component {name}", tuple(lines),
                                  {"component": name, "fields": _changed_fields(was, now)}))
    return changes


# --- Kubernetes objects (kubernetes/*.yaml) --------------------------------------------------


def kubernetes_objects(tree: Path) -> list[Manifest] | None:
    """Every document of `kubernetes/*.yaml`; None when the tree has no such directory."""
    directory = tree / layout.KUBERNETES_DIR
    if not directory.is_dir():
        return None
    found = []
    for path in sorted(directory.glob("*.yaml")):
        found += [d for d in yaml.load_all(path.read_text(), Loader=LOADER) if isinstance(d, dict) and "kind" in d]
    return found


def _subject(item: Manifest) -> str:
    meta = item["metadata"]
    where = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]
    return f"{item['kind']} {where}"


def _named(items: Any) -> dict[str, Any] | None:
    """A list of objects each with a unique name (containers, ports, env, volumes, claim
    templates) by name; None for any other list."""
    if not isinstance(items, list) or not items:
        return None
    names = []
    for item in items:
        if not isinstance(item, dict):
            return None
        name = item.get("name", (item.get("metadata") or {}).get("name"))
        if not isinstance(name, str):
            return None
        names.append(name)
    return dict(zip(names, items, strict=True)) if len(set(names)) == len(names) else None


def leaves(before: Any, after: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any, Any]]:
    """Differences between two documents: (path, before, after), _MISSING where absent; named
    lists compared item by item (`containers[prometheus]`), other lists as a whole."""
    if isinstance(before, dict) and isinstance(after, dict):
        for key in list(before) + [k for k in after if k not in before]:
            yield from leaves(before.get(key, _MISSING), after.get(key, _MISSING), (*path, str(key)))
        return
    old, new = _named(before), _named(after)
    if old is not None and new is not None:
        for name in list(old) + [n for n in new if n not in old]:
            yield from leaves(old.get(name, _MISSING), new.get(name, _MISSING), (*path, f"[{name}]"))
        return
    if before != after:
        yield path, before, after


# Long prefixes of a workload's paths, as a reviewer names them.
SHORTER = (("spec.template.spec.initContainers[", "init container["), ("spec.template.spec.containers[", "container["),
           ("spec.template.spec.", "pod "), ("spec.template.metadata.", "pod "),
           ("spec.volumeClaimTemplates[", "claim template["))


def _dotted(path: tuple[str, ...]) -> str:
    text = ".".join(path).replace(".[", "[")
    for long, short in SHORTER:
        if text.startswith(long):
            return short + text.removeprefix(long)
    return text


def _short(value: Any, limit: int = 80) -> str:
    if value is _MISSING:
        return "(none)"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _config_maps(value: Any) -> list[str]:
    """Names of the ConfigMaps a (part of a) pod spec mounts."""
    if isinstance(value, dict):
        own = [value["configMap"]["name"]] if isinstance(value.get("configMap"), dict) else []
        return own + [n for k, v in value.items() if k != "configMap" for n in _config_maps(v)]
    if isinstance(value, list):
        return [n for v in value for n in _config_maps(v)]
    return []


def _grants(rules: Any) -> list[str]:
    """RBAC rules as `verb resource (group)` grants."""
    found = []
    for rule in rules if isinstance(rules, list) else []:
        for group in rule.get("apiGroups", [""]):
            for resource in rule.get("resources", []) + [f"url {u}" for u in rule.get("nonResourceURLs", [])]:
                found += [f"{verb} {resource}" + (f" ({group})" if group else "") for verb in rule.get("verbs", [])]
    return found


def _selector(selector: Any) -> str:
    if not isinstance(selector, dict):
        return ""
    labels = selector.get("matchLabels") or {}
    text = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    if selector.get("matchExpressions"):
        text += (", " if text else "") + _short(selector["matchExpressions"], 40)
    return text or "all"


def _peer(peer: dict[str, Any]) -> str:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        return f"{block.get('cidr')}" + (f" except {', '.join(block['except'])}" if block.get("except") else "")
    parts = []
    if "podSelector" in peer:
        parts.append(f"pods {_selector(peer['podSelector'])}")
    if "namespaceSelector" in peer:
        parts.append(f"namespaces {_selector(peer['namespaceSelector'])}")
    return " in ".join(parts) or "anywhere"


def policy_rule(rule: dict[str, Any], direction: str) -> str:
    """`from pods app=x in namespaces ... on TCP 9090` (ingress) or `to ...` (egress)."""
    peers = rule.get("from" if direction == "ingress" else "to")
    where = "; ".join(_peer(p) for p in peers) if peers else "anywhere"
    ports = ", ".join(f"{p.get('protocol', 'TCP')} {p.get('port', 'any')}"
                      + (f"-{p['endPort']}" if p.get("endPort") else "") for p in rule.get("ports", []))
    return f"{'from' if direction == 'ingress' else 'to'} {where} on {ports or 'any port'}"


def _policy_changes(before: Manifest, after: Manifest) -> list[str]:
    lines = []
    old_spec, new_spec = before.get("spec", {}), after.get("spec", {})
    if old_spec.get("podSelector") != new_spec.get("podSelector"):
        lines.append(f"applies to pods {_selector(old_spec.get('podSelector'))} -> "
                     f"{_selector(new_spec.get('podSelector'))}")
    if old_spec.get("policyTypes") != new_spec.get("policyTypes"):
        lines.append(f"policy types {old_spec.get('policyTypes')} -> {new_spec.get('policyTypes')}")
    for direction in ("ingress", "egress"):
        old = [policy_rule(r, direction) for r in old_spec.get(direction) or []]
        new = [policy_rule(r, direction) for r in new_spec.get(direction) or []]
        if old == new:
            continue
        lines.append(f"{direction} rules changed ({len(old)} -> {len(new)} rules)")
        lines += [f"{direction} allowed: {r}" for r in new if r not in old]
        lines += [f"{direction} no longer allowed: {r}" for r in old if r not in new]
    return lines


def _leaf_lines(kind: str, path: tuple[str, ...], before: Any, after: Any) -> list[str]:
    where = _dotted(path)
    if path == ("spec", "replicas"):
        return [f"replicas {_short(before)} -> {_short(after)}"]
    if path and path[-1] in ("args", "command") and isinstance(before, list) and isinstance(after, list):
        return [f"{_dotted(path[:-1])} {line}" for line in args_changes(before, after)]
    if path and path[-1] == "image":
        return [f"{where}: {_short(before)} -> {_short(after)}"]
    if "volumes" in path and (_config_maps(before) or _config_maps(after)) \
            and _config_maps(before) != _config_maps(after):
        return [f"pods mount ConfigMap {', '.join(_config_maps(before)) or '(none)'} -> "
                f"{', '.join(_config_maps(after)) or '(none)'} (a config change: pods restart)"]
    if "securityContext" in path:
        return [f"security context {where}: {_short(before)} -> {_short(after)}"]
    if "volumeClaimTemplates" in path:
        return [f"{where}: {_short(before)} -> {_short(after)}"]
    if "resources" in path:
        return [f"{where}: {_short(before)} -> {_short(after)}"]
    if kind in ("ConfigMap", "Secret") and path and path[0] in ("data", "stringData", "binaryData"):
        # Values are never shown: a Secret's would be a secret, a ConfigMap's are in the config diff.
        key = ".".join(path[1:]) or path[0]
        what = "added" if before is _MISSING else "removed" if after is _MISSING else "changed"
        return [f"{path[0]} key {key} {what}"]
    return [f"{where}: {_short(before)} -> {_short(after)}"]


def object_changes(before: Manifest, after: Manifest) -> list[str]:
    """A changed object at a high level: replicas, images, resources, security contexts, the
    rules of a NetworkPolicy or Role, data keys; other fields by path."""
    kind = after["kind"]
    lines: list[str] = []
    if kind == "NetworkPolicy":
        lines += _policy_changes(before, after)
    if kind in ("Role", "ClusterRole") and before.get("rules") != after.get("rules"):
        old, new = _grants(before.get("rules")), _grants(after.get("rules"))
        lines.append("RBAC rules changed")
        lines += [f"grants added: {', '.join(g for g in new if g not in old)}"] if set(new) - set(old) else []
        lines += [f"grants removed: {', '.join(g for g in old if g not in new)}"] if set(old) - set(new) else []
    for path, was, now in leaves(before, after):
        if kind == "NetworkPolicy" and path[:1] == ("spec",):
            continue
        if kind in ("Role", "ClusterRole") and path[:1] == ("rules",):
            continue
        lines += [line for line in _leaf_lines(kind, path, was, now) if line not in lines]
    if len(lines) > MAX_FIELDS:
        lines = [*lines[:MAX_FIELDS], f"and {len(lines) - MAX_FIELDS} more fields"]
    return lines


def object_summary(item: Manifest) -> list[str]:
    """What an added object grants or runs, for the kinds where it matters."""
    kind, spec = item["kind"], item.get("spec") or {}
    if kind in ("Role", "ClusterRole"):
        return [f"grants: {', '.join(_grants(item.get('rules')))}"]
    if kind == "NetworkPolicy":
        return ([f"applies to pods {_selector(spec.get('podSelector'))}"]
                + [f"{d} allowed: {policy_rule(r, d)}" for d in ("ingress", "egress") for r in spec.get(d) or []])
    if kind in ("StatefulSet", "Deployment", "DaemonSet"):
        containers = (spec.get("template") or {}).get("spec", {}).get("containers", [])
        lines = [f"replicas {spec['replicas']}"] if "replicas" in spec else []
        return lines + [f"container {c.get('name')}: {c.get('image')}" for c in containers]
    return []


def _stem(item: Manifest) -> str | None:
    """A hash-named ConfigMap's name without the hash."""
    match = HASHED_NAME.match(item["metadata"]["name"]) if item["kind"] == "ConfigMap" else None
    return f"{item['metadata'].get('namespace', '')}/{match['stem']}" if match else None


def warning(line: str) -> str:
    """A `replacements` line as a data-safety warning."""
    if line.endswith(": deleted"):
        return f"would delete {line.removesuffix(': deleted')} (and what it holds)"
    if "replaces the object" in line:
        return f"would delete and recreate {line}"
    return f"data safety: {line}"


def kubernetes(base: list[Manifest], head: list[Manifest]) -> tuple[list[Change], list[Change], list[str]]:
    """(objects the change would delete and recreate, the other object changes, warnings)."""
    lines = replacements(base, head)
    warned: dict[str, list[str]] = {}
    for line in lines:
        warned.setdefault(line.split(": ", 1)[0], []).append(warning(line))
    old = {object_key(o): o for o in base}
    new = {object_key(o): o for o in head}
    removed = [k for k in old if k not in new]
    added = [k for k in new if k not in old]
    # An immutable ConfigMap renamed by its content hash: one change, not a removal and an addition.
    renamed: dict[str, str] = {}
    for key in removed:
        stem = _stem(old[key])
        match = [k for k in added if stem is not None and _stem(new[k]) == stem and k not in renamed.values()]
        if len(match) == 1:
            renamed[key] = match[0]
    first: list[Change] = []
    rest: list[Change] = []
    for key in list(old) + added:
        if key in renamed.values():
            continue
        was, now = old.get(key), new.get(key)
        if key in renamed:
            now = new[renamed[key]]
        if now is None and was is not None:
            change = Change("removed", f"Kubernetes {_subject(was)}", tuple(warned.get(key, ())),
                            {"object": key})
        elif was is None and now is not None:
            change = Change("added", f"Kubernetes {_subject(now)}", tuple(object_summary(now)), {"object": key})
        elif was is not None and now is not None and was != now:
            details = list(warned.get(key, ()))
            if key in renamed:
                details.append(f"content changed: now {now['metadata']['name']}")
            details += object_changes({**was, "metadata": {**was["metadata"], "name": now["metadata"]["name"]}}, now)
            change = Change("changed", f"Kubernetes {_subject(was)}", tuple(details),
                            {"object": key, **({"now": object_key(now)} if key in renamed else {})})
        else:
            continue
        (first if key in warned else rest).append(change)
    return first, rest, [w for ws in warned.values() for w in ws]


def section(trees: Trees) -> Section:
    notes: list[str] = []
    changes: list[Change] = []
    base, head = load(trees, "base"), load(trees, "head")
    if head is None:
        notes.append("the head has no service facts (.preview/services.json): components not compared")
    elif base is None:
        notes.append("the base has no service facts (exported by an older version): components not compared")
    else:
        changes += components(with_retention(base, trees.base), with_retention(head, trees.head))
    base_objects, head_objects = kubernetes_objects(trees.base), kubernetes_objects(trees.head)
    if base_objects is not None or head_objects is not None:
        first, rest, warnings = kubernetes(base_objects or [], head_objects or [])
        changes = first + changes + rest
        notes[:0] = warnings
    return Section(TITLE, tuple(changes), tuple(notes))
