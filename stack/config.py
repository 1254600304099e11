"""The stack configuration: one pydantic model, read from `Pulumi.<stack>.yaml` by the CLI
and from Pulumi config by the program. Defaults live in the models: the stack-wide sections here,
each component's settings in its module (stack/services), assembled here into `services`.

Safe by default: a stack file is read with a YAML loader that refuses aliases, anchors, merge
keys, duplicate keys and deep nesting, after a size cap; every number is finite and bounded;
no URL or address carries a credential; a Pulumi secret lives only under `secrets`, and every
value there is encrypted. Errors name the file and the key, one line each, and echo a value
only for fields known to hold nothing secret (`SHOWN`)."""

from __future__ import annotations

import ipaddress
import json
import re
import types
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic.alias_generators import to_camel

from rules.catalog import Catalog
from rules.metrics import medianest as medianest_metrics
from stack.services import components
from stack.settings import (  # noqa: F401 - re-exported: the config's building blocks
    _DNS_LABEL,
    _PLAIN_KEY,
    _UNPRINTABLE,
    ALERTMANAGER_SECRETS_DIR,
    MAX_ECHO,
    MAX_ERROR_LINES,
    MAX_KEY,
    MAX_STACK_FILE_BYTES,
    MAX_TEXT,
    MAX_VALUE_DEPTH,
    MAX_VALUES,
    MAX_YAML_DEPTH,
    PROJECT,
    ROOT,
    SECRETS_KEY,
    SHOWN,
    AbsolutePath,
    Component,
    ConfigError,
    Count,
    DnsSubdomain,
    Duration,
    GiB,
    HostAndPort,
    HostPort,
    ImageRef,
    Interval,
    JobName,
    KiB,
    LabelKey,
    Labels,
    Memory,
    MiB,
    Number,
    Ratio,
    Retention,
    RetentionSize,
    SecretFile,
    TiB,
    Url,
    UserName,
    VolumeSize,
    WebhookUrl,
    _at_least_a_day,
    _cidr,
    _clip_repr,
    _duration_between,
    _image,
    _in_secrets_dir,
    _one_minute,
    _probe_url,
    _secret_file,
    _Section,
    _split,
    _url,
    memory_bytes,
    quantity_bytes,
    secret_name_ok,
)


class _Jobs(_Section):
    """Scrape job names. Alerts select on them, so they must agree with the scrape config."""

    backend: JobName = "medianest-backend"


# MediaNest's backend's job, and each component's (`COMPONENT.job`: its key and default name).
Jobs = create_model(
    "Jobs", __base__=_Jobs, __module__=__name__,
    **{job.key: (JobName, job.default) for c in components() for job in (c.job, *c.other_jobs) if job is not None},
)


MEDIANEST_METRICS = Catalog.of(medianest_metrics.METRICS)


def _latency_threshold(histogram: str, p95_testable: bool = True) -> AfterValidator:
    """A latency threshold the generated tests can straddle: inside the histogram's buckets, never
    past the last bound (and, when `p95_testable`, a p95 in the bucket under it stays under it)."""
    def check(value: float) -> float:
        bounds = MEDIANEST_METRICS.metrics[histogram].buckets
        over = next((i for i, b in enumerate(bounds) if b > value), None)
        if over is None or over == 0:
            raise ValueError(f"must lie within the buckets of {histogram} ({bounds[0]:g} to {bounds[-1]:g}, "
                             "the last excluded): the alert cannot tell a p95 outside them")
        lower = bounds[over - 2] if over >= 2 else 0.0
        if p95_testable and lower + (bounds[over - 1] - lower) * 0.95 > value:
            raise ValueError(f"is not testable with the buckets of {histogram} "
                             f"({', '.join(f'{b:g}' for b in bounds)}): pick a value at or near a bucket bound")
        return value
    return AfterValidator(check)


