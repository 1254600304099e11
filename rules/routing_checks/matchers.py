"""Routes and inhibit rules match on labels and values the bundle's alerts carry.

A matcher on a label no alert sets (`sevrity`), or on a value no alert has (service="biz"),
matches nothing: its alerts silently fall through to the default receiver. Alerts are known
by their static labels, the only ones routing should depend on. A label the policy declares
(e.g. an SLO's `tier`) may be matched before the first alert carries it: a warning until then.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence

from rules.problems import Problem, Severity
from rules.routing import Matcher, MatchType, alert_labels, describe, render_matchers, walk
from rules.routing_checks import Routing

NAME = "routing-matchers"


def check(routing: Routing) -> Iterator[Problem]:
    carried: dict[str, set[str]] = {}
    for _, rule in routing.alerts:
        for label, value in alert_labels(rule).items():
            carried.setdefault(label, set()).add(value)
    declared = routing.policy.routing_labels

    def problems(subject: str, matchers: Sequence[Matcher], equal: Sequence[str] = ()) -> Iterator[Problem]:
        for matcher in matchers:
            for severity, message in _matcher(matcher, carried, declared):
                yield Problem(routing.source, subject, NAME, severity, message)
        for label in equal:
            if label not in carried and label not in declared:
                yield Problem(routing.source, subject, NAME, Severity.ERROR,
                              f"equal lists {label}, which no alert sets{_suggest(label, carried)}")

    for path, route in walk(routing.config.route):
        yield from problems(describe(path, route), route.matchers)
    for index, rule in enumerate(routing.config.inhibit_rules):
        subject = (f"inhibit_rules[{index}] {render_matchers(rule.source_matchers)} mutes "
                   f"{render_matchers(rule.target_matchers)}")
        yield from problems(subject, (*rule.source_matchers, *rule.target_matchers), rule.equal)


def _matcher(matcher: Matcher, carried: dict[str, set[str]],
             declared: dict[str, tuple[str, ...] | None]) -> Iterator[tuple[Severity, str]]:
    label, shown = matcher.label, matcher.render()
    if label not in carried:
        if label not in declared:
            yield Severity.ERROR, (f"{shown} matches on {label}, which no alert sets"
                                   f"{_suggest(label, carried)} (labels set: {', '.join(sorted(carried))})")
        else:
            yield Severity.WARNING, (f"no alert in the bundle sets {label} yet: {shown} "
                                     "matches nothing until one does")
        return
    if matcher.type in (MatchType.NOT_EQUAL, MatchType.NOT_REGEX):
        return
    values = carried[label]
    if any(matcher.matches({label: v}) for v in values):
        return
    known = declared.get(label)
    if known is not None and any(matcher.matches({label: v}) for v in known):
        yield Severity.WARNING, (f"no alert in the bundle has {shown} yet: it matches nothing "
                                 "until one does")
        return
    yield Severity.ERROR, (f"no alert has {shown}{_suggest(matcher.value, values)}: it matches "
                           f"nothing (values of {label}: {', '.join(sorted(values))})")


def _suggest(word: str, candidates: set[str] | dict[str, set[str]]) -> str:
    close = difflib.get_close_matches(word, sorted(candidates), n=1)
    return f" (did you mean {close[0]}?)" if close else ""
