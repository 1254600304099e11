"""Prometheus: scrapes MediaNest's backend, the exporters, the blackbox probes and every component
of the stack; evaluates the generated rules; sends alerts to Alertmanager. No lifecycle or admin
API: nothing unauthenticated can reload, shut down or delete data (a config change replaces the
container; the data volume stays)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import yaml

from dashboards import datasources
from dashboards.common import timeseries
from dashboards.model import Row, Unit, prom
from rules.catalog import Metric, MetricType
from rules.slo.history import History
from stack import layout, tools
from stack.dump import dump_yaml
from stack.images import NOBODY, Official
from stack.judges import Judge, common_version_flags, numbers
from stack.sandbox import processes
from stack.services import alertmanager
from stack.services.addresses import url_port
from stack.services.common import image, mounted, resources
from stack.services.component import STACK_HEALTH, ComponentModule, FileCheck, Job, SandboxEndpoint, SandboxWorld
from stack.services.spec import (
    ANYWHERE,
    NAME_LABEL,
    SERVICE_ACCOUNT_TOKEN,
    STACK_NAMESPACES,
    ApiAccess,
    ConfigFile,
    Flow,
    Hosts,
    MetricsEndpoint,
    Pods,
    Port,
    SecretFile,
    ServiceSpec,
    StackPods,
    Volume,
    Workload,
    http_health,
    namespace_of,
    tcp,
)
from stack.settings import (
    Component,
    Count,
    ImageRef,
    Interval,
    Memory,
    Retention,
    RetentionSize,
    Url,
    VolumeSize,
    _image,
)

if TYPE_CHECKING:
    from stack.config import StackConfig


class PrometheusService(Component):
    image: ImageRef = _image("prom/prometheus", "v3.16.0")
    # Where Grafana reaches it: its datasource's URL.
    datasource_url: Url = "http://prometheus:9090"
    memory: Memory = "2Gi"
    retention_time: Retention = "15d"
    retention_size: RetentionSize = "10GB"
    scrape_interval: Interval = "30s"
    # How often this Prometheus evaluates the rules; evaluationInterval (what the generated
    # promtool tests assume) when not set. The sandbox shortens it to detect faster.
    evaluation_interval: Interval | None = None
    # Size of the data volume (Kubernetes PVC); keep it above retentionSize.
    volume_size: VolumeSize = "20Gi"
    # Two make an HA pair (Kubernetes target): both scrape and alert, Alertmanager deduplicates.
    replicas: Count(1, 3) = 1


NAME = "prometheus"
PORT = 9090
CONFIG_DIR = "/etc/prometheus"
CONFIG_FILE = layout.PROMETHEUS_CONFIG
DATA_DIR = "/prometheus"
RULES = f"{layout.RULES_DIR}/"
# The replica's name, distinct per Prometheus of an HA pair; Alertmanager never sees it.
REPLICA_LABEL = "replica"
# Prometheus' own service-account token (Kubernetes mounts it: Prometheus reads the API): what it
# shows node exporter's kube-rbac-proxy, which asks the API server whether it may get /metrics.


def prometheus_config(config: StackConfig, rule_files: Sequence[str], targets: Sequence[ServiceSpec]) -> dict[str, Any]:
    """prometheus.yml. Rule files are relative: Prometheus resolves them from the config file's
    directory, in the container and in a rendered tree alike (so promtool checks them as shipped)."""
    settings = config.services.prometheus
    kubernetes = config.target == "kubernetes"
    # Each replica of the StatefulSet names itself: Prometheus 3 expands environment variables in
    # external labels, and the pod's name arrives as POD_NAME.
    replica = "${POD_NAME}" if kubernetes else f"{NAME}-0"
    alertmanagers = (alertmanager.replica_addresses(config, alertmanager.PORT) if kubernetes
                     else addresses(config, alertmanager.NAME, f"{alertmanager.NAME}:{alertmanager.PORT}"))
    return {
        "global": {
            "scrape_interval": settings.scrape_interval,
            "evaluation_interval": settings.evaluation_interval or config.evaluation_interval,
            "external_labels": {"environment": config.environment, REPLICA_LABEL: replica},
        },
        "rule_files": [path.removeprefix(f"{layout.PROMETHEUS_DIR}/") for path in rule_files],
        "alerting": {
            # Both replicas of an HA pair send the same alert: without their replica label the
            # two are identical and Alertmanager deduplicates them.
            "alert_relabel_configs": [{"action": "labeldrop", "regex": REPLICA_LABEL}],
            # Every replica, not a load-balanced Service: each Alertmanager must get every alert.
            "alertmanagers": [{"api_version": "v2", "static_configs": [{"targets": alertmanagers}]}],
        },
        "scrape_configs": _kubernetes_jobs(config, targets) if kubernetes else [
            _backend_job(config),
            *_component_scrape_jobs(config),
            {"job_name": config.jobs.prometheus,
             "static_configs": [{"targets": addresses(config, NAME, f"localhost:{PORT}")}]},
            *(_component_job(config, spec) for spec in targets if spec.metrics and spec.metrics.scraped),
        ],
        # Here, not as flags: 3.16 deprecates --storage.tsdb.retention.*. Sizes are powers of 2
        # ("10GB" is 10GiB), as the flag read them.
        "storage": {"tsdb": {"retention": {"time": settings.retention_time, "size": settings.retention_size}}},
        **({"remote_write": [remote_write(config)]} if config.long_term_storage.mode != "none" else {}),
    }


def rule_history(config: StackConfig) -> History | None:
    """How long the samples its rules read are kept: its own TSDB's retention (with an external
    store too: its SLO period rules read its own TSDB; a deployed store's evaluator takes them).
    None with prometheus-operator: the cluster's Prometheus is not ours to know."""
    if config.target == "kubernetes" and config.kubernetes.prometheus_operator.enabled:
        return None
    return History(config.services.prometheus.retention_time, "services.prometheus.retentionTime")


