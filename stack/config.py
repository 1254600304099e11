"""The stack configuration: one pydantic model, read from `Pulumi.<stack>.yaml` by the CLI
and from Pulumi config by the program. Defaults live here and nowhere else."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from rules.conventions import duration_seconds

PROJECT = "medianest-observability"
# `medianest-observability:secrets`: an object of Pulumi secrets, one per secret file by name.
SECRETS_KEY = "secrets"
ROOT = Path(__file__).resolve().parent.parent


class ConfigError(Exception):
    """Bad stack configuration; the message names the file and the key."""


def _duration(value: str) -> str:
    duration_seconds(value)
    return value


def _https(value: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise ValueError("must be an http(s) URL")
    return value


def _secret_file(value: str) -> str:
    if not value.startswith("/") or value.endswith("/"):
        raise ValueError("must be the absolute path of a mounted secret file, e.g. "
                         "/etc/alertmanager/secrets/<name> (the secret itself never goes in config)")
    return value


def _webhook_url(value: str) -> str:
    _https(value)
    parts = urlsplit(value)
    if parts.username or parts.password or parts.query:
        raise ValueError("must not carry credentials (user:password@ or a query string): "
                         "put the token in a file named by credentialsFile")
    return value


Duration = Annotated[str, AfterValidator(_duration)]


def _one_minute(value: str) -> str:
    if duration_seconds(value) != 60:
        raise ValueError("must be 1m: the generated promtool tests and SLO scenarios evaluate once a minute")
    return value
SecretFile = Annotated[str, AfterValidator(_secret_file)]
WebhookUrl = Annotated[str, AfterValidator(_webhook_url)]
Ratio = Annotated[float, Field(gt=0, lt=1)]
Positive = Annotated[float, Field(gt=0)]


class _Section(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True,
    )


class Jobs(_Section):
    """Scrape job names. Alerts select on them, so they must agree with the scrape config."""

    backend: str = "medianest-backend"
    node: str = "node-exporter"
    postgres: str = "postgres-exporter"
    redis: str = "redis-exporter"
    blackbox: str = "blackbox"
    prometheus: str = "prometheus"
    alertmanager: str = "alertmanager"
    grafana: str = "grafana"
    loki: str = "loki"
    jaeger: str = "jaeger"
    alloy: str = "alloy"


class Thresholds(_Section):
    """Where MediaNest's and the platform's alerts fire."""

    # MediaNest backend
    error_ratio: Ratio = 0.05
    response_time_p95_seconds: Positive = 2.0
    database_query_p95_seconds: Positive = 1.0
    database_connections: Annotated[int, Field(gt=0)] = 80
    resident_memory_bytes: Annotated[int, Field(gt=0)] = 1024**3
    heap_growth_bytes_per_minute: Annotated[int, Field(gt=0)] = 1024**2
    event_loop_lag_seconds: Positive = 0.1
    queue_backlog_items: Annotated[int, Field(gt=0)] = 50
    auth_failure_ratio: Ratio = 0.25
    # Below this many attempts per second a failure ratio means little (a quiet hour).
    auth_min_attempts_per_second: Positive = 0.1
    # Platform
    host_cpu_ratio: Ratio = 0.8
    host_memory_available_ratio: Ratio = 0.1
    filesystem_fill_hours: Positive = 24
    filesystem_available_ratio: Ratio = 0.4
    certificate_expiry_days: Positive = 14
    postgres_connections_ratio: Ratio = 0.8
    redis_memory_ratio: Ratio = 0.9
    prometheus_storage_ratio: Ratio = 0.8
    # Share of alerts (Prometheus) or notifications (Alertmanager) that fail to go out.
    notification_failure_ratio: Ratio = 0.01
    # Share of Loki requests answered with a 5xx (the Loki mixin's value).
    loki_error_ratio: Ratio = 0.1
    # Share of spans Jaeger refuses or fails to store.
    span_loss_ratio: Ratio = 0.01


class SlackChannel(_Section):
    """A Slack incoming webhook; its URL is the secret, read from a mounted file."""

    api_url_file: SecretFile
    channel: str = Field(pattern=r"^[#@][a-z0-9._-]+$")


class PagerDuty(_Section):
    """A PagerDuty Events API v2 integration; its routing key is read from a mounted file."""

    routing_key_file: SecretFile


class Email(_Section):
    to: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    from_: str = Field(alias="from", pattern=r"^[^@\s]+@[^@\s]+$")
    smarthost: str = Field(pattern=r"^[A-Za-z0-9.-]+:[0-9]+$")
    auth_username: str | None = None
    auth_password_file: SecretFile | None = None
    require_tls: bool = True


class Webhook(_Section):
    """A webhook; when it needs a secret, a bearer token read from `credentialsFile`."""

    url: WebhookUrl
    credentials_file: SecretFile | None = None


class Integrations(_Section):
    pagerduty: tuple[PagerDuty, ...] = ()
    slack: tuple[SlackChannel, ...] = ()
    email: tuple[Email, ...] = ()
    webhook: tuple[Webhook, ...] = ()

    @model_validator(mode="after")
    def _some(self) -> Integrations:
        if not (self.pagerduty or self.slack or self.email or self.webhook):
            raise ValueError("configure at least one of pagerduty, slack, email, webhook "
                             "(or leave the receiver out to use localWebhookUrl)")
        return self


class Receivers(_Section):
    """Where each receiver of the routing policy (rules/alerting_policy.py) notifies."""

    critical_alerts: Integrations | None = None
    business_team: Integrations | None = None
    tickets: Integrations | None = None
    default: Integrations | None = None
    deadman: Integrations | None = None


ALERTMANAGER_SECRETS_DIR = "/etc/alertmanager/secrets/"
GRAFANA_SECRETS_DIR = "/etc/grafana/secrets/"


class Alerting(_Section):
    # A receiver not configured in `receivers` posts to <localWebhookUrl>/<receiver>, so a stack
    # without real receivers (dev) still delivers every alert somewhere. Null: every receiver
    # must be configured.
    local_webhook_url: WebhookUrl | None = "http://host.docker.internal:9099"
    receivers: Receivers = Receivers()

    def secret_files(self) -> list[str]:
        """Every file a receiver reads a secret from (routing keys, webhook URLs, passwords)."""
        paths: set[str] = set()
        for name in Receivers.model_fields:
            integrations: Integrations | None = getattr(self.receivers, name)
            if integrations is None:
                continue
            paths.update(p.routing_key_file for p in integrations.pagerduty)
            paths.update(s.api_url_file for s in integrations.slack)
            paths.update(e.auth_password_file for e in integrations.email if e.auth_password_file)
            paths.update(w.credentials_file for w in integrations.webhook if w.credentials_file)
        return sorted(paths)

    @model_validator(mode="after")
    def _secrets_mountable(self) -> Alerting:
        # The stack mounts Alertmanager's secrets under its config directory, one file per
        # secret named after the file: `secrets.<file name>` holds the value.
        paths = self.secret_files()
        outside = [p for p in paths if not p.startswith(ALERTMANAGER_SECRETS_DIR)]
        if outside:
            raise ValueError(f"secret files must live under {ALERTMANAGER_SECRETS_DIR}: {', '.join(outside)}")
        names = [p.rsplit("/", 1)[1] for p in paths]
        shared = sorted({n for n in names if names.count(n) > 1})
        if shared:
            raise ValueError(f"two secret files are named {', '.join(shared)}: each secret is set by its file name")
        return self

    @model_validator(mode="after")
    def _nothing_dropped(self) -> Alerting:
        if self.local_webhook_url is None:
            missing = [f.alias or n for n, f in Receivers.model_fields.items()
                       if getattr(self.receivers, n) is None]
            if missing:
                raise ValueError(f"receivers {', '.join(missing)} are not configured and "
                                 "localWebhookUrl is null: their alerts would be dropped")
        return self


class Endpoints(_Section):
    """Where Grafana reaches the stack's services (its datasources)."""

    prometheus: Annotated[str, AfterValidator(_https)] = "http://prometheus:9090"
    loki: Annotated[str, AfterValidator(_https)] = "http://loki:3100"
    jaeger: Annotated[str, AfterValidator(_https)] = "http://jaeger:16686"
    alertmanager: Annotated[str, AfterValidator(_https)] = "http://alertmanager:9093"


