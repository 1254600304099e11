"""redis_exporter: Redis's health (redis_up), memory and clients, from REDIS_ADDR.

Its password file (REDIS_PASSWORD_FILE) is not the bare password: the exporter parses it as a
JSON object from Redis address to password and looks up REDIS_ADDR in it (exporter/pwd_file.go,
lookupPasswordInPasswordMap). `password_file` writes that object for the password a user sets.
"""

from __future__ import annotations

import json
import re
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator

from dashboards.common import stat, timeseries
from dashboards.model import Row, Unit, prom, steps
from rules.alert_tests import GIB, down_tests, over, series, silent, under
from rules.alert_tests import fires as _fires_of
from rules.catalog import Metric, MetricType
from rules.conventions import AlertSeverity, number
from rules.expressions import down_description, target_down
from rules.humanize import humanize_percentage as pct
from rules.model import AlertingRule, alert
from rules.testing import AlertAt, Expected, RuleTest, Series
from stack.images import Official
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
from stack.settings import Component, ImageRef, Memory, _image, _plain_text, _split

if TYPE_CHECKING:
    from stack.config import StackConfig


def valid_redis_address(value: str) -> str:
    """redis_exporter's REDIS_ADDR: `redis://host:port` (or rediss://, an optional /db). The
    password is read from REDIS_PASSWORD_FILE, keyed by this address."""
    _plain_text(value, "an address")
    if not value.startswith(("redis://", "rediss://")):
        raise ValueError("must be redis://host:port or rediss://host:port")
    parts, port = _split(value)
    if "@" in parts.netloc:
        raise ValueError("must not carry credentials (redis://:password@ or user:password@): set password: true "
                         "and the secret redis-password, mounted as REDIS_PASSWORD_FILE")
    if parts.query or parts.fragment:
        raise ValueError("must not carry a query string: redis://host:port[/db]")
    if not parts.hostname or not re.fullmatch(r"(/[0-9]{1,2})?", parts.path):
        raise ValueError("must be redis://host:port[/db]")
    if port is not None and not 1 <= port <= 65535:
        raise ValueError("the port must be between 1 and 65535")
    return value


class RedisExporterService(Component):
    # The -alpine build: the scratch one has no tool to run a health check with.
    image: ImageRef = _image("oliver006/redis_exporter", "v1.80.0-alpine")
    memory: Memory = "64Mi"
    # redis://host:port (REDIS_ADDR), never a password: that is the `redis-password` secret,
    # mounted as REDIS_PASSWORD_FILE.
    address: Annotated[str, AfterValidator(valid_redis_address)] = "redis://host.docker.internal:6379"
    # Whether Redis needs a password (the `redis-password` secret).
    password: bool = False


NAME = "redis-exporter"
PORT = 9121
CONFIG_DIR = "/etc/redis-exporter"
PASSWORD_NAME = "redis-password"
PASSWORD_PATH = f"{CONFIG_DIR}/secrets/redis-password"


def password_file(address: str, password: str) -> str:
    """The content of REDIS_PASSWORD_FILE: `{"<REDIS_ADDR>": "<password>"}`. The key must be the
    address exactly as configured (scheme included), or the exporter connects without a password."""
    return json.dumps({address: password})


def flows(config: StackConfig) -> tuple[Flow, ...]:
    """The Redis it queries."""
    return (Flow(StackPods(NAME), ANYWHERE, tcp(urlsplit(config.services.redis_exporter.address).port or 6379)),)


def service(config: StackConfig) -> ServiceSpec:
    settings = config.services.redis_exporter
    env = {"REDIS_ADDR": settings.address}
    password = SecretFile(PASSWORD_NAME, PASSWORD_PATH, content=partial(password_file, settings.address))
    if settings.password:
        env["REDIS_PASSWORD_FILE"] = PASSWORD_PATH
    return ServiceSpec(
        flows=flows(config),
        name=NAME,
        image=image(settings.image),
        # The image's own user (USER 59000:59000 in its Dockerfile, alpine build included).
        user="59000:59000",
        resources=resources(settings),
        args=(f"--web.listen-address=:{PORT}",),
        env=env,
        ports=(Port("http", PORT, host_port=settings.publish),),
        config_dir=CONFIG_DIR,
        secrets=(password,) if settings.password else (),
        # /health answers without connecting to Redis (/metrics would, on every check).
        health=http_health(PORT, "/health"),
        metrics=MetricsEndpoint(job=config.jobs.redis, port=PORT),
    )


