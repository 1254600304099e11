"""`for` and `keep_firing_for` are Prometheus durations."""

from __future__ import annotations

from collections.abc import Iterator

from rules.checks import Finding
from rules.conventions import duration_seconds
from rules.model import AlertingRule, Rule
from rules.problems import Severity
from rules.promql import Analysis


def check(rule: Rule, analysis: Analysis | None) -> Iterator[Finding]:
    if not isinstance(rule, AlertingRule):
        return
    for field, value in (("for", rule.for_), ("keep_firing_for", rule.keep_firing_for)):
        if value is None:
            continue
        try:
            duration_seconds(value)
        except ValueError as error:
            yield Finding(Severity.ERROR, f"{field}: {error}")