# Its name in prometheus.yml, and the `remote_name` label of its prometheus_remote_storage_* series.
REMOTE_NAME = "long-term"


def remote_write(config: StackConfig) -> dict[str, Any]:
    """Every series to the long-term store: the external one (`longTermStorage.external`), with
    its credentials from mounted files, or the one the stack deploys (its `remote_write_url`),
    which deduplicates an HA pair once the replica label is dropped."""
    storage = config.long_term_storage
    filters = [{"source_labels": ["__name__"], "regex": f.metric_names, "action": f.action}
               for f in storage.write_filters]
    entry: dict[str, Any] = {"name": REMOTE_NAME}
    if storage.external is not None:
        external = storage.external
        entry["url"] = external.url
        if external.bearer_token_file:
            entry["authorization"] = {"credentials_file": external.bearer_token_file}
        if external.basic_auth_username:
            entry["basic_auth"] = {"username": external.basic_auth_username,
                                   "password_file": external.basic_auth_password_file}
    else:
        from stack import services as registry  # the registry imports this module

        [store] = [c for c in registry.deployed(config) if c.remote_write_url]
        entry["url"] = store.remote_write_url(config)
        filters.append({"action": "labeldrop", "regex": REPLICA_LABEL})
    queue = storage.queue
    return entry | {
        "send_exemplars": storage.send_exemplars,
        "metadata_config": {"send": storage.send_metadata},
        "queue_config": {"capacity": queue.capacity, "max_shards": queue.max_shards,
                         "max_samples_per_send": queue.max_samples_per_send,
                         "batch_send_deadline": queue.batch_send_deadline},
        **({"write_relabel_configs": filters} if filters else {}),
    }


