"""The "Alerts and recording rules" section: alerts (by name) and recording rules (by record and
labels) added, removed or changed, and for a changed rule what changed (expression, threshold,
`for`, severity, labels, annotations, file or group). For each added or changed alert: the
receivers it reaches before and after (amtool on each side's Alertmanager config) and its unit
tests run on the head (promtool, only the tests that name it: a full run takes minutes)."""

from __future__ import annotations

import difflib
import fnmatch
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stack import layout, tools
from stack.preview import receivers as amtool
from stack.preview import trees as exported
from stack.preview.model import Block, Change, ChangeKind, Detail, Section, Trees

TITLE = "Alerts and recording rules"
NONE = "—"
# What tells same-named alerts apart (one SLOErrorBudgetBurn per SLO and tier): keyed by these,
# a severity change of one of them is a change, not a removal and an addition.
IDENTITY_LABELS = ("slo", "tier")
# Rule keys with their own report line (the rest are compared generically).
RULE_KEYS = ("alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations")
# The annotations a reviewer reads first; others follow by name.
ANNOTATIONS = ("summary", "description", "runbook_url")
# An annotation this short is shown old -> new; a longer one is only said to have changed.
SHORT_TEXT = 100
# libyaml when there is one: the SLO test files are large.
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
COMPARISONS = frozenset({">", "<", ">=", "<=", "==", "!="})

# A PromQL number or duration (`0.05`, `1e3`, `5m`, `1h30m`).
_NUMBER = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?:(?:ms|[smhdwy])\d*)*")
# PromQL tokens: strings, numbers, names, two-character operators, any other character.
_TOKEN = re.compile(r"""("(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)|""" + _NUMBER.pattern
                    + r"|[A-Za-z_:][\w:]*|[=!<>]=|=~|!~|\S")
# A line break before each binary set operator, outside strings, so an expression diffs by part.
_SET_OPERATOR = re.compile(r"""("(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*')| (and|or|unless) """)


# --- which rule is which ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Keyed:
    """A rule and what it is called in the report."""

    subject: str
    rule: exported.Rule


def _label_text(labels: Iterable[tuple[str, str]]) -> str:
    pairs = [f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in labels]
    return "{" + ", ".join(pairs) + "}" if pairs else ""


def _identity(rule: exported.Rule) -> tuple[tuple[str, str], ...]:
    labels = rule.body.get("labels") or {}
    return tuple((k, str(labels[k])) for k in IDENTITY_LABELS if k in labels)


def keyed_alerts(base: Sequence[exported.Rule], head: Sequence[exported.Rule]) -> tuple[dict[Any, Keyed], ...]:
    """The alerts of both sides by a key that matches them up. A name used more than once on
    either side (SLO burn-rate alerts) is told apart by IDENTITY_LABELS on both sides, then by
    order."""
    repeated = set()
    for rules in (base, head):
        names = [r.name for r in rules if r.is_alert]
        repeated |= {n for n in names if names.count(n) > 1}

    def keyed(rules: Sequence[exported.Rule]) -> dict[Any, Keyed]:
        found: dict[Any, Keyed] = {}
        for rule in (r for r in rules if r.is_alert):
            identity = _identity(rule) if rule.name in repeated else ()
            n = sum(1 for key in found if key[:2] == (rule.name, identity))
            subject = f"alert {rule.name}{_label_text(identity)}" + (f" #{n + 1}" if n else "")
            found[(rule.name, identity, n)] = Keyed(subject, rule)
        return found

    return keyed(base), keyed(head)


def keyed_recording_rules(rules: Sequence[exported.Rule]) -> dict[Any, Keyed]:
    """By record and labels, as `trees.recording_rules` keys them (from rules already read: reading
    a tree's rule files is most of this section's time)."""
    found = {}
    for rule in (r for r in rules if not r.is_alert):
        labels = {k: str(v) for k, v in (rule.body.get("labels") or {}).items()}
        found[(rule.name, json.dumps(rule.body.get("labels") or {}, sort_keys=True))] = Keyed(
            f"recording rule {rule.name}{_label_text(sorted(labels.items()))}", rule)
    return found


