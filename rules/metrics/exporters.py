"""The exporters' metrics: node_exporter 1.x, postgres_exporter 0.1x/0.20, redis_exporter 1.x and
blackbox_exporter 0.2x, as their /metrics pages expose them.

Names, types and labels of node_exporter and blackbox_exporter are checked against the versions we
ship, built from their Go modules (node_exporter 1.12.1, blackbox_exporter 0.28.0):
tests/e2e/test_catalog_on_shipped_binaries.py runs each one and reads what it exposes. They were
first written from sources and Debian's older builds (node 1.5, blackbox 0.23); nothing used here
changed between those and the shipped versions. postgres_exporter and redis_exporter are still
only checked against Debian's builds (postgres 0.11, redis 1.45: their modules are not served by
the Go module proxy), older than the images. Where versions differ, only the labels all of them
have are declared: postgres_exporter 0.11 adds `server` to every series and 0.20 does not, so
rules aggregate `by (job, instance)` and never match on it.
"""

from rules.catalog import Metric, MetricType

C, G = MetricType.COUNTER, MetricType.GAUGE

# node_exporter 1.12 also sets `device_error`, empty (so absent in Prometheus) unless statfs failed.
FILESYSTEM = ("device", "fstype", "mountpoint")
DATABASE = ("datid", "datname")

NODE = (
    Metric("node_cpu_seconds_total", C, "Seconds the CPUs spent in each mode", ("cpu", "mode")),
    Metric("node_load1", G, "1m load average"),
    Metric("node_load5", G, "5m load average"),
    Metric("node_load15", G, "15m load average"),
    *(
        Metric(f"node_memory_{field}_bytes", G, f"Memory information field {field}_bytes")
        for field in ("MemTotal", "MemAvailable", "MemFree", "Buffers", "Cached", "SwapTotal", "SwapFree")
    ),
    Metric("node_filesystem_size_bytes", G, "Filesystem size in bytes", FILESYSTEM),
    Metric("node_filesystem_free_bytes", G, "Filesystem free space in bytes", FILESYSTEM),
    Metric("node_filesystem_avail_bytes", G, "Filesystem space available to non-root users in bytes",
           FILESYSTEM),
    Metric("node_filesystem_files", G, "Filesystem total file nodes", FILESYSTEM),
    Metric("node_filesystem_files_free", G, "Filesystem total free file nodes", FILESYSTEM),
    Metric("node_filesystem_readonly", G, "Filesystem read-only status", FILESYSTEM),
    *(
        Metric(f"node_network_{direction}_{what}_total", C,
               f"Network device statistic {direction}_{what}", ("device",))
        for direction in ("receive", "transmit") for what in ("bytes", "packets", "errs", "drop")
    ),
    Metric("node_disk_read_bytes_total", C, "The total number of bytes read successfully", ("device",)),
    Metric("node_disk_written_bytes_total", C, "The total number of bytes written successfully",
           ("device",)),
    Metric("node_disk_reads_completed_total", C, "The total number of reads completed successfully",
           ("device",)),
    Metric("node_disk_writes_completed_total", C, "The total number of writes completed successfully",
           ("device",)),
    Metric("node_disk_io_time_seconds_total", C, "Total seconds spent doing I/Os", ("device",)),
    Metric("node_context_switches_total", C, "Total number of context switches"),
    Metric("node_procs_running", G, "Number of processes in runnable state"),
    Metric("node_procs_blocked", G, "Number of processes blocked waiting for I/O to complete"),
    Metric("node_boot_time_seconds", G, "Node boot time, in unixtime"),
    Metric("node_time_seconds", G, "System time in seconds since epoch (1970)"),
    Metric("node_uname_info", G, "Labeled system information as provided by the uname system call",
           ("domainname", "machine", "nodename", "release", "sysname", "version")),
)

POSTGRES = (
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

REDIS = (
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

# Each probe is its own scrape: `instance` is the probed URL (relabelled from __param_target).
BLACKBOX = (
    Metric("probe_success", G, "Displays whether or not the probe was a success"),
    Metric("probe_duration_seconds", G, "Returns how long the probe took to complete in seconds"),
    Metric("probe_http_status_code", G, "Response HTTP status code"),
    Metric("probe_http_duration_seconds", G, "Duration of http request by phase, summed over all redirects",
           ("phase",)),
    Metric("probe_http_ssl", G, "Indicates if SSL was used for the final redirect"),
    Metric("probe_dns_lookup_time_seconds", G, "Returns the time taken for probe dns lookup in seconds"),
    Metric("probe_ssl_earliest_cert_expiry", G, "Returns earliest SSL cert expiry in unixtime"),
    Metric("probe_tls_version_info", G, "Contains the TLS version used", ("version",)),
)

METRICS = NODE + POSTGRES + REDIS + BLACKBOX
