"""A rule's expression returns an instant vector: Prometheus refuses scalars and strings."""

from __future__ import annotations

from collections.abc import Iterator

from rules.checks import Finding
from rules.model import Rule
from rules.problems import Severity
from rules.promql import Analysis


def check(rule: Rule, analysis: Analysis | None) -> Iterator[Finding]:
    if analysis is None:
        return
    kind = analysis.shape_root().kind
    if kind != "vector":
        yield Finding(Severity.ERROR, f"the expression returns a {kind}, but a rule needs an "
                      "instant vector (wrap a scalar in vector(...), drop the range selector)")