# --- what changed in a rule ------------------------------------------------------------------------------

def tokens(expr: str) -> list[str]:
    return [m.group(0) for m in _TOKEN.finditer(expr)]


def number_changes(before: str, after: str) -> list[tuple[str, str, str]]:
    """(what, old, new) for each number that differs, when numbers are all that differ: a
    threshold (after a comparison), a duration (with a unit) or another number."""
    old, new = tokens(before), tokens(after)
    if len(old) != len(new):
        return []
    found: list[tuple[str, str, str]] = []
    for i, (a, b) in enumerate(zip(old, new, strict=True)):
        if a == b:
            continue
        if not (_NUMBER.fullmatch(a) and _NUMBER.fullmatch(b)):
            return []
        # `> bool 0.5` compares too.
        previous = [t for t in old[max(0, i - 2):i] if t != "bool"][-1:]
        what = ("threshold" if previous and previous[0] in COMPARISONS
                else "duration" if re.search(r"[a-z]", a + b) else "number")
        if (what, a, b) not in found:
            found.append((what, a, b))
    return found


def _diff_lines(expr: str) -> list[str]:
    return _SET_OPERATOR.sub(lambda m: m.group(1) or f"\n{m.group(2)} ", expr.strip()).splitlines()


def expr_diff(before: str, after: str) -> Block:
    return Block("\n".join(difflib.unified_diff(_diff_lines(before), _diff_lines(after), "base", "head",
                                                lineterm="")), "diff")


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)


def _quoted(text: Any) -> str:
    return json.dumps(str(text), ensure_ascii=False)


def _short(*texts: Any) -> bool:
    return all(t is None or (len(str(t)) <= SHORT_TEXT and "\n" not in str(t)) for t in texts)


def _pairs(before: Mapping[str, Any], after: Mapping[str, Any], first: Sequence[str] = ()
           ) -> list[tuple[str, Any, Any]]:
    """(key, old, new) for each key whose value differs (None: absent), `first` keys first."""
    keys = [k for k in first if k in before or k in after]
    keys += sorted(k for k in {*before, *after} if k not in keys)
    return [(k, before.get(k), after.get(k)) for k in keys if before.get(k) != after.get(k)]