def _kubernetes_jobs(config: StackConfig, targets: Sequence[ServiceSpec]) -> list[dict[str, Any]]:
    """Pods found through the Kubernetes API, one job per component: replicas come and go without
    a config change. Only pods in the namespaces named here are listed (least-privilege RBAC)."""
    backend = config.kubernetes.backend
    pod_labels = ",".join(f"{k}={v}" for k, v in sorted(backend.pod_labels.items()))
    jobs = [{"job_name": config.jobs.backend, "scheme": config.backend.scheme,
             "metrics_path": config.backend.metrics_path,
             **_pods(backend.namespace, pod_labels, backend.port, "__meta_kubernetes_pod_name")}]
    jobs += _component_scrape_jobs(config)
    # This Prometheus is one of the components: both replicas of the pair scrape each other.
    own = [(NAME, config.kubernetes.namespace, PORT, config.jobs.prometheus, "/metrics", WORKLOAD)]
    own += [(spec.name, namespace_of(config, spec), spec.metrics.port, spec.metrics.job, spec.metrics.path,
             spec.workload) for spec in targets if spec.metrics and spec.metrics.scraped]
    # Components sharing a job (Loki's scalable targets) are one job over all their pods.
    names: dict[str, list[str]] = {}
    for name, *_, job, _path, _workload in own:
        names.setdefault(job, []).append(name)
    for name, namespace, port, job, path, workload in own:
        if names[job][0] != name:
            continue
        # A pod on the host's network (node exporter) describes its node: the node's name is the instance.
        instance = "__meta_kubernetes_pod_node_name" if workload.host_network else "__meta_kubernetes_pod_name"
        selector = (f"{NAME_LABEL}={name}" if len(names[job]) == 1
                    else f"{NAME_LABEL} in ({','.join(sorted(names[job]))})")
        jobs.append({"job_name": job, "metrics_path": path,
                     **(_through_rbac_proxy() if workload.rbac_proxy_upstream is not None else {}),
                     **_pods(namespace, selector, port, instance)})
    return jobs


def _through_rbac_proxy() -> dict[str, Any]:
    """node exporter on Kubernetes is served by kube-rbac-proxy on the node's IP: HTTPS with the
    proxy's self-signed certificate (nothing to verify it against), authenticated by this
    Prometheus' service-account token, authorized to `get` /metrics by a ClusterRole."""
    return {"scheme": "https", "authorization": {"credentials_file": SERVICE_ACCOUNT_TOKEN},
            "tls_config": {"insecure_skip_verify": True}}


def _pods(namespace: str, label_selector: str, port: int, instance: str) -> dict[str, Any]:
    """Service discovery of running pods matching `label_selector`, on their container port `port`."""
    return {
        "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": [namespace]},
                                   "selectors": [{"role": "pod", "label": label_selector}]}],
        "relabel_configs": [
            {"source_labels": ["__meta_kubernetes_pod_container_port_number"], "regex": str(port),
             "action": "keep"},
            {"source_labels": ["__meta_kubernetes_pod_phase"], "regex": "Pending|Succeeded|Failed|Unknown",
             "action": "drop"},
            {"source_labels": [instance], "target_label": "instance"},
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        ],
    }


def _backend_job(config: StackConfig) -> dict[str, Any]:
    backend = config.backend
    return {"job_name": config.jobs.backend, "scheme": backend.scheme, "metrics_path": backend.metrics_path,
            "static_configs": [{"targets": list(backend.targets)}]}


def addresses(config: StackConfig, name: str, default: str) -> list[str]:
    """Where a component is reached: `addresses.<name>` from config, else its default."""
    return list(config.addresses.get(name, (default,)))


def _component_job(config: StackConfig, spec: ServiceSpec) -> dict[str, Any]:
    assert spec.metrics is not None
    return {"job_name": spec.metrics.job, "metrics_path": spec.metrics.path,
            "static_configs": [{"targets": addresses(config, spec.name, spec.address)}]}


def _component_scrape_jobs(config: StackConfig) -> list[dict[str, Any]]:
    """Jobs a deployed component declares beyond its own /metrics (`COMPONENT.scrape_jobs`: a
    prober's targets, another endpoint it stands for), in the registry's order."""
    from stack import services as registry  # the registry imports this module

    return [job for component in registry.deployed(config) for job in component.scrape_jobs(config)]


def _resend_delay(config: StackConfig) -> tuple[str, ...]:
    """A time-compressed stack (the sandbox only: `compression`) resends firing alerts sooner
    than Prometheus' default minute; a shipped stack never has this flag."""
    delay = config.compression.resend_delay
    return (f"--rules.alert.resend-delay={delay}",) if delay else ()


