"""Prometheus rules as typed models, mirroring the rule file format one to one.

The models accept any strings so that `check` can report every problem of a bad rule at
once (pint's way) instead of stopping at the first; the checks in `rules/checks` are the
validation.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from rules.conventions import (
    DESCRIPTION,
    RUNBOOK_URL,
    SERVICE_LABEL,
    SEVERITY_LABEL,
    SUMMARY,
    AlertSeverity,
)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class AlertingRule(_Frozen):
    alert: str
    expr: str
    for_: str | None = Field(default=None, alias="for")
    keep_firing_for: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.alert

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"alert": self.alert, "expr": self.expr}
        if self.for_:
            out["for"] = self.for_
        if self.keep_firing_for:
            out["keep_firing_for"] = self.keep_firing_for
        if self.labels:
            out["labels"] = dict(sorted(self.labels.items()))
        if self.annotations:
            out["annotations"] = dict(sorted(self.annotations.items()))
        return out


class RecordingRule(_Frozen):
    record: str
    expr: str
    labels: dict[str, str] = Field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.record

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"record": self.record, "expr": self.expr}
        if self.labels:
            out["labels"] = dict(sorted(self.labels.items()))
        return out


Rule = AlertingRule | RecordingRule


class RuleGroup(_Frozen):
    name: str
    rules: tuple[Rule, ...]
    interval: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.interval:
            out["interval"] = self.interval
        out["rules"] = [rule.to_dict() for rule in self.rules]
        return out


def alert(
    name: str,
    expr: str,
    *,
    severity: AlertSeverity,
    service: str,
    summary: str,
    description: str,
    runbook_base_url: str,
    for_: str | None = None,
    labels: dict[str, str] | None = None,
) -> AlertingRule:
    """An alert following the house conventions: severity and service labels for routing,
    a static summary, a templated description and a runbook named after the alert."""
    return AlertingRule(
        alert=name,
        expr=_strip(expr),
        for_=for_,
        labels={SEVERITY_LABEL: str(severity), SERVICE_LABEL: service, **(labels or {})},
        annotations={
            SUMMARY: summary,
            DESCRIPTION: description,
            RUNBOOK_URL: f"{runbook_base_url.rstrip('/')}/{name}",
        },
    )


def record(name: str, expr: str, labels: dict[str, str] | None = None) -> RecordingRule:
    return RecordingRule(record=name, expr=_strip(expr), labels=labels or {})


def _strip(expr: str) -> str:
    """One PromQL expression per line-joined string: definitions may indent freely."""
    return " ".join(line.strip() for line in expr.strip().splitlines() if line.strip())


class RuleFile(_Frozen):
    """One generated rule file (`prometheus/rules/<name>.yaml`), its groups, and the promtool
    tests that prove them (`prometheus/tests/<name>.yaml`)."""

    name: str
    groups: tuple[RuleGroup, ...]
    tests: tuple[Any, ...] = ()  # rules.testing.RuleTest; Any keeps the model import-light
    # Groups the long-term store's rule evaluator runs instead of Prometheus (the SLOs' period
    # rules, where the period's history is): written apart, under `long-term/rules/`.
    long_term_groups: tuple[str, ...] = ()

    @property
    def prometheus_groups(self) -> tuple[RuleGroup, ...]:
        return tuple(g for g in self.groups if g.name not in self.long_term_groups)

    @property
    def store_groups(self) -> tuple[RuleGroup, ...]:
        return tuple(g for g in self.groups if g.name in self.long_term_groups)
