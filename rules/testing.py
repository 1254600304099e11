"""promtool unit tests written as Python data, kept beside the rules they prove.

A `RuleTest` is one promtool test group: input series and the alerts and expressions
expected at given times. Tests are run in suites: one promtool test file each, evaluated at
one interval, loading only the rules its tests read (`suites`). An expected alert states every
label it must carry and, where the test proves them, its summary and description: nothing is
copied from the rule under test, so a wrong severity, routing label or summary fails.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rules.conventions import DESCRIPTION, RUNBOOK_URL, SERVICE_LABEL, SEVERITY_LABEL, SUMMARY
from rules.model import AlertingRule, RecordingRule, Rule, RuleFile, RuleGroup
from rules.promql import label_matches, match_op, matchers_of, parse, selectors

ALERTS_SERIES = ("ALERTS", "ALERTS_FOR_STATE")


@dataclass(frozen=True)
class Series:
    """One input series in promtool's expanding notation, e.g. `0+10x30` or `1x60`."""

    selector: str
    values: str


@dataclass(frozen=True)
class Firing:
    """An alert instance expected to fire: every label it carries but `alertname` (from the data
    and the rule's own), and its summary and description as rendered, or neither (a suite that
    does not prove annotations runs on rules without them)."""

    labels: dict[str, str] = field(default_factory=dict)
    summary: str | None = None
    description: str | None = None

    @property
    def states_annotations(self) -> bool:
        return self.summary is not None or self.description is not None


@dataclass(frozen=True)
class Expected:
    """What an alert carries whatever the data, stated by its tests apart from its rule."""

    severity: str
    service: str
    summary: str
    labels: dict[str, str] = field(default_factory=dict)

    def firing(self, labels: dict[str, str], description: str) -> Firing:
        return Firing({**labels, SEVERITY_LABEL: self.severity, SERVICE_LABEL: self.service, **self.labels},
                      self.summary, description)


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
    interval: str = "1m"  # between input samples
    # The promtool run it belongs to; by default named after the alerts it checks.
    suite: str | None = None
    # Between rule evaluations in its suite; None: the stack's evaluation interval.
    evaluation_interval: str | None = None

    @property
    def suite_name(self) -> str:
        if self.suite:
            return self.suite
        alerts = sorted({check.alert for check in self.alerts})
        return "+".join(alerts) if alerts else "records"


@dataclass(frozen=True)
class Suite:
    """One promtool run: tests evaluated at one interval on the rules they read. `whole`: those
    are the rule file's rules as shipped; otherwise a restricted copy is loaded."""

    name: str
    evaluation_interval: str
    tests: tuple[RuleTest, ...]
    groups: tuple[RuleGroup, ...]
    whole: bool


def suites(rule_file: RuleFile, evaluation_interval: str) -> list[Suite]:
    """A rule file's tests by suite, in the order their first test is defined."""
    defined = {r.alert for g in rule_file.groups for r in g.rules if isinstance(r, AlertingRule)}
    grouped: dict[str, list[RuleTest]] = {}
    for test in rule_file.tests:
        unknown = sorted({c.alert for c in test.alerts} - defined)
        if unknown:
            raise ValueError(f"test {test.name!r} of {rule_file.name} expects {', '.join(unknown)}, "
                             "which no rule of the file defines")
        grouped.setdefault(test.suite_name, []).append(test)
    out = []
    for name, tests in grouped.items():
        intervals = {t.evaluation_interval or evaluation_interval for t in tests}
        if len(intervals) != 1:
            raise ValueError(f"suite {name} of {rule_file.name} mixes evaluation intervals {sorted(intervals)}")
        annotated = {f.states_annotations for t in tests for check in t.alerts for f in check.firing}
        if len(annotated) > 1:
            raise ValueError(f"suite {name} of {rule_file.name}: either every expected alert states its "
                             "annotations or none does")
        groups = restricted(rule_file.groups, tests, annotations=True in annotated)
        whole = groups == rule_file.groups
        out.append(Suite(name, intervals.pop(), tuple(tests), groups, whole))
    return out


# --- what a suite reads ------------------------------------------------------------------------

def restricted(groups: Sequence[RuleGroup], tests: Iterable[RuleTest], annotations: bool) -> tuple[RuleGroup, ...]:
    """The rules the tests read, and the rules those read, in their groups and order; without
    annotations unless the tests prove them (nothing else reads them)."""
    rules = [r for g in groups for r in g.rules]
    wanted: list[tuple[str, dict[str, tuple[str, str]]]] = []
    for test in tests:
        wanted += [("ALERTS", {"alertname": ("=", c.alert)}) for c in test.alerts]
        wanted += [_wanted(s) for c in test.exprs for s in selectors(parse(c.expr))]
    kept: set[int] = set()
    while wanted:
        name, matchers = wanted.pop()
        for index, rule in enumerate(rules):
            if index not in kept and _produces(rule, name, matchers):
                kept.add(index)
                wanted += [_wanted(s) for s in selectors(parse(rule.expr))]
    out = []
    for group in groups:
        chosen = tuple(r if annotations or isinstance(r, RecordingRule) else r.model_copy(update={"annotations": {}})
                       for r in group.rules if rules.index(r) in kept)
        if chosen:
            out.append(group.model_copy(update={"rules": chosen}))
    return tuple(out)


