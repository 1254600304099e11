"""Hosts and the services MediaNest depends on: node, PostgreSQL, Redis, blackbox probes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dashboards.common import bar_gauge, environment, instance, stat, table, timeseries
from dashboards.model import DashboardSpec, Row, Unit, prom, steps
from rules.conventions import IGNORED_FILESYSTEMS
from rules.expressions import postgres_connections_used

if TYPE_CHECKING:
    from stack.config import StackConfig

FOLDER = "infrastructure"


def dashboard(config: StackConfig) -> DashboardSpec:
    j, t = config.jobs, config.thresholds
    node = f'job="{j.node}", instance=~"$instance"'
    pg, redis, probe = f'job="{j.postgres}"', f'job="{j.redis}"', f'job="{j.blackbox}"'
    fs = f"{node}, {IGNORED_FILESYSTEMS}"
    return DashboardSpec(
        uid="infrastructure", title="MediaNest / Infrastructure", folder=FOLDER,
        description="Hosts (node_exporter), PostgreSQL, Redis and blackbox probes.",
        tags=("infrastructure", "generated"),
        variables=(environment(config), instance(j.node, "Host")),
        rows=(
            Row(title="Hosts", panels=(
                timeseries("CPU usage", "Share of CPU time not idle, per host.", Unit.PERCENT_UNIT,
                           prom(f'1 - avg by (instance) (rate(node_cpu_seconds_total{{{node}, mode="idle"}}'
                                "[$__rate_interval]))", "{{instance}}"),
                           thresholds=steps("green", (t.host_cpu_ratio, "red")), min=0, max=1,
                           alerts=("HostHighCpu",), width=8),
                timeseries("Memory available", "Share of memory available to applications, per host.",
                           Unit.PERCENT_UNIT,
                           prom(f"node_memory_MemAvailable_bytes{{{node}}} / node_memory_MemTotal_bytes{{{node}}}",
                                "{{instance}}"),
                           thresholds=steps("red", (t.host_memory_available_ratio, "green")), min=0, max=1,
                           alerts=("HostLowMemory",), width=8),
                timeseries("Filesystem available", "Share of space left per mount point.", Unit.PERCENT_UNIT,
                           prom(f"node_filesystem_avail_bytes{{{fs}}} / node_filesystem_size_bytes{{{fs}}}",
                                "{{instance}} {{mountpoint}}"),
                           min=0, max=1, alerts=("HostFilesystemFillingUp",), width=8),
                timeseries("Network traffic", "Bytes per second received and sent per host.",
                           Unit.BYTES_PER_SECOND,
                           prom(f"sum by (instance) (rate(node_network_receive_bytes_total{{{node}}}"
                                "[$__rate_interval]))", "{{instance}} in"),
                           prom(f"sum by (instance) (rate(node_network_transmit_bytes_total{{{node}}}"
                                "[$__rate_interval]))", "{{instance}} out")),
                timeseries("Load average", "1 minute load average per host.", Unit.SHORT,
                           prom(f"node_load1{{{node}}}", "{{instance}}")),
            )),
            Row(title="PostgreSQL", panels=(
                stat("PostgreSQL up", "Whether the exporter reaches PostgreSQL.", Unit.UP_DOWN,
                     prom(f"min(pg_up{{{pg}}})"), thresholds=steps("red", (1, "green")), alerts=("PostgresDown",)),
                timeseries("Connections used", "Connections in use over max_connections.", Unit.PERCENT_UNIT,
                           prom(postgres_connections_used(pg), "{{instance}}"),
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
            )),
            Row(title="Redis", panels=(
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
            )),
            Row(title="Blackbox probes", panels=(
                table("Probe results", "Last result of each probe: 1 success, 0 failure.", Unit.UP_DOWN,
                      prom(f"probe_success{{{probe}}}", instant=True), alerts=("BlackboxProbeFailed",), width=8),
                timeseries("Probe duration", "How long each probe takes.", Unit.SECONDS,
                           prom(f"probe_duration_seconds{{{probe}}}", "{{instance}}"), width=8),
                bar_gauge("Certificate expiry", "Days until the earliest certificate of each probed URL expires.",
                          Unit.DAYS, prom(f"(probe_ssl_earliest_cert_expiry{{{probe}}} - time()) / 86400",
                                          "{{instance}}", instant=True),
                          thresholds=steps("red", (t.certificate_expiry_days, "green")),
                          alerts=("TlsCertificateExpiringSoon",), width=8),
            )),
        ),
    )
