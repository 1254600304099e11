"""Parsing PromQL (promql-parser) and inferring what each sub-expression returns.

`Shape` is what the static checks reason about: the value type, which labels the result
can carry, which of them a selector pinned, and which metric families feed it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import promql_parser as pp

from rules.catalog import Catalog, Series

Node = Any  # a promql_parser expression node

# Functions whose result carries no labels of their arguments.
_SCALAR_FUNCTIONS = {"scalar", "time", "pi"}
_LABEL_FREE_FUNCTIONS = {"vector"}
_SET_OPS = {"and", "or", "unless"}
_NON_AGGREGATING = {"topk", "bottomk", "limitk", "limit_ratio"}


def parse(expr: str) -> Node:
    """The expression's AST; ValueError with the parser's message when it is not PromQL."""
    return pp.parse(expr)


def children(node: Node) -> list[Node]:
    if isinstance(node, pp.BinaryExpr):
        return [node.lhs, node.rhs]
    if isinstance(node, pp.AggregateExpr):
        return [node.expr] + ([node.param] if node.param is not None else [])
    if isinstance(node, pp.Call):
        return list(node.args)
    if isinstance(node, pp.MatrixSelector):
        return [node.vector_selector]
    if isinstance(node, (pp.ParenExpr, pp.UnaryExpr, pp.SubqueryExpr)):
        return [node.expr]
    return []


def walk(node: Node) -> Iterator[Node]:
    """Every node, parents before children (iterative: deep expressions nest far)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(children(current)))


def unwrap(node: Node) -> Node:
    while isinstance(node, pp.ParenExpr):
        node = node.expr
    return node


def selectors(node: Node) -> Iterator[pp.VectorSelector]:
    for sub in walk(node):
        if isinstance(sub, pp.VectorSelector):
            yield sub


def matchers_of(selector: pp.VectorSelector) -> list[Any]:
    """Label matchers of a selector, `__name__` excluded, `or` alternatives included."""
    found = list(selector.matchers.matchers)
    for alternative in selector.matchers.or_matchers or []:
        found.extend(alternative)
    return [m for m in found if m.name != "__name__"]


# promql-parser's MatchOp is not hashable: map by member name.
_MATCH_OPS = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}


def match_op(matcher: Any) -> str:
    """A promql-parser matcher's operator as PromQL writes it."""
    return _MATCH_OPS[str(matcher.op).rsplit(".", 1)[-1]]


def label_matches(op: str, expected: str, value: str) -> bool:
    """One matcher (=, !=, =~, !~) on one label value, as Prometheus and Alertmanager match:
    regexes are anchored; pass "" for a label the series does not have."""
    hit = value == expected if op in ("=", "!=") else re.fullmatch(expected, value) is not None
    return hit if op in ("=", "=~") else not hit


def selector_matches(selector: pp.VectorSelector, labels: dict[str, str]) -> bool:
    """Whether a series with these labels is selected (its metric name aside)."""
    return all(label_matches(match_op(m), m.value, labels.get(m.name, "")) for m in matchers_of(selector))


def function_name(node: Node) -> str | None:
    return node.func.name if isinstance(node, pp.Call) else None


def op_name(node: Node) -> str:
    return str(node.op)


def modifier_labels(modifier: Any) -> tuple[str | None, list[str]]:
    """('by'|'without'|'on'|'ignoring'|None, labels) of an aggregation or binary modifier."""
    if modifier is None:
        return None, []
    matching = getattr(modifier, "matching", modifier)
    if matching is None:
        return None, []
    kind = str(matching.type).rsplit(".", 1)[-1]
    mapping = {"By": "by", "Without": "without", "Include": "on", "Exclude": "ignoring"}
    return mapping.get(kind, kind.lower()), list(matching.labels)


@dataclass(frozen=True, slots=True)
class Shape:
    """What an expression evaluates to, as far as static analysis can tell."""

    kind: str  # vector, matrix, scalar, string
    labels: frozenset[str] = frozenset()
    # More labels than `labels` may exist (unknown metric, ALERTS): label checks stand down.
    open: bool = False
    # Labels a selector pinned: name -> (operator, value).
    pinned: dict[str, tuple[str, str]] = field(default_factory=dict)
    families: frozenset[str] = frozenset()
    # Set when the expression is a bare selector (or a range of one).
    series: Series | None = None

    def but(self, **changes: Any) -> Shape:
        """A copy with some fields changed (dataclasses.replace, without its overhead)."""
        fields = {"kind": self.kind, "labels": self.labels, "open": self.open, "pinned": self.pinned,
                  "families": self.families, "series": self.series}
        fields.update(changes)
        return Shape(**fields)

    def has(self, label: str) -> bool:
        return self.open or label in self.labels

    def keep(self, labels: frozenset[str]) -> Shape:
        return self.but(
            labels=self.labels & labels if not self.open else labels,
            pinned={k: v for k, v in self.pinned.items() if k in labels}, series=None, open=False,
        )

    def drop(self, labels: frozenset[str]) -> Shape:
        return self.but(
            labels=self.labels - labels,
            pinned={k: v for k, v in self.pinned.items() if k not in labels}, series=None,
        )


SCALAR = Shape("scalar")
STRING = Shape("string")


