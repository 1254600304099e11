"""Alertmanager configuration as typed models, mirroring its file format one to one, and the
route tests that prove a routing tree sends every alert where it should.

Machinery only: what MediaNest routes where lives in `rules/alerting_policy.py`. Secrets are
file references (`*_file`, `credentials_file`), never values: the models have no field that
could hold one. Every field here is accepted by Alertmanager (`amtool`, the
judge, built at the version we deploy: stack/judges.py).

`receivers_for` evaluates a tree the way Alertmanager's dispatcher does, for the static checks;
the route tests run the real `amtool config routes test` on the rendered file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from rules.conventions import duration_seconds
from rules.model import AlertingRule
from rules.promql import label_matches

# Alertmanager adds the alert's name as this label.
ALERTNAME = "alertname"
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def _duration(value: str) -> str:
    duration_seconds(value)
    return value


def _label_name(value: str) -> str:
    if not LABEL_NAME.match(value):
        raise ValueError(f"invalid label name {value!r}")
    return value


Duration = Annotated[str, AfterValidator(_duration)]
LabelName = Annotated[str, AfterValidator(_label_name)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class MatchType(StrEnum):
    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


class Matcher(_Frozen):
    label: LabelName
    value: str
    type: MatchType = MatchType.EQUAL

    def render(self) -> str:
        """Alertmanager's matcher syntax: the value double-quoted with Go escapes."""
        return f"{self.label}{self.type}{json.dumps(self.value, ensure_ascii=False)}"

    def matches(self, labels: Mapping[str, str]) -> bool:
        """As Alertmanager matches: a missing label is the empty string, regexes are anchored."""
        return label_matches(self.type.value, self.value, labels.get(self.label, ""))


def eq(label: str, value: str) -> Matcher:
    return Matcher(label=label, value=value)


def ne(label: str, value: str) -> Matcher:
    return Matcher(label=label, value=value, type=MatchType.NOT_EQUAL)


def re_(label: str, value: str) -> Matcher:
    return Matcher(label=label, value=value, type=MatchType.REGEX)


def render_matchers(matchers: Iterable[Matcher]) -> str:
    return "{" + ", ".join(m.render() for m in matchers) + "}"


# Receivers: one model per integration, each with only file references for its secrets.


class WebhookConfig(_Frozen):
    """A webhook: `url`, or `url_file` when the URL itself is a secret; a secret endpoint may
    also authenticate with a bearer token read from `credentials_file`."""

    url: str | None = None
    url_file: str | None = None
    credentials_file: str | None = None
    send_resolved: bool = True
    max_alerts: int = 0

    def to_dict(self) -> dict[str, Any]:
        target = {"url": self.url} if self.url is not None else {"url_file": self.url_file}
        out: dict[str, Any] = {**target, "send_resolved": self.send_resolved}
        if self.max_alerts:
            out["max_alerts"] = self.max_alerts
        if self.credentials_file:
            out["http_config"] = {
                "authorization": {"type": "Bearer", "credentials_file": self.credentials_file}}
        return out


class SlackConfig(_Frozen):
    api_url_file: str
    channel: str
    title: str
    text: str
    send_resolved: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"api_url_file": self.api_url_file, "channel": self.channel,
                "send_resolved": self.send_resolved, "title": self.title, "text": self.text}


class PagerdutyConfig(_Frozen):
    """PagerDuty Events API v2 (a routing key, not the v1 service key)."""

    routing_key_file: str
    description: str
    severity: str = "critical"
    send_resolved: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"routing_key_file": self.routing_key_file, "send_resolved": self.send_resolved,
                "severity": self.severity, "description": self.description}


class EmailConfig(_Frozen):
    to: str
    from_: str = Field(alias="from")
    smarthost: str
    subject: str
    text: str
    auth_username: str | None = None
    auth_password_file: str | None = None
    require_tls: bool = True
    send_resolved: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"to": self.to, "from": self.from_, "smarthost": self.smarthost}
        if self.auth_username:
            out["auth_username"] = self.auth_username
        if self.auth_password_file:
            out["auth_password_file"] = self.auth_password_file
        out.update({"require_tls": self.require_tls, "send_resolved": self.send_resolved,
                    "headers": {"Subject": self.subject}, "text": self.text})
        return out


class Receiver(_Frozen):
    """A named receiver. One without integrations is valid: its alerts are not notified."""

    name: str
    pagerduty_configs: tuple[PagerdutyConfig, ...] = ()
    slack_configs: tuple[SlackConfig, ...] = ()
    email_configs: tuple[EmailConfig, ...] = ()
    webhook_configs: tuple[WebhookConfig, ...] = ()

    @property
    def notifies(self) -> bool:
        return bool(self.pagerduty_configs or self.slack_configs or self.email_configs
                    or self.webhook_configs)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        for key in ("pagerduty_configs", "slack_configs", "email_configs", "webhook_configs"):
            configs = getattr(self, key)
            if configs:
                out[key] = [c.to_dict() for c in configs]
        return out


