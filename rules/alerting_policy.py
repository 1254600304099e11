"""MediaNest's alert routing: who is told of what, how soon, and what mutes what.

The seed's policy (§7.2), corrected: `matchers` instead of the deprecated `match`, secrets as
mounted files instead of inline keys, info alerts not notified, SLO tickets in the ticket
queue, a dead man's switch for the Watchdog, and inhibitions so one incident pages once.
Where each receiver notifies (PagerDuty, Slack, email, webhooks) is stack config
(`medianest-observability:alerting` in Pulumi.<stack>.yaml).

`expected_receivers` states the intent from an alert's labels, apart from the route tree;
the route tests (amtool) prove that the tree implements it for every alert in the bundle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from rules import notification_templates as templates
from rules.conventions import (
    SERVICE_LABEL,
    SERVICES,
    SEVERITY_LABEL,
    SLO_LABEL,
    TIER_LABEL,
    AlertSeverity,
)
from rules.routing import (
    ALERTNAME,
    AlertmanagerConfig,
    EmailConfig,
    InhibitRule,
    PagerdutyConfig,
    Receiver,
    Route,
    SlackConfig,
    WebhookConfig,
    eq,
    ne,
    re_,
)
from rules.routing_checks import Policy
from stack.layout import ALERTMANAGER_TEMPLATES_DIR

if TYPE_CHECKING:
    from stack.config import Alerting, Integrations, StackConfig

CRITICAL, WARNING, INFO = AlertSeverity.CRITICAL, AlertSeverity.WARNING, AlertSeverity.INFO

# Receivers.
CRITICAL_ALERTS = "critical-alerts"  # pages: PagerDuty and Slack #alerts-critical
BUSINESS_TEAM = "business-team"  # Slack #business-metrics
TICKETS = "tickets"  # SLO tickets: the ticket queue
DEFAULT = "default"  # every other warning
DEADMAN = "deadman"  # the Watchdog's heartbeat to a dead man's switch
NOT_NOTIFIED = "not-notified"  # info: visible in Alertmanager, never sent
PAGING = (CRITICAL_ALERTS,)

# Receiver -> its field in the stack config's `alerting.receivers`.
CONFIGURED = {
    CRITICAL_ALERTS: "critical_alerts",
    BUSINESS_TEAM: "business_team",
    TICKETS: "tickets",
    DEFAULT: "default",
    DEADMAN: "deadman",
}

# SLO alerts (rules/slo): burn-rate alerts carry `slo` and a tier; the no-data alert no tier.
PAGE, TICKET = "page", "ticket"
TIERS = (PAGE, TICKET)

WATCHDOG = "Watchdog"
APPLICATION_DOWN = "ApplicationDown"
# The services whose alerts come from the MediaNest backend itself.
APPLICATION_SERVICES = ("medianest", "business")

# Labels routing matches on, with the values they may take (None: any), so that a route may be
# declared before the first alert that carries its label (the routing checks warn until then).
ROUTING_LABELS: Mapping[str, tuple[str, ...] | None] = {
    ALERTNAME: None,
    SEVERITY_LABEL: tuple(AlertSeverity),
    SERVICE_LABEL: SERVICES,
    TIER_LABEL: TIERS,
    SLO_LABEL: None,
}

# Timings. One notification per alert and service (group_by); the first waits 30s to gather
# an incident's alerts, except pages, which go at once; a group that changes is re-notified at
# most every 5m; a still-firing group is repeated every 4h (pages every 1h, tickets daily).
GROUP_BY = (ALERTNAME, SERVICE_LABEL)
GROUP_WAIT = "30s"
GROUP_INTERVAL = "5m"
REPEAT_INTERVAL = "4h"
PAGE_REPEAT_INTERVAL = "1h"
TICKET_REPEAT_INTERVAL = "24h"
# The heartbeat service pages when no Watchdog notification came for longer than its timeout:
# set that timeout to at least three heartbeats (15m).
HEARTBEAT_INTERVAL = "5m"

TEMPLATES_DIR = ALERTMANAGER_TEMPLATES_DIR  # beside alertmanager.yml


def route(group_interval: str = GROUP_INTERVAL) -> Route:
    """The route tree. Order matters: the first matching route takes the alert."""
    return Route(
        receiver=DEFAULT, group_by=GROUP_BY, group_wait=GROUP_WAIT,
        group_interval=group_interval, repeat_interval=REPEAT_INTERVAL,
        routes=(
            # Before the info route: the Watchdog is info, but its heartbeat must go out.
            Route(receiver=DEADMAN, matchers=(eq(ALERTNAME, WATCHDOG),), group_wait="0s",
                  group_interval="1m", repeat_interval=HEARTBEAT_INTERVAL),
            Route(receiver=NOT_NOTIFIED, matchers=(eq(SEVERITY_LABEL, INFO),)),
            Route(receiver=CRITICAL_ALERTS, matchers=(eq(SEVERITY_LABEL, CRITICAL),),
                  group_wait="0s", repeat_interval=PAGE_REPEAT_INTERVAL),
            # Before the business route: a business SLO's ticket belongs in the queue too.
            Route(receiver=TICKETS, matchers=(eq(TIER_LABEL, TICKET),),
                  repeat_interval=TICKET_REPEAT_INTERVAL),
            Route(receiver=BUSINESS_TEAM, matchers=(eq(SERVICE_LABEL, "business"),)),
        ),
    )


def inhibit_rules() -> tuple[InhibitRule, ...]:
    return (
        # A page mutes the warnings of the same alert and service. `slo` too: the SLO alerts
        # share one name, and one SLO's page must not mute another SLO's ticket (a label
        # missing on both sides counts as equal, so other alerts are unaffected).
        InhibitRule(source_matchers=(eq(SEVERITY_LABEL, CRITICAL),),
                    target_matchers=(eq(SEVERITY_LABEL, WARNING),),
                    equal=(ALERTNAME, SERVICE_LABEL, SLO_LABEL)),
        # An SLO's page mutes its own ticket: the fast burn and the slow one are one incident.
        InhibitRule(source_matchers=(eq(TIER_LABEL, PAGE),),
                    target_matchers=(eq(TIER_LABEL, TICKET),),
                    equal=(SLO_LABEL,)),
        # With the backend down, its other alerts (errors, latency, SLOs, queues) are its
        # consequences. One backend per environment: any ApplicationDown mutes them.
        InhibitRule(source_matchers=(eq(ALERTNAME, APPLICATION_DOWN),),
                    target_matchers=(re_(SERVICE_LABEL, "|".join(APPLICATION_SERVICES)),
                                     ne(ALERTNAME, APPLICATION_DOWN))),
    )


# Alerts whose receivers are not what their labels say.
EXPLICIT_RECEIVERS: Mapping[str, tuple[str, ...]] = {WATCHDOG: (DEADMAN,)}


def expected_receivers(labels: Mapping[str, str]) -> tuple[str, ...]:
    """Who must be told of an alert with these labels: critical pages, info is not notified,
    an SLO ticket goes to the ticket queue, a business warning to the business team, any
    other warning to default. A severity that is none of these is expected to page: a lost
    page is the costliest mistake, so the route test of a misspelt `critical` fails."""
    explicit = EXPLICIT_RECEIVERS.get(labels.get(ALERTNAME, ""))
    if explicit:
        return explicit
    severity = labels.get(SEVERITY_LABEL)
    if severity == INFO:
        return (NOT_NOTIFIED,)
    if severity != WARNING:
        return (CRITICAL_ALERTS,)
    if labels.get(TIER_LABEL) == TICKET:
        return (TICKETS,)
    if labels.get(SERVICE_LABEL) == "business":
        return (BUSINESS_TEAM,)
    return (DEFAULT,)


def receivers(alerting: Alerting) -> tuple[Receiver, ...]:
    configured = tuple(
        _receiver(name, getattr(alerting.receivers, field), alerting.local_webhook_url)
        for name, field in CONFIGURED.items()
    )
    return (*configured, Receiver(name=NOT_NOTIFIED))


def _receiver(name: str, integrations: Integrations | None, local_webhook_url: str | None) -> Receiver:
    # The heartbeat never resolves, and a "resolved" heartbeat would read as one.
    send_resolved = name != DEADMAN
    if integrations is None:
        # Config validation guarantees a local webhook when a receiver is not configured.
        url = f"{str(local_webhook_url).rstrip('/')}/{name}"
        return Receiver(name=name, webhook_configs=(WebhookConfig(url=url, send_resolved=send_resolved),))
    title = f'{{{{ template "{templates.TITLE}" . }}}}'
    text = f'{{{{ template "{templates.TEXT}" . }}}}'
    return Receiver(
        name=name,
        pagerduty_configs=tuple(
            PagerdutyConfig(routing_key_file=p.routing_key_file, description=title,
                            severity='{{ or .CommonLabels.severity "critical" }}')
            for p in integrations.pagerduty),
        slack_configs=tuple(
            SlackConfig(api_url_file=s.api_url_file, channel=s.channel, title=title, text=text,
                        send_resolved=send_resolved)
            for s in integrations.slack),
        email_configs=tuple(
            EmailConfig(to=e.to, from_=e.from_, smarthost=e.smarthost, subject=title, text=text,
                        auth_username=e.auth_username, auth_password_file=e.auth_password_file,
                        require_tls=e.require_tls)
            for e in integrations.email),
        webhook_configs=tuple(
            WebhookConfig(url=w.url, url_file=w.url_file, credentials_file=w.credentials_file,
                          send_resolved=send_resolved)
            for w in integrations.webhook),
    )


def alertmanager_config(config: StackConfig) -> AlertmanagerConfig:
    return AlertmanagerConfig(
        route=route(config.compression.group_interval or GROUP_INTERVAL),
        receivers=receivers(config.alerting),
        inhibit_rules=inhibit_rules(),
        templates=(f"{TEMPLATES_DIR}/*.tmpl",),
    )


POLICY = Policy(expected=expected_receivers, routing_labels=ROUTING_LABELS, paging=PAGING)