class Analysis:
    """Shapes of every node of one expression, computed once and shared by the checks."""

    def __init__(self, root: Node, catalog: Catalog):
        self.root = root
        self.catalog = catalog
        self._shapes: dict[int, Shape] = {}
        self._keep: list[Node] = []  # keeps nodes alive so their ids stay unique

    def shape_root(self) -> Shape:
        return self.shape(self.root)

    @cached_property
    def nodes(self) -> list[Node]:
        """Every node of the expression, walked once for all the checks."""
        return list(walk(self.root))

    @cached_property
    def selectors(self) -> list[pp.VectorSelector]:
        return [n for n in self.nodes if isinstance(n, pp.VectorSelector)]

    def shape(self, node: Node) -> Shape:
        key = id(node)
        cached = self._shapes.get(key)
        if cached is None:
            cached = self._shapes[key] = self._infer(node)
            self._keep.append(node)
        return cached

    def _infer(self, node: Node) -> Shape:
        if isinstance(node, pp.NumberLiteral):
            return SCALAR
        if isinstance(node, pp.StringLiteral):
            return STRING
        if isinstance(node, pp.VectorSelector):
            return self._selector(node)
        if isinstance(node, pp.MatrixSelector):
            return self.shape(node.vector_selector).but(kind="matrix")
        if isinstance(node, pp.SubqueryExpr):
            return self.shape(node.expr).but(kind="matrix", series=None)
        if isinstance(node, (pp.ParenExpr, pp.UnaryExpr)):
            return self.shape(node.expr)
        if isinstance(node, pp.Call):
            return self._call(node)
        if isinstance(node, pp.AggregateExpr):
            return self._aggregate(node)
        if isinstance(node, pp.BinaryExpr):
            return self._binary(node)
        return Shape("vector", open=True)

    def _selector(self, node: pp.VectorSelector) -> Shape:
        pinned = {m.name: (str(m.op).rsplit(".", 1)[-1], m.value) for m in matchers_of(node)}
        series = self.catalog.series(node.name) if node.name else None
        if series is None:
            return Shape("vector", open=True, pinned=pinned,
                         families=frozenset([node.name]) if node.name else frozenset())
        return Shape("vector", series.labels, series.open_labels, pinned,
                     frozenset([series.metric.name]), series)

    def _call(self, node: pp.Call) -> Shape:
        name = node.func.name
        if name in _SCALAR_FUNCTIONS:
            return SCALAR
        args = [self.shape(a) for a in node.args]
        if name in _LABEL_FREE_FUNCTIONS:
            return Shape("vector")
        if name in ("absent", "absent_over_time"):
            pinned = {k: v for k, v in args[0].pinned.items() if v[0] == "Equal"}
            return Shape("vector", frozenset(pinned), pinned=pinned, families=args[0].families)
        vectors = [s for s in args if s.kind in ("vector", "matrix")]
        if not vectors:
            return Shape("vector")
        base = vectors[0].but(kind="vector", series=None)
        if name in ("label_replace", "label_join"):
            target = node.args[1].val if isinstance(node.args[1], pp.StringLiteral) else None
            return base.but(labels=base.labels | {target}) if target else base
        if name == "histogram_quantile":
            return base.drop(frozenset(["le"]))
        return base

    def _aggregate(self, node: pp.AggregateExpr) -> Shape:
        inner = self.shape(node.expr)
        op = op_name(node)
        if op in _NON_AGGREGATING:
            return inner.but(kind="vector", series=None)
        kind, labels = modifier_labels(node.modifier)
        if kind == "by":
            out = inner.keep(frozenset(labels))
        elif kind == "without":
            out = inner.drop(frozenset(labels))
        else:
            out = inner.keep(frozenset())
        if op == "count_values" and isinstance(node.param, pp.StringLiteral):
            out = out.but(labels=out.labels | {node.param.val})
        return out.but(kind="vector")

    def _binary(self, node: pp.BinaryExpr) -> Shape:
        lhs, rhs = self.shape(node.lhs), self.shape(node.rhs)
        op = op_name(node)
        if lhs.kind == "scalar" and rhs.kind == "scalar":
            return SCALAR
        if rhs.kind == "scalar":
            return lhs.but(series=None)
        if lhs.kind == "scalar":
            return rhs.but(series=None)
        families = lhs.families | rhs.families
        if op in _SET_OPS:
            if op == "or":
                agreed = {k: v for k, v in lhs.pinned.items() if rhs.pinned.get(k) == v}
                return Shape("vector", lhs.labels | rhs.labels, lhs.open or rhs.open, agreed, families)
            return lhs.but(series=None)
        modifier = node.modifier
        kind, labels = modifier_labels(modifier)
        card = str(modifier.card).rsplit(".", 1)[-1] if modifier is not None else "OneToOne"
        include = frozenset(modifier.group_labels or []) if modifier is not None and card != "OneToOne" else frozenset()
        if card == "OneToMany":
            out = rhs.but(labels=rhs.labels | include)
        elif card == "ManyToOne":
            out = lhs.but(labels=lhs.labels | include)
        elif kind == "on":
            out = lhs.keep(frozenset(labels))
        elif kind == "ignoring":
            out = lhs.drop(frozenset(labels))
        else:
            out = lhs
        return out.but(families=families, series=None, kind="vector")

    def matching_labels(self, node: pp.BinaryExpr) -> frozenset[str] | None:
        """Labels two vectors are matched on; None when unknown (an open side)."""
        lhs, rhs = self.shape(node.lhs), self.shape(node.rhs)
        kind, labels = modifier_labels(node.modifier)
        if kind == "on":
            return frozenset(labels)
        if lhs.open or rhs.open:
            return None
        every = lhs.labels | rhs.labels
        return every - frozenset(labels) if kind == "ignoring" else every