class Route(_Frozen):
    receiver: str | None = None  # None: the parent's
    matchers: tuple[Matcher, ...] = ()
    group_by: tuple[str, ...] | None = None
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat_interval: Duration | None = None
    continue_: bool = Field(default=False, alias="continue")
    routes: tuple[Route, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.receiver:
            out["receiver"] = self.receiver
        if self.matchers:
            out["matchers"] = [m.render() for m in self.matchers]
        if self.group_by is not None:
            out["group_by"] = list(self.group_by)
        for key in ("group_wait", "group_interval", "repeat_interval"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.continue_:
            out["continue"] = True
        if self.routes:
            out["routes"] = [r.to_dict() for r in self.routes]
        return out


class InhibitRule(_Frozen):
    """While an alert matching `source` fires, alerts matching `target` with the same values of
    the `equal` labels are muted (a label missing on both sides counts as equal)."""

    source_matchers: tuple[Matcher, ...]
    target_matchers: tuple[Matcher, ...]
    equal: tuple[LabelName, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source_matchers": [m.render() for m in self.source_matchers],
            "target_matchers": [m.render() for m in self.target_matchers],
        }
        if self.equal:
            out["equal"] = list(self.equal)
        return out


class AlertmanagerConfig(_Frozen):
    route: Route
    receivers: tuple[Receiver, ...]
    inhibit_rules: tuple[InhibitRule, ...] = ()
    templates: tuple[str, ...] = ()
    resolve_timeout: Duration = "5m"

    def receiver(self, name: str) -> Receiver | None:
        return next((r for r in self.receivers if r.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"global": {"resolve_timeout": self.resolve_timeout}}
        if self.templates:
            out["templates"] = list(self.templates)
        out["route"] = self.route.to_dict()
        if self.inhibit_rules:
            out["inhibit_rules"] = [r.to_dict() for r in self.inhibit_rules]
        out["receivers"] = [r.to_dict() for r in self.receivers]
        return out


def walk(route: Route, path: str = "route") -> Iterator[tuple[str, Route]]:
    """Every route of a tree with its path as it reads in the file (`route.routes[2]`)."""
    yield path, route
    for index, child in enumerate(route.routes):
        yield from walk(child, f"{path}.routes[{index}]")


def describe(path: str, route: Route) -> str:
    """How errors name a route: its path, and its matchers to find it by."""
    return f"{path} {render_matchers(route.matchers)}" if route.matchers else path


def receivers_for(root: Route, labels: Mapping[str, str]) -> tuple[str, ...]:
    """The receivers Alertmanager's dispatcher notifies for these labels: depth first, the
    first matching child wins unless it has `continue`, and a route none of whose children
    match takes the alert itself. Receivers are inherited from the parent."""

    def match(route: Route, inherited: str) -> list[str]:
        if not all(m.matches(labels) for m in route.matchers):
            return []
        receiver = route.receiver or inherited
        found: list[str] = []
        for child in route.routes:
            matched = match(child, receiver)
            found.extend(matched)
            if matched and not child.continue_:
                break
        return found or [receiver]

    return tuple(match(root, root.receiver or ""))


# Route tests: the labels of every alert and the receivers it must reach.


class RouteCase(_Frozen):
    labels: dict[str, str]
    receivers: tuple[str, ...]

    @property
    def name(self) -> str:
        rest = ", ".join(f"{k}={v}" for k, v in sorted(self.labels.items()) if k != ALERTNAME)
        return f"{self.labels.get(ALERTNAME, '')} {{{rest}}} reaches {', '.join(self.receivers)}"

    def to_dict(self) -> dict[str, Any]:
        return {"labels": dict(sorted(self.labels.items())), "receivers": list(self.receivers)}


def alert_labels(rule: AlertingRule) -> dict[str, str]:
    """The labels Alertmanager sees for an alert, as far as the rule states them: its name and
    static labels (labels from the data add to them but routing never depends on those)."""
    return {ALERTNAME: rule.alert, **rule.labels}


def route_cases(rules: Iterable[AlertingRule],
                expected: Callable[[Mapping[str, str]], tuple[str, ...]]) -> tuple[RouteCase, ...]:
    """One case per distinct label set, expecting what the policy's intent says."""
    cases: dict[tuple[tuple[str, str], ...], RouteCase] = {}
    for rule in rules:
        labels = alert_labels(rule)
        key = tuple(sorted(labels.items()))
        cases.setdefault(key, RouteCase(labels=labels, receivers=expected(labels)))
    return tuple(cases[k] for k in sorted(cases))
