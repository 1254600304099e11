"""kube-state-metrics, and the kubelets' cAdvisor: MediaNest's pods and the stack's own as
Kubernetes sees them (crash loops, restarts, OOM kills, readiness, replicas) and as the kernel
accounts them (memory against the limit, CPU throttling). Kubernetes target only: on Docker,
cadvisor.py watches the containers.

Least privilege: kube-state-metrics lists and watches only pods, deployments, statefulsets and
daemonsets, and only in the stack's namespaces and MediaNest's (`--namespaces`, one Role each);
never secrets, never cluster-wide. The kubelets are scraped by the stack's Prometheus directly
(https://<node>:10250/metrics/cadvisor, its service-account token), which needs `nodes` (to
discover them) and `nodes/metrics` (to read them): a ClusterRole with exactly those, never
`nodes/proxy` (which would let it run commands in any pod through the kubelet). Only series of
the stack's namespaces and MediaNest's are kept (the kubelet reports every pod of its node).

With prometheus-operator, the cluster's Prometheus scrapes the kubelets itself
(kube-prometheus-stack's job `kubelet`): set `jobs.kubeletCadvisor` to that job's name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dashboards.common import timeseries
from dashboards.model import Row, Unit, prom, steps
from rules.alert_tests import fires, series
from rules.catalog import Metric, MetricType
from rules.conventions import AlertSeverity, number
from rules.expressions import cpu_throttled, memory_limit_used
from rules.humanize import humanize_percentage as pct
from rules.model import AlertingRule, alert
from rules.testing import AlertAt, Expected, RuleTest
from stack.judges import Judge, common_version_flags, same_version
from stack.services.common import image, resources
from stack.services.component import ComponentModule, Job
from stack.services.spec import (
    ANYWHERE,
    CLUSTER,
    SCRAPERS,
    SERVICE_ACCOUNT_DIR,
    SERVICE_ACCOUNT_TOKEN,
    STACK_NAMESPACES,
    ApiAccess,
    Flow,
    Hosts,
    MetricsEndpoint,
    Port,
    ServiceSpec,
    StackPods,
    Workload,
    http_health,
    tcp,
)
from stack.settings import Component, Count, ImageRef, Memory, Ratio, _image

if TYPE_CHECKING:
    from stack.config import StackConfig


class KubeStateMetricsService(Component):
    # registry.k8s.io/kube-state-metrics/kube-state-metrics: v2.16.0, the newest module the Go
    # proxy serves here (k8s.io/kube-state-metrics/v2; 2.17.0 is refused); its judge is built from
    # it (tools/kube_state_metrics/go.mod).
    image: ImageRef = _image("registry.k8s.io/kube-state-metrics/kube-state-metrics", "v2.16.0")
    memory: Memory = "128Mi"
    # Working set over the container's memory limit above which KubeContainerMemoryNearLimit fires.
    memory_limit_ratio: Ratio = 0.9
    # Share of CPU periods throttled above which KubeContainerCpuThrottled fires.
    cpu_throttled_ratio: Ratio = 0.25
    # Restarts within 15 minutes from which KubeContainerRestarting fires.
    restarts: Count(1, 100) = 2


NAME = "kube-state-metrics"
PORT = 8080
TELEMETRY_PORT = 8081
KUBELET_PORT = 10250
# What it reports on: exactly what the alerts and the row read.
RESOURCES = ("daemonsets", "deployments", "pods", "statefulsets")
READ = ["list", "watch"]
API_RULES = (
    {"apiGroups": [""], "resources": ["pods"], "verbs": READ},
    {"apiGroups": ["apps"], "resources": ["daemonsets", "deployments", "statefulsets"], "verbs": READ},
)
# The kubelets: discovered as nodes, read at /metrics/cadvisor (nodes/metrics), nothing else.
KUBELET_RULES = (
    {"apiGroups": [""], "resources": ["nodes"], "verbs": READ},
    {"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]},
)


def watched_namespaces(config: StackConfig) -> tuple[str, ...]:
    k8s = config.kubernetes
    return tuple(sorted({k8s.namespace, k8s.node_namespace, k8s.backend.namespace}))


def service(config: StackConfig) -> ServiceSpec:
    settings, k8s = config.services.kube_state_metrics, config.kubernetes
    return ServiceSpec(
        name=NAME,
        image=image(settings.image),
        user="65534:65534",
        resources=resources(settings),
        args=(
            f"--port={PORT}",
            f"--telemetry-port={TELEMETRY_PORT}",
            f"--namespaces={','.join(watched_namespaces(config))}",
            f"--resources={','.join(RESOURCES)}",
        ),
        ports=(Port("http", PORT), Port("telemetry", TELEMETRY_PORT)),
        config_dir="/etc/kube-state-metrics",
        health=http_health(PORT, "/livez"),
        metrics=MetricsEndpoint(job=config.jobs.kube_state_metrics, port=PORT),
        workload=Workload(
            api_access=(ApiAccess((STACK_NAMESPACES,), API_RULES),),
            scraper_access=(ApiAccess((CLUSTER,), KUBELET_RULES),),
        ),
        flows=(
            Flow(StackPods(NAME), Hosts(tuple(sorted(k8s.api_server_cidrs))), tcp(*k8s.api_server_ports)),
            # The kubelets listen on each node's IP: only the port restricts it.
            Flow(SCRAPERS, ANYWHERE, tcp(KUBELET_PORT)),
        ),
    )


def scrape_jobs(config: StackConfig) -> tuple[dict[str, Any], ...]:
    """The kubelets' cAdvisor, each node by name; only the stack's namespaces and MediaNest's."""
    if config.kubernetes.prometheus_operator.enabled:
        return ()  # the cluster's Prometheus scrapes its kubelets itself
    kept = "|".join(watched_namespaces(config))
    return ({
        "job_name": config.jobs.kubelet_cadvisor,
        "scheme": "https",
        "metrics_path": "/metrics/cadvisor",
        "authorization": {"credentials_file": SERVICE_ACCOUNT_TOKEN},
        # Kubelets serve self-signed certificates unless the cluster rotates signed ones.
        "tls_config": {"ca_file": f"{SERVICE_ACCOUNT_DIR}/ca.crt", "insecure_skip_verify": True},
        "kubernetes_sd_configs": [{"role": "node"}],
        "relabel_configs": [{"source_labels": ["__meta_kubernetes_node_name"], "target_label": "instance"}],
        "metric_relabel_configs": [
            {"source_labels": ["namespace"], "regex": kept, "action": "keep"},
            # Per-interface and per-device series of every container: not read here.
            {"source_labels": ["__name__"], "regex": "container_(cpu|memory)_.*|container_oom_events_total",
             "action": "keep"},
        ],
    },)