def _grafana_secret(value: str) -> str:
    if not value.startswith(GRAFANA_SECRETS_DIR):
        raise ValueError(f"must live under {GRAFANA_SECRETS_DIR} (where the stack mounts Grafana's secrets)")
    return value


class Grafana(_Section):
    """Grafana itself: its datasources' URLs and its security settings."""

    endpoints: Endpoints = Endpoints()
    # The admin password is only ever read from this mounted file (GF_SECURITY_ADMIN_PASSWORD__FILE).
    admin_password_file: Annotated[SecretFile, AfterValidator(_grafana_secret)] = GRAFANA_SECRETS_DIR + "admin-password"
    # Cookies only over HTTPS; prod serves Grafana behind TLS.
    cookie_secure: bool = False
    root_url: Annotated[str, AfterValidator(_https)] = "http://localhost:3000"


_MEMORY_UNITS = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}


def memory_bytes(value: str) -> int:
    """`512Mi`, `1Gi` (Kubernetes quantities, binary units) as bytes."""
    number, unit = value[:-2], value[-2:]
    if unit not in _MEMORY_UNITS or not number.isdigit() or int(number) == 0:
        raise ValueError("must be a size like 256Mi or 2Gi (units Ki, Mi, Gi)")
    return int(number) * _MEMORY_UNITS[unit]