# Service discovery of the pods it scrapes: read-only, in the namespaces where they run.
WORKLOAD = Workload(placement="stateful", scraper=True, replaced_by_operator=True, api_access=(
    ApiAccess((STACK_NAMESPACES,), ({"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},)),))


def flows(config: StackConfig) -> tuple[Flow, ...]:
    """MediaNest's backend, alerts to Alertmanager, service discovery through the API server, and
    remote write to an external long-term store (one the stack deploys declares its own flow)."""
    k8s = config.kubernetes
    backend = Pods(k8s.backend.namespace, tuple(sorted(k8s.backend.pod_labels.items())))
    external = config.long_term_storage.external
    return (Flow(StackPods(NAME), backend, tcp(k8s.backend.port)),
            Flow(StackPods(NAME), StackPods(alertmanager.NAME), tcp(alertmanager.PORT)),
            Flow(StackPods(NAME), Hosts(tuple(sorted(k8s.api_server_cidrs))), tcp(*k8s.api_server_ports)),
            *([Flow(StackPods(NAME), ANYWHERE, tcp(url_port(external.url)))] if external else []))


def service(config: StackConfig, files: Mapping[str, str], targets: Sequence[ServiceSpec]) -> ServiceSpec:
    settings = config.services.prometheus
    rule_paths = sorted(p for p in files if p.startswith(RULES))
    generated = ConfigFile(CONFIG_FILE, f"{CONFIG_DIR}/prometheus.yml",
                           dump_yaml(prometheus_config(config, rule_paths, targets)))
    return ServiceSpec(
        workload=WORKLOAD,
        flows=flows(config),
        name=NAME,
        image=image(settings.image),
        user="65534:65534",
        resources=resources(settings),
        args=(
            f"--config.file={generated.path}",
            f"--storage.tsdb.path={DATA_DIR}",
            f"--web.listen-address=:{PORT}",
            # Exemplars (a sampled request's trace id on a latency bucket) are kept only with this:
            # the dashboards' exemplars and their links to Jaeger need it.
            "--enable-feature=exemplar-storage",
            *_resend_delay(config),
        ),
        ports=(Port("http", PORT, host_port=settings.publish),),
        replicas=settings.replicas,
        pod_env={"POD_NAME": "metadata.name"} if config.target == "kubernetes" else {},
        config_dir=CONFIG_DIR,
        files=(generated, *mounted(files, RULES, f"{CONFIG_DIR}/rules")),
        # The external long-term store's credentials, from `secrets.<file name>`.
        secrets=tuple(SecretFile(PurePosixPath(path).name, path) for path in (
            config.long_term_storage.external.secret_files() if config.long_term_storage.external else ())),
        volumes=(Volume("prometheus-data", DATA_DIR, size=settings.volume_size),),
        health=http_health(PORT, "/-/ready", live_path="/-/healthy", start_period_seconds=60),
        metrics=MetricsEndpoint(job=config.jobs.prometheus, port=PORT),
    )


def sandbox_settings(world: SandboxWorld) -> dict[str, Any]:
    return {"scrapeInterval": world.scrape_interval, "evaluationInterval": world.evaluation_interval}


def check_config(config: StackConfig, path: Path) -> tuple[bool, str]:
    """promtool check config, which also loads every rule file prometheus.yml names, and judges
    the Kubernetes service discovery blocks (promtool built at the shipped version has every SD)."""
    document = yaml.safe_load(path.read_text())
    # promtool requires every credentials file to exist: the pod's service-account token (a
    # scrape behind kube-rbac-proxy sends it) is replaced by a stand-in beside the file.
    token = path.with_name(".service-account-token")
    replaced = False
    for job in document.get("scrape_configs", []):
        authorization = job.get("authorization") or {}
        if authorization.get("credentials_file") == SERVICE_ACCOUNT_TOKEN:
            authorization["credentials_file"] = token.name
            replaced = True
    if not replaced:
        return tools.promtool_check_config(path).verdict
    variant = path.with_name(".prometheus-with-stand-in-token.yml")
    variant.write_text(yaml.safe_dump(document))
    token.write_text("stand-in\n")
    try:
        run = tools.promtool_check_config(variant)
    finally:
        variant.unlink()
        token.unlink()
    # promtool names the file it read: the stand-in's name would only confuse.
    return run.ok, run.output.replace(variant.name, path.name)


def _image_tag(version: str) -> str:
    """Prometheus 3.x's module versions are v0.3XX.Y: v0.316.0 is the v3.16.0 image."""
    _, minor, patch = numbers(version)
    return f"v{minor // 100}.{minor % 100}.{patch}"


JUDGE = Judge("prometheus", "github.com/prometheus/prometheus", ("prometheus", "promtool"), "prom/prometheus",
              _image_tag, common_version_flags)
# prometheus@v0.316.0/Dockerfile: busybox base, WORKDIR /prometheus, chown nobody
# /etc/prometheus /prometheus, chmod g+w /prometheus, USER nobody, EXPOSE 9090, VOLUME /prometheus.
LOCAL_IMAGE = Official({"/bin/prometheus": "prometheus", "/bin/promtool": "promtool"},
                       ("/bin/prometheus",), ("9090/tcp",), user="nobody", workdir="/prometheus",
                       volumes=("/prometheus",),
                       directories={"/etc/prometheus": (NOBODY, NOBODY, 0o755),
                                    "/prometheus": (NOBODY, NOBODY, 0o775)})


C, G, H = MetricType.COUNTER, MetricType.GAUGE, MetricType.HISTOGRAM
# Its own metrics, checked against the binary we ship (tests/e2e/test_catalog_on_shipped_binaries.py).
# The queue to the long-term store (longTermStorage), per remote_write entry; checked against the
# shipped version with the sandbox's remote write.
_QUEUE = ("remote_name", "url")
REMOTE_WRITE_METRICS = (
    Metric("prometheus_remote_storage_samples_total", C, "Samples sent to remote storage", _QUEUE),
    Metric("prometheus_remote_storage_samples_failed_total", C, "Samples that failed on send to remote storage, "
           "non-recoverable errors", _QUEUE),
    Metric("prometheus_remote_storage_samples_pending", G, "Samples pending in the queues' shards", _QUEUE),
    Metric("prometheus_remote_storage_highest_timestamp_in_seconds", G, "Newest timestamp ingested into "
           "the TSDB, whatever the queues"),
    Metric("prometheus_remote_storage_queue_highest_sent_timestamp_seconds", G, "Newest timestamp successfully "
           "sent by this queue", _QUEUE),
    Metric("prometheus_remote_storage_shards", G, "Shards used for parallel sending", _QUEUE),
    Metric("prometheus_remote_storage_shards_desired", G, "Shards the queue's calculation wants to run", _QUEUE),
    Metric("prometheus_remote_storage_shards_max", G, "Most shards the queue may run", _QUEUE),
)
METRICS = REMOTE_WRITE_METRICS + (
    Metric("prometheus_build_info", G, "Build information of Prometheus",
           ("branch", "goarch", "goos", "goversion", "revision", "tags", "version")),
    Metric("prometheus_ready", G, "Whether Prometheus startup was fully completed and the server is ready"),
    Metric("prometheus_config_last_reload_successful", G, "Whether the last configuration reload succeeded"),
    Metric("prometheus_config_last_reload_success_timestamp_seconds", G,
           "Timestamp of the last successful configuration reload"),
    Metric("prometheus_rule_evaluations_total", C, "The total number of rule evaluations", ("rule_group",)),
    Metric("prometheus_rule_evaluation_failures_total", C, "The total number of rule evaluation failures",
           ("rule_group",)),
    Metric("prometheus_rule_group_iterations_missed_total", C,
           "The total number of rule group evaluations missed due to slow rule group evaluation",
           ("rule_group",)),
    Metric("prometheus_rule_group_last_duration_seconds", G,
           "The duration of the last rule group evaluation", ("rule_group",)),
    Metric("prometheus_rule_group_interval_seconds", G, "The interval of a rule group", ("rule_group",)),
    Metric("prometheus_notifications_alertmanagers_discovered", G,
           "The number of alertmanagers discovered and active"),
    Metric("prometheus_notifications_sent_total", C, "Total number of alerts sent", ("alertmanager",)),
    Metric("prometheus_notifications_errors_total", C, "Total number of sent alerts affected by errors",
           ("alertmanager",)),
    # Per Alertmanager in 3.16 (2.42: one unlabelled series): matching the queue's length to its
    # (unlabelled) capacity needs `ignoring (alertmanager)`.
    Metric("prometheus_notifications_dropped_total", C,
           "Total number of alerts dropped due to errors when sending to Alertmanager", ("alertmanager",)),
    Metric("prometheus_notifications_queue_length", G, "The number of alert notifications in the queue",
           ("alertmanager",)),
    Metric("prometheus_notifications_queue_capacity", G, "The capacity of the alert notifications queue"),
    Metric("prometheus_tsdb_head_series", G, "Total number of series in the head block"),
    Metric("prometheus_tsdb_head_samples_appended_total", C, "Total number of appended samples", ("type",)),
    Metric("prometheus_tsdb_compactions_total", C, "Total number of compactions that were executed"),
    Metric("prometheus_tsdb_compactions_failed_total", C, "Total number of compactions that failed"),
    Metric("prometheus_tsdb_reloads_failures_total", C, "Number of times the database failed to reload "
           "block data from disk"),
    Metric("prometheus_tsdb_wal_corruptions_total", C, "Total number of WAL corruptions"),
    Metric("prometheus_tsdb_wal_truncations_failed_total", C, "Total number of write log truncations that "
           "failed"),
    Metric("prometheus_tsdb_storage_blocks_bytes", G,
           "The number of bytes that are currently used for local storage by all blocks"),
    # 0 when no size retention (--storage.tsdb.retention.size) is configured.
    Metric("prometheus_tsdb_retention_limit_bytes", G, "Max number of bytes to be retained in the tsdb "
           "blocks, configured 0 means disabled"),
    Metric("prometheus_tsdb_size_retentions_total", C, "The number of times that blocks were deleted "
           "because the maximum number of bytes was exceeded"),
    Metric("prometheus_target_scrape_pool_targets", G, "Current number of targets in this scrape pool",
           ("scrape_job",)),
)


def dashboard_rows(config: StackConfig) -> tuple[Row, ...]:
    """Its row on the stack's health dashboard: rules, notifications, TSDB, reloads."""
    me = f'job="{config.jobs.prometheus}"'
    return (Row(title="Prometheus", panels=(
        timeseries("Rule evaluation failures", "Failed rule evaluations per second per group.",
                   Unit.OPS_PER_SECOND,
                   prom(f"sum by (rule_group) (rate(prometheus_rule_evaluation_failures_total{{{me}}}"
                        "[$__rate_interval]))", "{{rule_group}}"),
                   alerts=("PrometheusRuleEvaluationFailures",), width=6),
        timeseries("Notifications to Alertmanager", "Alerts sent and failed per second.",
                   Unit.OPS_PER_SECOND,
                   prom(f"sum(rate(prometheus_notifications_sent_total{{{me}}}[$__rate_interval]))", "sent"),
                   prom(f"sum(rate(prometheus_notifications_errors_total{{{me}}}[$__rate_interval]))", "errors"),
                   alerts=("PrometheusNotificationsFailing", "PrometheusNotConnectedToAlertmanagers"), width=6),
        timeseries("Head series", "Series in the TSDB head block.", Unit.SHORT,
                   prom(f"prometheus_tsdb_head_series{{{me}}}", "{{instance}}"),
                   alerts=("PrometheusStorageFillingUp",), width=6),
        timeseries("Config reloads", "1 when the last configuration reload succeeded.", Unit.UP_DOWN,
                   prom(f"prometheus_config_last_reload_successful{{{me}}}", "{{instance}}"),
                   alerts=("PrometheusConfigReloadFailed",), min=0, max=1, width=6),
    )), *(_remote_write_rows(config) if config.long_term_storage.mode != "none" else ()))


def _remote_write_rows(config: StackConfig) -> tuple[Row, ...]:
    """The write path to the long-term store: what goes out, what fails, how far behind, shards."""
    me = f'job="{config.jobs.prometheus}"'
    return (Row(title="Remote write to the long-term store", panels=(
        timeseries("Samples sent", "Samples written to the long-term store per second, and failed.",
                   Unit.OPS_PER_SECOND,
                   prom(f"sum(rate(prometheus_remote_storage_samples_total{{{me}}}[$__rate_interval]))", "sent"),
                   prom(f"sum(rate(prometheus_remote_storage_samples_failed_total{{{me}}}[$__rate_interval]))",
                        "failed"),
                   alerts=("PrometheusRemoteWriteFailing",), width=8),
        timeseries("Behind", "How far the newest sample written is behind the newest ingested.", Unit.SECONDS,
                   prom(f"max by (instance) (prometheus_remote_storage_highest_timestamp_in_seconds{{{me}}} "
                        "- ignoring (remote_name, url) group_right "
                        f"prometheus_remote_storage_queue_highest_sent_timestamp_seconds{{{me}}})", "{{instance}}"),
                   alerts=("PrometheusRemoteWriteBehind",), width=8),
        timeseries("Shards", "Shards running, wanted, and the most allowed.", Unit.SHORT,
                   prom(f"max(prometheus_remote_storage_shards{{{me}}})", "running"),
                   prom(f"max(prometheus_remote_storage_shards_desired{{{me}}})", "wanted"),
                   prom(f"max(prometheus_remote_storage_shards_max{{{me}}})", "max"),
                   alerts=("PrometheusRemoteWriteShardsMaxed",), width=8),
    )),)


def _external_queried(config: StackConfig) -> bool:
    external = config.long_term_storage.external
    return config.long_term_storage.mode == "remoteWrite" and external is not None and external.query_url is not None


def _external_datasource(config: StackConfig, provisioned: frozenset[str]) -> tuple[str, dict[str, Any]]:
    external = config.long_term_storage.external
    assert external is not None and external.query_url is not None
    return external.query_url, {"httpMethod": "POST", "prometheusType": "Prometheus"}


def _external_credentials(config: StackConfig) -> datasources.Credentials | None:
    """Grafana reads the external store with the credentials Prometheus writes with."""
    external = config.long_term_storage.external
    assert external is not None
    if external.bearer_token_file:
        return datasources.Credentials(PurePosixPath(external.bearer_token_file).name)
    if external.basic_auth_password_file:
        return datasources.Credentials(PurePosixPath(external.basic_auth_password_file).name,
                                       user=external.basic_auth_username)
    return None


def _datasource(config: StackConfig, provisioned: frozenset[str]) -> tuple[str, dict[str, Any]]:
    settings: dict[str, Any] = {"httpMethod": "POST", "prometheusType": "Prometheus"}
    if datasources.JAEGER.uid in provisioned:
        # Exemplars carry the trace id of a sampled request: a click opens the trace.
        settings["exemplarTraceIdDestinations"] = [{"name": "trace_id", "datasourceUid": datasources.JAEGER.uid}]
    return config.services.prometheus.datasource_url, settings


# Built from its Go module, it has no web UI (its compiled assets need an npm build): / redirects to
# /query, which answers 500 ("Error opening React index.html"). Its HTTP API is complete.
SANDBOX_ENDPOINT = SandboxEndpoint(
    PORT, "no web UI in this build; the HTTP API: /api/v1/query, /api/v1/targets, /api/v1/alerts, /api/v1/rules",
    lambda url: [processes.binary("promtool"), "query", "instant", url, "up"])


COMPONENT = ComponentModule(
    sandbox_endpoint=SANDBOX_ENDPOINT,
    datasources=(datasources.Provided(datasources.PROMETHEUS, _datasource, default=True),
                 # The external long-term store, read where Prometheus writes it.
                 datasources.Provided(datasources.LONG_TERM, _external_datasource, wanted=_external_queried,
                                      outside=True, credentials=_external_credentials)),
    dashboard=STACK_HEALTH, dashboard_rows=dashboard_rows,
    metrics=METRICS,
    file_checks=(FileCheck(layout.PROMETHEUS_CONFIG, "promtool check config", check_config),),
    judge=JUDGE, local_image=LOCAL_IMAGE,
    sandbox_settings=sandbox_settings, slo_period_history=rule_history,
    name=NAME, settings_key="prometheus", settings=PrometheusService,
    service=service,
    job=Job("prometheus", "prometheus"), scrapes_others=True, required="they are the alerting path",
    sandbox_binary="prometheus",
)
