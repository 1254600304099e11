"""Static checks on rules (and, through `check_expression`, on any PromQL query).

One check per module. Expression checks look at one parsed expression and its shapes;
rule checks look at one rule's name, labels and annotations; `duplicates` looks across all
groups. Each yields `Finding`s, which the runner turns into `Problem`s naming the file,
group and rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rules.catalog import Catalog, Metric, MetricType
from rules.model import AlertingRule, RecordingRule, Rule, RuleGroup
from rules.problems import Problem, Severity
from rules.promql import Analysis, parse


@dataclass(frozen=True)
class Finding:
    severity: Severity
    message: str


ExpressionCheck = Callable[[Analysis], Iterator[Finding]]
RuleCheck = Callable[[Rule, Analysis | None], Iterator[Finding]]


def _expression_checks() -> dict[str, ExpressionCheck]:
    from rules.checks import (
        counters,
        histogram_quantile,
        labels,
        le_selector,
        metrics,
        vector_matching,
    )
    return {
        "metrics": metrics.check,
        "labels": labels.check,
        "counters": counters.check,
        "histogram-quantile": histogram_quantile.check,
        "vector-matching": vector_matching.check,
        "le-selector": le_selector.check,
    }


def _rule_checks() -> dict[str, RuleCheck]:
    from rules.checks import cardinality, conventions, durations, label_clash, result_type
    return {
        "label-clash": label_clash.check,
        "result-type": result_type.check,
        "conventions": conventions.check,
        "durations": durations.check,
        "cardinality": cardinality.check,
    }


def check_expression(
    expr: str, catalog: Catalog, parsed: Any = None,
) -> tuple[Analysis | None, list[tuple[str, Finding]]]:
    """Parse (unless given the AST) and check one expression: (analysis or None when it does
    not parse, findings)."""
    try:
        analysis = Analysis(parsed if parsed is not None else parse(expr), catalog)
    except ValueError as error:
        return None, [("syntax", Finding(Severity.ERROR, f"invalid PromQL: {error}"))]
    findings = [
        (name, finding)
        for name, check in _expression_checks().items()
        for finding in check(analysis)
    ]
    return analysis, findings


def _parse_all(groups: Sequence[RuleGroup]) -> dict[str, Any]:
    """Each distinct expression parsed once; None where it does not parse."""
    parsed: dict[str, Any] = {}
    for group in groups:
        for rule in group.rules:
            if rule.expr not in parsed:
                try:
                    parsed[rule.expr] = parse(rule.expr)
                except ValueError:
                    parsed[rule.expr] = None
    return parsed


def recorded_metrics(groups: Sequence[RuleGroup], catalog: Catalog, parsed: dict[str, Any] | None = None
                     ) -> list[Metric]:
    """Catalog entries for the series our recording rules produce, with the labels their
    expressions keep (the union, when several rules record one name, as each SLO does).
    Rules may read each other's output: those are resolved again until nothing changes."""
    parsed = parsed if parsed is not None else _parse_all(groups)
    records = [(r, parsed[r.expr]) for g in groups for r in g.rules
               if isinstance(r, RecordingRule) and parsed.get(r.expr) is not None]
    names = {rule.record for rule, _ in records}
    shapes: dict[int, tuple[frozenset[str], bool]] = {}
    pending = list(range(len(records)))
    known: dict[str, Metric] = {}
    for _ in range(len(records) + 1):
        current = catalog.with_metrics(known.values())
        for index in pending:
            rule, root = records[index]
            shape = Analysis(root, current).shape_root()
            shapes[index] = (shape.labels | frozenset(rule.labels), shape.open)
        labels: dict[str, set[str]] = {}
        open_labels: dict[str, bool] = {}
        for index, (rule, _) in enumerate(records):
            kept, is_open = shapes[index]
            labels.setdefault(rule.record, set()).update(kept)
            open_labels[rule.record] = open_labels.get(rule.record, False) or is_open
        resolved = {
            name: Metric(name, MetricType.GAUGE, "recorded by our rules", labels=tuple(sorted(found)),
                         target_labels=(), open_labels=open_labels[name])
            for name, found in labels.items()
        }
        if resolved == known:
            break
        known = resolved
        # Only rules that read recorded series can change on the next pass.
        pending = [i for i, (_, root) in enumerate(records)
                   if any(s.name in names for s in Analysis(root, current).selectors)]
    return [m for name, m in known.items() if catalog.series(name) is None]


def check_groups(files: Mapping[str, Sequence[RuleGroup]], catalog: Catalog) -> list[Problem]:
    """Every problem in every rule of every file, sorted by where it is."""
    from rules.checks import duplicates

    every_group = [g for groups in files.values() for g in groups]
    parsed = _parse_all(every_group)
    full = catalog.with_metrics(recorded_metrics(every_group, catalog, parsed))
    problems: list[Problem] = []
    for file, groups in files.items():
        for group in groups:
            source = f"{file} group {group.name}"
            for rule in group.rules:
                problems.extend(_check_rule(source, rule, full, parsed.get(rule.expr)))
    for file, group, rule, finding in duplicates.check(files):
        problems.append(Problem(f"{file} group {group}", rule, "duplicates", finding.severity, finding.message))
    return sorted(problems)


def _check_rule(source: str, rule: Rule, catalog: Catalog, parsed: Any) -> Iterable[Problem]:
    analysis, findings = check_expression(rule.expr, catalog, parsed)
    for name, check in _rule_checks().items():
        findings.extend((name, f) for f in check(rule, analysis))
    kind = "alert" if isinstance(rule, AlertingRule) else "record"
    return [Problem(source, f"{kind} {rule.name}", name, f.severity, f.message) for name, f in findings]
