"""Each routing check reports the mistake it exists for, naming the route, rule, receiver or
alert, and stays quiet on the real policy. Variants change one thing of the good config
(Pyrra's way); the tables' lengths are asserted so a dropped row is noticed."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rules import alerting_policy as policy
from rules.model import AlertingRule
from rules.problems import Severity
from rules.routing import AlertmanagerConfig, InhibitRule, Receiver, Route, eq, re_
from rules.routing_checks import Routing, check_routing
from rules.routing_checks.secrets import inline_secrets
from stack.bundle import ALERTMANAGER_CONFIG


def test_the_real_policy_has_no_routing_problem(bundle) -> None:
    routing = Routing(bundle.alertmanager, bundle.alerts, policy.POLICY, ALERTMANAGER_CONFIG)
    assert [p.render() for p in check_routing(routing)] == []


def _route(config: AlertmanagerConfig, *routes: Route) -> AlertmanagerConfig:
    return config.model_copy(update={"route": config.route.model_copy(update={"routes": routes})})


def _critical(config: AlertmanagerConfig, **update) -> AlertmanagerConfig:
    routes = [r.model_copy(update=update) if r.receiver == "critical-alerts" else r for r in config.route.routes]
    return _route(config, *routes)


def _inhibit(config: AlertmanagerConfig, rule: InhibitRule) -> AlertmanagerConfig:
    return config.model_copy(update={"inhibit_rules": (*config.inhibit_rules, rule)})


def _receivers(config: AlertmanagerConfig, *receivers: Receiver) -> AlertmanagerConfig:
    return config.model_copy(update={"receivers": receivers})


def _alert(name: str, **labels: str) -> tuple[str, AlertingRule]:
    return "prometheus/rules/x.yaml group x", AlertingRule(alert=name, expr="vector(1)", labels=labels)


Alerts = list[tuple[str, AlertingRule]]
Variant = Callable[[AlertmanagerConfig, Alerts], tuple[AlertmanagerConfig, Alerts]]

# (sentence, variant, check, severity, subject, message)
BAD: list[tuple[str, Variant, str, Severity, str, str]] = [
    ("a route to a receiver that is not defined",
     lambda c, a: (_critical(c, receiver="pagerduty"), a), "routing-receivers", Severity.ERROR,
     'route.routes[2] {severity="critical"}', "receiver 'pagerduty' is not defined (receivers: business-team, "
     "critical-alerts, deadman, default, not-notified, tickets)"),
    ("a root route without a receiver",
     lambda c, a: (c.model_copy(update={"route": c.route.model_copy(update={"receiver": None})}), a),
     "routing-receivers", Severity.ERROR, "route", "the root route names no receiver"),
    ("a receiver defined twice",
     lambda c, a: (_receivers(c, *c.receivers, Receiver(name="default")), a), "routing-receivers",
     Severity.ERROR, "receiver default", "receiver 'default' is defined 2 times"),
    ("a receiver no route sends to",
     lambda c, a: (_receivers(c, *c.receivers, Receiver(name="spare")), a), "routing-receivers",
     Severity.WARNING, "receiver spare", "receiver 'spare' is defined but no route sends to it"),
    ("a route matching a label no alert sets",
     lambda c, a: (_critical(c, matchers=(eq("sevrity", "critical"),)), a), "routing-matchers", Severity.ERROR,
     'route.routes[2] {sevrity="critical"}', "matches on sevrity, which no alert sets (did you mean severity?)"),
    ("a route matching a value no alert has",
     lambda c, a: (_route(c, *c.route.routes[:4], Route(receiver="business-team", matchers=(eq("service", "biz"),))),
                   a), "routing-matchers", Severity.ERROR, 'route.routes[4] {service="biz"}',
     'no alert has service="biz": it matches nothing (values of service: business, cache'),
    ("a route matching a misspelt value, with a suggestion",
     lambda c, a: (_critical(c, matchers=(eq("severity", "critcal"),)), a), "routing-matchers", Severity.ERROR,
     'route.routes[2] {severity="critcal"}', 'no alert has severity="critcal" (did you mean critical?)'),
    ("a regex route no value matches",
     lambda c, a: (_critical(c, matchers=(re_("service", "front.*"),)), a), "routing-matchers", Severity.ERROR,
     'route.routes[2] {service=~"front.*"}', 'no alert has service=~"front.*"'),
    ("an inhibit rule comparing a label no alert sets",
     lambda c, a: (_inhibit(c, InhibitRule(source_matchers=(eq("severity", "critical"),),
                                           target_matchers=(eq("severity", "info"),), equal=("sloo",))), a),
     "routing-matchers", Severity.ERROR, 'inhibit_rules[3] {severity="critical"} mutes {severity="info"}',
     "equal lists sloo, which no alert sets (did you mean slo?)"),
    ("an inhibit rule matching a label no alert sets",
     lambda c, a: (_inhibit(c, InhibitRule(source_matchers=(eq("team", "core"),),
                                           target_matchers=(eq("severity", "info"),))), a),
     "routing-matchers", Severity.ERROR, 'inhibit_rules[3] {team="core"} mutes {severity="info"}',
     'team="core" matches on team, which no alert sets'),
    ("a route on a declared label before any alert carries it",
     lambda c, a: (c, [(s, r) for s, r in a if "tier" not in r.labels]), "routing-matchers", Severity.WARNING,
     'route.routes[3] {tier="ticket"}', 'no alert in the bundle sets tier yet: tier="ticket" matches nothing'),
    ("a critical alert that reaches default",
     lambda c, a: (_route(c, *(r for r in c.route.routes if r.receiver != "critical-alerts")), a),
     "routing-intent", Severity.ERROR, "alert ApplicationDown",
     'a page lost: {alertname="ApplicationDown", service="medianest", severity="critical"} reaches default '
     "instead of critical-alerts"),
    ("a warning that pages",
     lambda c, a: (_critical(c, matchers=(re_("severity", "critical|warning"),)), a), "routing-intent",
     Severity.ERROR, "alert TargetDown", "reaches critical-alerts, but the policy expects default"),
    ("an SLO tier routing does not know",
     lambda c, a: (c, [*a, _alert("SLOErrorBudgetBurn", severity="warning", service="medianest", slo="x",
                                  tier="tiket")]),
     "routing-labels", Severity.ERROR, "alert SLOErrorBudgetBurn", "tier='tiket' is not a value routing knows "
     "(page, ticket)"),
    ("an SLO tier without its slo",
     lambda c, a: (c, [*a, _alert("SLOErrorBudgetBurn", severity="warning", service="medianest", tier="ticket")]),
     "routing-labels", Severity.ERROR, "alert SLOErrorBudgetBurn", "has tier but no slo"),
]
assert len(BAD) == 15


@pytest.mark.parametrize(("variant", "check", "severity", "subject", "message"), [r[1:] for r in BAD],
                         ids=[r[0] for r in BAD])
def test_a_routing_mistake_is_reported(bundle, variant, check, severity, subject, message) -> None:
    config, alerts = variant(bundle.alertmanager, list(bundle.alerts))
    problems = check_routing(Routing(config, alerts, policy.POLICY, ALERTMANAGER_CONFIG))
    hits = [p for p in problems if p.check == check and p.subject == subject and message in p.message]
    assert hits, "\n".join(p.render() for p in problems)
    assert {p.severity for p in hits} == {severity}


# Inline secrets in a rendered config, wherever they hide; the fix names the file form.
SECRETS = [
    ("a Slack webhook URL", {"receivers": [{"name": "ops", "slack_configs": [{"api_url": "https://hooks.slack.com/T/B/X"}]}]},
     "receivers[ops].slack_configs[0].api_url", "use api_url_file"),
    ("a PagerDuty routing key", {"receivers": [{"name": "p", "pagerduty_configs": [{"routing_key": "abc"}]}]},
     "receivers[p].pagerduty_configs[0].routing_key", "use routing_key_file"),
    ("a PagerDuty v1 service key", {"receivers": [{"name": "p", "pagerduty_configs": [{"service_key": "abc"}]}]},
     "receivers[p].pagerduty_configs[0].service_key", "use service_key_file"),
    ("an SMTP password", {"receivers": [{"name": "m", "email_configs": [{"auth_password": "hunter2"}]}]},
     "receivers[m].email_configs[0].auth_password", "use auth_password_file"),
    ("a global SMTP password", {"global": {"smtp_auth_password": "hunter2"}},
     "global.smtp_auth_password", "use smtp_auth_password_file"),
    ("a bearer token in http_config",
     {"receivers": [{"name": "w", "webhook_configs": [{"url": "https://x", "http_config": {
         "authorization": {"credentials": "t0k3n"}}}]}]},
     "receivers[w].webhook_configs[0].http_config.authorization.credentials", "use credentials_file"),
    ("a basic auth password", {"receivers": [{"name": "w", "webhook_configs": [{"url": "https://x", "http_config": {
        "basic_auth": {"username": "u", "password": "p"}}}]}]},
     "receivers[w].webhook_configs[0].http_config.basic_auth.password", "use password_file"),
    ("a token in a webhook URL's query", {"receivers": [{"name": "d", "webhook_configs": [
        {"url": "https://hb.example/ping?token=abc"}]}]},
     "receivers[d].webhook_configs[0].url", "http_config.authorization.credentials_file"),
    ("credentials in a webhook URL", {"receivers": [{"name": "d", "webhook_configs": [
        {"url": "https://user:pass@hb.example/ping"}]}]},
     "receivers[d].webhook_configs[0].url", "url carries credentials"),
]
assert len(SECRETS) == 9


@pytest.mark.parametrize(("document", "path", "fix"), [r[1:] for r in SECRETS], ids=[r[0] for r in SECRETS])
def test_an_inline_secret_is_rejected(document, path: str, fix: str) -> None:
    found = list(inline_secrets(document))
    assert [p for p, _ in found] == [path]
    assert fix in found[0][1]


def test_secret_file_references_pass() -> None:
    document = {"global": {"smtp_auth_password_file": "/s/smtp"}, "receivers": [
        {"name": "v", "victorops_configs": [{"api_key_file": "/s/vo", "routing_key": "ops-route"}]},
        {"name": "a", "slack_configs": [{"api_url_file": "/s/slack", "channel": "#a"}],
         "pagerduty_configs": [{"routing_key_file": "/s/pd"}],
         "email_configs": [{"auth_password_file": "/s/smtp", "auth_username": "am"}],
         "webhook_configs": [{"url": "https://hb.example/ping", "http_config": {
             "authorization": {"type": "Bearer", "credentials_file": "/s/token"}}}]}]}
    assert list(inline_secrets(document)) == []