def _memory(value: str) -> str:
    memory_bytes(value)
    return value


def _tag(value: str) -> str:
    if value in ("latest", "main", "master") or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", value):
        raise ValueError("must be an exact version tag such as v3.13.0 (never latest)")
    return value


Memory = Annotated[str, AfterValidator(_memory)]
_DNS_LABEL = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
HostPort = Annotated[int, Field(ge=1, le=65535)]


class ImageRef(_Section):
    """An image pinned by exact tag; a digest only when read from a registry."""

    repository: str = Field(pattern=r"^[a-z0-9]+([._/-][a-z0-9]+)*$")
    tag: Annotated[str, AfterValidator(_tag)]
    digest: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")


def _at_least_a_day(value: str) -> str:
    if duration_seconds(value) < 86400:
        raise ValueError("must be at least 24h (Loki's minimum retention period)")
    return value


def _image(repository: str, tag: str) -> Any:
    return Field(default_factory=lambda: ImageRef(repository=repository, tag=tag))


class Component(_Section):
    """What every component has: its image, a memory limit, an optional CPU limit, and an
    opt-in port published on the host's loopback (Docker)."""

    memory: Memory = "256Mi"
    cpus: Annotated[float, Field(gt=0)] | None = None
    publish: HostPort | None = None
    # False: not deployed, not scraped, and alerts about it left out (the sandbox runs no Loki,
    # Jaeger, Grafana or Alloy: they have no binary there).
    enabled: bool = True


class PrometheusService(Component):
    image: ImageRef = _image("prom/prometheus", "v3.13.0")
    memory: Memory = "2Gi"
    retention_time: Duration = "15d"
    retention_size: str = Field(default="10GB", pattern=r"^[0-9]+(B|KB|MB|GB|TB|PB)$")
    scrape_interval: Duration = "30s"
    # How often this Prometheus evaluates the rules; evaluationInterval (what the generated
    # promtool tests assume) when not set. The sandbox shortens it to detect faster.
    evaluation_interval: Duration | None = None
    # Size of the data volume (Kubernetes PVC); keep it above retentionSize.
    volume_size: str = "20Gi"
    # Two make an HA pair (Kubernetes target): both scrape and alert, Alertmanager deduplicates.
    replicas: Annotated[int, Field(ge=1, le=3)] = 1