class Thresholds(_Section):
    """Where MediaNest's and the platform's alerts fire. Every bound is far past a real value."""

    # MediaNest backend
    error_ratio: Ratio = 0.05
    response_time_p95_seconds: Annotated[Number(0, 3600, above=True),
                                         _latency_threshold("medianest_http_request_duration_seconds")] = 2.0
    database_query_p95_seconds: Annotated[Number(0, 3600, above=True),
                                          _latency_threshold("medianest_database_query_duration_seconds", False)] = 1.0
    database_connections: Count(1, 100_000) = 80
    resident_memory_bytes: Count(MiB, TiB) = 1024**3
    heap_growth_bytes_per_minute: Count(KiB, TiB) = 1024**2
    event_loop_lag_seconds: Number(0.001, 60) = 0.1
    queue_backlog_items: Count(1, 10_000_000) = 50
    auth_failure_ratio: Ratio = 0.25
    # Below this many attempts per second a failure ratio means little (a quiet hour).
    auth_min_attempts_per_second: Number(0.001, 1_000_000) = 0.1
    # Platform
    host_cpu_ratio: Ratio = 0.8
    host_memory_available_ratio: Ratio = 0.1
    filesystem_fill_hours: Number(1, 24 * 365) = 24
    filesystem_available_ratio: Ratio = 0.4
    certificate_expiry_days: Number(1, 3650) = 14
    postgres_connections_ratio: Ratio = 0.8
    redis_memory_ratio: Ratio = 0.9
    prometheus_storage_ratio: Ratio = 0.8
    # Share of alerts (Prometheus) or notifications (Alertmanager) that fail to go out.
    notification_failure_ratio: Ratio = 0.01
    # Share of Loki requests answered with a 5xx (the Loki mixin's value).
    loki_error_ratio: Ratio = 0.1
    # Share of spans Jaeger refuses or fails to store.
    span_loss_ratio: Ratio = 0.01
    # Share of samples Prometheus fails to remote-write to the long-term store (kube-prometheus: 1%).
    remote_write_failure_ratio: Ratio = 0.01
    # How far the long-term store may lag behind what Prometheus ingested.
    remote_write_lag_seconds: Number(10, 3600) = 120


class SlackChannel(_Section):
    """A Slack incoming webhook; its URL is the secret, read from a mounted file."""

    api_url_file: SecretFile
    channel: str = Field(pattern=r"^[#@][a-z0-9._-]{1,80}$")


class PagerDuty(_Section):
    """A PagerDuty Events API v2 integration; its routing key is read from a mounted file."""

    routing_key_file: SecretFile