# --- metrics, alerts and their tests ----------------------------------------------------------------

C, G = MetricType.COUNTER, MetricType.GAUGE
POD = ("namespace", "pod")
CONTAINER = (*POD, "container")
METRICS = (
    Metric("kube_pod_container_status_restarts_total", C, "The number of container restarts per container.",
           CONTAINER),
    Metric("kube_pod_container_status_waiting_reason", G,
           "Describes the reason the container is currently in waiting state.", (*CONTAINER, "reason")),
    Metric("kube_pod_container_status_last_terminated_reason", G,
           "Describes the last reason the container was in terminated state.", (*CONTAINER, "reason")),
    Metric("kube_pod_status_ready", G, "Describes whether the pod is ready to serve requests.",
           (*POD, "condition")),
    Metric("kube_pod_status_phase", G, "The pods current phase.", (*POD, "phase")),
    Metric("kube_deployment_status_replicas_unavailable", G,
           "The number of unavailable replicas per deployment.", ("namespace", "deployment")),
    Metric("kube_deployment_spec_replicas", G, "Number of desired pods for a deployment.",
           ("namespace", "deployment")),
    Metric("kube_statefulset_status_replicas_ready", G, "The number of ready replicas per StatefulSet.",
           ("namespace", "statefulset")),
    Metric("kube_statefulset_replicas", G, "Number of desired pods for a StatefulSet.", ("namespace", "statefulset")),
    Metric("container_memory_working_set_bytes", G, "Current working set", (*CONTAINER, "image", "name")),
    Metric("container_spec_memory_limit_bytes", G, "Memory limit for the container",
           (*CONTAINER, "image", "name")),
    Metric("container_cpu_cfs_periods_total", C, "Number of elapsed enforcement period intervals",
           (*CONTAINER, "image", "name")),
    Metric("container_cpu_cfs_throttled_periods_total", C, "Number of throttled period intervals",
           (*CONTAINER, "image", "name")),
)

