"""Prefer recorded series: a panel that sums a rate a recording rule already records (same metric,
same grouping, same matchers) recomputes on every refresh what Prometheus keeps ready."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import promql_parser as pp

from dashboards.checks import Context, PanelFinding, panels, queries
from dashboards.checks.promql import substitute, variables
from dashboards.model import GeneratedDashboard
from rules.checks import Finding
from rules.model import RecordingRule, RuleGroup
from rules.problems import Severity
from rules.promql import function_name, matchers_of, modifier_labels, op_name, parse, unwrap, walk

Key = tuple[str, frozenset[str], frozenset[tuple[str, str, str]]]


def _sum_of_rate(node: Any) -> Key | None:
    """(metric, grouping, matchers) of `sum by (...) (rate(metric{...}[w]))`."""
    if not isinstance(node, pp.AggregateExpr) or op_name(node).rsplit(".", 1)[-1].lower() not in ("sum", "+"):
        return None
    kind, labels = modifier_labels(node.modifier)
    inner = unwrap(node.expr)
    if kind != "by" or function_name(inner) != "rate":
        return None
    arg = inner.args[0]
    if not isinstance(arg, pp.MatrixSelector):
        return None
    selector = arg.vector_selector
    matchers = frozenset((m.name, str(m.op), m.value) for m in matchers_of(selector))
    return selector.name, frozenset(labels), matchers


def recorded_aggregations(groups: Sequence[RuleGroup]) -> dict[Key, str]:
    """What each recording rule whose whole expression is a sum of a rate records."""
    found: dict[Key, str] = {}
    for group in groups:
        for rule in group.rules:
            if isinstance(rule, RecordingRule):
                try:
                    key = _sum_of_rate(unwrap(parse(rule.expr)))
                except ValueError:
                    continue
                if key is not None:
                    found.setdefault(key, rule.record)
    return found


def check(dashboard: GeneratedDashboard, context: Context) -> Iterator[PanelFinding]:
    if not context.recorded:
        return
    defined = {v.get("name", "") for v in variables(dashboard)}
    for panel in panels(dashboard):
        for kind, target in queries(panel):
            if kind != "prometheus":
                continue
            text, _ = substitute(target.get("expr", ""), defined, context)
            try:
                root = parse(text)
            except ValueError:
                continue  # the promql check reports it
            for node in walk(root):
                key = _sum_of_rate(node)
                if key is not None and key in context.recorded:
                    yield panel.get("title", ""), Finding(
                        Severity.WARNING, f"{node} is recorded as {context.recorded[key]}: query that instead")