EmailAddress = Annotated[str, Field(pattern=r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}$")]


class Email(_Section):
    to: EmailAddress
    from_: EmailAddress = Field(alias="from")
    smarthost: HostAndPort
    auth_username: UserName | None = None
    auth_password_file: SecretFile | None = None
    require_tls: bool = True


class Webhook(_Section):
    """A webhook: `url`, or `urlFile` when the URL itself is the secret (a token in its path or
    query: Alertmanager reads it from the mounted file); a bearer token from `credentialsFile`."""

    url: WebhookUrl | None = None
    url_file: SecretFile | None = None
    credentials_file: SecretFile | None = None

    @model_validator(mode="after")
    def _one_url(self) -> Webhook:
        if (self.url is None) == (self.url_file is None):
            raise ValueError("set exactly one of url and urlFile")
        return self


class Integrations(_Section):
    pagerduty: Annotated[tuple[PagerDuty, ...], Field(max_length=16)] = ()
    slack: Annotated[tuple[SlackChannel, ...], Field(max_length=16)] = ()
    email: Annotated[tuple[Email, ...], Field(max_length=16)] = ()
    webhook: Annotated[tuple[Webhook, ...], Field(max_length=16)] = ()

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


class Alerting(_Section):
    # A receiver not configured in `receivers` posts to <localWebhookUrl>/<receiver>, so a stack
    # without real receivers (dev) still delivers every alert somewhere. Null: every receiver
    # must be configured.
    local_webhook_url: WebhookUrl | None = "http://host.docker.internal:9099"
    receivers: Receivers = Receivers()

    def secret_files(self) -> list[str]:
        """Every file a receiver reads a secret from (routing keys, webhook URLs, passwords). Each
        is exactly <ALERTMANAGER_SECRETS_DIR><name> (SecretFile): `secrets.<name>` holds its value,
        and receivers naming the same file share one secret."""
        paths: set[str] = set()
        for name in Receivers.model_fields:
            integrations: Integrations | None = getattr(self.receivers, name)
            if integrations is None:
                continue
            paths.update(p.routing_key_file for p in integrations.pagerduty)
            paths.update(s.api_url_file for s in integrations.slack)
            paths.update(e.auth_password_file for e in integrations.email if e.auth_password_file)
            paths.update(w.credentials_file for w in integrations.webhook if w.credentials_file)
            paths.update(w.url_file for w in integrations.webhook if w.url_file)
        return sorted(paths)

    @model_validator(mode="after")
    def _nothing_dropped(self) -> Alerting:
        if self.local_webhook_url is None:
            missing = [f.alias or n for n, f in Receivers.model_fields.items()
                       if getattr(self.receivers, n) is None]
            if missing:
                raise ValueError(f"receivers {', '.join(missing)} are not configured and "
                                 "localWebhookUrl is null: their alerts would be dropped")
        return self


class Namespaced(_Section):
    """Pods of MediaNest in one namespace, selected by their labels (Kubernetes target)."""

    namespace: str = Field(default="medianest", pattern=_DNS_LABEL)
    pod_labels: Labels = {"app.kubernetes.io/name": "medianest-backend"}
    # The container port serving /metrics.
    port: HostPort = 3001


class Ingress(_Section):
    """Grafana behind the cluster's ingress controller, over TLS."""

    host: DnsSubdomain
    # A TLS Secret in the stack's namespace (cert-manager or your own); never generated here.
    tls_secret_name: str = Field(pattern=_DNS_LABEL)
    class_name: DnsSubdomain | None = None
    annotations: Annotated[dict[LabelKey, str], Field(max_length=64)] = {}
    # Where the ingress controller's pods run: the only ones let through to Grafana.
    controller_namespace: str = Field(default="ingress-nginx", pattern=_DNS_LABEL)


class PrometheusOperator(_Section):
    """A cluster that already runs prometheus-operator (kube-prometheus-stack): emit
    PrometheusRule and ServiceMonitor objects instead of deploying Prometheus and Alertmanager."""

    enabled: bool = False
    # The labels the operator's ruleSelector and serviceMonitorSelector match.
    labels: Labels = {"release": "kube-prometheus-stack"}
    # Where the operator's Prometheus runs: let through to the metrics ports.
    prometheus_namespace: str = Field(default="monitoring", pattern=_DNS_LABEL)


def _not_everywhere(value: str) -> str:
    # A NetworkPolicy's ipBlock wants address/prefix: a bare address would be refused by the API.
    if "/" not in value:
        raise ValueError("must be a CIDR with its prefix length, e.g. 10.96.0.1/32")
    if ipaddress.ip_network(value, strict=False).prefixlen == 0:
        raise ValueError("must name the API server's addresses, not every address (/0)")
    return value


class Kubernetes(_Section):
    """The cluster the prod stack runs on (target `kubernetes`)."""

    # Pod security `restricted` is enforced here.
    namespace: str = Field(default="monitoring", pattern=_DNS_LABEL)
    # node exporter alone needs the host's PID and network namespaces and paths: it runs in a
    # namespace of its own, where pod security `privileged` is allowed.
    node_namespace: str = Field(default="monitoring-node", pattern=_DNS_LABEL)
    # The Kubernetes version the manifests are validated against (kubernetes-validate 1.37 knows
    # 1.25 to 1.37).
    version: Annotated[str, Field(pattern=r"^1\.[0-9]{2}$"), SHOWN] = "1.37"
    # Storage class of every volume claim; the cluster's default when null.
    storage_class: DnsSubdomain | None = None
    # `required`: replicas never share a node (a pod stays Pending rather than lose HA);
    # `preferred`: spread when the cluster has room.
    anti_affinity: Literal["preferred", "required"] = "preferred"
    # MediaNest's backend pods: scraped, their logs collected, allowed to send logs and traces.
    backend: Namespaced = Namespaced()
    # Where the Kubernetes API server is reached from pods (service discovery, Alloy): CIDRs
    # for the NetworkPolicies' egress. Cluster-specific, so required with target kubernetes (no
    # default, never /0): the API server's endpoints, `kubectl get endpointslices -n default -l
    # kubernetes.io/service-name=kubernetes`, plus the `kubernetes` Service's IP for network
    # plugins that match before NAT.
    api_server_cidrs: Annotated[tuple[Annotated[str, AfterValidator(_cidr), AfterValidator(_not_everywhere)], ...],
                                Field(max_length=64)] = ()
    api_server_ports: Annotated[tuple[HostPort, ...], Field(max_length=16)] = (443, 6443)
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


class _Services(_Section):
    """Each component of the stack: image, resources and its own settings (its module's model)."""

    @model_validator(mode="after")
    def _required(self) -> _Services:
        required = [c for c in components() if c.required]
        off = [c for c in required if not getattr(self, c.settings_key).enabled]
        if off:
            names = " and ".join(c.name for c in sorted(required, key=lambda c: not c.scrapes_others))
            raise ValueError(f"{names} cannot be disabled: {off[0].required}")
        return self


# `services.<key>` of every component module (stack/services), its settings model as the field.
Services = create_model(
    "Services", __base__=_Services, __module__=__name__,
    **{c.settings_key: (c.settings, Field(default_factory=c.settings)) for c in components()},
)


class Backend(_Section):
    """MediaNest's backend as Prometheus scrapes it (job `jobs.backend`)."""

    targets: Annotated[tuple[HostAndPort, ...], Field(max_length=100)] = ("host.docker.internal:3001",)
    metrics_path: str = Field(default="/metrics", pattern=r"^/[A-Za-z0-9._~/-]{0,255}$")
    scheme: Literal["http", "https"] = "http"


# Every component of the stack by its name (its DNS name on the stack's network).
COMPONENTS = tuple(c.name for c in components())
Address = HostAndPort


def _known_components(value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    unknown = sorted(set(value) - set(COMPONENTS))
    if unknown:
        shown = [_key_part(name) for name in unknown[:5]]
        raise ValueError(f"unknown component {', '.join(shown)}; valid: {', '.join(COMPONENTS)}")
    if any(not addresses for addresses in value.values()):
        raise ValueError("each component needs at least one address")
    return dict(sorted(value.items()))


PROMETHEUS_SECRETS_DIR = "/etc/prometheus/secrets/"
PrometheusSecretFile = Annotated[str, AfterValidator(_secret_file),
                                 _in_secrets_dir(PROMETHEUS_SECRETS_DIR, "Prometheus'")]


class RemoteWriteQueue(_Section):
    """Prometheus' queue to the store (queue_config): what it buffers per shard, how far it
    scales out, how much it sends at once."""

    capacity: Count(100, 1_000_000) = 10_000
    max_shards: Count(1, 1000) = 50
    max_samples_per_send: Count(100, 100_000) = 2000
    batch_send_deadline: Annotated[Duration, _duration_between("1s", "1m")] = "5s"


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as error:
        raise ValueError(f"not a regular expression ({error})") from None
    return value


class WriteFilter(_Section):
    """Series sent or held back by metric name (a write_relabel_config on __name__)."""

    action: Literal["keep", "drop"]
    metric_names: Annotated[str, Field(max_length=1000), AfterValidator(_regex), SHOWN]


class ExternalStore(_Section):
    """A store outside the stack that takes Prometheus remote write (Mimir, Thanos Receive,
    VictoriaMetrics, a managed service)."""

    url: Url
    # Its Prometheus-compatible query API (Mimir: .../prometheus): Grafana's long-term
    # datasource, read with the same credentials (mounted into Grafana too). None: history is
    # read from Prometheus alone.
    query_url: Url | None = None
    # How long it keeps samples, as its operator set it: what the history check counts on.
    retention: Retention
    # Credentials, read from mounted secret files (`secrets.<name>`), never written in config.
    bearer_token_file: PrometheusSecretFile | None = None
    basic_auth_username: UserName | None = None
    basic_auth_password_file: PrometheusSecretFile | None = None

    @model_validator(mode="after")
    def _one_kind_of_auth(self) -> ExternalStore:
        if self.bearer_token_file and (self.basic_auth_username or self.basic_auth_password_file):
            raise ValueError("bearerTokenFile or basicAuth*, not both")
        if (self.basic_auth_username is None) != (self.basic_auth_password_file is None):
            raise ValueError("basicAuthUsername and basicAuthPasswordFile go together")
        return self

    def secret_files(self) -> tuple[str, ...]:
        return tuple(f for f in (self.bearer_token_file, self.basic_auth_password_file) if f)


class LongTermStorage(_Section):
    """Where history outlives each Prometheus: `none` (each keeps its own TSDB only),
    `remoteWrite` (to `external`), or `deploy` (the stack deploys the store: VictoriaMetrics,
    services.victoriaMetrics)."""

    mode: Literal["none", "remoteWrite", "deploy"] = "none"
    external: ExternalStore | None = None
    queue: RemoteWriteQueue = RemoteWriteQueue()
    # Applied in order; none: every series is sent.
    write_filters: Annotated[tuple[WriteFilter, ...], Field(max_length=20)] = ()
    send_exemplars: bool = True
    send_metadata: bool = True

    @model_validator(mode="after")
    def _external_for_remote_write(self) -> LongTermStorage:
        if self.mode == "remoteWrite" and self.external is None:
            raise ValueError("external: required with mode remoteWrite (url, retention, and its queryUrl)")
        if self.mode != "remoteWrite" and self.external is not None:
            raise ValueError(f"external: only with mode remoteWrite (mode is {self.mode})")
        return self


class Compression(_Section):
    """Time compression for the sandbox only (environment `sandbox`): an outage that pages and
    resolves in minutes instead of an hour. Every SLO's period, shortened (its burn-rate windows
    scale with it), and Alertmanager's group_interval; Prometheus's resend delay is the
    sandbox's own command line."""

    slo_period: Annotated[Duration, _duration_between("1m", "30d")] | None = None
    group_interval: Annotated[Duration, _duration_between("1s", "1h")] | None = None
    resend_delay: Annotated[Duration, _duration_between("1s", "1h")] | None = None


class StackConfig(_Section):
    environment: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,62}$"), SHOWN]
    # Where the stack runs: containers on a Docker engine, or a Kubernetes cluster.
    target: Literal["docker", "kubernetes"] = "docker"
    runbook_base_url: Url
    jobs: Jobs = Field(default_factory=Jobs)  # type: ignore[valid-type]
    thresholds: Thresholds = Thresholds()
    # The rule evaluation interval of Prometheus; promtool tests evaluate at the same pace.
    evaluation_interval: Annotated[Duration, AfterValidator(_one_minute)] = "1m"
    # Alertmanager receivers: where notifications go (routing itself is rules/alerting_policy.py).
    alerting: Alerting = Alerting()
    backend: Backend = Backend()
    services: Services = Field(default_factory=Services)  # type: ignore[valid-type]
    # Where components are reached when not at `<name>:<port>` on the stack's network (the
    # sandbox runs each on its own loopback port; several replicas list one address each).
    addresses: Annotated[dict[str, Annotated[tuple[Address, ...], Field(max_length=16)]],
                         AfterValidator(_known_components)] = {}
    kubernetes: Kubernetes = Kubernetes()
    compression: Compression = Compression()
    long_term_storage: LongTermStorage = LongTermStorage()

    @model_validator(mode="after")
    def _compression_is_for_the_sandbox(self) -> StackConfig:
        if self.compression != Compression() and self.environment != "sandbox":
            raise ValueError("compression: only the sandbox (environment sandbox) compresses time; "
                             "remove it from the stack file")
        return self

    @model_validator(mode="after")
    def _fits_its_target(self) -> StackConfig:
        # Raised without a location (a rule across keys): the message starts with the key.
        for component in components():
            settings = getattr(self.services, component.settings_key)
            key = f"services.{to_camel(component.settings_key)}"
            # (A component made for Kubernetes alone keeps its replicas for when it runs there.)
            if self.target == "docker" in component.targets and getattr(settings, "replicas", 1) > 1:
                raise ValueError(f"{key}.replicas: above 1 needs target kubernetes "
                                 "(one container per component on Docker)")
            problem = component.check(self)
            if problem:
                raise ValueError(f"{key}.{problem}")
        return self

    @model_validator(mode="after")
    def _long_term_storage_is_written_by_our_prometheus(self) -> StackConfig:
        if (self.long_term_storage.mode != "none" and self.target == "kubernetes"
                and self.kubernetes.prometheus_operator.enabled):
            raise ValueError("longTermStorage.mode: none with kubernetes.prometheusOperator: the cluster's "
                             "Prometheus is not ours to configure; set its remoteWrite in its Prometheus resource")
        return self

    @model_validator(mode="after")
    def _kubernetes_names_its_api_server(self) -> StackConfig:
        # Prometheus and Alloy may reach the API server only there: no default opens the world.
        if self.target == "kubernetes" and not self.kubernetes.api_server_cidrs:
            raise ValueError("kubernetes.apiServerCidrs: required with target kubernetes: the CIDRs of the "
                             "API server (kubectl get endpointslices -n default -l "
                             "kubernetes.io/service-name=kubernetes), e.g. [172.16.0.0/28]")
        return self


# --- Reading a stack file ---------------------------------------------------------------------


class _StackFileLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader, refusing what no stack file needs and an attacker would use: aliases
    and anchors (a billion-laughs document grows without bound), merge keys, duplicate keys (the
    last one silently wins) and nesting deeper than MAX_YAML_DEPTH."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed", event.start_mark)
        if getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(None, None, "anchors (&name) are not allowed", event.start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_YAML_DEPTH} levels",
                                                  event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise yaml.constructor.ConstructorError(None, None, "merge keys (<<) are not allowed",
                                                            key_node.start_mark)
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:  # an unhashable key: SafeLoader reports it
                    continue
                if duplicate:
                    raise yaml.constructor.ConstructorError(None, None, "a key is repeated in this mapping",
                                                            key_node.start_mark)
        return super().construct_mapping(node, deep=deep)

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except (ValueError, OverflowError, TypeError, RecursionError):
            # An integer of thousands of digits, a timestamp that is no date: never quoted back.
            raise yaml.constructor.ConstructorError(None, None, "a value that cannot be read",
                                                    node.start_mark) from None