class AlertmanagerService(Component):
    image: ImageRef = _image("prom/alertmanager", "v0.34.0")
    memory: Memory = "128Mi"
    # More than one forms a gossip cluster (Kubernetes target): notifications deduplicated, silences shared.
    replicas: Annotated[int, Field(ge=1, le=7)] = 1
    volume_size: str = "1Gi"


class GrafanaDatabase(_Section):
    """An external database holding Grafana's state (users, sessions, dashboards, alert state), so
    several replicas share it. Its password is the secret `grafana-database-password`, read from
    a mounted file (GF_DATABASE_PASSWORD__FILE)."""

    type: Literal["postgres", "mysql"]
    # host:port, as Grafana's [database] host takes it.
    host: str = Field(pattern=r"^[A-Za-z0-9.-]+:[0-9]{1,5}$")
    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    user: str = Field(pattern=r"^\S+$")
    # Grafana's [database] ssl_mode. postgres: disable, require, verify-ca, verify-full (verify-*
    # check the server's certificate against the image's system CAs). mysql: Grafana's TLS (true,
    # skip-verify) needs a CA file (ca_cert_path) this stack does not mount: only "false" works.
    ssl_mode: str = "require"

    @property
    def password_file(self) -> str:
        return GRAFANA_SECRETS_DIR + "database-password"

    @model_validator(mode="after")
    def _ssl_mode_of_type(self) -> GrafanaDatabase:
        if self.type == "postgres" and self.ssl_mode not in ("disable", "require", "verify-ca", "verify-full"):
            raise ValueError(f"sslMode {self.ssl_mode!r} is not one of postgres' modes: disable, require, "
                             "verify-ca, verify-full")
        if self.type == "mysql" and self.ssl_mode != "false":
            raise ValueError(f"sslMode {self.ssl_mode!r} does not work for mysql here: Grafana's TLS to MySQL "
                             "(true, skip-verify) needs a CA certificate file the stack does not mount; set "
                             "sslMode \"false\" (a trusted network only) or use postgres")
        return self


class GrafanaService(Component):
    image: ImageRef = _image("grafana/grafana", "13.0.1")
    memory: Memory = "512Mi"
    publish: HostPort | None = 3000
    # More than one needs `database`: SQLite on the grafana-data volume is one replica's alone.
    replicas: Annotated[int, Field(ge=1, le=5)] = 1
    # Null: SQLite on the grafana-data volume.
    database: GrafanaDatabase | None = None

    @model_validator(mode="after")
    def _replicas_share_a_database(self) -> GrafanaService:
        if self.replicas > 1 and self.database is None:
            raise ValueError(f"replicas {self.replicas} needs database (an external postgres or mysql): "
                             "the default SQLite on the grafana-data volume cannot be shared between replicas")
        return self


class LokiService(Component):
    image: ImageRef = _image("grafana/loki", "3.7.1")
    memory: Memory = "1Gi"
    # Deleted by the compactor once older than this.
    retention_period: Annotated[Duration, AfterValidator(_at_least_a_day)] = "744h"
    volume_size: str = "20Gi"


