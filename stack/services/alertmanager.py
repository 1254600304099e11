"""Alertmanager: the generated routing config and templates; silences and the notification log
on a volume, so a restart neither forgets a silence nor notifies twice."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from dashboards import datasources
from dashboards.common import timeseries
from dashboards.model import Row, Unit, prom
from rules.catalog import Metric, MetricType
from stack import layout, tools
from stack.images import NOBODY, Official
from stack.judges import Judge, common_version_flags, same_version
from stack.sandbox import processes
from stack.services.addresses import address_port, url_port
from stack.services.common import image, mounted, resources
from stack.services.component import STACK_HEALTH, ComponentModule, FileCheck, Job, SandboxEndpoint
from stack.services.spec import (
    ANYWHERE,
    Flow,
    MetricsEndpoint,
    Port,
    SecretFile,
    ServiceSpec,
    StackPods,
    Volume,
    Workload,
    http_health,
    replica_address,
    tcp,
)
from stack.settings import Component, Count, ImageRef, Memory, Url, VolumeSize, _image

if TYPE_CHECKING:
    from stack.config import StackConfig


class AlertmanagerService(Component):
    image: ImageRef = _image("prom/alertmanager", "v0.35.0")
    # Where Grafana reaches it: its datasource's URL.
    datasource_url: Url = "http://alertmanager:9093"
    memory: Memory = "128Mi"
    # More than one forms a gossip cluster (Kubernetes target): notifications deduplicated, silences shared.
    replicas: Count(1, 7) = 1
    volume_size: VolumeSize = "1Gi"


NAME = "alertmanager"
PORT = 9093
CLUSTER_PORT = 9094
CONFIG_DIR = "/etc/alertmanager"
DATA_DIR = "/alertmanager"


def replica_addresses(config: StackConfig, port: int) -> list[str]:
    """Every replica of the cluster on `port`, by its stable DNS name (Kubernetes StatefulSet)."""
    return [replica_address(NAME, i, config.kubernetes.namespace, port)
            for i in range(config.services.alertmanager.replicas)]


def _cluster(config: StackConfig) -> tuple[tuple[str, ...], tuple[Port, ...], dict[str, str]]:
    """Gossip flags, ports and pod environment: a cluster only when there are several replicas.
    Peers share silences and the notification log, so each alert is notified once."""
    if config.services.alertmanager.replicas == 1:
        return ("--cluster.listen-address=",), (), {}
    peers = tuple(f"--cluster.peer={a}" for a in replica_addresses(config, CLUSTER_PORT))
    flags = (f"--cluster.listen-address=0.0.0.0:{CLUSTER_PORT}",
             # The pod's own IP: the listen address 0.0.0.0 cannot be advertised to peers.
             f"--cluster.advertise-address=$(POD_IP):{CLUSTER_PORT}", *peers)
    ports = (Port("cluster-tcp", CLUSTER_PORT, "tcp"), Port("cluster-udp", CLUSTER_PORT, "udp"))
    return flags, ports, {"POD_IP": "status.podIP"}


def receiver_ports(config: StackConfig) -> list[int]:
    """Where Alertmanager notifies: the HTTPS APIs (PagerDuty, Slack), each email smarthost,
    each webhook, and the local webhook of the receivers left unconfigured."""
    alerting = config.alerting
    ports = set()
    for name in type(alerting.receivers).model_fields:
        integrations = getattr(alerting.receivers, name)
        if integrations is None:
            continue
        if integrations.pagerduty or integrations.slack:
            ports.add(443)
        ports.update(address_port(email.smarthost) for email in integrations.email)
        # A URL kept in a file (urlFile) is not known here: HTTPS, as every hosted webhook.
        ports.update(url_port(webhook.url) if webhook.url else 443 for webhook in integrations.webhook)
    if alerting.local_webhook_url:
        ports.add(url_port(alerting.local_webhook_url))
    return sorted(ports)


def flows(config: StackConfig, ports: tuple[Port, ...]) -> tuple[Flow, ...]:
    """Replicas gossip (silences, notification log); notifications leave the cluster."""
    gossip = tuple(sorted((p.container_port, p.protocol.upper()) for p in ports if p.container_port == CLUSTER_PORT))
    return (Flow(StackPods(NAME), StackPods(NAME), gossip),
            Flow(StackPods(NAME), ANYWHERE, tcp(*receiver_ports(config))))


def service(config: StackConfig, files: Mapping[str, str]) -> ServiceSpec:
    settings = config.services.alertmanager
    cluster_flags, cluster_ports, pod_env = _cluster(config)
    return ServiceSpec(
        workload=Workload(placement="stateful", replaced_by_operator=True),
        flows=flows(config, cluster_ports),
        name=NAME,
        image=image(settings.image),
        user="65534:65534",
        resources=resources(settings),
        args=(
            f"--config.file={CONFIG_DIR}/alertmanager.yml",
            f"--storage.path={DATA_DIR}",
            f"--web.listen-address=:{PORT}",
            *cluster_flags,
        ),
        ports=(Port("http", PORT, host_port=settings.publish), *cluster_ports),
        pod_env=pod_env,
        replicas=settings.replicas,
        config_dir=CONFIG_DIR,
        files=mounted(files, f"{layout.ALERTMANAGER_DIR}/", CONFIG_DIR,
                      exclude=(f"{layout.ALERTMANAGER_TESTS_DIR}/",)),
        # Each receiver's secret is set as `secrets.<file name>`.
        secrets=tuple(SecretFile(PurePosixPath(path).name, path) for path in config.alerting.secret_files()),
        volumes=(Volume("alertmanager-data", DATA_DIR, size=settings.volume_size),),
        health=http_health(PORT, "/-/ready", live_path="/-/healthy"),
        metrics=MetricsEndpoint(job=config.jobs.alertmanager, port=PORT),
    )


JUDGE = Judge("alertmanager", "github.com/prometheus/alertmanager", ("alertmanager", "amtool"), "prom/alertmanager",
              same_version, common_version_flags,
              # 0.35 serves its pages only from their compressed files (ui/web.go).
              placeholders=("ui/app/dist/elm/index.html.gz", "ui/app/dist/mantine/index.html.gz"))
# alertmanager@v0.35.0/Dockerfile: mkdir /alertmanager, chown nobody /etc/alertmanager
# /alertmanager, chmod -R g+w /alertmanager, USER nobody, EXPOSE 9093, VOLUME, WORKDIR /alertmanager.
LOCAL_IMAGE = Official({"/bin/alertmanager": "alertmanager", "/bin/amtool": "amtool"},
                       ("/bin/alertmanager",), ("9093/tcp",), user="nobody", workdir="/alertmanager",
                       volumes=("/alertmanager",),
                       directories={"/etc/alertmanager": (NOBODY, NOBODY, 0o755),
                                    "/alertmanager": (NOBODY, NOBODY, 0o775)})


def check_config(config: StackConfig, path: Path) -> tuple[bool, str]:
    """Alertmanager's own validation of its config and the templates it loads."""
    return tools.amtool_check_config(path).verdict


