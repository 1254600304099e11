"""Names are unique where Prometheus needs them to be: groups within a file, recorded series
(record and labels) and alerts (name and labels) across the whole bundle."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from rules.checks import Finding
from rules.model import AlertingRule, RuleGroup
from rules.problems import Severity


def check(files: Mapping[str, Sequence[RuleGroup]]) -> Iterator[tuple[str, str, str, Finding]]:
    seen_rules: dict[tuple[str, str, tuple[tuple[str, str], ...]], str] = {}
    for file, groups in files.items():
        seen_groups: set[str] = set()
        for group in groups:
            if group.name in seen_groups:
                yield file, group.name, f"group {group.name}", Finding(
                    Severity.ERROR, f"group name {group.name!r} is used twice in {file}")
            seen_groups.add(group.name)
            for rule in group.rules:
                kind = "alert" if isinstance(rule, AlertingRule) else "record"
                key = (kind, rule.name, tuple(sorted(rule.labels.items())))
                where = f"{file} group {group.name}"
                if key in seen_rules:
                    yield file, group.name, f"{kind} {rule.name}", Finding(
                        Severity.ERROR, f"{kind} {rule.name} with the same labels is already "
                        f"defined in {seen_rules[key]}: rename one or tell them apart by a label")
                else:
                    seen_rules[key] = where