class AlloyService(Component):
    image: ImageRef = _image("grafana/alloy", "v1.11.3")
    memory: Memory = "256Mi"
    # `files`: MediaNest's JSON log files under logDirectory (read-only). `docker`: every
    # container's logs through the Docker socket (read-only, needs dockerSocketGroup).
    # `kubernetes`: the logs of MediaNest's pods on Alloy's own node, through the Kubernetes API.
    log_source: Literal["files", "docker", "kubernetes"] = "files"
    log_directory: str = Field(default="/var/log/medianest", pattern=r"^/")
    docker_socket: str = Field(default="/var/run/docker.sock", pattern=r"^/")
    docker_socket_group: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _socket_group(self) -> AlloyService:
        if self.log_source == "docker" and self.docker_socket_group is None:
            raise ValueError("logSource docker needs dockerSocketGroup (the gid owning the Docker "
                             "socket, `stat -c %g /var/run/docker.sock`): Alloy never runs as root")
        return self


class _ClusterUrl:
    """A URL of an Elasticsearch or OpenSearch cluster: http(s), with no credentials in it."""

    @staticmethod
    def validate(value: str) -> str:
        _https(value)
        parts = urlsplit(value)
        if parts.username or parts.password:
            raise ValueError("must not carry credentials (user:password@): set username, and the password "
                             "as the secret jaeger-storage-password")
        return value


class JaegerService(Component):
    image: ImageRef = _image("jaegertracing/jaeger", "2.20.0")
    memory: Memory = "512Mi"
    # `memory` loses traces on restart (dev); `badger` keeps them on a volume; `elasticsearch` and
    # `opensearch` store them in an external cluster at serverUrls (nothing kept locally; how long
    # the cluster keeps them is its own ILM/ISM or index cleaner's business, not badgerTtl).
    storage: Literal["memory", "badger", "elasticsearch", "opensearch"] = "memory"
    max_traces: Annotated[int, Field(gt=0)] = 100000
    # How long Badger keeps spans.
    badger_ttl: Duration = "72h"
    volume_size: str = "10Gi"
    # Elasticsearch / OpenSearch only: the cluster's URLs, without credentials.
    server_urls: tuple[Annotated[str, AfterValidator(_ClusterUrl.validate)], ...] = ()
    # Indices are named <indexPrefix>-jaeger-span-<date> and so on.
    index_prefix: str = Field(default="medianest", pattern=r"^[a-z0-9][a-z0-9._-]*$")
    # Basic auth; the password is the secret `jaeger-storage-password`, read from a mounted file.
    username: str | None = Field(default=None, pattern=r"^\S+$")

    @model_validator(mode="after")
    def _external_storage(self) -> JaegerService:
        external = self.storage in ("elasticsearch", "opensearch")
        if external and not self.server_urls:
            raise ValueError(f"storage {self.storage} needs serverUrls (the cluster's http(s) URLs)")
        if not external and (self.server_urls or self.username is not None):
            raise ValueError(f"serverUrls and username are for storage elasticsearch or opensearch, not "
                             f"{self.storage}")
        return self


class NodeExporterService(Component):
    image: ImageRef = _image("prom/node-exporter", "v1.12.0")
    memory: Memory = "64Mi"


class PostgresExporterService(Component):
    image: ImageRef = _image("prometheuscommunity/postgres-exporter", "v0.20.0")
    memory: Memory = "64Mi"
    # host:port/database?options; the password comes from the `postgres-password` secret.
    data_source_uri: str = Field(default="host.docker.internal:5432/medianest?sslmode=disable",
                                 pattern=r"^[^/@\s]+:[0-9]+/[^\s]*$")
    user: str = "postgres_exporter"
    # Whether PostgreSQL needs a password (the `postgres-password` secret).
    password: bool = True


class RedisExporterService(Component):
    # The -alpine build: the scratch one has no tool to run a health check with.
    image: ImageRef = _image("oliver006/redis_exporter", "v1.80.0-alpine")
    memory: Memory = "64Mi"
    address: str = Field(default="redis://host.docker.internal:6379", pattern=r"^rediss?://[^@\s]+$")
    # Whether Redis needs a password (the `redis-password` secret).
    password: bool = False


