"""node_exporter: the host's CPU, memory, disks and filesystems, read through the host's /proc,
/sys and root filesystem mounted read-only (the container's own would describe the container).

On Kubernetes it shares the node's network (where NetworkPolicies do not apply), so it never
listens on the node's interfaces: it binds the node's loopback (`LOOPBACK_PORT`), and
kube-rbac-proxy, beside it in the pod (stack/targets/kubernetes/rbac_proxy.py), serves its
/metrics on `PORT` of the node's IP over TLS to callers the API server allows `get` on
/metrics (Prometheus, with its service-account token). The spec's port is that proxy's: what
the cluster sees. On Docker it listens on the stack's private network only, as every component.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dashboards.common import instance, timeseries
from dashboards.model import Row, Unit, Variable, prom, steps
from rules.alert_tests import GIB, counter, over, series, silent, under
from rules.alert_tests import fires as _fires_of
from rules.catalog import Metric, MetricType
from rules.conventions import IGNORED_FILESYSTEMS, AlertSeverity, number
from rules.humanize import humanize_percentage as pct
from rules.model import AlertingRule, alert
from rules.testing import AlertAt, Expected, Firing, RuleTest, Series
from stack.images import Official
from stack.judges import Judge, common_version_flags, same_version
from stack.services.common import image, resources
from stack.services.component import ComponentModule, Job
from stack.services.spec import HostMount, MetricsEndpoint, Port, ServiceSpec, Workload, http_health
from stack.settings import Component, ImageRef, Memory, _image

if TYPE_CHECKING:
    from stack.config import StackConfig


class NodeExporterService(Component):
    image: ImageRef = _image("prom/node-exporter", "v1.12.1")
    memory: Memory = "64Mi"
    # Kubernetes: node exporter listens on the node's loopback only; kube-rbac-proxy serves its
    # metrics on the node's IP over TLS to callers allowed `get` on /metrics (v0.22.0: released
    # 2026-04-27 to quay.io/brancz/kube-rbac-proxy and ghcr.io/kube-rbac-proxy/kube-rbac-proxy).
    rbac_proxy_image: ImageRef = _image("quay.io/brancz/kube-rbac-proxy", "v0.22.0")


NAME = "node-exporter"
PORT = 9100
# Kubernetes: node exporter itself, on the node's loopback only, behind kube-rbac-proxy on PORT.
LOOPBACK_PORT = 9101
CONFIG_DIR = "/etc/node-exporter"
HOST_PROC = HostMount("proc", "/proc", "/host/proc")
HOST_SYS = HostMount("sys", "/sys", "/host/sys")
# A filesystem mounted after the exporter started is still seen (node_exporter's Docker example).
HOST_ROOT = HostMount("root", "/", "/host/root", follow_mounts=True)

# node_exporter 1.x's default on Linux (collector/filesystem_linux.go), plus the pods' volumes of a
# Kubernetes node and containerd's task roots: they would show every container's mounts as disks.
# Mount points are matched after the --path.rootfs prefix is stripped, so these are host paths.
MOUNT_POINTS_EXCLUDE = (
    "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+"
    "|var/lib/kubelet/.+|run/containerd/.+)($|/)"
)


def service(config: StackConfig) -> ServiceSpec:
    settings = config.services.node_exporter
    if config.target == "kubernetes":
        # The node's loopback: nothing but the proxy beside it (and the node itself) reaches it.
        listen, port, health = f"127.0.0.1:{LOOPBACK_PORT}", Port("https", PORT), http_health(LOOPBACK_PORT, "/")
    else:
        listen, port, health = f":{PORT}", Port("http", PORT, host_port=settings.publish), http_health(PORT, "/")
    return ServiceSpec(
        # On every node, on the node's network (it listens on the node's loopback: kube-rbac-proxy in front).
        workload=Workload(placement="per-node", host_network=True, rbac_proxy_upstream=LOOPBACK_PORT,
                          rbac_proxy_image=image(settings.rbac_proxy_image)),
        name=NAME,
        image=image(settings.image),
        user="65534:65534",
        resources=resources(settings),
        args=(
            f"--path.procfs={HOST_PROC.path}",
            f"--path.sysfs={HOST_SYS.path}",
            f"--path.rootfs={HOST_ROOT.path}",
            f"--collector.filesystem.mount-points-exclude={MOUNT_POINTS_EXCLUDE}",
            f"--web.listen-address={listen}",
        ),
        ports=(port,),
        config_dir=CONFIG_DIR,
        host_mounts=(HOST_PROC, HOST_SYS, HOST_ROOT),
        # The host's processes, so /host/proc/1/mountinfo is the host's mount table.
        host_pid=True,
        health=health,
        metrics=MetricsEndpoint(job=config.jobs.node, port=PORT),
    )


# --- metrics, alerts and their tests, dashboard row --------------------------------------------

# Checked against the shipped version, built from its Go module (node_exporter 1.12.1):
# tests/e2e/test_catalog_on_shipped_binaries.py runs it and reads what it exposes. First written
# from its sources and Debian's older build (1.5); nothing used here changed between the two.
C, G = MetricType.COUNTER, MetricType.GAUGE
# node_exporter 1.12 also sets `device_error`, empty (so absent in Prometheus) unless statfs failed.
FILESYSTEM = ("device", "fstype", "mountpoint")

METRICS = (
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

WARNING = AlertSeverity.WARNING

# What each alert carries whatever the data, stated apart from the rules: a wrong severity,
# routing label or summary there fails the tests.
EXPECTED = {
    "HostHighCpu": Expected("warning", "host", "Host CPU is saturated"),
    "HostLowMemory": Expected("warning", "host", "Host is running out of memory"),
    "HostFilesystemFillingUp": Expected("warning", "host", "A filesystem will be full soon"),
}

# The instance as the scrape config names it (Docker).
INSTANCE = f"{NAME}:{PORT}"


def alerts(config: StackConfig) -> tuple[AlertingRule, ...]:
    jobs, t = config.jobs, config.thresholds
    common = {"runbook_base_url": config.runbook_base_url}
    node = f'job="{jobs.node}"'
    fs = f"{node},{IGNORED_FILESYSTEMS}"
    return (
        alert("HostHighCpu",
              f'1 - avg by (job, instance) (rate(node_cpu_seconds_total{{{node},mode="idle"}}[5m])) '
              f"> {t.host_cpu_ratio}",
              for_="10m", severity=WARNING, service="host",
              summary="Host CPU is saturated",
              description="The CPUs of {{ $labels.instance }} are {{ $value | humanizePercentage }} "
                          "busy on average.", **common),
        alert("HostLowMemory",
              f"node_memory_MemAvailable_bytes{{{node}}} / node_memory_MemTotal_bytes{{{node}}} "
              f"< {t.host_memory_available_ratio}",
              for_="10m", severity=WARNING, service="host",
              summary="Host is running out of memory",
              description="Only {{ $value | humanizePercentage }} of the memory of "
                          "{{ $labels.instance }} is available.", **common),
        # Both conditions: a nearly full disk that stopped growing is fine, and so is a fast
        # growing one with plenty of room; readonly filesystems cannot fill.
        alert("HostFilesystemFillingUp",
              f"node_filesystem_avail_bytes{{{fs}}} / node_filesystem_size_bytes{{{fs}}} "
              f"< {t.filesystem_available_ratio} "
              f"and predict_linear(node_filesystem_avail_bytes{{{fs}}}[6h], "
              f"{number(t.filesystem_fill_hours * 3600)}) < 0 "
              f"and node_filesystem_readonly{{{fs}}} == 0",
              for_="1h", severity=WARNING, service="host",
              summary="A filesystem will be full soon",
              description="{{ $labels.mountpoint }} on {{ $labels.instance }} has "
                          "{{ $value | humanizePercentage }} of its space left and will be full "
                          f"within {number(t.filesystem_fill_hours)} hours at the current rate.",
              **common),
    )


def _fires(at: str, alert_name: str, description: str, /, **labels: str) -> AlertAt:
    return _fires_of(EXPECTED, at, alert_name, description, **labels)


def alert_tests(config: StackConfig) -> tuple[RuleTest, ...]:
    jobs, t = config.jobs, config.thresholds
    node = {"job": jobs.node, "instance": INSTANCE}

    # Idle seconds per minute of two CPUs, whose average busy ratio is `busy`.
    def cpus(busy: float) -> tuple[Series, ...]:
        skew = (1 - busy) / 2
        return tuple(series("node_cpu_seconds_total", counter(60 * (1 - busy - d)), cpu=cpu, mode="idle",
                            **node) for cpu, d in (("0", skew), ("1", -skew)))

    cpu_busy = over(t.host_cpu_ratio)
    result = [
        RuleTest(
            "CPUs busy just over the threshold for 10 minutes open a ticket",
            series=cpus(cpu_busy),
            alerts=(silent("8m", "HostHighCpu"),
                    _fires("15m", "HostHighCpu", f"The CPUs of {INSTANCE} are {pct(cpu_busy)} busy on "
                           "average.", **node)),
        ),
        RuleTest(
            "CPUs busy just under the threshold stay silent",
            series=cpus(under(t.host_cpu_ratio)),
            alerts=(silent("20m", "HostHighCpu"),),
        ),
    ]

    def memory(available: float) -> tuple[Series, ...]:
        return (series("node_memory_MemTotal_bytes", f"{8 * GIB}x30", **node),
                series("node_memory_MemAvailable_bytes", f"{number(8 * GIB * available)}x30", **node))

    low_memory = under(t.host_memory_available_ratio)
    result += [
        RuleTest(
            "Available memory just under the threshold for 10 minutes opens a ticket",
            series=memory(low_memory),
            alerts=(silent("8m", "HostLowMemory"),
                    _fires("15m", "HostLowMemory", f"Only {pct(low_memory)} of the memory of {INSTANCE} "
                           "is available.", **node)),
        ),
        RuleTest(
            "Available memory just over the threshold stays silent",
            series=memory(over(t.host_memory_available_ratio)),
            alerts=(silent("15m", "HostLowMemory"),),
        ),
    ]
    return tuple(result + _filesystem_tests(config))


def _filesystem_tests(config: StackConfig) -> list[RuleTest]:
    jobs, t = config.jobs, config.thresholds
    size, hours, ratio = 100 * GIB, t.filesystem_fill_hours, t.filesystem_available_ratio
    # Both conditions become true together at `start`; the alert must then hold for 1h.
    start, at = 20, 90

    def filesystem(mountpoint: str, left: float, full_in_hours: float, fstype: str = "ext4",
                   readonly: int = 0, device: str = "/dev/sda1") -> tuple[Series, ...]:
        """A filesystem with `left` of its space left at `start`, shrinking linearly so that it is
        full `full_in_hours` later."""
        per_minute = left / (full_in_hours * 60)
        labels = {"job": jobs.node, "instance": INSTANCE, "device": device, "fstype": fstype,
                  "mountpoint": mountpoint}
        return (series("node_filesystem_size_bytes", f"{size}x120", **labels),
                series("node_filesystem_avail_bytes",
                       f"{number(size * (left + start * per_minute))}-{number(size * per_minute)}x120", **labels),
                series("node_filesystem_readonly", f"{readonly}x120", **labels))

    # Each firing filesystem reaches one threshold exactly at `start` and is past the other all
    # along: that threshold 2% tighter would start the alert half an hour later, 2% looser half an
    # hour sooner, and one of the two checks below would fail.
    def fs_labels(mountpoint: str, device: str) -> dict[str, str]:
        return {"job": jobs.node, "instance": INSTANCE, "device": device, "fstype": "ext4",
                "mountpoint": mountpoint}

    def described(mountpoint: str, left: float, full_in_hours: float) -> Firing:
        left_at = left * (1 - (at - start) / (full_in_hours * 60))
        device = "/dev/sdb1" if mountpoint == "/srv/media" else "/dev/sda1"
        return EXPECTED["HostFilesystemFillingUp"].firing(fs_labels(mountpoint, device),
                                                          f"{mountpoint} on {INSTANCE} has {pct(left_at)} of its "
                                                          f"space left and will be full within {number(hours)} "
                                                          "hours at the current rate.")

    return [
        RuleTest(
            "Filesystems low on space and full within the horizon open a ticket after 1 hour",
            series=(*filesystem("/srv/media", ratio, hours / 2, device="/dev/sdb1"),
                    *filesystem("/var/lib/docker", ratio / 2, hours),
                    *filesystem("/run", ratio, hours / 2, fstype="tmpfs", device="tmpfs")),
            alerts=(silent(f"{at - 15}m", "HostFilesystemFillingUp"),
                    AlertAt(f"{at}m", "HostFilesystemFillingUp", (
                        described("/srv/media", ratio, hours / 2),
                        described("/var/lib/docker", ratio / 2, hours)))),
        ),
        RuleTest(
            "Filesystems low on space but filling slowly, filling fast but with room, or readonly "
            "stay silent",
            series=(*filesystem("/srv/media", ratio / 2, hours * 1.5, device="/dev/sdb1"),
                    *filesystem("/var/lib/docker", ratio * 1.2, hours / 2),
                    *filesystem("/mnt/archive", ratio / 2, hours / 2, readonly=1, device="/dev/sdc1")),
            alerts=(silent(f"{at}m", "HostFilesystemFillingUp"),),
        ),
    ]


def dashboard_variables(config: StackConfig) -> tuple[Variable, ...]:
    return (instance(config.jobs.node, "Host"),)


def dashboard_rows(config: StackConfig) -> tuple[Row, ...]:
    t = config.thresholds
    node = f'job="{config.jobs.node}", instance=~"$instance"'
    fs = f"{node}, {IGNORED_FILESYSTEMS}"
    return (Row(title="Hosts", panels=(
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
    )),)


JUDGE = Judge("node_exporter", "github.com/prometheus/node_exporter", ("node_exporter",), "prom/node-exporter",
              same_version, common_version_flags)
# node_exporter@v1.12.1/Dockerfile: EXPOSE 9100, USER nobody.
LOCAL_IMAGE = Official({"/bin/node_exporter": "node_exporter"}, ("/bin/node_exporter",), ("9100/tcp",),
                       user="nobody")


COMPONENT = ComponentModule(
    judge=JUDGE, local_image=LOCAL_IMAGE,
    name=NAME, settings_key="node_exporter", settings=NodeExporterService,
    service=lambda config, files, others: service(config),
    job=Job("node", "node-exporter"),
    metrics=METRICS, alerts=alerts, alert_tests=alert_tests, expected=EXPECTED,
    dashboard_rows=dashboard_rows, dashboard_variables=dashboard_variables,
    sandbox_binary="node_exporter",
)
