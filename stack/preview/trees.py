"""Reading an exported tree (`python -m stack export`): the rules, the Alertmanager config and
the labels an alert carries when it reaches Alertmanager. Shared by the sections."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# Where each file of an exported tree is: the layout `render` and `export` write.
from stack.layout import ALERTMANAGER_CONFIG, PROMETHEUS_CONFIG, RULES_DIR, SUITE_RULES_DIR, TESTS_DIR, rules_path


def tested_rule_file(loaded: str) -> str:
    """The shipped rule file a test file's loaded rule file stands for: itself, or, for the rules a
    suite reads (`prometheus/tests/<rule file>/rules/<suite>.yaml`), the file they come from."""
    parts = loaded.split("/")
    prefix = TESTS_DIR.split("/")
    if parts[:len(prefix)] == prefix and len(parts) == len(prefix) + 3 and parts[-2] == SUITE_RULES_DIR:
        return rules_path(parts[len(prefix)])
    return loaded


# Dropped by alert_relabel_configs before alerts leave Prometheus (an HA pair's replica name).
DROPPED_LABELS = frozenset({"replica"})


@dataclass(frozen=True)
class Rule:
    """One rule as rendered: its file (relative to the tree), group and YAML mapping."""

    file: str
    group: str
    body: dict[str, Any]

    @property
    def name(self) -> str:
        return self.body.get("alert") or self.body["record"]

    @property
    def is_alert(self) -> bool:
        return "alert" in self.body


def rules(tree: Path) -> list[Rule]:
    found = []
    for path in sorted((tree / RULES_DIR).glob("*.yaml")):
        document = yaml.safe_load(path.read_text()) or {}
        for group in document.get("groups", []):
            found += [Rule(str(path.relative_to(tree)), group["name"], rule) for rule in group.get("rules", [])]
    return found


def alerts(tree: Path) -> dict[str, Rule]:
    """Alerting rules by name; rules sharing a name (an SLO's burn alerts, one per SLO and tier)
    by name and the labels that tell them apart: `SLOErrorBudgetBurn{severity="warning", slo="x"}`."""
    by_name: dict[str, list[Rule]] = {}
    for rule in rules(tree):
        if rule.is_alert:
            by_name.setdefault(rule.name, []).append(rule)
    named = {}
    for name, group in by_name.items():
        if len(group) == 1:
            named[name] = group[0]
            continue
        labels = [{k: str(v) for k, v in r.body.get("labels", {}).items()} for r in group]
        varying = sorted({k for one in labels for k in one if any(o.get(k) != one.get(k) for o in labels)})
        for rule, own in zip(group, labels, strict=True):
            selector = ", ".join(f'{k}="{own.get(k, "")}"' for k in varying)
            named[f"{name}{{{selector}}}"] = rule
    return named


def recording_rules(tree: Path) -> dict[tuple[str, str], Rule]:
    """Recording rules by (record, its labels as JSON): an SLO records one name per SLO."""
    return {(rule.name, json.dumps(rule.body.get("labels", {}), sort_keys=True)): rule
            for rule in rules(tree) if not rule.is_alert}


def external_labels(tree: Path) -> dict[str, str]:
    path = tree / PROMETHEUS_CONFIG
    if not path.exists():
        return {}
    return dict(_external_labels(path, path.stat().st_mtime_ns))


@functools.lru_cache(maxsize=16)
def _external_labels(path: Path, mtime_ns: int) -> tuple[tuple[str, str], ...]:
    # Read once per file version: every alert's labels need them.
    labels = (yaml.safe_load(path.read_text()) or {}).get("global", {}).get("external_labels", {})
    return tuple((k, str(v)) for k, v in labels.items() if k not in DROPPED_LABELS)


def alert_labels(tree: Path, rule: Rule) -> dict[str, str]:
    """The labels Alertmanager routes an alert by: its name, its static labels and Prometheus'
    external labels (labels templated from series values are not known statically)."""
    static = {k: str(v) for k, v in rule.body.get("labels", {}).items() if "{{" not in str(v)}
    return {**external_labels(tree), **static, "alertname": rule.name}


def alertmanager_config(tree: Path) -> dict[str, Any]:
    path = tree / ALERTMANAGER_CONFIG
    return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}
