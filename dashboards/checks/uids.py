"""Dashboard uids are unique and valid: Grafana keys dashboards, links and provisioning on them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence

from dashboards.model import UID, GeneratedDashboard
from rules.checks import Finding
from rules.problems import Severity


def check(dashboards: Sequence[GeneratedDashboard]) -> Iterator[tuple[GeneratedDashboard, Finding]]:
    counts = Counter(d.uid for d in dashboards)
    for dashboard in dashboards:
        if not UID.match(dashboard.uid):
            yield dashboard, Finding(Severity.ERROR, f"uid {dashboard.uid!r} must be 1-40 letters, digits, - or _")
        if counts[dashboard.uid] > 1:
            yield dashboard, Finding(Severity.ERROR, f"uid {dashboard.uid!r} is used by {counts[dashboard.uid]} "
                                     "dashboards: the last one provisioned would replace the others")
