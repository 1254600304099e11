"""Static checks on rules (and, through `check_expression`, on any PromQL query).

One check per module. Expression checks look at one parsed expression and its shapes;
rule checks look at one rule's name, labels and annotations; `duplicates` looks across all
groups. Each yields `Finding`s, which the runner turns into `Problem`s naming the file,
group and rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

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


def check_expression(expr: str, catalog: Catalog) -> tuple[Analysis | None, list[tuple[str, Finding]]]:
    """Parse and check one expression: (analysis or None when it does not parse, findings)."""
    try:
        analysis = Analysis(parse(expr), catalog)
    except ValueError as error:
        return None, [("syntax", Finding(Severity.ERROR, f"invalid PromQL: {error}"))]
    findings = [
        (name, finding)
        for name, check in _expression_checks().items()
        for finding in check(analysis)
    ]
    return analysis, findings


def recorded_metrics(groups: Sequence[RuleGroup], catalog: Catalog) -> list[Metric]:
    """Catalog entries for the series our recording rules produce, with the labels their
    expressions keep (the union, when several rules record one name, as each SLO does).
    Rules may read each other's output, so resolve until nothing changes."""
    parsed = []
    for group in groups:
        for rule in group.rules:
            if isinstance(rule, RecordingRule):
                try:
                    parsed.append((rule, parse(rule.expr)))
                except ValueError:
                    continue  # reported by the syntax check
    known: dict[str, Metric] = {}
    for _ in range(len(parsed) + 1):
        current = catalog.with_metrics(known.values())
        labels: dict[str, set[str]] = {}
        open_labels: dict[str, bool] = {}
        for rule, root in parsed:
            shape = Analysis(root, current).shape_root()
            labels.setdefault(rule.record, set()).update(shape.labels | set(rule.labels))
            open_labels[rule.record] = open_labels.get(rule.record, False) or shape.open
        resolved = {
            name: Metric(name, MetricType.GAUGE, "recorded by our rules", labels=tuple(sorted(names)),
                         target_labels=(), open_labels=open_labels[name])
            for name, names in labels.items()
        }
        if resolved == known:
            break
        known = resolved
    return [m for name, m in known.items() if catalog.series(name) is None]


def check_groups(files: Mapping[str, Sequence[RuleGroup]], catalog: Catalog) -> list[Problem]:
    """Every problem in every rule of every file, sorted by where it is."""
    from rules.checks import duplicates

    every_group = [g for groups in files.values() for g in groups]
    full = catalog.with_metrics(recorded_metrics(every_group, catalog))
    problems: list[Problem] = []
    for file, groups in files.items():
        for group in groups:
            source = f"{file} group {group.name}"
            for rule in group.rules:
                problems.extend(_check_rule(source, rule, full))
    for file, group, rule, finding in duplicates.check(files):
        problems.append(Problem(f"{file} group {group}", rule, "duplicates", finding.severity, finding.message))
    return sorted(problems)


def _check_rule(source: str, rule: Rule, catalog: Catalog) -> Iterable[Problem]:
    analysis, findings = check_expression(rule.expr, catalog)
    for name, check in _rule_checks().items():
        findings.extend((name, f) for f in check(rule, analysis))
    kind = "alert" if isinstance(rule, AlertingRule) else "record"
    return [Problem(source, f"{kind} {rule.name}", name, f.severity, f.message) for name, f in findings]