C, G, H = MetricType.COUNTER, MetricType.GAUGE, MetricType.HISTOGRAM
# Its own metrics, checked against the binary we ship (tests/e2e/test_catalog_on_shipped_binaries.py).
METRICS = (
    Metric("alertmanager_build_info", G, "Build information of Alertmanager",
           ("branch", "goarch", "goos", "goversion", "revision", "tags", "version")),
    Metric("alertmanager_config_last_reload_successful", G, "Whether the last configuration reload "
           "attempt was successful"),
    Metric("alertmanager_config_hash", G, "Hash of the currently loaded alertmanager configuration"),
    Metric("alertmanager_alerts", G, "How many alerts by state", ("state",)),
    Metric("alertmanager_alerts_received_total", C, "The total number of received alerts",
           ("status", "version")),
    Metric("alertmanager_alerts_invalid_total", C, "The total number of received alerts that were "
           "invalid", ("version",)),
    Metric("alertmanager_notifications_total", C, "The total number of attempted notifications",
           ("integration",)),
    # `reason` exists since 0.27 (clientError, serverError, other...); 0.35 has thirteen values, a
    # refused connection counting as `other`. Rules sum it away.
    Metric("alertmanager_notifications_failed_total", C, "The total number of failed notifications",
           ("integration", "reason")),
    Metric("alertmanager_notification_latency_seconds", H, "The latency of notifications in seconds",
           ("integration",), buckets=(1, 5, 10, 15, 20)),
    Metric("alertmanager_silences", G, "How many silences by state", ("state",)),
    # Not exposed when clustering is disabled (then alertmanager_cluster_enabled is 0).
    Metric("alertmanager_cluster_enabled", G, "Indicates whether the clustering is enabled or not"),
    Metric("alertmanager_cluster_members", G, "Number indicating current number of members in cluster"),
    Metric("alertmanager_cluster_failed_peers", G, "Number indicating the current number of failed peers "
           "in the cluster"),
)


