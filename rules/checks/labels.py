"""Every label used in a matcher, a grouping or a join exists on what it is applied to."""

from __future__ import annotations

from collections.abc import Iterator

import promql_parser as pp

from rules.checks import Finding
from rules.problems import Severity
from rules.promql import Analysis, matchers_of, modifier_labels, op_name


def _known(labels: frozenset[str]) -> str:
    return ", ".join(sorted(labels)) or "none"


def check(analysis: Analysis) -> Iterator[Finding]:
    for node in analysis.nodes:
        if isinstance(node, pp.VectorSelector):
            yield from _selector(analysis, node)
        elif isinstance(node, pp.AggregateExpr):
            yield from _grouping(analysis, node)
        elif isinstance(node, pp.BinaryExpr):
            yield from _join(analysis, node)


def _selector(analysis: Analysis, node: pp.VectorSelector) -> Iterator[Finding]:
    jobs = analysis.catalog.jobs
    for matcher in matchers_of(node):
        if matcher.name == "job" and matcher.op == pp.MatchOp.Equal and jobs and matcher.value not in jobs:
            yield Finding(Severity.ERROR, f'job="{matcher.value}" is not a scrape job of this stack '
                          f"(jobs: {', '.join(sorted(jobs))}), so {node} never matches")
    shape = analysis.shape(node)
    if shape.series is None or shape.open:
        return
    for matcher in matchers_of(node):
        if matcher.name not in shape.labels:
            yield Finding(Severity.ERROR, f"label {matcher.name} is not on {node.name} "
                          f"(its labels: {_known(shape.labels)}), so {node} never matches")


def _grouping(analysis: Analysis, node: pp.AggregateExpr) -> Iterator[Finding]:
    kind, labels = modifier_labels(node.modifier)
    inner = analysis.shape(node.expr)
    if inner.open or kind is None:
        return
    for label in labels:
        if label not in inner.labels:
            severity = Severity.ERROR if kind == "by" else Severity.WARNING
            yield Finding(severity, f"{op_name(node)} {kind} ({label}): no series aggregated here "
                          f"has a {label} label (available: {_known(inner.labels)})")


def _join(analysis: Analysis, node: pp.BinaryExpr) -> Iterator[Finding]:
    lhs, rhs = analysis.shape(node.lhs), analysis.shape(node.rhs)
    if "vector" not in (lhs.kind, rhs.kind) or lhs.kind != rhs.kind:
        return
    kind, labels = modifier_labels(node.modifier)
    for label in labels:
        missing = [side for side, shape in (("left", lhs), ("right", rhs)) if not shape.has(label)]
        if kind == "on" and missing:
            yield Finding(Severity.ERROR, f"on ({label}): the {' and '.join(missing)} side has no "
                          f"{label} label, so no series can match")
        elif kind == "ignoring" and len(missing) == 2:
            yield Finding(Severity.WARNING, f"ignoring ({label}): neither side has a {label} label")
    if node.modifier is not None and node.modifier.group_labels:
        card = str(node.modifier.card).rsplit(".", 1)[-1]
        one_side = rhs if card == "ManyToOne" else lhs
        for label in node.modifier.group_labels:
            if not one_side.has(label):
                yield Finding(Severity.ERROR, f"group labels ({label}): the side they are copied "
                              f"from has no {label} label (available: {_known(one_side.labels)})")
