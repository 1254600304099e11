"""House conventions: alert and record names, severity and service labels, annotations."""

from __future__ import annotations

from collections.abc import Iterator

from rules.checks import Finding
from rules.conventions import (
    ALERT_NAME,
    DESCRIPTION,
    RECORD_NAME,
    REQUIRED_ANNOTATIONS,
    RUNBOOK_URL,
    SERVICE_LABEL,
    SERVICES,
    SEVERITY_LABEL,
    SUMMARY,
    AlertSeverity,
)
from rules.model import AlertingRule, Rule
from rules.problems import Severity
from rules.promql import Analysis

SEVERITIES = ", ".join(s.value for s in AlertSeverity)


def check(rule: Rule, analysis: Analysis | None) -> Iterator[Finding]:
    if isinstance(rule, AlertingRule):
        yield from _alert(rule)
    elif not RECORD_NAME.match(rule.record):
        yield Finding(Severity.ERROR, f"recording rule name {rule.record!r} does not follow "
                      "level:metric:operations, e.g. job:medianest_http_requests:rate5m")


def _alert(rule: AlertingRule) -> Iterator[Finding]:
    if not ALERT_NAME.match(rule.alert):
        yield Finding(Severity.ERROR, f"alert name {rule.alert!r} is not CamelCase "
                      "(e.g. HighErrorRate)")
    severity = rule.labels.get(SEVERITY_LABEL)
    if severity not in {s.value for s in AlertSeverity}:
        yield Finding(Severity.ERROR, f"severity label {severity!r} must be one of {SEVERITIES}")
    service = rule.labels.get(SERVICE_LABEL)
    if service not in SERVICES:
        yield Finding(Severity.ERROR, f"service label {service!r} must be one of "
                      f"{', '.join(SERVICES)} (routing matches on it)")
    for key in REQUIRED_ANNOTATIONS:
        if not rule.annotations.get(key, "").strip():
            yield Finding(Severity.ERROR, f"missing annotation {key}")
    if "{{" in rule.annotations.get(SUMMARY, ""):
        yield Finding(Severity.WARNING, "summary should be static (it titles grouped "
                      "notifications); put the values in the description")
    runbook = rule.annotations.get(RUNBOOK_URL, "")
    if runbook and not runbook.startswith(("https://", "http://")):
        yield Finding(Severity.ERROR, f"runbook_url {runbook!r} is not an http(s) URL")
    if rule.annotations.get(DESCRIPTION) and "{{" not in rule.annotations[DESCRIPTION] \
            and rule.labels.get(SEVERITY_LABEL) != AlertSeverity.INFO and rule.for_:
        yield Finding(Severity.INFO, "description has no template: say which target and what "
                      "value ({{ $labels.instance }}, {{ $value }})")
