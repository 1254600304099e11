"""A rule's own labels do not overwrite labels of its result.

Prometheus replaces a result label with the rule's static label of the same name, so an
alert labelled `service="medianest"` over a metric whose `service` names an external API
loses which API failed. Rename the data's label first (label_replace). A label the expression
pins to the very same value (slo="x" on both) overwrites nothing."""

from __future__ import annotations

from collections.abc import Iterator

from rules.checks import Finding
from rules.model import Rule
from rules.problems import Severity
from rules.promql import Analysis


def check(rule: Rule, analysis: Analysis | None) -> Iterator[Finding]:
    if analysis is None:
        return
    shape = analysis.shape_root()
    for label in sorted(set(rule.labels) & shape.labels):
        if shape.pinned.get(label) == ("Equal", rule.labels[label]):
            continue  # the expression selects exactly this value: nothing is overwritten
        yield Finding(Severity.ERROR, f"the rule's label {label}={rule.labels[label]!r} overwrites "
                      f"the {label} label of its result: rename the data's label with "
                      f'label_replace(..., "<new>", "$1", "{label}", "(.*)") and aggregate it')