EXPECTED = {
    "KubePodCrashLooping": Expected("warning", "host", "A pod is crash-looping"),
    "KubeContainerRestarting": Expected("warning", "host", "A container keeps restarting"),
    "KubeContainerOomKilled": Expected("warning", "host", "A container was OOM-killed"),
    "KubePodNotReady": Expected("warning", "host", "A pod is not ready"),
    "KubeDeploymentReplicasUnavailable": Expected("warning", "host", "A deployment has unavailable replicas"),
    "KubeStatefulSetReplicasNotReady": Expected("warning", "host", "A StatefulSet has replicas not ready"),
    "KubeContainerMemoryNearLimit": Expected("warning", "host", "A container is close to its memory limit"),
    "KubeContainerCpuThrottled": Expected("info", "host", "A container is CPU-throttled"),
}


def alerts(config: StackConfig) -> tuple[AlertingRule, ...]:
    settings = config.services.kube_state_metrics
    ksm, kubelet = f'job="{config.jobs.kube_state_metrics}"', f'job="{config.jobs.kubelet_cadvisor}"'
    # cAdvisor's per-container series; the pod's own cgroup has container="".
    containers = f'{kubelet}, container!="", container!="POD"'
    common = {"runbook_base_url": config.runbook_base_url}
    container, pod = "namespace, pod, container", "namespace, pod"
    warning = {"severity": AlertSeverity.WARNING, "service": "host"}
    return (
        alert("KubePodCrashLooping",
              f'max by ({container}) (max_over_time(kube_pod_container_status_waiting_reason'
              f'{{{ksm}, reason="CrashLoopBackOff"}}[5m])) >= 1',
              for_="15m", summary="A pod is crash-looping",
              description="Container {{ $labels.container }} of pod {{ $labels.namespace }}/{{ $labels.pod }} "
                          "has been waiting in CrashLoopBackOff for 15 minutes.", **warning, **common),
        alert("KubeContainerRestarting",
              f"max by ({container}) (increase(kube_pod_container_status_restarts_total{{{ksm}}}[15m])) "
              f">= {settings.restarts}",
              summary="A container keeps restarting",
              description="Container {{ $labels.container }} of pod {{ $labels.namespace }}/{{ $labels.pod }} "
                          'restarted {{ printf "%.0f" $value }} times in 15 minutes.', **warning, **common),
        # The last termination was an OOM kill, and it is recent: the container restarted since.
        alert("KubeContainerOomKilled",
              f'max by ({container}) (kube_pod_container_status_last_terminated_reason{{{ksm}, reason="OOMKilled"}}) '
              f"== 1 and on ({container}) "
              f"max by ({container}) (increase(kube_pod_container_status_restarts_total{{{ksm}}}[10m])) > 0",
              summary="A container was OOM-killed",
              description="Container {{ $labels.container }} of pod {{ $labels.namespace }}/{{ $labels.pod }} "
                          "was killed for lack of memory in the last 10 minutes.", **warning, **common),
        # A pod of a completed Job is not ready and never will be: only running or pending ones count.
        alert("KubePodNotReady",
              f'max by ({pod}) (kube_pod_status_ready{{{ksm}, condition="false"}}) == 1 and on ({pod}) '
              f'max by ({pod}) (kube_pod_status_phase{{{ksm}, phase=~"Pending|Running"}}) == 1',
              for_="15m", summary="A pod is not ready",
              description="Pod {{ $labels.namespace }}/{{ $labels.pod }} has not been ready for 15 minutes.",
              **warning, **common),
        alert("KubeDeploymentReplicasUnavailable",
              f"max by (namespace, deployment) (kube_deployment_status_replicas_unavailable{{{ksm}}}) > 0",
              for_="15m", summary="A deployment has unavailable replicas",
              description="Deployment {{ $labels.namespace }}/{{ $labels.deployment }} has had "
                          "{{ $value }} unavailable replicas for 15 minutes.", **warning, **common),
        alert("KubeStatefulSetReplicasNotReady",
              f"max by (namespace, statefulset) (kube_statefulset_replicas{{{ksm}}}) - "
              f"max by (namespace, statefulset) (kube_statefulset_status_replicas_ready{{{ksm}}}) > 0",
              for_="15m", summary="A StatefulSet has replicas not ready",
              description="StatefulSet {{ $labels.namespace }}/{{ $labels.statefulset }} has had "
                          "{{ $value }} replicas not ready for 15 minutes.", **warning, **common),
        alert("KubeContainerMemoryNearLimit",
              f"{memory_limit_used(container, containers)} > {number(settings.memory_limit_ratio)}",
              for_="15m", summary="A container is close to its memory limit",
              description="Container {{ $labels.container }} of pod {{ $labels.namespace }}/{{ $labels.pod }} uses "
                          "{{ $value | humanizePercentage }} of its memory limit.", **warning, **common),
        alert("KubeContainerCpuThrottled",
              f"{cpu_throttled(container, containers, '5m')} > {number(settings.cpu_throttled_ratio)}",
              for_="15m", severity=AlertSeverity.INFO, service="host", summary="A container is CPU-throttled",
              description="Container {{ $labels.container }} of pod {{ $labels.namespace }}/{{ $labels.pod }} was "
                          "throttled in {{ $value | humanizePercentage }} of its CPU periods.", **common),
    )