# --- metrics, alerts and their tests, dashboard row --------------------------------------------

# Checked only against Debian's build (1.45: its Go module is not served by the Go module proxy),
# older than the image.
C, G = MetricType.COUNTER, MetricType.GAUGE

METRICS = (
    Metric("redis_up", G, "Information about the Redis instance (1 when the exporter reached it)"),
    Metric("redis_uptime_in_seconds", G, "Seconds since the Redis server started"),
    Metric("redis_memory_used_bytes", G, "Memory allocated by Redis"),
    Metric("redis_memory_used_rss_bytes", G, "Resident memory of the Redis process"),
    Metric("redis_memory_max_bytes", G, "maxmemory setting (0 when unlimited)"),
    Metric("redis_connected_clients", G, "Number of client connections"),
    Metric("redis_blocked_clients", G, "Clients pending on a blocking call"),
    Metric("redis_config_maxclients", G, "maxclients setting"),
    Metric("redis_rejected_connections_total", C, "Connections rejected because of maxclients"),
    Metric("redis_connections_received_total", C, "Connections accepted by the server"),
    Metric("redis_commands_processed_total", C, "Commands processed by the server"),
    Metric("redis_commands_total", C, "Calls per command", ("cmd",)),
    Metric("redis_commands_duration_seconds_total", C, "Seconds spent per command", ("cmd",)),
    Metric("redis_keyspace_hits_total", C, "Successful lookups of keys"),
    Metric("redis_keyspace_misses_total", C, "Failed lookups of keys"),
    Metric("redis_evicted_keys_total", C, "Keys evicted because of maxmemory"),
    Metric("redis_expired_keys_total", C, "Key expiration events"),
    Metric("redis_db_keys", G, "Total number of keys by DB", ("db",)),
)

CRITICAL, WARNING = AlertSeverity.CRITICAL, AlertSeverity.WARNING

# What each alert carries whatever the data, stated apart from the rules: a wrong severity,
# routing label or summary there fails the tests.
EXPECTED = {
    "RedisDown": Expected("critical", "cache", "Redis is down"),
    "RedisMemoryHigh": Expected("warning", "cache", "Redis is close to its maxmemory"),
}

# The instance as the scrape config names it (Docker).
INSTANCE = f"{NAME}:{PORT}"


def alerts(config: StackConfig) -> tuple[AlertingRule, ...]:
    jobs, t = config.jobs, config.thresholds
    common = {"runbook_base_url": config.runbook_base_url}
    redis = f'job="{jobs.redis}"'
    return (
        alert("RedisDown", target_down(jobs.redis, "redis_up"), for_="1m",
              severity=CRITICAL, service="cache",
              summary="Redis is down",
              description=down_description("Redis (or its exporter)", "1 minute"), **common),
        # maxmemory 0 means unlimited: no ratio to watch.
        alert("RedisMemoryHigh",
              f"redis_memory_used_bytes{{{redis}}} / redis_memory_max_bytes{{{redis}}} "
              f"> {t.redis_memory_ratio} and redis_memory_max_bytes{{{redis}}} > 0",
              for_="5m", severity=WARNING, service="cache",
              summary="Redis is close to its maxmemory",
              description="Redis behind {{ $labels.instance }} uses {{ $value | humanizePercentage }} "
                          "of its maxmemory; at the limit it evicts keys or refuses writes.", **common),
    )


def _fires(at: str, alert_name: str, description: str, /, **labels: str) -> AlertAt:
    return _fires_of(EXPECTED, at, alert_name, description, **labels)