def label_lines(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    lines = []
    for key, old, new in _pairs(before, after, ("severity",)):
        name = "severity" if key == "severity" else f"label {key}"
        if old is None:
            lines.append(f"{name} added: {new}")
        elif new is None:
            lines.append(f"{name} removed (was {old})")
        else:
            lines.append(f"{name} {old} -> {new}")
    return lines


def annotation_lines(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    lines = []
    for key, old, new in _pairs(before, after, ANNOTATIONS):
        if old is None:
            lines.append(f"annotation {key} added" + (f": {_quoted(new)}" if _short(new) else ""))
        elif new is None:
            lines.append(f"annotation {key} removed")
        elif _short(old, new):
            lines.append(f"{key} {_quoted(old)} -> {_quoted(new)}")
        else:
            lines.append(f"{key} changed")
    return lines


def rule_changes(old: exported.Rule, new: exported.Rule) -> tuple[list[Detail], dict[str, Any]]:
    """What changed between two versions of a rule: report lines and the same as data."""
    details: list[Detail] = []
    data: dict[str, Any] = {}
    if old.file != new.file:
        details.append(f"moved from {old.file} to {new.file}")
        data["file"] = {"old": old.file, "new": new.file}
    if old.group != new.group:
        details.append(f"group {old.group} -> {new.group}")
        data["group"] = {"old": old.group, "new": new.group}
    a, b = old.body, new.body
    if a.get("expr") != b.get("expr"):
        numbers = number_changes(str(a.get("expr", "")), str(b.get("expr", "")))
        details.append("expression changed")
        details += [f"{what} {x} -> {y}" for what, x, y in numbers]
        details.append(expr_diff(str(a.get("expr", "")), str(b.get("expr", ""))))
        data["expr"] = {"old": a.get("expr"), "new": b.get("expr")}
        if numbers:
            data["numbers"] = [{"what": what, "old": x, "new": y} for what, x, y in numbers]
    for key in ("for", "keep_firing_for"):
        if a.get(key) != b.get(key):
            details.append(f"{key} {_shown(a.get(key))} -> {_shown(b.get(key))}")
            data[key] = {"old": a.get(key), "new": b.get(key)}
    for key, lines in (("labels", label_lines), ("annotations", annotation_lines)):
        before, after = a.get(key) or {}, b.get(key) or {}
        if before != after:
            details += lines(before, after)
            data[key] = {k: {"old": x, "new": y} for k, x, y in _pairs(before, after)}
    for key, x, y in _pairs({k: v for k, v in a.items() if k not in RULE_KEYS},
                            {k: v for k, v in b.items() if k not in RULE_KEYS}):
        details.append(f"{key} {_shown(x)} -> {_shown(y)}")
        data[key] = {"old": x, "new": y}
    return details, data


def rule_summary(rule: exported.Rule) -> list[Detail]:
    """An added or removed rule as a reviewer reads it: where, for how long, how severe, what."""
    labels = rule.body.get("labels") or {}
    facts = [f"in {rule.file}, group {rule.group}"]
    if rule.is_alert:
        facts.append(f"for {_shown(rule.body.get('for'))}")
        facts += [f"{k} {v}" for k, v in sorted(labels.items(), key=lambda kv: kv[0] != "severity")]
        if (summary := (rule.body.get("annotations") or {}).get("summary")) is not None:
            facts.append(f"summary {_quoted(summary)}")
    return [", ".join(facts), Block(str(rule.body.get("expr", "")), "promql")]


# --- receivers ----------------------------------------------------------------------------------------------

def reached(tree: Path, rules: Sequence[exported.Rule]) -> list[tuple[str, ...]]:
    """The receivers each alert reaches with the tree's Alertmanager config, amtool asked once per
    distinct label set."""
    label_sets = [exported.alert_labels(tree, rule) for rule in rules]
    distinct = sorted({json.dumps(ls, sort_keys=True) for ls in label_sets})
    answers = dict(zip(distinct, amtool.reached(tree / layout.ALERTMANAGER_CONFIG,
                                                 [json.loads(d) for d in distinct]), strict=True))
    return [answers[json.dumps(ls, sort_keys=True)] for ls in label_sets]


def _listed(receivers: Sequence[str] | None) -> str:
    return ", ".join(receivers) if receivers else NONE


def receiver_line(before: Sequence[str] | None, after: Sequence[str] | None) -> str:
    """None: the alert does not exist on that side."""
    if before is None:
        return f"reaches {_listed(after)} (before: {NONE})"
    if after is None:
        return f"reached {_listed(before)} (after: {NONE})"
    if tuple(before) == tuple(after):
        return f"reaches {_listed(after)} (unchanged)"
    return f"now reaches {_listed(after)} instead of {_listed(before)}"


# --- unit tests ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class UnitTest:
    """One test of a head test file: `index` in its `tests`."""

    file: Path
    index: int
    name: str


@dataclass(frozen=True)
class Outcome:
    """How an alert's unit tests went on the head."""

    passed: int
    failed: tuple[str, ...]
    # What promtool said when it did not name the failed test (an expression test, a broken rule file).
    errors: tuple[str, ...] = ()


def unit_test_files(head: Path) -> dict[Path, dict[str, Any]]:
    """Every promtool test file of the tree: `prometheus/tests/<rule file>/<suite>.yaml`."""
    return {path: yaml.load(path.read_text(), Loader=LOADER) or {}
            for path in sorted((head / layout.TESTS_DIR).glob("*/*.yaml"))}


def tests_of(head: Path, rule: exported.Rule, files: Mapping[Path, dict[str, Any]]) -> list[UnitTest]:
    """The tests that name the alert, in test files that load its rule file (another file's tests
    of a same-named alert test another rule)."""
    found = []
    for path, document in files.items():
        loaded = [exported.tested_rule_file(os.path.normpath(os.path.relpath(path.parent / f, head)))
                  for f in document.get("rule_files") or []]
        if not any(fnmatch.fnmatch(rule.file, pattern) for pattern in loaded):
            continue
        for index, test in enumerate(document.get("tests") or []):
            if any(t.get("alertname") == rule.name for t in test.get("alert_rule_test") or []):
                found.append(UnitTest(path, index, str(test.get("name", f"test {index + 1}"))))
    return found


def run_tests(tests: Iterable[UnitTest], files: Mapping[Path, dict[str, Any]]) -> dict[UnitTest, tools.ToolRun]:
    """Each test alone in a copy of its file beside it (rule_files resolve from there), all side by
    side: the slowest test, not the sum of a file's tests, is how long it takes."""
    ordered = sorted(set(tests), key=lambda t: (str(t.file), t.index))
    copies: list[Path] = []
    try:
        for test in ordered:
            document = files[test.file]
            # Named by the test (not at random): an identical test of another stack or run is cached.
            copy = test.file.parent / f".preview-{test.file.stem}-{test.index}.yaml"
            copies.append(copy)
            with copy.open("w") as out:
                yaml.dump({**document, "tests": [document["tests"][test.index]]}, out, Dumper=DUMPER,
                          sort_keys=False, allow_unicode=True)
        return dict(zip(ordered, tools.promtool_test_many(copies, tools.result_cache()), strict=True))
    finally:
        for copy in copies:
            copy.unlink(missing_ok=True)


def failure(output: str) -> str:
    """promtool's first line after FAILED: the expression test or rule file that failed."""
    lines = [line.strip().rstrip(",") for line in output.splitlines() if line.strip()]
    after = [i + 1 for i, line in enumerate(lines) if line.startswith("FAILED")]
    return lines[after[0]] if after and after[0] < len(lines) else (lines[-1] if lines else "promtool failed")


def outcome(tests: Sequence[UnitTest], runs: Mapping[UnitTest, tools.ToolRun]) -> Outcome:
    failed = [t for t in tests if not runs[t].ok]
    # promtool names a test only when an alert test fails: say what failed otherwise.
    errors = [failure(runs[t].output) for t in failed if not tools.failed_test_names(runs[t].output)]
    return Outcome(len(tests) - len(failed), tuple(t.name for t in failed), tuple(dict.fromkeys(errors)))


def outcomes(head: Path, alerts: Mapping[Any, exported.Rule]) -> dict[Any, Outcome | None]:
    """Each alert's unit tests run on the head (None: no test names it)."""
    if not alerts:
        return {}
    files = unit_test_files(head)
    tests = {key: tests_of(head, rule, files) for key, rule in alerts.items()}
    runs = run_tests((t for found in tests.values() for t in found), files)
    return {key: outcome(found, runs) if found else None for key, found in tests.items()}


def outcome_line(result: Outcome | None) -> str:
    if result is None:
        return "no unit test"
    if not result.failed:
        return f"unit tests: {result.passed} passed"
    total = result.passed + len(result.failed)
    return (f"unit tests: {len(result.failed)} of {total} failed: " + ", ".join(result.failed)
            + "".join(f" ({error})" for error in result.errors))


def outcome_data(result: Outcome | None) -> dict[str, Any] | None:
    return None if result is None else {"passed": result.passed, "failed": list(result.failed),
                                        "errors": list(result.errors)}


# --- the section --------------------------------------------------------------------------------------------

def rule_data(rule: exported.Rule) -> dict[str, Any]:
    return {"type": "alert" if rule.is_alert else "recording rule", "name": rule.name,
            "file": rule.file, "group": rule.group, "rule": rule.body}


def receivers_of(tree: Path, alerts: Mapping[Any, exported.Rule]) -> dict[Any, tuple[str, ...]]:
    keys = list(alerts)
    return dict(zip(keys, reached(tree, [alerts[k] for k in keys]), strict=True))


def section(trees: Trees) -> Section:
    base_rules, head_rules = exported.rules(trees.base), exported.rules(trees.head)
    base_alerts, head_alerts = keyed_alerts(base_rules, head_rules)
    base_records, head_records = keyed_recording_rules(base_rules), keyed_recording_rules(head_rules)
    olds, news = {**base_alerts, **base_records}, {**head_alerts, **head_records}
    changed = {k: rule_changes(olds[k].rule, news[k].rule)
               for k in olds.keys() & news.keys() if olds[k].rule != news[k].rule}
    added = [k for k in news if k not in olds]
    removed = [k for k in olds if k not in news]
    # Receivers: before for changed and removed alerts, after for added and changed ones;
    # unit tests: on the head, for added and changed alerts only (a full run takes minutes).
    before_alerts = {k: olds[k].rule for k in base_alerts if k in changed or k in removed}
    after_alerts = {k: news[k].rule for k in head_alerts if k in changed or k in added}

    notes: list[str] = []
    failed = False
    before: dict[Any, tuple[str, ...]] = {}
    after: dict[Any, tuple[str, ...]] = {}
    # The unit tests are the slow part: they run while amtool answers.
    with ThreadPoolExecutor(max_workers=1) as pool:
        tested = pool.submit(outcomes, trees.head, after_alerts)
        for side, tree, alerts, into in (("base", trees.base, before_alerts, before),
                                         ("head", trees.head, after_alerts, after)):
            try:
                into.update(receivers_of(tree, alerts))
            except RuntimeError as error:
                # The head is broken when amtool cannot route with its config (the base's was deployed).
                failed = failed or side == "head"
                notes.append(f"Which receivers the alerts reach on the {side} is unknown: {error}")
        results = tested.result()

    def receiver_details(key: Any, kind: str) -> tuple[list[Detail], dict[str, Any]]:
        old = before.get(key) if kind != "added" else None
        new = after.get(key) if kind != "removed" else None
        if (kind != "added" and key not in before) or (kind != "removed" and key not in after):
            return [], {}  # amtool could not say (see the notes)
        return [receiver_line(old, new)], {"receivers": {"before": list(old or ()), "after": list(new or ())}}

    changes = []
    kinds: tuple[tuple[ChangeKind, list[Any]], ...] = (("added", added), ("removed", removed),
                                                        ("changed", list(changed)))
    for kind, keys in kinds:
        for key in keys:
            keyed = news[key] if kind != "removed" else olds[key]
            details: list[Detail] = list(changed[key][0]) if kind == "changed" else rule_summary(keyed.rule)
            data = rule_data(keyed.rule) | ({"changes": changed[key][1]} if kind == "changed" else {})
            if keyed.rule.is_alert:
                lines, reach = receiver_details(key, kind)
                details += lines
                data |= reach
                if kind != "removed":
                    details.append(outcome_line(results[key]))
                    data["unit_tests"] = outcome_data(results[key])
            changes.append(Change(kind, keyed.subject, tuple(details), data))

    failing = sorted({name for r in results.values() if r is not None for name in r.failed})
    if failing:
        failed = True
        notes.append(f"{len(failing)} unit test{'s' if len(failing) > 1 else ''} of added or changed alerts "
                     f"failed on the head: {', '.join(failing)}")
    return Section(TITLE, tuple(sorted(changes, key=lambda c: (c.subject, c.kind))), tuple(notes), failed)