def alert_tests(config: StackConfig) -> tuple[RuleTest, ...]:
    settings = config.services.kube_state_metrics
    namespace = config.kubernetes.backend.namespace
    ksm = {"job": config.jobs.kube_state_metrics, "instance": "10.0.0.5:8080", "namespace": namespace,
           "uid": "0b1c"}
    api = {**ksm, "pod": "backend-7d9f", "container": "backend"}
    other = {**ksm, "pod": "backend-5c2a", "container": "backend", "uid": "9e8f"}
    at = {"namespace": namespace, "pod": "backend-7d9f", "container": "backend"}
    at_pod = {"namespace": namespace, "pod": "backend-7d9f"}
    where = f"{namespace}/backend-7d9f"
    kubelet = {"job": config.jobs.kubelet_cadvisor, "instance": "node-1", "id": "/kubepods/x", "image": "medianest",
               "name": "k8s_backend", **at}
    calm = {**kubelet, "pod": "backend-5c2a", "id": "/kubepods/y"}
    limit = 512 * 1024 * 1024
    near, under = settings.memory_limit_ratio * 1.02, settings.memory_limit_ratio * 0.98
    restarts = settings.restarts
    waiting = "kube_pod_container_status_waiting_reason"
    return (
        RuleTest("A container waiting in CrashLoopBackOff for 15 minutes fires KubePodCrashLooping; a brief one not",
                 series=(series(waiting, "0x2 1x30", **{**api, "reason": "CrashLoopBackOff"}),
                         series(waiting, "0x2 1x5 0x25", **{**other, "reason": "CrashLoopBackOff"})),
                 alerts=(AlertAt("16m", "KubePodCrashLooping"),
                         fires(EXPECTED, "19m", "KubePodCrashLooping",
                                f"Container backend of pod {where} has been waiting in CrashLoopBackOff for "
                                "15 minutes.", **at))),
        RuleTest(f"{restarts} restarts in 15 minutes fire KubeContainerRestarting; {restarts - 1} do not",
                 series=(series("kube_pod_container_status_restarts_total", f"0x5 {restarts}x20", **api),
                         series("kube_pod_container_status_restarts_total", f"0x5 {restarts - 1}x20", **other)),
                 alerts=(AlertAt("5m", "KubeContainerRestarting"),
                         fires(EXPECTED, "7m", "KubeContainerRestarting",
                                f"Container backend of pod {where} restarted {restarts} times in 15 minutes.", **at))),
        RuleTest("An OOM-killed container that restarted fires KubeContainerOomKilled; an old OOM kill does not",
                 series=(series("kube_pod_container_status_last_terminated_reason", "1x30",
                                **{**api, "reason": "OOMKilled"}),
                         series("kube_pod_container_status_restarts_total", "0x5 1x25", **api),
                         series("kube_pod_container_status_last_terminated_reason", "1x30",
                                **{**other, "reason": "OOMKilled"}),
                         series("kube_pod_container_status_restarts_total", "3x30", **other)),
                 alerts=(AlertAt("5m", "KubeContainerOomKilled"),
                         fires(EXPECTED, "7m", "KubeContainerOomKilled",
                                f"Container backend of pod {where} was killed for lack of memory in the last "
                                "10 minutes.", **at),
                         AlertAt("20m", "KubeContainerOomKilled"))),
        RuleTest("A running pod not ready for 15 minutes fires KubePodNotReady; a completed one does not",
                 series=(series("kube_pod_status_ready", "1x30", **{**api, "condition": "false"}),
                         series("kube_pod_status_phase", "1x30", **{**api, "phase": "Running"}),
                         series("kube_pod_status_ready", "1x30", **{**other, "condition": "false"}),
                         series("kube_pod_status_phase", "1x30", **{**other, "phase": "Succeeded"}),
                         series("kube_pod_status_phase", "0x30", **{**other, "phase": "Running"})),
                 alerts=(AlertAt("14m", "KubePodNotReady"),
                         fires(EXPECTED, "16m", "KubePodNotReady", f"Pod {where} has not been ready for 15 minutes.",
                               **at_pod))),
        RuleTest("Unavailable replicas for 15 minutes fire KubeDeploymentReplicasUnavailable; a rollout's do not",
                 series=(series("kube_deployment_status_replicas_unavailable", "0 1x30",
                                **{**ksm, "deployment": "medianest-backend"}),
                         series("kube_deployment_status_replicas_unavailable", "0 1x5 0x25",
                                **{**ksm, "deployment": "medianest-worker"})),
                 alerts=(AlertAt("15m", "KubeDeploymentReplicasUnavailable"),
                         fires(EXPECTED, "17m", "KubeDeploymentReplicasUnavailable",
                                f"Deployment {namespace}/medianest-backend has had 1 unavailable replicas for "
                                "15 minutes.", **{"namespace": namespace, "deployment": "medianest-backend"}))),
        RuleTest("A StatefulSet short of ready replicas for 15 minutes fires KubeStatefulSetReplicasNotReady",
                 series=(series("kube_statefulset_replicas", "2x30", **{**ksm, "statefulset": "prometheus"}),
                         series("kube_statefulset_status_replicas_ready", "2 1x30",
                                **{**ksm, "statefulset": "prometheus"}),
                         series("kube_statefulset_replicas", "3x30", **{**ksm, "statefulset": "alertmanager"}),
                         series("kube_statefulset_status_replicas_ready", "3x30",
                                **{**ksm, "statefulset": "alertmanager"})),
                 alerts=(AlertAt("15m", "KubeStatefulSetReplicasNotReady"),
                         fires(EXPECTED, "17m", "KubeStatefulSetReplicasNotReady",
                                f"StatefulSet {namespace}/prometheus has had 1 replicas not ready for 15 minutes.",
                                    **{"namespace": namespace, "statefulset": "prometheus"}))),
        RuleTest("Working set just over its share of the limit for 15 minutes fires KubeContainerMemoryNearLimit",
                 series=(series("container_memory_working_set_bytes", f"{round(limit * near)}x30", **kubelet),
                         series("container_spec_memory_limit_bytes", f"{limit}x30", **kubelet),
                         series("container_memory_working_set_bytes", f"{round(limit * under)}x30", **calm),
                         series("container_spec_memory_limit_bytes", f"{limit}x30", **calm),
                         # The pod's own cgroup (container="") is no container.
                         series("container_memory_working_set_bytes", f"{limit}x30", **{**kubelet, "container": ""}),
                         series("container_spec_memory_limit_bytes", f"{limit}x30", **{**kubelet, "container": ""})),
                 alerts=(AlertAt("14m", "KubeContainerMemoryNearLimit"),
                         fires(EXPECTED, "16m", "KubeContainerMemoryNearLimit",
                                f"Container backend of pod {where} uses {pct(round(limit * near) / limit)} of its "
                                "memory limit.", **at))),
        RuleTest("CPU throttled in more than its share of periods for 15 minutes fires KubeContainerCpuThrottled",
                 series=(series("container_cpu_cfs_periods_total", "0+600x40", **kubelet),
                         series("container_cpu_cfs_throttled_periods_total",
                                 f"0+{number(600 * settings.cpu_throttled_ratio * 1.2)}x40", **kubelet),
                         series("container_cpu_cfs_periods_total", "0+600x40", **calm),
                         series("container_cpu_cfs_throttled_periods_total",
                                 f"0+{number(600 * settings.cpu_throttled_ratio * 0.8)}x40", **calm)),
                 alerts=(AlertAt("15m", "KubeContainerCpuThrottled"),
                         fires(EXPECTED, "25m", "KubeContainerCpuThrottled",
                                f"Container backend of pod {where} was throttled in "
                                f"{pct(settings.cpu_throttled_ratio * 1.2)} of its CPU periods.", **at))),
    )


