"""Every alert reaches the receivers the policy means for it; above all, no page is lost.

The tree is evaluated here as Alertmanager's dispatcher does (`rules.routing.receivers_for`),
so `check` catches a misroute before any file is written; the route tests prove the same
against the real amtool on the rendered file.
"""

from __future__ import annotations

from collections.abc import Iterator

from rules.problems import Problem, Severity
from rules.routing import alert_labels, receivers_for
from rules.routing_checks import Routing

NAME = "routing-intent"


def check(routing: Routing) -> Iterator[Problem]:
    paging = set(routing.policy.paging)
    for source, rule in routing.alerts:
        labels = alert_labels(rule)
        expected = routing.policy.expected(labels)
        actual = receivers_for(routing.config.route, labels)
        if actual == expected:
            continue
        shown = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        if paging & set(expected) and not paging & set(actual):
            message = (f"a page lost: {{{shown}}} reaches {', '.join(actual)} instead of "
                       f"{', '.join(expected)}")
        else:
            message = (f"{{{shown}}} reaches {', '.join(actual)}, but the policy expects "
                       f"{', '.join(expected)}")
        yield Problem(source, f"alert {rule.alert}", NAME, Severity.ERROR, message)
