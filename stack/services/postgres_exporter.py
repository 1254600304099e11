"""postgres_exporter: PostgreSQL's health (pg_up), connections and activity. It connects with
DATA_SOURCE_URI (host:port/database?options) and _USER; the password is only ever read from a
mounted file (DATA_SOURCE_PASS_FILE), never from the environment."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qsl

from pydantic import AfterValidator, Field

from dashboards.common import bar_gauge, stat, timeseries
from dashboards.model import Row, Unit, prom, steps
from rules.alert_tests import down_tests, over, series, silent, under
from rules.alert_tests import fires as _fires_of
from rules.catalog import Metric, MetricType
from rules.conventions import AlertSeverity, number
from rules.expressions import down_description, target_down
from rules.humanize import humanize_percentage as pct
from rules.model import AlertingRule, alert
from rules.testing import AlertAt, Expected, RuleTest, Series
from stack.images import Official
from stack.services import node_exporter
from stack.services.addresses import address_port
from stack.services.common import image, resources
from stack.services.component import ComponentModule, Job, SandboxWorld
from stack.services.spec import (
    ANYWHERE,
    Flow,
    MetricsEndpoint,
    Port,
    SecretFile,
    ServiceSpec,
    StackPods,
    http_health,
    tcp,
)
from stack.settings import Component, ImageRef, Memory, _image, _plain_text

if TYPE_CHECKING:
    from stack.config import StackConfig


def valid_data_source_uri(value: str) -> str:
    """postgres_exporter's DATA_SOURCE_URI: `host:port/database?options`. The exporter adds the
    scheme, DATA_SOURCE_USER and the password it reads from DATA_SOURCE_PASS_FILE."""
    _plain_text(value, "a data source")
    address, _, options = value.partition("?")
    if "://" in value or "@" in address:
        raise ValueError("must not carry a scheme or credentials (user:password@): write host:port/database"
                         "?options; the user goes in `user`, the password in the secret postgres-password "
                         "(with password: true), mounted as DATA_SOURCE_PASS_FILE")
    match = re.fullmatch(r"([A-Za-z0-9._-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]):([0-9]{1,5})/([A-Za-z0-9_$.-]{0,63})",
                         address)
    if not match:
        raise ValueError("must be host:port/database?options, e.g. postgres.medianest.svc:5432/medianest"
                         "?sslmode=require")
    if not 1 <= int(match[2]) <= 65535:
        raise ValueError("the port must be between 1 and 65535")
    names = {name.lower() for name, _ in parse_qsl(options, keep_blank_values=True)}
    if names & {"password", "sslpassword"}:
        raise ValueError("must not carry a password option: the password is the secret postgres-password "
                         "(with password: true), mounted as DATA_SOURCE_PASS_FILE")
    return value


class PostgresExporterService(Component):
    image: ImageRef = _image("prometheuscommunity/postgres-exporter", "v0.20.0")
    memory: Memory = "64Mi"
    # host:port/database?options (DATA_SOURCE_URI), never a password: that is the
    # `postgres-password` secret, mounted as DATA_SOURCE_PASS_FILE.
    data_source_uri: Annotated[str, AfterValidator(valid_data_source_uri)] = (
        "host.docker.internal:5432/medianest?sslmode=disable")
    # DATA_SOURCE_USER: a role name alone (a password never rides along as user:password).
    user: str = Field(default="postgres_exporter", pattern=r"^[A-Za-z0-9_.@-]{1,63}$")
    # Whether PostgreSQL needs a password (the `postgres-password` secret).
    password: bool = True


NAME = "postgres-exporter"
PORT = 9187
CONFIG_DIR = "/etc/postgres-exporter"
PASSWORD = SecretFile(name="postgres-password", path=f"{CONFIG_DIR}/secrets/postgres-password")


def flows(config: StackConfig) -> tuple[Flow, ...]:
    """The PostgreSQL it queries."""
    uri = config.services.postgres_exporter.data_source_uri
    return (Flow(StackPods(NAME), ANYWHERE, tcp(address_port(uri.split("/", 1)[0]))),)


def service(config: StackConfig) -> ServiceSpec:
    settings = config.services.postgres_exporter
    env = {"DATA_SOURCE_URI": settings.data_source_uri, "DATA_SOURCE_USER": settings.user}
    # The exporter reads the file's content as the password (surrounding whitespace trimmed).
    if settings.password:
        env["DATA_SOURCE_PASS_FILE"] = PASSWORD.path
    return ServiceSpec(
        flows=flows(config),
        name=NAME,
        image=image(settings.image),
        user="65534:65534",
        resources=resources(settings),
        args=(f"--web.listen-address=:{PORT}",),
        env=env,
        ports=(Port("http", PORT, host_port=settings.publish),),
        config_dir=CONFIG_DIR,
        secrets=(PASSWORD,) if settings.password else (),
        # The landing page: /metrics would open a database connection on every health check.
        health=http_health(PORT, "/"),
        metrics=MetricsEndpoint(job=config.jobs.postgres, port=PORT),
    )


# --- metrics, alerts and their tests, dashboard row --------------------------------------------

# Checked only against Debian's build (0.11: its Go module is not served by the Go module proxy),
# older than the image. Where versions differ, only the labels all of them have are declared:
# postgres_exporter 0.11 adds `server` to every series and 0.20 does not, so rules aggregate
# `by (job, instance)` and never match on it.
C, G = MetricType.COUNTER, MetricType.GAUGE
DATABASE = ("datid", "datname")

METRICS = (
    Metric("pg_up", G, "Whether the last scrape of metrics from PostgreSQL was able to connect to the "
           "server (1 for yes, 0 for no)"),
    Metric("pg_stat_database_numbackends", G, "Number of backends currently connected to this database",
           DATABASE),
    *(
        Metric(f"pg_stat_database_{column}", C, f"pg_stat_database.{column} of this database", DATABASE)
        for column in ("xact_commit", "xact_rollback", "blks_read", "blks_hit", "tup_returned",
                       "tup_fetched", "tup_inserted", "tup_updated", "tup_deleted", "conflicts",
                       "temp_files", "temp_bytes", "deadlocks")
    ),
    Metric("pg_settings_max_connections", G, "Server Parameter: max_connections"),
    Metric("pg_database_size_bytes", G, "Disk space used by the database", ("datname",)),
    Metric("pg_locks_count", G, "Number of locks", ("datname", "mode")),
    # 0.20 adds usename, application_name, backend_type and wait_event(_type); 0.11 has only these.
    Metric("pg_stat_activity_count", G, "Number of connections in this state", ("datname", "state")),
)

CRITICAL, WARNING = AlertSeverity.CRITICAL, AlertSeverity.WARNING

# What each alert carries whatever the data, stated apart from the rules: a wrong severity,
# routing label or summary there fails the tests.
EXPECTED = {
    "PostgresDown": Expected("critical", "database", "PostgreSQL is down"),
    "PostgresTooManyConnections": Expected("warning", "database", "PostgreSQL is close to its connection limit"),
}

# The instance as the scrape config names it (Docker).
INSTANCE = f"{NAME}:{PORT}"


def connections_used(selector: str) -> str:
    """Share of max_connections in use, per exporter target. max by: postgres_exporter 0.11
    labels max_connections with `server`, 0.20 does not."""
    return (f"sum by (job, instance) (pg_stat_database_numbackends{{{selector}}}) "
            f"/ max by (job, instance) (pg_settings_max_connections{{{selector}}})")


def alerts(config: StackConfig) -> tuple[AlertingRule, ...]:
    jobs, t = config.jobs, config.thresholds
    common = {"runbook_base_url": config.runbook_base_url}
    pg = f'job="{jobs.postgres}"'
    return (
        alert("PostgresDown", target_down(jobs.postgres, "pg_up"), for_="1m",
              severity=CRITICAL, service="database",
              summary="PostgreSQL is down",
              description=down_description("PostgreSQL (or its exporter)", "1 minute"), **common),
        alert("PostgresTooManyConnections",
              f"{connections_used(pg)} > {t.postgres_connections_ratio}",
              for_="5m", severity=WARNING, service="database",
              summary="PostgreSQL is close to its connection limit",
              description="PostgreSQL behind {{ $labels.instance }} uses "
                          "{{ $value | humanizePercentage }} of its max_connections.", **common),
    )


def _fires(at: str, alert_name: str, description: str, /, **labels: str) -> AlertAt:
    return _fires_of(EXPECTED, at, alert_name, description, **labels)


def alert_tests(config: StackConfig) -> tuple[RuleTest, ...]:
    jobs, t = config.jobs, config.thresholds
    pg = {"job": jobs.postgres, "instance": INSTANCE}
    result = [
        *down_tests(EXPECTED, "PostgresDown", "PostgreSQL", jobs.postgres, INSTANCE, "pg_up"),
        RuleTest(
            "No PostgreSQL exporter being scraped at all pages",
            # Another job's target is scraped (the node exporter's): only PostgreSQL's is missing.
            series=(series("up", "1x10", job=jobs.node, instance=node_exporter.INSTANCE),),
            alerts=(_fires("2m", "PostgresDown", f"No {jobs.postgres} target is being scraped for "
                           "more than 1 minute.", job=jobs.postgres),),
        ),
    ]

    def connections(ratio: float) -> tuple[Series, ...]:
        used = 200 * ratio
        return (series("pg_settings_max_connections", "200x15", **pg),
                series("pg_stat_database_numbackends", f"{number(used * 0.9)}x15", datid="16384",
                       datname="medianest", **pg),
                series("pg_stat_database_numbackends", f"{number(used * 0.1)}x15", datid="5",
                       datname="postgres", **pg))

    busy_pg = over(t.postgres_connections_ratio)
    result += [
        RuleTest(
            "PostgreSQL connections just over the threshold for 5 minutes open a ticket",
            series=connections(busy_pg),
            alerts=(silent("4m", "PostgresTooManyConnections"),
                    _fires("8m", "PostgresTooManyConnections", f"PostgreSQL behind {INSTANCE} uses "
                           f"{pct(busy_pg)} of its max_connections.", **pg)),
        ),
        RuleTest(
            "PostgreSQL connections just under the threshold stay silent",
            series=connections(under(t.postgres_connections_ratio)),
            alerts=(silent("8m", "PostgresTooManyConnections"),),
        ),
    ]
    return tuple(result)


def dashboard_rows(config: StackConfig) -> tuple[Row, ...]:
    t = config.thresholds
    pg = f'job="{config.jobs.postgres}"'
    return (Row(title="PostgreSQL", panels=(
        stat("PostgreSQL up", "Whether the exporter reaches PostgreSQL.", Unit.UP_DOWN,
             prom(f"min(pg_up{{{pg}}})"), thresholds=steps("red", (1, "green")), alerts=("PostgresDown",)),
        timeseries("Connections used", "Connections in use over max_connections.", Unit.PERCENT_UNIT,
                   prom(connections_used(pg), "{{instance}}"),
                   thresholds=steps("green", (t.postgres_connections_ratio, "red")), min=0, max=1,
                   alerts=("PostgresTooManyConnections",), width=6),
        timeseries("Transactions", "Commits and rollbacks per second.", Unit.OPS_PER_SECOND,
                   prom(f"sum(rate(pg_stat_database_xact_commit{{{pg}}}[$__rate_interval]))", "commits"),
                   prom(f"sum(rate(pg_stat_database_xact_rollback{{{pg}}}[$__rate_interval]))", "rollbacks"),
                   width=6),
        timeseries("Buffer cache hit ratio", "Share of block reads served from shared buffers.",
                   Unit.PERCENT_UNIT,
                   prom(f"sum(rate(pg_stat_database_blks_hit{{{pg}}}[$__rate_interval])) / "
                        f"(sum(rate(pg_stat_database_blks_hit{{{pg}}}[$__rate_interval])) + "
                        f"sum(rate(pg_stat_database_blks_read{{{pg}}}[$__rate_interval])))", "hit ratio"),
                   min=0, max=1, width=6),
        bar_gauge("Database size", "Disk space per database.", Unit.BYTES,
                  prom(f"max by (datname) (pg_database_size_bytes{{{pg}}})", "{{datname}}", instant=True)),
        timeseries("Deadlocks", "Deadlocks per second.", Unit.OPS_PER_SECOND,
                   prom(f"sum(rate(pg_stat_database_deadlocks{{{pg}}}[$__rate_interval]))", "deadlocks")),
    )),)


def sandbox_settings(world: SandboxWorld) -> dict[str, Any]:
    return {"dataSourceUri": f"{world.postgres}/{world.postgres_database}?sslmode=disable",
            "user": world.postgres_user, "password": True}


def sandbox_secrets(world: SandboxWorld) -> dict[str, str]:
    return {PASSWORD.name: world.postgres_password}


# prometheus-community/postgres_exporter Dockerfile: busybox, EXPOSE 9187, USER nobody.
LOCAL_IMAGE = Official({"/bin/postgres_exporter": "prometheus-postgres-exporter"}, ("/bin/postgres_exporter",),
                       ("9187/tcp",), user="nobody")


COMPONENT = ComponentModule(
    local_image=LOCAL_IMAGE,
    sandbox_settings=sandbox_settings, sandbox_secrets=sandbox_secrets,
    name=NAME, settings_key="postgres_exporter", settings=PostgresExporterService,
    service=lambda config, files, others: service(config),
    job=Job("postgres", "postgres-exporter"),
    metrics=METRICS, alerts=alerts, alert_tests=alert_tests, expected=EXPECTED,
    dashboard_rows=dashboard_rows,
    sandbox_binary="prometheus-postgres-exporter",
    unjudged=("github.com/prometheus-community/postgres_exporter is not served by the Go module proxy "
              "(v0.20.0 and v0.18.1: 'This module version is not available'): Debian's package (0.11) runs in "
              "the sandbox"),
)