def dashboard_rows(config: StackConfig) -> tuple[Row, ...]:
    """Its row on the stack's health dashboard: alerts held, notifications, reloads."""
    me = f'job="{config.jobs.alertmanager}"'
    return (Row(title="Alertmanager", panels=(
        timeseries("Alerts", "Alerts Alertmanager holds, by state.", Unit.SHORT,
                   prom(f"sum by (state) (alertmanager_alerts{{{me}}})", "{{state}}"), width=8),
        timeseries("Notifications", "Notifications attempted and failed per second per integration.",
                   Unit.OPS_PER_SECOND,
                   prom(f"sum by (integration) (rate(alertmanager_notifications_total{{{me}}}"
                        "[$__rate_interval]))", "{{integration}}"),
                   prom(f"sum by (integration) (rate(alertmanager_notifications_failed_total{{{me}}}"
                        "[$__rate_interval]))", "{{integration}} failed"),
                   alerts=("AlertmanagerNotificationsFailing",), width=8),
        timeseries("Config reloads", "1 when the last configuration reload succeeded.", Unit.UP_DOWN,
                   prom(f"alertmanager_config_last_reload_successful{{{me}}}", "{{instance}}"),
                   alerts=("AlertmanagerConfigReloadFailed",), min=0, max=1, width=8),
    )),)


def _datasource(config: StackConfig, provisioned: frozenset[str]) -> tuple[str, dict[str, Any]]:
    settings = {"implementation": "prometheus", "handleGrafanaManagedAlerts": False}
    return config.services.alertmanager.datasource_url, settings


# Built from its Go module, it has no web UI (its compiled assets need an npm build): / and /ui/
# answer 404. Its HTTP API is complete.
SANDBOX_ENDPOINT = SandboxEndpoint(
    PORT, "no web UI in this build; the HTTP API: /api/v2/alerts, /api/v2/silences, /api/v2/status",
    lambda url: [processes.binary("amtool"), f"--alertmanager.url={url}", "alert", "query"])


COMPONENT = ComponentModule(
    sandbox_endpoint=SANDBOX_ENDPOINT,
    datasources=(datasources.Provided(datasources.ALERTMANAGER, _datasource),),
    dashboard=STACK_HEALTH, dashboard_rows=dashboard_rows,
    metrics=METRICS,
    file_checks=(FileCheck(layout.ALERTMANAGER_CONFIG, "amtool check-config", check_config),),
    judge=JUDGE, local_image=LOCAL_IMAGE,
    name=NAME, settings_key="alertmanager", settings=AlertmanagerService,
    service=lambda config, files, others: service(config, files),
    job=Job("alertmanager", "alertmanager"), required="they are the alerting path",
    sandbox_binary="alertmanager",
)