def alert_tests(config: StackConfig) -> tuple[RuleTest, ...]:
    jobs, t = config.jobs, config.thresholds
    redis = {"job": jobs.redis, "instance": INSTANCE}

    def redis_memory(used: float, limit: float = 512 * 1024**2) -> tuple[Series, ...]:
        return (series("redis_memory_max_bytes", f"{number(limit)}x15", **redis),
                series("redis_memory_used_bytes", f"{number(used)}x15", **redis))

    full_redis = over(t.redis_memory_ratio)
    return (
        *down_tests(EXPECTED, "RedisDown", "Redis", jobs.redis, INSTANCE, "redis_up"),
        RuleTest(
            "Redis memory just over the threshold of maxmemory for 5 minutes opens a ticket",
            series=redis_memory(512 * 1024**2 * full_redis),
            alerts=(silent("4m", "RedisMemoryHigh"),
                    _fires("8m", "RedisMemoryHigh", f"Redis behind {INSTANCE} uses {pct(full_redis)} of "
                           "its maxmemory; at the limit it evicts keys or refuses writes.", **redis)),
        ),
        RuleTest(
            "Redis memory just under the threshold of maxmemory stays silent",
            series=redis_memory(512 * 1024**2 * under(t.redis_memory_ratio)),
            alerts=(silent("8m", "RedisMemoryHigh"),),
        ),
        RuleTest(
            "Redis without maxmemory never reports a memory ratio",
            series=redis_memory(GIB, limit=0),
            alerts=(silent("8m", "RedisMemoryHigh"),),
        ),
    )


def dashboard_rows(config: StackConfig) -> tuple[Row, ...]:
    t = config.thresholds
    redis = f'job="{config.jobs.redis}"'
    return (Row(title="Redis", panels=(
        stat("Redis up", "Whether the exporter reaches Redis.", Unit.UP_DOWN,
             prom(f"min(redis_up{{{redis}}})"), thresholds=steps("red", (1, "green")), alerts=("RedisDown",)),
        timeseries("Memory used", "Memory used over maxmemory (empty when unlimited).", Unit.PERCENT_UNIT,
                   prom(f"redis_memory_used_bytes{{{redis}}} / (redis_memory_max_bytes{{{redis}}} > 0)",
                        "{{instance}}"),
                   thresholds=steps("green", (t.redis_memory_ratio, "red")), min=0, max=1,
                   alerts=("RedisMemoryHigh",), width=6),
        timeseries("Commands", "Commands processed per second.", Unit.OPS_PER_SECOND,
                   prom(f"sum(rate(redis_commands_processed_total{{{redis}}}[$__rate_interval]))",
                        "commands"), width=6),
        timeseries("Keyspace hit ratio", "Share of key lookups that hit.", Unit.PERCENT_UNIT,
                   prom(f"sum(rate(redis_keyspace_hits_total{{{redis}}}[$__rate_interval])) / "
                        f"(sum(rate(redis_keyspace_hits_total{{{redis}}}[$__rate_interval])) + "
                        f"sum(rate(redis_keyspace_misses_total{{{redis}}}[$__rate_interval])))", "hit ratio"),
                   min=0, max=1, width=6),
        timeseries("Clients and evictions", "Connected clients and keys evicted per second.", Unit.SHORT,
                   prom(f"sum(redis_connected_clients{{{redis}}})", "clients"),
                   prom(f"sum(rate(redis_evicted_keys_total{{{redis}}}[$__rate_interval]))", "evictions/s"),
                   width=24),
    )),)


def sandbox_settings(world: SandboxWorld) -> dict[str, Any]:
    return {"address": f"redis://{world.redis}", "password": False}


# oliver006/redis_exporter Dockerfile, alpine stage: /redis_exporter, USER 59000:59000, EXPOSE 9121.
LOCAL_IMAGE = Official({"/redis_exporter": "prometheus-redis-exporter"}, ("/redis_exporter",), ("9121/tcp",),
                       user="59000:59000", base="alpine", users={"redis_exporter": 59000})


COMPONENT = ComponentModule(
    local_image=LOCAL_IMAGE,
    sandbox_settings=sandbox_settings,
    name=NAME, settings_key="redis_exporter", settings=RedisExporterService,
    service=lambda config, files, others: service(config),
    job=Job("redis", "redis-exporter"),
    metrics=METRICS, alerts=alerts, alert_tests=alert_tests, expected=EXPECTED,
    dashboard_rows=dashboard_rows,
    sandbox_binary="prometheus-redis-exporter",
    unjudged=("github.com/oliver006/redis_exporter is not served by the Go module proxy (v1.80.0 and "
              "v1.79.0: 'This module version is not available'): Debian's package (1.45) runs in the sandbox"),
)
