"""Every receiver a route names is defined, once; every defined receiver is used."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from rules.problems import Problem, Severity
from rules.routing import describe, walk
from rules.routing_checks import Routing

NAME = "routing-receivers"


def check(routing: Routing) -> Iterator[Problem]:
    config = routing.config
    defined = [r.name for r in config.receivers]
    for name, count in sorted(Counter(defined).items()):
        if count > 1:
            yield Problem(routing.source, f"receiver {name}", NAME, Severity.ERROR,
                          f"receiver {name!r} is defined {count} times")
    used: set[str] = set()
    for path, route in walk(config.route):
        if route.receiver is None:
            if path == "route":
                yield Problem(routing.source, path, NAME, Severity.ERROR,
                              "the root route names no receiver: unmatched alerts would have none")
            continue
        used.add(route.receiver)
        if route.receiver not in defined:
            yield Problem(routing.source, describe(path, route), NAME, Severity.ERROR,
                          f"receiver {route.receiver!r} is not defined (receivers: "
                          f"{', '.join(sorted(set(defined)))})")
    for name in sorted(set(defined) - used):
        yield Problem(routing.source, f"receiver {name}", NAME, Severity.WARNING,
                      f"receiver {name!r} is defined but no route sends to it")