class BlackboxExporterService(Component):
    image: ImageRef = _image("prom/blackbox-exporter", "v0.28.0")
    memory: Memory = "64Mi"
    # MediaNest's health endpoints, probed for a 2xx (and their TLS certificates' expiry).
    targets: tuple[Annotated[str, AfterValidator(_https)], ...] = ()


class Namespaced(_Section):
    """Pods of MediaNest in one namespace, selected by their labels (Kubernetes target)."""

    namespace: str = Field(default="medianest", pattern=_DNS_LABEL)
    pod_labels: dict[str, str] = {"app.kubernetes.io/name": "medianest-backend"}
    # The container port serving /metrics.
    port: HostPort = 3001


class Ingress(_Section):
    """Grafana behind the cluster's ingress controller, over TLS."""

    host: str = Field(pattern=r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")
    # A TLS Secret in the stack's namespace (cert-manager or your own); never generated here.
    tls_secret_name: str = Field(pattern=_DNS_LABEL)
    class_name: str | None = None
    annotations: dict[str, str] = {}
    # Where the ingress controller's pods run: the only ones let through to Grafana.
    controller_namespace: str = Field(default="ingress-nginx", pattern=_DNS_LABEL)


class PrometheusOperator(_Section):
    """A cluster that already runs prometheus-operator (kube-prometheus-stack): emit
    PrometheusRule and ServiceMonitor objects instead of deploying Prometheus and Alertmanager."""

    enabled: bool = False
    # The labels the operator's ruleSelector and serviceMonitorSelector match.
    labels: dict[str, str] = {"release": "kube-prometheus-stack"}
    # Where the operator's Prometheus runs: let through to the metrics ports.
    prometheus_namespace: str = Field(default="monitoring", pattern=_DNS_LABEL)


class Kubernetes(_Section):
    """The cluster the prod stack runs on (target `kubernetes`)."""

    # Pod security `restricted` is enforced here.
    namespace: str = Field(default="monitoring", pattern=_DNS_LABEL)
    # node exporter alone needs the host's PID and network namespaces and paths: it runs in a
    # namespace of its own, where pod security `privileged` is allowed.
    node_namespace: str = Field(default="monitoring-node", pattern=_DNS_LABEL)
    # The Kubernetes version the manifests are validated against (kubernetes-validate 1.37 knows
    # 1.25 to 1.37).
    version: str = Field(default="1.37", pattern=r"^1\.[0-9]{2}$")
    # Storage class of every volume claim; the cluster's default when null.
    storage_class: str | None = None
    # `required`: replicas never share a node (a pod stays Pending rather than lose HA);
    # `preferred`: spread when the cluster has room.
    anti_affinity: Literal["preferred", "required"] = "preferred"
    # MediaNest's backend pods: scraped, their logs collected, allowed to send logs and traces.
    backend: Namespaced = Namespaced()
    # Where the Kubernetes API server is reached from pods (service discovery, Alloy): CIDRs
    # for the NetworkPolicies' egress; the API server's address is cluster-specific.
    api_server_cidrs: tuple[str, ...] = ("0.0.0.0/0",)
    api_server_ports: tuple[HostPort, ...] = (443, 6443)
    ingress: Ingress | None = None
    prometheus_operator: PrometheusOperator = PrometheusOperator()

    @model_validator(mode="after")
    def _operator_elsewhere(self) -> Kubernetes:
        # Our namespaces deny by default: the operator's Prometheus and Alertmanager would be cut off.
        operator = self.prometheus_operator
        if operator.enabled and operator.prometheus_namespace in (self.namespace, self.node_namespace):
            raise ValueError(f"prometheusOperator.prometheusNamespace {operator.prometheus_namespace!r} is one of "
                             "the stack's namespaces, whose NetworkPolicies deny by default: deploy the stack in "
                             "its own namespace (kubernetes.namespace, kubernetes.nodeNamespace)")
        return self


class Services(_Section):
    """Each component of the stack: image, resources and its own settings."""

    prometheus: PrometheusService = PrometheusService()
    alertmanager: AlertmanagerService = AlertmanagerService()
    grafana: GrafanaService = GrafanaService()
    loki: LokiService = LokiService()
    alloy: AlloyService = AlloyService()
    jaeger: JaegerService = JaegerService()
    node_exporter: NodeExporterService = NodeExporterService()
    postgres_exporter: PostgresExporterService = PostgresExporterService()
    redis_exporter: RedisExporterService = RedisExporterService()
    blackbox_exporter: BlackboxExporterService = BlackboxExporterService()

    @model_validator(mode="after")
    def _alerting_path(self) -> Services:
        if not (self.prometheus.enabled and self.alertmanager.enabled):
            raise ValueError("prometheus and alertmanager cannot be disabled: they are the alerting path")
        return self


class Backend(_Section):
    """MediaNest's backend as Prometheus scrapes it (job `jobs.backend`)."""

    targets: tuple[Annotated[str, Field(pattern=r"^[A-Za-z0-9.-]+:[0-9]+$")], ...] = (
        "host.docker.internal:3001",)
    metrics_path: str = Field(default="/metrics", pattern=r"^/")
    scheme: Literal["http", "https"] = "http"


# Every component of the stack by its name (its DNS name on the stack's network).
COMPONENTS = ("prometheus", "alertmanager", "grafana", "loki", "alloy", "jaeger", "node-exporter",
              "postgres-exporter", "redis-exporter", "blackbox")
Address = Annotated[str, Field(pattern=r"^[A-Za-z0-9.-]+:[0-9]{1,5}$")]


def _known_components(value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    unknown = sorted(set(value) - set(COMPONENTS))
    if unknown:
        raise ValueError(f"unknown component {', '.join(unknown)}; valid: {', '.join(COMPONENTS)}")
    if any(not addresses for addresses in value.values()):
        raise ValueError("each component needs at least one address")
    return dict(sorted(value.items()))


class Compression(_Section):
    """Time compression for the sandbox only (environment `sandbox`): an outage that pages and
    resolves in minutes instead of an hour. Every SLO's period, shortened (its burn-rate windows
    scale with it), and Alertmanager's group_interval; Prometheus's resend delay is the
    sandbox's own command line."""

    slo_period: Duration | None = None
    group_interval: Duration | None = None
    resend_delay: Duration | None = None


class StackConfig(_Section):
    environment: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    # Where the stack runs: containers on a Docker engine, or a Kubernetes cluster.
    target: Literal["docker", "kubernetes"] = "docker"
    runbook_base_url: Annotated[str, AfterValidator(_https)]
    jobs: Jobs = Jobs()
    thresholds: Thresholds = Thresholds()
    # The rule evaluation interval of Prometheus; promtool tests evaluate at the same pace.
    evaluation_interval: Annotated[Duration, AfterValidator(_one_minute)] = "1m"
    # Alertmanager receivers: where notifications go (routing itself is rules/alerting_policy.py).
    alerting: Alerting = Alerting()
    grafana: Grafana = Grafana()
    backend: Backend = Backend()
    services: Services = Services()
    # Where components are reached when not at `<name>:<port>` on the stack's network (the
    # sandbox runs each on its own loopback port; several replicas list one address each).
    addresses: Annotated[dict[str, tuple[Address, ...]], AfterValidator(_known_components)] = {}
    kubernetes: Kubernetes = Kubernetes()
    compression: Compression = Compression()

    @model_validator(mode="after")
    def _compression_is_for_the_sandbox(self) -> StackConfig:
        if self.compression != Compression() and self.environment != "sandbox":
            raise ValueError("compression: only the sandbox (environment sandbox) compresses time; "
                             "remove it from the stack file")
        return self

    @model_validator(mode="after")
    def _replicas_need_kubernetes(self) -> StackConfig:
        # Raised without a location (a rule across keys): the message starts with the key.
        services = self.services
        if self.target == "docker":
            for name in ("prometheus", "alertmanager", "grafana"):
                if getattr(services, name).replicas > 1:
                    raise ValueError(f"services.{name}.replicas: above 1 needs target kubernetes "
                                     "(one container per component on Docker)")
            if services.alloy.log_source == "kubernetes":
                raise ValueError("services.alloy.logSource: kubernetes needs target kubernetes; "
                                 "valid on docker: files, docker")
        return self


def stack_file(stack: str, root: Path = ROOT) -> Path:
    return root / f"Pulumi.{stack}.yaml"


def load_stack(stack: str, root: Path = ROOT) -> StackConfig:
    """The config of `Pulumi.<stack>.yaml`; ConfigError naming the file and key when bad."""
    path = stack_file(stack, root)
    if not path.exists():
        stacks = sorted(p.name.split(".")[1] for p in root.glob("Pulumi.*.yaml"))
        raise ConfigError(f"{path.name}: no such stack file (stacks: {', '.join(stacks)})")
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path.name}: not valid YAML: {error}") from error
    if not isinstance(document, dict) or not isinstance(document.get("config", {}), dict):
        raise ConfigError(f"{path.name}: expected a mapping with a `config:` mapping")
    return from_mapping(document.get("config") or {}, path.name)


def from_mapping(config: dict[str, Any], source: str) -> StackConfig:
    """Our project's keys (`medianest-observability:<key>`) of a Pulumi config mapping;
    other namespaces belong to providers and are left alone."""
    ours: dict[str, Any] = {}
    for key, value in config.items():
        namespace, _, name = str(key).partition(":")
        # Secret values are read by the Pulumi program alone (stack/secrets.py), never modelled.
        if namespace == PROJECT and name != SECRETS_KEY:
            ours[name] = value
    try:
        return StackConfig.model_validate(ours)
    except ValidationError as error:
        raise ConfigError(_describe(error, source)) from None


def from_pulumi() -> StackConfig:
    """The config of the running Pulumi program (values arrive as strings, objects as JSON)."""
    from pulumi.runtime import config as runtime_config

    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    decoded = {key: _decode(value) for key, value in merged.items()}
    import pulumi

    return from_mapping(decoded, f"Pulumi.{pulumi.get_stack()}.yaml")


def _decode(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _describe(error: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid configuration"]
    for item in error.errors():
        if not item["loc"]:
            # A rule across keys (StackConfig's own validators): its message names the key.
            lines.append(f"  {PROJECT}:{item['msg'].removeprefix('Value error, ')}")
            continue
        key = ".".join(str(part) for part in item["loc"])
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key; valid keys here: " + ", ".join(_valid_keys(item["loc"][:-1]))
        got = "" if item["type"] in ("missing", "extra_forbidden") else f" (got {item['input']!r})"
        if _may_hold_a_secret(item["loc"]):
            got = ""  # a secret pasted into the wrong field must not reach a terminal or CI log
        lines.append(f"  {PROJECT}:{key}: {message}{got}")
    return "\n".join(lines)


_SECRET_HINTS = ("file", "url", "credential", "key", "token", "password", "secret", "alerting")


def _may_hold_a_secret(loc: tuple[Any, ...]) -> bool:
    return any(hint in str(part).lower() for part in loc for hint in _SECRET_HINTS)


def _valid_keys(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] | None = StackConfig
    for part in loc:
        if isinstance(part, int):  # an item of a list
            continue
        field = next((f for n, f in model.model_fields.items() if f.alias == part or n == part), None)
        model = _model_in(getattr(field, "annotation", None))
        if model is None:
            return []
    return sorted(f.alias or n for n, f in model.model_fields.items())


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds, through `X | None` and `tuple[X, ...]`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((m for m in map(_model_in, get_args(annotation)) if m is not None), None)
