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
    return analysis, _findings(analysis)


def _findings(analysis: Analysis) -> list[tuple[str, Finding]]:
    return [(name, finding) for name, check in _expression_checks().items() for finding in check(analysis)]


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
    expressions keep (the union, when several rules record one name, as each SLO does)."""
    return _resolve_records(groups, catalog, parsed if parsed is not None else _parse_all(groups))[0]


def _resolve_records(groups: Sequence[RuleGroup], catalog: Catalog, parsed: dict[str, Any]
                     ) -> tuple[list[Metric], dict[int, Analysis]]:
    """The recorded series, and each recording rule's analysis as it stands once they are all
    known (keyed by id of the rule), for the checks to reuse. Rules may read each other's
    output: those are analysed again until nothing changes; the others only once."""
    records = [(r, parsed[r.expr]) for g in groups for r in g.rules
               if isinstance(r, RecordingRule) and parsed.get(r.expr) is not None]
    names = {rule.record for rule, _ in records}
    analyses: dict[int, Analysis] = {}
    pending = list(range(len(records)))
    readers: list[int] = []
    known: dict[str, Metric] = {}
    for attempt in range(len(records) + 1):
        current = catalog.with_metrics(known.values())
        for index in pending:
            analyses[index] = Analysis(records[index][1], current)
        if attempt == 0:
            readers = [i for i in pending if any(s.name in names for s in analyses[i].selectors)]
        labels: dict[str, set[str]] = {}
        open_labels: dict[str, bool] = {}
        for index, (rule, _) in enumerate(records):
            shape = analyses[index].shape_root()
            labels.setdefault(rule.record, set()).update(shape.labels | set(rule.labels))
            open_labels[rule.record] = open_labels.get(rule.record, False) or shape.open
        resolved = {
            name: Metric(name, MetricType.GAUGE, "recorded by our rules", labels=tuple(sorted(found)),
                         target_labels=(), open_labels=open_labels[name])
            for name, found in labels.items()
        }
        if resolved == known:
            break
        known = resolved
        pending = readers  # only rules that read recorded series can change
    metrics = [m for name, m in known.items() if catalog.series(name) is None]
    return metrics, {id(records[i][0]): a for i, a in analyses.items()}


def check_groups(files: Mapping[str, Sequence[RuleGroup]], catalog: Catalog) -> list[Problem]:
    """Every problem in every rule of every file, sorted by where it is."""
    from rules.checks import duplicates

    every_group = [g for groups in files.values() for g in groups]
    parsed = _parse_all(every_group)
    metrics, analyses = _resolve_records(every_group, catalog, parsed)
    full = catalog.with_metrics(metrics)
    problems: list[Problem] = []
    for file, groups in files.items():
        for group in groups:
            source = f"{file} group {group.name}"
            for rule in group.rules:
                analysis = analyses.get(id(rule))
                if analysis is not None:
                    # Its shapes hold under the full catalog; give it that for the checks' look-ups.
                    analysis.catalog = full
                    found = (analysis, _findings(analysis))
                else:
                    found = check_expression(rule.expr, full, parsed.get(rule.expr))
                problems.extend(_check_rule(source, rule, *found))
    for file, group, rule, finding in duplicates.check(files):
        problems.append(Problem(f"{file} group {group}", rule, "duplicates", finding.severity, finding.message))
    return sorted(problems)


def _check_rule(source: str, rule: Rule, analysis: Analysis | None,
                findings: list[tuple[str, Finding]]) -> Iterable[Problem]:
    for name, check in _rule_checks().items():
        findings.extend((name, f) for f in check(rule, analysis))
    kind = "alert" if isinstance(rule, AlertingRule) else "record"
    return [Problem(source, f"{kind} {rule.name}", name, f.severity, f.message) for name, f in findings]
