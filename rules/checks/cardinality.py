"""No identifier label survives into a rule's output: each value would be a new series
(recording rules) or a new alert (alerts)."""

from __future__ import annotations

from collections.abc import Iterator

from rules.checks import Finding
from rules.conventions import UNBOUNDED_LABEL
from rules.model import Rule
from rules.problems import Severity
from rules.promql import Analysis


def check(rule: Rule, analysis: Analysis | None) -> Iterator[Finding]:
    labels = set(rule.labels)
    if analysis is not None:
        labels |= analysis.shape_root().labels
    for label in sorted(labels):
        if UNBOUNDED_LABEL.search(label):
            yield Finding(Severity.ERROR, f"label {label} is kept in the rule's output, and "
                          f"identifiers are unbounded (one series per value): aggregate it away, "
                          f"e.g. sum without ({label}) (...)")
