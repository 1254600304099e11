"""cAdvisor: every container of the Docker host, as the kernel accounts it (CPU, throttling,
memory against its limit, OOM kills, restarts). On Kubernetes the kubelet embeds cAdvisor:
kube_state_metrics.py scrapes it there, so this module is for the Docker target only.

It runs as nobody, never privileged: container names and labels come from the Docker API (the
socket's group, as Alloy's), their counters from the host's cgroup files (/sys, read-only).
Only the metric groups the alerts and the row read are collected (`--enable_metrics`), and only
Docker's containers (`--docker_only`): the series stay bounded by the number of containers.

Off by default: it needs the gid owning the host's Docker socket (`dockerSocketGroup`), which
only the stack file can know (Pulumi.dev.yaml sets it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import model_validator

from dashboards.common import timeseries
from dashboards.model import Row, Unit, prom, steps
from rules.alert_tests import fires, series
from rules.catalog import Metric, MetricType
from rules.conventions import AlertSeverity, number
from rules.expressions import cpu_throttled, memory_limit_used
from rules.humanize import humanize_percentage as pct
from rules.model import AlertingRule, alert
from rules.testing import AlertAt, Expected, RuleTest
from stack.services.common import image, resources
from stack.services.component import ComponentModule, Job
from stack.services.spec import HostMount, MetricsEndpoint, Port, ServiceSpec, http_health
from stack.settings import AbsolutePath, Component, Count, ImageRef, Memory, Ratio, _image

if TYPE_CHECKING:
    from stack.config import StackConfig


class CadvisorService(Component):
    # cAdvisor images are published to ghcr.io/google/cadvisor since v0.53.0 (gcr.io before).
    image: ImageRef = _image("ghcr.io/google/cadvisor", "v0.61.0")
    memory: Memory = "256Mi"
    enabled: bool = False
    docker_socket: AbsolutePath = "/var/run/docker.sock"
    # The gid owning the Docker socket (`stat -c %g /var/run/docker.sock`): cAdvisor never runs as root.
    docker_socket_group: Count(1, 2**31 - 1) | None = None
    # Working set over the container's memory limit above which ContainerMemoryNearLimit fires.
    memory_limit_ratio: Ratio = 0.9
    # Share of CPU periods throttled (CFS quota exhausted) above which ContainerCpuThrottled fires.
    cpu_throttled_ratio: Ratio = 0.25
    # Restarts within 15 minutes from which ContainerRestarting fires (a crash loop restarts often).
    restarts: Count(1, 100) = 2

    @model_validator(mode="after")
    def _socket_group(self) -> CadvisorService:
        if self.enabled and self.docker_socket_group is None:
            raise ValueError("enabled cadvisor needs dockerSocketGroup (the gid owning the Docker socket, "
                             "`stat -c %g /var/run/docker.sock`): cAdvisor never runs as root")
        return self


NAME = "cadvisor"
PORT = 8080
DOCKER_SOCKET = "/var/run/docker.sock"
HOST_SYS = HostMount("sys", "/sys", "/sys")
# Only what the alerts and panels read: CPU (usage, CFS throttling), memory, OOM events.
METRIC_GROUPS = ("cpu", "memory", "oom_event")
HOUSEKEEPING_INTERVAL = "10s"


def service(config: StackConfig) -> ServiceSpec:
    settings = config.services.cadvisor
    return ServiceSpec(
        name=NAME,
        image=image(settings.image),
        user="65534:65534",
        groups=(str(settings.docker_socket_group),),
        resources=resources(settings),
        args=(
            f"--port={PORT}",
            f"--docker=unix://{DOCKER_SOCKET}",
            "--docker_only=true",
            f"--enable_metrics={','.join(METRIC_GROUPS)}",
            # Container labels as series labels would let any `docker run --label` grow the series.
            "--store_container_labels=false",
            f"--housekeeping_interval={HOUSEKEEPING_INTERVAL}",
        ),
        ports=(Port("http", PORT, host_port=settings.publish),),
        config_dir="/etc/cadvisor",
        host_mounts=(HOST_SYS, HostMount("docker-socket", host_path=settings.docker_socket, path=DOCKER_SOCKET)),
        health=http_health(PORT, "/healthz"),
        metrics=MetricsEndpoint(job=config.jobs.cadvisor, port=PORT),
    )


# --- metrics, alerts and their tests ----------------------------------------------------------------

C, G = MetricType.COUNTER, MetricType.GAUGE
CONTAINER = ("name", "image")  # and `id`, the cgroup: never kept
METRICS = (
    Metric("container_cpu_usage_seconds_total", C, "Cumulative cpu time consumed", (*CONTAINER, "cpu")),
    Metric("container_cpu_cfs_periods_total", C, "Number of elapsed enforcement period intervals", CONTAINER),
    Metric("container_cpu_cfs_throttled_periods_total", C, "Number of throttled period intervals", CONTAINER),
    Metric("container_memory_working_set_bytes", G, "Current working set", CONTAINER),
    Metric("container_spec_memory_limit_bytes", G, "Memory limit for the container", CONTAINER),
    Metric("container_oom_events_total", C, "Count of out of memory events observed for the container",
           CONTAINER),
    Metric("container_start_time_seconds", G, "Start time of the container since unix epoch", CONTAINER),
)

EXPECTED = {
    "ContainerRestarting": Expected("warning", "host", "A container keeps restarting"),
    "ContainerOomKilled": Expected("warning", "host", "A container was OOM-killed"),
    "ContainerMemoryNearLimit": Expected("warning", "host", "A container is close to its memory limit"),
    "ContainerCpuThrottled": Expected("info", "host", "A container is CPU-throttled"),
}


def _selector(config: StackConfig) -> str:
    # `name` is set on Docker's containers only; the cgroup hierarchy's own series have none.
    return f'job="{config.jobs.cadvisor}", name!=""'


def alerts(config: StackConfig) -> tuple[AlertingRule, ...]:
    settings, sel = config.services.cadvisor, _selector(config)
    common = {"runbook_base_url": config.runbook_base_url}
    by = "instance, name"
    return (
        # A restart gives the same container a new start time: the changes count the restarts.
        alert("ContainerRestarting",
              f"max by ({by}) (changes(container_start_time_seconds{{{sel}}}[15m])) >= {settings.restarts}",
              severity=AlertSeverity.WARNING, service="host", summary="A container keeps restarting",
              description="Container {{ $labels.name }} on {{ $labels.instance }} restarted {{ $value }} times "
                          "in 15 minutes.", **common),
        alert("ContainerOomKilled", f"sum by ({by}) (increase(container_oom_events_total{{{sel}}}[10m])) > 0",
              severity=AlertSeverity.WARNING, service="host", summary="A container was OOM-killed",
              description="The kernel killed a process of container {{ $labels.name }} on {{ $labels.instance }} "
                          "for lack of memory in the last 10 minutes.", **common),
        # Without a limit (0) there is nothing to be near.
        alert("ContainerMemoryNearLimit",
              f"{memory_limit_used(by, sel)} > {number(settings.memory_limit_ratio)}",
              for_="15m", severity=AlertSeverity.WARNING, service="host",
              summary="A container is close to its memory limit",
              description="Container {{ $labels.name }} on {{ $labels.instance }} uses "
                          "{{ $value | humanizePercentage }} of its memory limit.", **common),
        alert("ContainerCpuThrottled",
              f"{cpu_throttled(by, sel, '5m')} > {number(settings.cpu_throttled_ratio)}",
              for_="15m", severity=AlertSeverity.INFO, service="host", summary="A container is CPU-throttled",
              description="Container {{ $labels.name }} on {{ $labels.instance }} was throttled in "
                          "{{ $value | humanizePercentage }} of its CPU periods.", **common),
    )


def alert_tests(config: StackConfig) -> tuple[RuleTest, ...]:
    settings = config.services.cadvisor
    instance = f"{NAME}:{PORT}"
    api = {"job": config.jobs.cadvisor, "instance": instance, "id": "/system.slice/docker-1.scope",
           "name": "medianest-backend", "image": "medianest/backend:1.0"}
    grouped = {"instance": instance, "name": api["name"]}
    limit = 512 * 1024 * 1024
    near, under = settings.memory_limit_ratio * 1.02, settings.memory_limit_ratio * 0.98
    restarts = settings.restarts
    # The start time changes at each restart: `restarts` changes a minute apart, then it stays up.
    def started(times: int) -> str:
        starts = [1000 + 60 * i for i in range(times + 1)]
        return " ".join(str(t) for t in [starts[0]] * 5 + starts[1:] + [starts[-1]] * 20)
    periods = "0+600x40"  # 10 CFS periods a second
    return (
        RuleTest(f"{restarts} restarts within 15 minutes fire ContainerRestarting; fewer do not",
                 series=(series("container_start_time_seconds", started(restarts), **api),),
                 alerts=(AlertAt("4m", "ContainerRestarting"),
                         fires(EXPECTED, f"{5 + restarts}m", "ContainerRestarting",
                                f"Container medianest-backend on {instance} restarted {restarts} times in 15 minutes.",
                                **grouped))),
        RuleTest(f"{restarts - 1} restarts within 15 minutes stay silent",
                 series=(series("container_start_time_seconds", started(restarts - 1),
                                **{**api, "name": "medianest-worker"}),),
                 alerts=(AlertAt(f"{5 + restarts}m", "ContainerRestarting"),)),
        RuleTest("An OOM kill fires ContainerOomKilled at once; it resolves 10 minutes later",
                 series=(series("container_oom_events_total", "0x5 1x20", **api),),
                 alerts=(AlertAt("5m", "ContainerOomKilled"),
                         fires(EXPECTED, "6m", "ContainerOomKilled",
                                f"The kernel killed a process of container medianest-backend on {instance} for lack "
                                "of memory in the last 10 minutes.", **grouped),
                         AlertAt("17m", "ContainerOomKilled"))),
        RuleTest("Working set just over its share of the limit for 15 minutes fires ContainerMemoryNearLimit",
                 series=(series("container_memory_working_set_bytes", f"{round(limit * near)}x30", **api),
                         series("container_spec_memory_limit_bytes", f"{limit}x30", **api)),
                 alerts=(AlertAt("14m", "ContainerMemoryNearLimit"),
                         fires(EXPECTED, "16m", "ContainerMemoryNearLimit",
                                f"Container medianest-backend on {instance} uses "
                                f"{pct(round(limit * near) / limit)} of its memory limit.", **grouped))),
        RuleTest("Working set just under its share of the limit, or with no limit, stays silent",
                 series=(series("container_memory_working_set_bytes", f"{round(limit * under)}x30", **api),
                         series("container_spec_memory_limit_bytes", f"{limit}x30", **api),
                         series("container_memory_working_set_bytes", f"{limit * 4}x30", **{**api, "name": "nolimit"}),
                         series("container_spec_memory_limit_bytes", "0x30", **{**api, "name": "nolimit"})),
                 alerts=(AlertAt("20m", "ContainerMemoryNearLimit"),)),
        RuleTest("CPU throttled in more than its share of periods for 15 minutes fires ContainerCpuThrottled",
                 series=(series("container_cpu_cfs_periods_total", periods, **api),
                         series("container_cpu_cfs_throttled_periods_total",
                                 f"0+{number(600 * settings.cpu_throttled_ratio * 1.2)}x40", **api),
                         series("container_cpu_cfs_periods_total", periods, **{**api, "name": "calm"}),
                         series("container_cpu_cfs_throttled_periods_total",
                                 f"0+{number(600 * settings.cpu_throttled_ratio * 0.8)}x40",
                                     **{**api, "name": "calm"})),
                 alerts=(AlertAt("15m", "ContainerCpuThrottled"),
                         fires(EXPECTED, "25m", "ContainerCpuThrottled",
                                f"Container medianest-backend on {instance} was throttled in "
                                f"{pct(settings.cpu_throttled_ratio * 1.2)} of its CPU periods.", **grouped))),
    )


def dashboard_rows(config: StackConfig) -> tuple[Row, ...]:
    settings, sel = config.services.cadvisor, _selector(config)
    return (Row(title="Containers", panels=(
        timeseries("Container CPU", "CPU seconds per second used by each container.", Unit.SHORT,
                   prom(f"sum by (name) (rate(container_cpu_usage_seconds_total{{{sel}}}[$__rate_interval]))",
                        "{{name}}"), width=8),
        timeseries("Memory against limit", "Working set over the container's memory limit (empty without one).",
                   Unit.PERCENT_UNIT,
                   prom(memory_limit_used("name", sel), "{{name}}"),
                   thresholds=steps("green", (settings.memory_limit_ratio, "red")), min=0, max=1,
                   alerts=("ContainerMemoryNearLimit", "ContainerOomKilled"), width=8),
        timeseries("CPU throttling", "Share of CPU periods in which the container was throttled.",
                   Unit.PERCENT_UNIT,
                   prom(cpu_throttled("name", sel, "$__rate_interval"), "{{name}}"),
                   thresholds=steps("green", (settings.cpu_throttled_ratio, "red")), min=0, max=1,
                   alerts=("ContainerCpuThrottled", "ContainerRestarting"), width=8),
    )),)


COMPONENT = ComponentModule(
    name=NAME, settings_key="cadvisor", settings=CadvisorService,
    service=lambda config, files, others: service(config),
    targets=("docker",),
    job=Job("cadvisor", "cadvisor"),
    metrics=METRICS, alerts=alerts, alert_tests=alert_tests, expected=EXPECTED,
    dashboard_rows=dashboard_rows,
    no_local_image=("its main package (github.com/google/cadvisor/cmd, a module of its own) is not served by the Go "
                    "module proxy here; the image must come from a registry"),
    unjudged=("its main package (github.com/google/cadvisor/cmd, a module of its own) is not served by the Go "
                    "module proxy here; the image must come from a registry"),
)
