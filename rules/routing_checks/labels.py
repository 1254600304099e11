"""Alerts carry routing labels with values routing knows.

Severity and service are checked with the rule conventions (rules/checks/conventions.py);
this covers the other labels with a fixed set of values (an SLO's `tier`), and SLO tiers
without an `slo`: the page-mutes-ticket inhibition matches on equal `slo`, and a label missing
on both sides counts as equal, so such a page would mute every such ticket.
"""

from __future__ import annotations

from collections.abc import Iterator

from rules.conventions import SERVICE_LABEL, SEVERITY_LABEL, SLO_LABEL, TIER_LABEL
from rules.problems import Problem, Severity
from rules.routing_checks import Routing

NAME = "routing-labels"
CHECKED_WITH_RULES = (SEVERITY_LABEL, SERVICE_LABEL)


def check(routing: Routing) -> Iterator[Problem]:
    for source, rule in routing.alerts:
        for label, values in routing.policy.routing_labels.items():
            if values is None or label in CHECKED_WITH_RULES or label not in rule.labels:
                continue
            if rule.labels[label] not in values:
                yield Problem(source, f"alert {rule.alert}", NAME, Severity.ERROR,
                              f"{label}={rule.labels[label]!r} is not a value routing knows "
                              f"({', '.join(values)}): its route and inhibitions never match it")
        if TIER_LABEL in rule.labels and not rule.labels.get(SLO_LABEL):
            yield Problem(source, f"alert {rule.alert}", NAME, Severity.ERROR,
                          f"has {TIER_LABEL} but no {SLO_LABEL}: SLO inhibitions compare {SLO_LABEL}, "
                          "so it would mute or be muted by every other SLO alert without one")