def _wanted(selector: Any) -> tuple[str, dict[str, tuple[str, str]]]:
    return selector.name or "", {m.name: (match_op(m), m.value) for m in matchers_of(selector)}


def _produces(rule: Rule, name: str, matchers: dict[str, tuple[str, str]]) -> bool:
    """Whether the rule may produce series selected by `name{matchers}`: the series name is its
    record (or ALERTS for an alert), and no matcher contradicts its own labels."""
    if isinstance(rule, AlertingRule):
        if name not in ALERTS_SERIES:
            return False
        static = {**rule.labels, "alertname": rule.alert}
    else:
        if name != rule.record:
            return False
        static = dict(rule.labels)
    return all(label_matches(op, value, static[label]) for label, (op, value) in matchers.items() if label in static)


def series_names(expr: str) -> set[str]:
    """Metric names an expression selects."""
    return {s.name for s in selectors(parse(expr)) if s.name}


# --- promtool's file format ----------------------------------------------------------------------

def render_test_file(rule_files: Sequence[str], tests: Iterable[RuleTest], evaluation_interval: str,
                     runbook_base_url: str) -> dict[str, Any]:
    return {
        "rule_files": list(rule_files),
        "evaluation_interval": evaluation_interval,
        "tests": [_render_test(test, runbook_base_url) for test in tests],
    }


def _render_test(test: RuleTest, runbook_base_url: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": test.name,
        "interval": test.interval,
        "input_series": [{"series": s.selector, "values": s.values} for s in test.series],
    }
    if test.alerts:
        out["alert_rule_test"] = [_render_alert_at(check, runbook_base_url) for check in test.alerts]
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


def runbook_url(runbook_base_url: str, alert: str) -> str:
    """Where an alert's runbook must be: a page named after the alert."""
    return f"{runbook_base_url.rstrip('/')}/{alert}"


def _render_alert_at(check: AlertAt, runbook_base_url: str) -> dict[str, Any]:
    expected = []
    for firing in check.firing:
        item: dict[str, Any] = {"exp_labels": dict(sorted(firing.labels.items()))}
        if firing.states_annotations:
            if firing.summary is None or firing.description is None:
                raise ValueError(f"test of {check.alert} at {check.at}: state both summary and description")
            item["exp_annotations"] = {DESCRIPTION: firing.description, RUNBOOK_URL: runbook_url(
                runbook_base_url, check.alert), SUMMARY: firing.summary}
        expected.append(item)
    return {"eval_time": check.at, "alertname": check.alert, "exp_alerts": expected}


# --- coverage ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Coverage:
    alerts_total: int
    alerts_covered: int
    records_total: int
    records_covered: int
    # Alerts without a firing, silent or annotated case, records never evaluated.
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


def coverage(groups: Iterable[RuleGroup], tests: Iterable[RuleTest]) -> Coverage:
    """Each alert needs a case where it fires, one where it stays silent and one that proves its
    annotations; each recording rule an expression test that reads it."""
    rules: list[Rule] = [r for g in groups for r in g.rules]
    tests = list(tests)
    fires = {c.alert for t in tests for c in t.alerts if c.firing}
    silent = {c.alert for t in tests for c in t.alerts if not c.firing}
    annotated = {c.alert for t in tests for c in t.alerts if any(f.states_annotations for f in c.firing)}
    evaluated = {name for t in tests for c in t.exprs for name in series_names(c.expr)}
    missing: list[str] = []
    alerts_covered = records_covered = 0
    alert_names = sorted({r.alert for r in rules if isinstance(r, AlertingRule)})
    # An alert over no series (Watchdog's vector(1)) fires by design: it has no silent case.
    constant = {r.alert for r in rules if isinstance(r, AlertingRule) and not series_names(r.expr)}
    for name in alert_names:
        lacks = [what for what, ok in (("firing", name in fires), ("silent", name in silent or name in constant),
                                       ("annotated", name in annotated)) if not ok]
        if lacks:
            missing.append(f"{name} (no {' or '.join(lacks)} case)")
        else:
            alerts_covered += 1
    record_names = sorted({r.record for r in rules if isinstance(r, RecordingRule)})
    for name in record_names:
        if name in evaluated:
            records_covered += 1
        else:
            missing.append(f"{name} (never evaluated)")
    return Coverage(len(alert_names), alerts_covered, len(record_names), records_covered, tuple(missing))

