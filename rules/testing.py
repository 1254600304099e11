"""promtool unit tests written as Python data, kept beside the rules they prove.

A `RuleTest` is one promtool test group: input series and the alerts and expressions
expected at given times. `render_test_file` turns them into promtool's format; alert
expectations only name the labels that come from the data, and the rule's own labels and
static annotations are filled in from the rule, so an expectation cannot drift from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rules.conventions import DESCRIPTION
from rules.model import AlertingRule, RecordingRule, Rule, RuleGroup
from rules.promql import parse, selectors


@dataclass(frozen=True)
class Series:
    """One input series in promtool's expanding notation, e.g. `0+10x30` or `1x60`."""

    selector: str
    values: str


@dataclass(frozen=True)
class Firing:
    """An alert instance expected to fire: the labels it takes from the data, and its
    description as the template renders it."""

    labels: dict[str, str] = field(default_factory=dict)
    description: str | None = None


@dataclass(frozen=True)
class AlertAt:
    """At `at`, the alert `alert` fires exactly these instances (none: it is silent)."""

    at: str
    alert: str
    firing: tuple[Firing, ...] = ()


@dataclass(frozen=True)
class ExprAt:
    """At `at`, `expr` evaluates to exactly these samples (labels selector text -> value)."""

    at: str
    expr: str
    samples: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class RuleTest:
    name: str
    series: tuple[Series, ...]
    alerts: tuple[AlertAt, ...] = ()
    exprs: tuple[ExprAt, ...] = ()
    interval: str = "1m"


@dataclass(frozen=True)
class Coverage:
    alerts_total: int
    alerts_covered: int
    records_total: int
    records_covered: int
    # Alerts without a firing case or without a silent case, records never evaluated.
    missing: tuple[str, ...]

    @property
    def ratio(self) -> float:
        total = self.alerts_total + self.records_total
        return 1.0 if total == 0 else (self.alerts_covered + self.records_covered) / total

    def render(self) -> str:
        text = (
            f"coverage: alerts {self.alerts_covered}/{self.alerts_total}, "
            f"recording rules {self.records_covered}/{self.records_total} "
            f"({self.ratio:.0%})"
        )
        if self.missing:
            text += "\n  not covered: " + ", ".join(self.missing)
        return text


def render_test_file(
    rule_files: Sequence[str], groups: Iterable[RuleGroup], tests: Iterable[RuleTest],
    evaluation_interval: str = "1m",
) -> dict[str, Any]:
    alerts: dict[str, list[AlertingRule]] = {}
    for rule in (r for g in groups for r in g.rules if isinstance(r, AlertingRule)):
        alerts.setdefault(rule.alert, []).append(rule)
    return {
        "rule_files": list(rule_files),
        "evaluation_interval": evaluation_interval,
        "tests": [_render_test(test, alerts) for test in tests],
    }


def _render_test(test: RuleTest, alerts: dict[str, list[AlertingRule]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": test.name,
        "interval": test.interval,
        "input_series": [{"series": s.selector, "values": s.values} for s in test.series],
    }
    if test.alerts:
        out["alert_rule_test"] = [_render_alert_at(check, alerts) for check in test.alerts]
    if test.exprs:
        out["promql_expr_test"] = [
            {
                "expr": check.expr,
                "eval_time": check.at,
                "exp_samples": [{"labels": labels, "value": value} for labels, value in check.samples],
            }
            for check in test.exprs
        ]
    return out


def _rule_for(check: AlertAt, firing: Firing, alerts: dict[str, list[AlertingRule]]) -> AlertingRule:
    """The rule an expected instance comes from; rules sharing a name (an SLO's page and
    ticket) are told apart by the static labels the expectation names."""
    rules = alerts.get(check.alert)
    if not rules:
        raise KeyError(f"test expects alert {check.alert!r}, which no rule defines")
    matching = [r for r in rules if all(firing.labels.get(k, v) == v for k, v in r.labels.items())]
    if len(matching) != 1:
        raise ValueError(f"test of {check.alert}: labels {firing.labels} match {len(matching)} rules; "
                         "name the label that tells them apart")
    return matching[0]


def _render_alert_at(check: AlertAt, alerts: dict[str, list[AlertingRule]]) -> dict[str, Any]:
    expected = []
    for firing in check.firing:
        rule = _rule_for(check, firing, alerts)
        annotations = dict(rule.annotations)
        if firing.description is not None:
            annotations[DESCRIPTION] = firing.description
        elif "{{" in annotations.get(DESCRIPTION, ""):
            raise ValueError(
                f"test of {check.alert}: its description is a template, so the expectation "
                "must give the rendered text"
            )
        expected.append(
            {
                # The rule's own labels win over the data's, as in Prometheus.
                "exp_labels": dict(sorted({**firing.labels, **rule.labels}.items())),
                "exp_annotations": dict(sorted(annotations.items())),
            }
        )
    return {"eval_time": check.at, "alertname": check.alert, "exp_alerts": expected}


def coverage(groups: Iterable[RuleGroup], tests: Iterable[RuleTest]) -> Coverage:
    rules: list[Rule] = [r for g in groups for r in g.rules]
    tests = list(tests)
    fires = {c.alert for t in tests for c in t.alerts if c.firing}
    silent = {c.alert for t in tests for c in t.alerts if not c.firing}
    evaluated = {name for t in tests for c in t.exprs for name in series_names(c.expr)}
    missing: list[str] = []
    alerts_covered = records_covered = 0
    alert_names = sorted({r.alert for r in rules if isinstance(r, AlertingRule)})
    # An alert over no series (Watchdog's vector(1)) fires by design: it has no silent case.
    constant = {r.alert for r in rules if isinstance(r, AlertingRule) and not series_names(r.expr)}
    for name in alert_names:
        if name in fires and (name in silent or name in constant):
            alerts_covered += 1
        else:
            lacks = " and ".join(
                what for what, ok in (("firing", name in fires), ("silent", name in silent or name in constant))
                if not ok
            )
            missing.append(f"{name} (no {lacks} case)")
    record_names = sorted({r.record for r in rules if isinstance(r, RecordingRule)})
    for name in record_names:
        if name in evaluated:
            records_covered += 1
        else:
            missing.append(f"{name} (never evaluated)")
    return Coverage(len(alert_names), alerts_covered, len(record_names), records_covered, tuple(missing))


def series_names(expr: str) -> set[str]:
    """Metric names an expression selects."""
    return {s.name for s in selectors(parse(expr)) if s.name}
