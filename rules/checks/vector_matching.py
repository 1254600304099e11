"""The two sides of a binary operation between vectors can match, and matching them means
what the author meant.

Two classic mistakes (both in MediaNest's seed rules):
- sides that pin a matched label to different values (`status="completed"` against
  `status="queued"`) never match, so the expression is always empty;
- a ratio of a metric to itself where one side filters a matched label
  (`x{status_code=~"5.."} / x`) divides each series by itself: the "ratio" is 1.
"""

from __future__ import annotations

from collections.abc import Iterator

import promql_parser as pp

from rules.checks import Finding
from rules.problems import Severity
from rules.promql import Analysis, modifier_labels, op_name

_SET_OPS = {"and", "or", "unless"}
_ARITHMETIC = {"+", "-", "*", "/", "%", "^", "atan2"}


def check(analysis: Analysis) -> Iterator[Finding]:
    for node in analysis.nodes:
        if isinstance(node, pp.BinaryExpr):
            yield from _binary(analysis, node)


def _binary(analysis: Analysis, node: pp.BinaryExpr) -> Iterator[Finding]:
    lhs, rhs = analysis.shape(node.lhs), analysis.shape(node.rhs)
    if lhs.kind != "vector" or rhs.kind != "vector":
        return
    op = op_name(node)
    kind, listed = modifier_labels(node.modifier)
    matched = analysis.matching_labels(node)
    if op not in _SET_OPS and kind != "on" and not (lhs.open or rhs.open):
        ignored = set(listed) if kind == "ignoring" else set()
        only_left = sorted(lhs.labels - rhs.labels - ignored)
        only_right = sorted(rhs.labels - lhs.labels - ignored)
        if only_left or only_right:
            sides = "; ".join(
                f"only the {side} side has {', '.join(labels)}"
                for side, labels in (("left", only_left), ("right", only_right)) if labels
            )
            yield Finding(Severity.ERROR, f"the sides of `{op}` have different labels ({sides}), so "
                          "no series can match: aggregate both to the same labels or use on (...)")
            return
    if matched is None:
        return
    for label in sorted(matched):
        left, right = lhs.pinned.get(label), rhs.pinned.get(label)
        if left and right and left[0] == right[0] == "Equal" and left[1] != right[1]:
            yield Finding(Severity.ERROR, f"`{op}` matches on {label}, but the left side selects "
                          f'{label}="{left[1]}" and the right side {label}="{right[1]}": no series '
                          f"can match; aggregate {label} away on both sides (sum without ({label})) "
                          f"or add ignoring ({label})")
        elif (op in _ARITHMETIC and bool(left) != bool(right)
              and lhs.families and lhs.families == rhs.families):
            filtered = "left" if left else "right"
            yield Finding(Severity.ERROR, f"`{op}` of {', '.join(sorted(lhs.families))} by itself "
                          f"matches series by {label}, which only the {filtered} side filters: each "
                          f"series meets its own copy and the result is trivially 1 or 0; aggregate "
                          f"{label} away on both sides, e.g. sum without ({label}) (...)")