# Problems this loader raises itself: fixed texts, safe to print (PyYAML's own may quote the line).
_OWN_YAML_PROBLEMS = ("aliases (*name) are not allowed", "anchors (&name) are not allowed",
                      f"nested deeper than {MAX_YAML_DEPTH} levels", "merge keys (<<) are not allowed",
                      "a key is repeated in this mapping", "a value that cannot be read")


def read_stack_file(path: Path) -> Any:
    """The YAML document of a stack file; ConfigError with the file, line and column (never the
    line's content) when it is too large, not UTF-8 or not the YAML a stack file may be."""
    name = path.name
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_STACK_FILE_BYTES + 1)
    except OSError as error:
        raise ConfigError(f"{name}: cannot be read ({error.strerror or type(error).__name__})") from None
    if len(data) > MAX_STACK_FILE_BYTES:
        raise ConfigError(f"{name}: larger than {MAX_STACK_FILE_BYTES // MiB} MiB: not a stack file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line, column = _line_column(data[:error.start].decode("utf-8", "replace"))
        raise ConfigError(f"{name}: not UTF-8 text at line {line}, column {column}") from None
    loader = None
    try:
        loader = _StackFileLoader(text)  # the reader checks every character here
        return loader.get_single_data()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        reason = error.problem if error.problem in _OWN_YAML_PROBLEMS else "not valid YAML"
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{name}: {reason}{where}") from None
    except yaml.reader.ReaderError as error:
        line, column = _line_column(text[:error.position])
        raise ConfigError(f"{name}: a character YAML does not allow at line {line}, column {column}") from None
    except (yaml.YAMLError, RecursionError):
        raise ConfigError(f"{name}: not valid YAML") from None
    finally:
        if loader is not None:
            loader.dispose()


def _line_column(before: str) -> tuple[int, int]:
    """1-based line and column of the character after `before`."""
    return before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1


def stack_file(stack: str, root: Path = ROOT) -> Path:
    return root / f"Pulumi.{stack}.yaml"


def load_stack(stack: str, root: Path = ROOT) -> StackConfig:
    """The config of `Pulumi.<stack>.yaml`; ConfigError naming the file and key when bad."""
    path = stack_file(stack, root)
    if not path.exists():
        stacks = sorted(p.name.split(".")[1] for p in root.glob("Pulumi.*.yaml"))
        raise ConfigError(f"{path.name}: no such stack file (stacks: {', '.join(stacks)})")
    document = read_stack_file(path)
    if document is None:
        document = {}
    if not isinstance(document, dict) or not isinstance(document.get("config") or {}, dict):
        raise ConfigError(f"{path.name}: expected a mapping with a `config:` mapping")
    config = document.get("config") or {}
    _stack_file_secrets(config, path.name)
    return from_mapping(config, path.name)


def _is_secure(value: Any) -> bool:
    """A Pulumi secret as a stack file holds it: `{secure: <ciphertext>}`."""
    return isinstance(value, dict) and len(value) == 1 and "secure" in value


def _stack_file_secrets(config: Mapping[Any, Any], source: str) -> None:
    """In a stack file, `secrets` holds only encrypted values (`{secure: ...}`), by file name."""
    secrets = config.get(f"{PROJECT}:{SECRETS_KEY}")
    key = f"{PROJECT}:{SECRETS_KEY}"
    if secrets is None or _is_secure(secrets):  # none, or the whole object encrypted
        return
    if not isinstance(secrets, dict):
        raise ConfigError(f"{source}: {key}: must be a mapping of secret file names to secret values, each set "
                          f"with `pulumi config set --secret --path '{SECRETS_KEY}.<name>' <value>` (value hidden)")
    for name, value in secrets.items():
        if not secret_name_ok(name):
            raise ConfigError(f"{source}: {key}.{_key_part(name)}: not a secret file name: letters, digits, '.', "
                              "'_' and '-' only, never '.' or '..' (each secret is a file in its component's "
                              "secrets directory)")
        if not (_is_secure(value) and isinstance(value["secure"], str)):
            raise ConfigError(f"{source}: {key}.{name}: a plain-text value (hidden): a secret is stored "
                              f"encrypted; set it with `pulumi config set --secret --path '{SECRETS_KEY}.{name}' "
                              "<value>` and remove the plain one")


def from_mapping(config: Mapping[Any, Any], source: str) -> StackConfig:
    """Our project's keys (`medianest-observability:<key>`) of a Pulumi config mapping;
    other namespaces belong to providers and are left alone."""
    if not isinstance(config, Mapping):
        raise ConfigError(f"{source}: expected a mapping with a `config:` mapping")
    ours: dict[str, Any] = {}
    budget = [MAX_VALUES]
    for key, value in config.items():
        namespace, _, name = str(key).partition(":")
        # Secret values are read by the Pulumi program alone (stack/secrets.py), never modelled.
        if namespace == PROJECT and name != SECRETS_KEY:
            _inspect(value, [name], source, budget)
            ours[name] = value
    try:
        return StackConfig.model_validate(ours)
    except ValidationError as error:
        raise ConfigError(_describe(error, source)) from None


def _inspect(value: Any, path: list[Any], source: str, budget: list[int]) -> None:
    """What pydantic is never handed: a Pulumi secret outside `secrets`, values nested too deep or
    too many, text too long or with control characters, anything YAML types beyond JSON's."""
    def refuse(problem: str) -> ConfigError:
        return ConfigError(f"{source}: {PROJECT}:{_key_path(path)}: {problem}")

    budget[0] -= 1
    if budget[0] < 0:
        raise refuse(f"more than {MAX_VALUES} values: not a stack configuration")
    if len(path) > MAX_VALUE_DEPTH:
        raise refuse(f"nested deeper than {MAX_VALUE_DEPTH} levels")
    if _is_secure(value):
        raise refuse(f"a Pulumi secret outside {SECRETS_KEY}: only {PROJECT}:{SECRETS_KEY}.<file name> holds "
                     "secrets (each mounted as a file); this key is kept in plain state, so keep it free of "
                     "credentials and set it without --secret")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise refuse("keys must be strings")
            if len(key) > MAX_KEY or _UNPRINTABLE.search(key):
                raise refuse(f"a key longer than {MAX_KEY} characters or with control characters (hidden)")
            _inspect(item, [*path, key], source, budget)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _inspect(item, [*path, index], source, budget)
    elif isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise refuse(f"longer than {MAX_TEXT} characters (value hidden)")
        if _UNPRINTABLE.search(value):
            raise refuse("contains control or invisible formatting characters (value hidden)")
    elif not (value is None or isinstance(value, bool | int | float)):
        raise refuse("must be a string, number, boolean, list or mapping (value hidden)")


def from_pulumi() -> StackConfig:
    """The config of the running Pulumi program (values arrive as strings, objects as JSON).
    A key Pulumi holds as a secret must be `secrets` (set with --secret), and no other."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    source = f"Pulumi.{pulumi.get_stack()}.yaml"
    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secret_keys = set(runtime_config.get_config_secret_keys_env())
    for key in sorted(map(str, merged)):
        namespace, _, name = key.partition(":")
        if namespace != PROJECT:
            continue
        secret = key in secret_keys or runtime_config.is_config_secret(key)
        if secret and name != SECRETS_KEY:
            raise ConfigError(f"{source}: {PROJECT}:{_key_part(name)}: a Pulumi secret outside {SECRETS_KEY}: only "
                              f"{PROJECT}:{SECRETS_KEY}.<file name> holds secrets (each mounted as a file); set "
                              "this key without --secret and keep credentials out of it")
        if name == SECRETS_KEY and not secret:
            raise ConfigError(f"{source}: {PROJECT}:{SECRETS_KEY}: holds plain-text values (hidden): set each "
                              f"with `pulumi config set --secret --path '{SECRETS_KEY}.<name>' <value>`")
    decoded = {key: _decode(value) for key, value in merged.items()}
    return from_mapping(decoded, source)


def _decode(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            return value
    return value


# --- Error messages: the key always, a value only when known to be safe ----------------------


# Keys of earlier versions, and where they went (an upgrade's config error says so).
MOVED_KEYS = {
    ("grafana",): "Grafana's settings (adminPasswordFile, cookieSecure, rootUrl) are under services.grafana; "
                  "where Grafana reaches a datasource is services.<component>.datasourceUrl",
}


def _describe(error: ValidationError, source: str) -> str:
    """One line per problem: `<file>: <project>:<dotted key>: <what is wrong>`, then the value
    when the field is on the allowlist (`_shown_kind`), else `(value hidden)`."""
    lines = []
    for item in error.errors(include_url=False):
        if not item["loc"]:
            # A rule across keys (StackConfig's own validators): its message names the key.
            lines.append(f"{source}: {PROJECT}:{item['msg'].removeprefix('Value error, ')}")
            continue
        key = _key_path(item["loc"])
        message = item["msg"]
        got = ""
        if item["type"] == "extra_forbidden" and item["loc"] in MOVED_KEYS:
            message = f"moved: {MOVED_KEYS[item['loc']]}"
        elif item["type"] == "extra_forbidden":
            message = "unknown key; valid keys here: " + ", ".join(_valid_keys(item["loc"][:-1]))
        elif item["type"] != "missing":
            got = _got(item["loc"], item.get("input"))
        lines.append(f"{source}: {PROJECT}:{key}: {message}{got}")
    if len(lines) > MAX_ERROR_LINES:
        lines[MAX_ERROR_LINES:] = [f"{source}: and {len(lines) - MAX_ERROR_LINES} more problems"]
    return "\n".join(lines)


def _got(loc: tuple[Any, ...], value: Any) -> str:
    """` (got <value>)` for an allowlisted field and a value of its kind; else ` (value hidden)`."""
    kind = _shown_kind(loc)
    number = isinstance(value, int | float | Decimal)
    if (kind == "number" and number) or (kind == "text" and (number or isinstance(value, str))):
        return f" (got {_clip_repr(value)})"
    return " (value hidden)"


def _key_part(part: Any) -> str:
    """A key as an error names it: as written when plain, else quoted and clipped."""
    if isinstance(part, int) and not isinstance(part, bool):
        return str(part)
    text = str(part)
    return text if _PLAIN_KEY.fullmatch(text) else _clip_repr(text[:40])


def _key_path(loc: Any) -> str:
    return ".".join(_key_part(part) for part in loc)


def _shown_kind(loc: tuple[Any, ...]) -> str | None:
    """Whether the field at `loc` may be echoed: "number" (int, float, bool), "text" (an enum,
    or a type marked SHOWN: durations, sizes, image tags) or None (anything else: hidden)."""
    annotation: Any = StackConfig
    for part in loc:
        model = _model_in(annotation)
        if isinstance(part, int):
            annotation = _item_type(annotation)
        elif model is not None:
            field = next((f for n, f in model.model_fields.items() if f.alias == part or n == part), None)
            if field is None:
                return None
            annotation = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
        else:
            return None  # inside a dict (labels, annotations, addresses): keys and values hidden
        if annotation is None:
            return None
    return _kind(annotation)


def _unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """The type under Annotated and Optional, and the metadata met on the way."""
    metadata: list[Any] = []
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation, *extra = get_args(annotation)
            metadata += extra
        elif origin in (Union, types.UnionType):
            members = [a for a in get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation, metadata
            annotation = members[0]
        else:
            return annotation, metadata


def _item_type(annotation: Any) -> Any:
    base, _ = _unwrap(annotation)
    if get_origin(base) is tuple:
        return get_args(base)[0]
    return None


def _kind(annotation: Any) -> str | None:
    base, metadata = _unwrap(annotation)
    if any(m is SHOWN for m in metadata) or get_origin(base) is Literal:
        return "text"
    if base in (bool, int, float, Decimal):
        return "number"
    return None


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
