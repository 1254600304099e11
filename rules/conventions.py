"""Names and label keys every generated rule agrees on, kept in one place (Sloth's habit)."""

from __future__ import annotations

import re
from enum import StrEnum


class AlertSeverity(StrEnum):
    """Alert severity, the mixins' convention: critical pages, warning opens a ticket,
    info is recorded but never notified."""

    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


SEVERITY_LABEL = "severity"
SERVICE_LABEL = "service"
SLO_LABEL = "slo"

SUMMARY = "summary"
DESCRIPTION = "description"
RUNBOOK_URL = "runbook_url"
REQUIRED_ANNOTATIONS = (SUMMARY, DESCRIPTION, RUNBOOK_URL)

# Services an alert may route on. Routing (Alertmanager) matches on these values, so a typo
# here would silently send an alert to the default receiver.
SERVICES = ("medianest", "business", "database", "cache", "host", "probe", "platform")

# Labels every scraped series carries, added by Prometheus at scrape time.
TARGET_LABELS = ("job", "instance")

# CamelCase, starting with an upper-case letter: the monitoring mixins' alert naming.
ALERT_NAME = re.compile(r"^[A-Z][a-zA-Z0-9]*$")
# level:metric:operations (Prometheus recording rule naming); the level may be empty only
# when nothing was aggregated, which our rules never do.
RECORD_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*:[a-zA-Z0-9_]+:[a-zA-Z0-9_]+$")
# A Prometheus duration: one or more unit groups in decreasing order, e.g. 1h30m.
DURATION = re.compile(r"^((\d+)y)?((\d+)w)?((\d+)d)?((\d+)h)?((\d+)m)?((\d+)s)?((\d+)ms)?$")

# Label names that hold identifiers: every value is new, so a series per value is unbounded.
UNBOUNDED_LABEL = re.compile(
    r"(^|_)(id|ids|uuid|guid)$|^(user|request|correlation|trace|span|session)(_|$)"
)


def duration_seconds(text: str) -> float:
    """Seconds in a Prometheus duration; ValueError when it is not one."""
    match = DURATION.match(text)
    if not text or not match or text == "":
        raise ValueError(f"invalid duration {text!r}: use Prometheus units such as 30s, 5m, 1h, 1d")
    units = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)
    values = match.groups()[1::2]
    if all(v is None for v in values):
        raise ValueError(f"invalid duration {text!r}: use Prometheus units such as 30s, 5m, 1h, 1d")
    return sum(int(v) * unit for v, unit in zip(values, units, strict=True) if v is not None)


def number(value: float) -> str:
    """A number as PromQL and promtool read it: `2` rather than `2.0`, all digits of a byte
    count kept, no float noise (60 * 0.1 -> 6)."""
    value = round(float(value), 6)
    return str(int(value)) if value.is_integer() else repr(value)


# SLO rules (level:metric:operations, Sloth's names). Every series carries `slo="<name>"`.
TIER_LABEL = "tier"
SLO_ERROR_RATIO = "slo:sli_error:ratio_rate{window}"
SLO_EVENTS_RATE = "slo:sli_events:rate5m"
SLO_ERROR_EVENTS_RATE = "slo:sli_error_events:rate5m"
SLO_OBJECTIVE = "slo:objective:ratio"
SLO_ERROR_BUDGET = "slo:error_budget:ratio"
SLO_BUDGET_REMAINING = "slo:period_error_budget_remaining:ratio"
SLO_BURN_RATE = "slo:current_burn_rate:ratio"
SLO_BURN_ALERT = "SLOErrorBudgetBurn"
SLO_NO_DATA_ALERT = "SLONoData"

# Loki stream labels: bounded sets only (tens of values). Ids stay in the log line or in
# structured metadata, never in a stream label.
LOKI_STREAM_LABELS = ("service", "level", "environment", "job")

# Filesystems that cannot fill for real (memory-backed, read-only images, container layers):
# the filesystem alert and the dashboards leave out the same ones.
IGNORED_FILESYSTEMS = 'fstype!~"tmpfs|ramfs|overlay|squashfs"'