def dashboard_rows(config: StackConfig) -> tuple[Row, ...]:
    settings = config.services.kube_state_metrics
    ksm, kubelet = f'job="{config.jobs.kube_state_metrics}"', f'job="{config.jobs.kubelet_cadvisor}"'
    containers = f'{kubelet}, container!="", container!="POD"'
    return (Row(title="Pods", panels=(
        timeseries("Restarts", "Container restarts per pod.", Unit.SHORT,
                   prom("sum by (namespace, pod) "
                        f"(increase(kube_pod_container_status_restarts_total{{{ksm}}}[$__rate_interval]))",
                        "{{namespace}}/{{pod}}"),
                   alerts=("KubeContainerRestarting", "KubePodCrashLooping", "KubeContainerOomKilled"), width=8),
        timeseries("Pods not ready", "Pods of each namespace not ready.", Unit.SHORT,
                   prom(f'sum by (namespace) (kube_pod_status_ready{{{ksm}, condition="false"}})', "{{namespace}}"),
                   prom(f"sum by (namespace) (kube_deployment_status_replicas_unavailable{{{ksm}}})",
                        "{{namespace}} unavailable replicas"),
                   alerts=("KubePodNotReady", "KubeDeploymentReplicasUnavailable", "KubeStatefulSetReplicasNotReady"),
                   width=8),
        timeseries("Memory against limit", "Working set over each container's memory limit.", Unit.PERCENT_UNIT,
                   prom(memory_limit_used("namespace, pod, container", containers), "{{pod}} {{container}}"),
                   thresholds=steps("green", (settings.memory_limit_ratio, "red")), min=0, max=1,
                   alerts=("KubeContainerMemoryNearLimit", "KubeContainerCpuThrottled"), width=8),
    )),)


# It cannot run without an API server here: it judges the spec's flags (pkg/options).
JUDGE = Judge("kube_state_metrics", "k8s.io/kube-state-metrics/v2", ("kube-state-metrics",),
              "registry.k8s.io/kube-state-metrics/kube-state-metrics", same_version, common_version_flags)


COMPONENT = ComponentModule(
    judge=JUDGE,
    name=NAME, settings_key="kube_state_metrics", settings=KubeStateMetricsService,
    service=lambda config, files, others: service(config),
    targets=("kubernetes",),
    job=Job("kube_state_metrics", "kube-state-metrics"),
    other_jobs=(Job("kubelet_cadvisor", "kubelet-cadvisor"),),
    scrape_jobs=scrape_jobs,
    metrics=METRICS, alerts=alerts, alert_tests=alert_tests, expected=EXPECTED,
    dashboard_rows=dashboard_rows,
)
