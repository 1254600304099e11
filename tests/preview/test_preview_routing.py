"""The Routing section on exported trees: receivers, routes, inhibit rules and timings, and the
existing alerts that reach another receiver (the real amtool on both configs)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from preview_helpers import trees

from stack.preview import receivers, routing
from stack.preview.model import Change, Section, Trees
from stack.preview.trees import ALERTMANAGER_CONFIG, RULES_DIR

SLACK_DEV = {"alerting": {"receivers": {"default": {"slack": [
    {"apiUrlFile": "/etc/alertmanager/secrets/slack-alerts-webhook-url", "channel": "#alerts-dev"}]}}}}


@pytest.fixture
def no_amtool(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> None:
        raise AssertionError("amtool was asked")
    monkeypatch.setattr(receivers, "reached", refuse)


def edit_config(tree: Path, edit: Callable[[dict], None]) -> None:
    path = tree / ALERTMANAGER_CONFIG
    config = yaml.safe_load(path.read_text())
    edit(config)
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def route(config: dict, receiver: str) -> dict:
    return next(r for r in config["route"]["routes"] if r["receiver"] == receiver)


def by_subject(section: Section) -> dict[str, Change]:
    return {c.subject: c for c in section.changes}


def rerouted(section: Section) -> list[str]:
    found = [c for c in section.changes if c.subject.endswith(("now reach other receivers",
                                                                 "now reaches other receivers"))]
    return [str(d) for d in found[0].details] if found else []


def test_identical_trees_report_nothing_and_never_ask_amtool(same: Trees, no_amtool: None) -> None:
    assert routing.section(same) == Section("Routing")


def test_a_receiver_changed_through_config_is_reported_without_its_secret(tmp_path: Path, no_amtool: None) -> None:
    section = routing.section(trees(tmp_path, "dev", head=SLACK_DEV))
    assert [(c.kind, c.subject) for c in section.changes] == [("changed", "receiver default")]
    change = section.changes[0]
    assert change.details == ("added slack #alerts-dev", "removed webhook to host.docker.internal:9099")
    assert change.data["before"] == ["webhook to host.docker.internal:9099"]
    assert change.data["after"] == ["slack #alerts-dev"]
    # The route tree is the same and so are the alerts' labels: nobody is routed elsewhere.
    assert not section.notes and not section.failed


def test_a_route_change_lists_the_alerts_now_reaching_another_receiver(same: Trees) -> None:
    def widen(config: dict) -> None:
        route(config, "critical-alerts")["matchers"] = ['severity=~"critical|warning"']
    edit_config(same.head, widen)
    section = routing.section(same)
    changes = by_subject(section)
    moved = changes['route > critical-alerts (severity="critical")']
    assert moved.kind == "changed"
    assert moved.details == ('matchers: severity="critical" -> severity=~"critical|warning"',)
    alerts = rerouted(section)
    assert "HighResponseTime: default -> critical-alerts" in alerts
    assert "QueueBacklog: business-team -> critical-alerts" in alerts
    # Same-named alerts (one burn-rate alert per SLO and tier) are told apart by their labels.
    assert 'SLOErrorBudgetBurn{slo="api-availability", severity="warning"}: tickets -> critical-alerts' in alerts
    # Critical alerts already went there.
    assert not any(line.startswith("HighErrorRate:") for line in alerts)
    assert {"alert": "HighResponseTime", "before": ["default"], "after": ["critical-alerts"]} in \
        section.changes[0].data["alerts"]
    assert alerts == sorted(alerts)


def test_swapping_two_routes_reroutes_the_alert_the_first_one_caught(same: Trees) -> None:
    def swap(config: dict) -> None:
        routes = config["route"]["routes"]
        routes[0], routes[1] = routes[1], routes[0]
    edit_config(same.head, swap)
    section = routing.section(same)
    assert rerouted(section) == ["Watchdog: deadman -> not-notified"]
    details = {s: c.details for s, c in by_subject(section).items()}
    assert any("order among its siblings: 1 -> 2" in d for d in details['route > deadman (alertname="Watchdog")'])


def _continue(config: dict) -> None:
    route(config, "tickets").update({"continue": True, "repeat_interval": "12h"})


def _root_timing(config: dict) -> None:
    config["route"]["group_wait"] = "1m"
    config["route"]["group_by"] = ["alertname"]


def _inherit(config: dict) -> None:
    del route(config, "critical-alerts")["group_wait"]


def _new_route(config: dict) -> None:
    config["route"]["routes"].append({"receiver": "tickets", "matchers": ['service="cache"'], "group_wait": "5m"})


def _drop_route(config: dict) -> None:
    config["route"]["routes"] = [r for r in config["route"]["routes"] if r["receiver"] != "business-team"]


def _sub_route(config: dict) -> None:
    route(config, "critical-alerts")["routes"] = [{"receiver": "default", "matchers": ['service="cache"']}]


def _new_receiver(config: dict) -> None:
    config["receivers"].append({"name": "oncall", "email_configs": [
        {"to": "oncall@medianest.com", "from": "alertmanager@medianest.com", "smarthost": "smtp.medianest.com:587",
         "auth_password_file": "/etc/alertmanager/secrets/smtp-password"}]})


def _resolved(config: dict) -> None:
    next(r for r in config["receivers"] if r["name"] == "deadman")["webhook_configs"][0]["send_resolved"] = True


def _global(config: dict) -> None:
    config["global"].update({"resolve_timeout": "10m", "slack_api_url": "https://hooks.slack.com/services/T0/B0/s3cr3t"})


def _equal(config: dict) -> None:
    config["inhibit_rules"][0]["equal"] = ["alertname", "service"]


def _drop_inhibition(config: dict) -> None:
    del config["inhibit_rules"][1]


def _new_inhibition(config: dict) -> None:
    config["inhibit_rules"].append({"source_matchers": ['alertname="PostgresDown"'],
                                    "target_matchers": ['service="database"'], "equal": ["environment"]})


CRITICAL = 'route > critical-alerts (severity="critical")'
INHIBIT_CRITICAL = 'inhibit rule (severity="critical" mutes severity="warning")'


@pytest.mark.parametrize(("edit", "kind", "subject", "details", "reroutes"), [
    (_continue, "changed", 'route > tickets (tier="ticket")',
     ("continue: false -> true", "repeat_interval: 24h -> 12h"), True),
    (_root_timing, "changed", "route", ("group_by: alertname, service -> alertname", "group_wait: 30s -> 1m"), False),
    (_inherit, "changed", CRITICAL, ("group_wait: 0s -> 30s (inherited)",), False),
    (_new_route, "added", 'route > tickets (service="cache")',
     ("receiver: tickets", 'matchers: service="cache"', "group_wait: 5m"), True),
    (_drop_route, "removed", 'route > business-team (service="business")',
     ("receiver: business-team", 'matchers: service="business"'), True),
    (_sub_route, "added", CRITICAL + ' > default (service="cache")',
     ("receiver: default", 'matchers: service="cache"'), True),
    (_new_receiver, "added", "receiver oncall", ("email to oncall@medianest.com",), False),
    (_resolved, "changed", "receiver deadman",
     ("webhook to host.docker.internal:9099: send_resolved: false -> true",), False),
    (_global, "changed", "global settings",
     ("resolve_timeout: 5m -> 10m", "slack_api_url: unset -> a URL on hooks.slack.com"), False),
    (_equal, "changed", INHIBIT_CRITICAL, ("equal: alertname, service, slo -> alertname, service",), False),
    (_drop_inhibition, "removed", 'inhibit rule (tier="page" mutes tier="ticket")',
     ('source: tier="page"', 'target: tier="ticket"', "equal: slo"), False),
    (_new_inhibition, "added", 'inhibit rule (alertname="PostgresDown" mutes service="database")',
     ('source: alertname="PostgresDown"', 'target: service="database"', "equal: environment"), False),
], ids=lambda v: v.__name__.strip("_") if callable(v) else None)
def test_config_edits(same: Trees, edit: Callable[[dict], None], kind: str, subject: str, details: tuple[str, ...],
                      reroutes: bool) -> None:
    edit_config(same.head, edit)
    section = routing.section(same)
    changes = by_subject(section)
    assert subject in changes, list(changes)
    assert (changes[subject].kind, changes[subject].details) == (kind, details)
    assert bool(rerouted(section)) == reroutes
    assert not section.failed and not section.notes
    assert "s3cr3t" not in repr(section)


def test_a_sub_route_reroutes_what_it_catches(same: Trees) -> None:
    edit_config(same.head, _sub_route)
    assert rerouted(routing.section(same)) == ["RedisDown: critical-alerts -> default"]


def test_timings_alone_never_ask_amtool(same: Trees, no_amtool: None) -> None:
    edit_config(same.head, _root_timing)
    assert [c.subject for c in routing.section(same).changes] == ["route"]


def test_label_changes_alone_never_ask_amtool(same: Trees, no_amtool: None) -> None:
    """Same Alertmanager config: an alert's new labels are the rules section's to report."""
    rules = same.head / RULES_DIR / "medianest.yaml"
    rules.write_text(rules.read_text().replace("severity: warning", "severity: critical"))
    assert routing.section(same) == Section("Routing")


def test_a_missing_config_is_a_note(same: Trees, no_amtool: None) -> None:
    (same.base / ALERTMANAGER_CONFIG).unlink()
    section = routing.section(same)
    assert section.notes == ("The base has no Alertmanager config: everything in the head's is new.",)
    assert {c.subject for c in section.changes if c.kind == "added"} >= {"receiver default", "receiver deadman"}
    (same.head / ALERTMANAGER_CONFIG).unlink()
    assert routing.section(same) == Section("Routing")


def test_an_unroutable_head_config_fails_the_section(same: Trees) -> None:
    edit_config(same.head, lambda c: route(c, "tickets").update({"matchers": ["not a matcher"]}))
    section = routing.section(same)
    assert section.failed
    assert section.notes[0].startswith("Which alerts reach which receivers is unknown: amtool could not route")


def test_the_order_is_deterministic(same: Trees) -> None:
    for edit in (_new_route, _new_receiver, _equal, _global, _continue):
        edit_config(same.head, edit)
    first = routing.section(same)
    assert first == routing.section(same)
    subjects = [c.subject for c in first.changes]
    assert subjects[0] == "2 existing alerts now reach other receivers"
    assert subjects[1:] == ["global settings", 'route > tickets (tier="ticket")', 'route > tickets (service="cache")',
                            "receiver oncall", INHIBIT_CRITICAL]


@pytest.mark.parametrize(("key", "value", "shown"), [
    ("api_url", "https://hooks.slack.com/services/T0/B0/s3cr3t", "a URL on hooks.slack.com"),
    ("url", "https://user:pass@example.com:8443/hook?token=x", "a URL on example.com:8443"),
    ("routing_key", "0123456789abcdef", "(secret, not shown)"),
    ("http_config.authorization.credentials", "token", "(secret, not shown)"),
    ("routing_key_file", "/etc/alertmanager/secrets/pagerduty-key", "/etc/alertmanager/secrets/pagerduty-key"),
    ("channel", "#alerts", "#alerts"),
    ("headers.Authorization", "Bearer x", "(secret, not shown)"),
    ("http_headers", [{"name": "X-Api", "value_token": "x"}], "(secret, not shown)"),
    ("auth_password_file", "/etc/alertmanager/secrets/smtp-password", "/etc/alertmanager/secrets/smtp-password"),
    ("send_resolved", False, "false"),
    ("to", None, "unset"),
])
def test_shown_values_never_hold_a_secret(key: str, value: object, shown: str) -> None:
    assert routing.shown(key, value) == shown


def test_projection_keeps_only_what_the_routes_can_tell_apart() -> None:
    config = {"route": {"receiver": "a", "routes": [
        {"receiver": "b", "matchers": ['alertname="Watchdog"']},
        {"receiver": "c", "matchers": ['severity = "critical"', 'team=~"db|cache"']},
        {"receiver": "d", "match": {"tier": "ticket"}}]}}
    project = routing.projection(config)
    assert project({"alertname": "HighErrorRate", "severity": "critical", "team": "db", "service": "x"}) == \
        project({"alertname": "PostgresDown", "severity": "critical", "team": "db", "service": "y"})
    assert project({"alertname": "Watchdog", "team": "web"}) == {"alertname": "Watchdog", "team": "web"}
    assert project({"alertname": "X", "severity": "warning"})["severity"] not in {"critical", "warning"}
    assert routing.projection({"route": {"routes": [{"matchers": ["???"]}]}})({"a": "b"}) == {"a": "b"}
