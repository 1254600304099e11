"""Static checks on an Alertmanager configuration against the alerts it must route.

One check per module, each yielding `Problem`s that name the route, inhibit rule, receiver
or alert at fault. They run in `check` and before `render` writes anything; the route tests
(`python -m stack test`, amtool) are the judge of the rendered file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from rules.model import AlertingRule
from rules.problems import Problem
from rules.routing import AlertmanagerConfig


@dataclass(frozen=True)
class Policy:
    """What the checks need to know of a routing policy besides its tree."""

    # The receivers an alert with these labels must reach (the intent).
    expected: Callable[[Mapping[str, str]], tuple[str, ...]]
    # Labels routing may match on before any alert carries them, with their values (None: any).
    routing_labels: Mapping[str, tuple[str, ...] | None]
    # Receivers that page someone.
    paging: tuple[str, ...]


@dataclass(frozen=True)
class Routing:
    config: AlertmanagerConfig
    # Every alerting rule of the bundle, with where it is defined (file and group).
    alerts: Sequence[tuple[str, AlertingRule]]
    policy: Policy
    # Where the configuration is written, to name it in problems.
    source: str


Check = Callable[[Routing], Iterator[Problem]]


def _checks() -> dict[str, Check]:
    from rules.routing_checks import intent, labels, matchers, receivers, secrets

    return {
        receivers.NAME: receivers.check,
        matchers.NAME: matchers.check,
        intent.NAME: intent.check,
        labels.NAME: labels.check,
        secrets.NAME: secrets.check,
    }


def check_routing(routing: Routing) -> list[Problem]:
    return sorted(p for check in _checks().values() for p in check(routing))
