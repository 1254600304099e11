"""Jaeger v2: an OpenTelemetry collector that receives OTLP, stores spans in memory, in Badger or
in an external Elasticsearch / OpenSearch cluster, and serves the UI and query API.

config.yaml is built from typed models whose field names are those of Jaeger's and the collector's
config structs (jaeger_storage, jaeger_query, jaeger_storage_exporter, badger's Config, the
Elasticsearch/OpenSearch Configuration, the contrib healthcheckv2 extension, service::telemetry);
a model refuses any other field.

The Elasticsearch and OpenSearch backends, from jaegertracing/jaeger:
- cmd/jaeger/internal/extension/jaegerstorage/config.go: TraceBackend's `elasticsearch` and
  `opensearch` keys, both an elasticsearch `config.Configuration`;
- internal/storage/elasticsearch/config/config.go: Configuration's `server_urls` (required, URLs),
  `indices.index_prefix` (indices named `<prefix>-jaeger-span-<date>`...), `auth.basic.username`
  and `auth.basic.password_file` (password and password_file exclude each other;
  internal/storage/elasticsearch/config/auth_helper.go reads the file);
- cmd/jaeger/config-elasticsearch.yaml and cmd/jaeger/config-opensearch.yaml, the examples.

Its own metrics (port 8888) are the collector's `otelcol_receiver_*` and `otelcol_exporter_*`
counters, all at the `basic` telemetry level: `normal` exposes them without `detailed`'s
per-request HTTP/RPC histograms.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from dashboards import datasources
from dashboards.common import timeseries
from dashboards.model import Row, Unit, prom
from dashboards.provisioning import traces_to_metrics_queries
from rules.alert_tests import counter, series, silent
from rules.alert_tests import fires as _fires_of
from rules.catalog import Metric, MetricType
from rules.conventions import AlertSeverity, duration_seconds, number
from rules.expressions import down_description, loss_ratio, target_down
from rules.humanize import humanize_percentage as pct
from rules.model import AlertingRule, alert
from rules.testing import AlertAt, Expected, RuleTest, Series
from stack import layout, tools
from stack.dump import dump_yaml
from stack.images import Official
from stack.judges import Judge, numbers
from stack.services.addresses import address_port, url_port
from stack.services.common import image, resources
from stack.services.component import STACK_HEALTH, ComponentModule, FileCheck, Job, SandboxEndpoint
from stack.services.spec import (
    ANYWHERE,
    ConfigFile,
    Flow,
    MetricsEndpoint,
    Pods,
    Port,
    SecretFile,
    ServiceSpec,
    StackPods,
    Volume,
    http_health,
    tcp,
)
from stack.settings import (
    Component,
    Count,
    Duration,
    ImageRef,
    Memory,
    Url,
    UserName,
    VolumeSize,
    _duration_between,
    _image,
    _split,
    _url,
)

if TYPE_CHECKING:
    from stack.config import StackConfig


class _ClusterUrl:
    """A URL of an Elasticsearch or OpenSearch cluster: http(s), with no credentials in it."""

    @staticmethod
    def validate(value: str) -> str:
        if value.startswith(("https://", "http://")) and "@" in _split(value)[0].netloc:
            raise ValueError("must not carry credentials (user:password@): set username, and the password "
                             "as the secret jaeger-storage-password")
        return _url(value, query=False)


class JaegerService(Component):
    image: ImageRef = _image("jaegertracing/jaeger", "2.12.0")
    # Where Grafana reaches it: its datasource's URL.
    datasource_url: Url = "http://jaeger:16686"
    memory: Memory = "512Mi"
    # `memory` loses traces on restart (dev); `badger` keeps them on a volume; `elasticsearch` and
    # `opensearch` store them in an external cluster at serverUrls (nothing kept locally; how long
    # the cluster keeps them is its own ILM/ISM or index cleaner's business, not badgerTtl).
    storage: Literal["memory", "badger", "elasticsearch", "opensearch"] = "memory"
    max_traces: Count(1, 10_000_000) = 100000
    # How long Badger keeps spans.
    badger_ttl: Annotated[Duration, _duration_between("1m", "10y")] = "72h"
    volume_size: VolumeSize = "10Gi"
    # Elasticsearch / OpenSearch only: the cluster's URLs, without credentials.
    server_urls: Annotated[tuple[Annotated[str, AfterValidator(_ClusterUrl.validate)], ...],
                           Field(max_length=16)] = ()
    # Indices are named <indexPrefix>-jaeger-span-<date> and so on.
    index_prefix: str = Field(default="medianest", pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")
    # Basic auth; the password is the secret `jaeger-storage-password`, read from a mounted file.
    username: UserName | None = None

    @model_validator(mode="after")
    def _external_storage(self) -> JaegerService:
        external = self.storage in ("elasticsearch", "opensearch")
        if external and not self.server_urls:
            raise ValueError(f"storage {self.storage} needs serverUrls (the cluster's http(s) URLs)")
        if not external and (self.server_urls or self.username is not None):
            raise ValueError(f"serverUrls and username are for storage elasticsearch or opensearch, not "
                             f"{self.storage}")
        return self


NAME = "jaeger"
UI_PORT = 16686
QUERY_GRPC_PORT = 16685
OTLP_GRPC_PORT = 4317
OTLP_HTTP_PORT = 4318
METRICS_PORT = 8888
HEALTH_PORT = 13133
HEALTH_PATH = "/status"
CONFIG_DIR = "/etc/jaeger"
CONFIG_FILE = layout.JAEGER_CONFIG
CONFIG_PATH = f"{CONFIG_DIR}/config.yaml"
USER = "10001:10001"
LISTEN = "0.0.0.0"
# The image declares VOLUME /tmp, the only directory its uid 10001 can write: Badger's data volume
# is mounted there, and Badger creates its directories below it.
DATA_DIR = "/tmp"
DATA_VOLUME = "jaeger-data"
BADGER_DIR = f"{DATA_DIR}/jaeger"
STORE = "main"
# The external cluster's password (storage elasticsearch or opensearch with a username).
STORAGE_PASSWORD = SecretFile("jaeger-storage-password", f"{CONFIG_DIR}/secrets/storage-password")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Endpoint(_Model):
    endpoint: str = Field(pattern=r"^[^:\s]+:[0-9]+$")

    @property
    def port(self) -> int:
        return address_port(self.endpoint)


def _listen(port: int) -> Endpoint:
    return Endpoint(endpoint=f"{LISTEN}:{port}")


class OtlpProtocols(_Model):
    grpc: Endpoint
    http: Endpoint


class OtlpReceiver(_Model):
    protocols: OtlpProtocols


class Receivers(_Model):
    otlp: OtlpReceiver


class BatchProcessor(_Model):
    """The collector's defaults (8192 spans or 200ms)."""


class Processors(_Model):
    batch: BatchProcessor = BatchProcessor()


class StorageExporter(_Model):
    trace_storage: str


class Exporters(_Model):
    jaeger_storage_exporter: StorageExporter


class MemoryBackend(_Model):
    max_traces: int = Field(gt=0)


class BadgerDirectories(_Model):
    keys: str
    values: str


class BadgerTTL(_Model):
    # A Go duration (h, m, s): Badger's config is a time.Duration.
    spans: str = Field(pattern=r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?$", min_length=2)


class BadgerBackend(_Model):
    directories: BadgerDirectories
    # False: keep data in `directories` (true would use a throwaway temporary directory).
    ephemeral: bool = False
    ttl: BadgerTTL


class BasicAuth(_Model):
    username: str = Field(min_length=1)
    # The password is only ever read from this file (never `password` inline).
    password_file: str = Field(pattern=r"^/")


class ClusterAuth(_Model):
    basic: BasicAuth


class Indices(_Model):
    index_prefix: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")


class ClusterBackend(_Model):
    """Elasticsearch or OpenSearch: one Configuration struct serves both."""

    server_urls: tuple[str, ...] = Field(min_length=1)
    indices: Indices
    # No auth: a cluster that lets anyone in on its network.
    auth: ClusterAuth | None = None

    @model_validator(mode="after")
    def _urls(self) -> ClusterBackend:
        bad = [u for u in self.server_urls if not u.startswith(("http://", "https://"))]
        if bad:
            raise ValueError(f"server_urls must be http(s) URLs: {', '.join(bad)}")
        return self


class TraceBackend(_Model):
    memory: MemoryBackend | None = None
    badger: BadgerBackend | None = None
    elasticsearch: ClusterBackend | None = None
    opensearch: ClusterBackend | None = None

    @model_validator(mode="after")
    def _one(self) -> TraceBackend:
        kinds = (self.memory, self.badger, self.elasticsearch, self.opensearch)
        if sum(kind is not None for kind in kinds) != 1:
            raise ValueError("a backend is exactly one of memory, badger, elasticsearch, opensearch")
        return self


class JaegerStorage(_Model):
    backends: dict[str, TraceBackend]


class QueryStorage(_Model):
    traces: str


class JaegerQuery(_Model):
    storage: QueryStorage
    # Serves the UI and the HTTP query API.
    http: Endpoint
    # The gRPC query API (api_v2, api_v3): explicit, or Jaeger listens on [::]:16685 on its own.
    grpc: Endpoint


class PathConfig(_Model):
    enabled: bool
    path: str = Field(pattern=r"^/")


class HealthHttp(_Model):
    endpoint: str = Field(pattern=r"^[^:\s]+:[0-9]+$")
    status: PathConfig

    @property
    def port(self) -> int:
        return address_port(self.endpoint)


class HealthCheckV2(_Model):
    # The v2 behaviour: per-component status at `http.status.path`.
    use_v2: Literal[True] = True
    http: HealthHttp


class Extensions(_Model):
    jaeger_storage: JaegerStorage
    jaeger_query: JaegerQuery
    healthcheckv2: HealthCheckV2


class Pipeline(_Model):
    receivers: tuple[str, ...]
    processors: tuple[str, ...]
    exporters: tuple[str, ...]


class PrometheusPull(_Model):
    host: str
    port: int


class PullExporter(_Model):
    prometheus: PrometheusPull


class PullReader(_Model):
    exporter: PullExporter


class MetricReader(_Model):
    pull: PullReader


class TelemetryMetrics(_Model):
    level: Literal["none", "basic", "normal", "detailed"] = "normal"
    readers: tuple[MetricReader, ...] = Field(min_length=1)


class Telemetry(_Model):
    metrics: TelemetryMetrics


class Service(_Model):
    extensions: tuple[str, ...]
    pipelines: dict[str, Pipeline]
    telemetry: Telemetry


class JaegerConfig(_Model):
    """Jaeger's `--config` file: what the collector runs and how its extensions are set."""

    service: Service
    extensions: Extensions
    receivers: Receivers
    processors: Processors
    exporters: Exporters

    @model_validator(mode="after")
    def _references(self) -> JaegerConfig:
        # The collector refuses a pipeline or extension naming a component it has no config for.
        unknown = [e for e in self.service.extensions if e not in Extensions.model_fields]
        for pipeline in self.service.pipelines.values():
            unknown += [r for r in pipeline.receivers if r not in Receivers.model_fields]
            unknown += [p for p in pipeline.processors if p not in Processors.model_fields]
            unknown += [e for e in pipeline.exporters if e not in Exporters.model_fields]
        if unknown:
            raise ValueError(f"service names components that are not configured: {', '.join(unknown)}")
        backends = self.extensions.jaeger_storage.backends
        stores = {self.exporters.jaeger_storage_exporter.trace_storage, self.extensions.jaeger_query.storage.traces}
        missing = sorted(stores - backends.keys())
        if missing:
            raise ValueError(f"trace storage {', '.join(missing)} is not a jaeger_storage backend")
        return self


def go_duration(value: str) -> str:
    """A Prometheus duration (`3d`, `72h`) as Go's time.ParseDuration reads it (no d, w, y)."""
    seconds = duration_seconds(value)
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{round(seconds * 1000)}ms"


def _backend(config: StackConfig) -> TraceBackend:
    settings = config.services.jaeger
    if settings.storage == "memory":
        return TraceBackend(memory=MemoryBackend(max_traces=settings.max_traces))
    if settings.storage == "badger":
        return TraceBackend(badger=BadgerBackend(
            directories=BadgerDirectories(keys=f"{BADGER_DIR}/keys", values=f"{BADGER_DIR}/values"),
            ttl=BadgerTTL(spans=go_duration(settings.badger_ttl)),
        ))
    auth = None
    if settings.username is not None:
        auth = ClusterAuth(basic=BasicAuth(username=settings.username, password_file=STORAGE_PASSWORD.path))
    cluster = ClusterBackend(server_urls=settings.server_urls, indices=Indices(index_prefix=settings.index_prefix),
                             auth=auth)
    if settings.storage == "opensearch":
        return TraceBackend(opensearch=cluster)
    return TraceBackend(elasticsearch=cluster)


def secrets(config: StackConfig) -> tuple[SecretFile, ...]:
    """The external cluster's password, when Jaeger logs in to it."""
    settings = config.services.jaeger
    external = settings.storage in ("elasticsearch", "opensearch")
    return (STORAGE_PASSWORD,) if external and settings.username is not None else ()


def jaeger_config(config: StackConfig) -> JaegerConfig:
    """Jaeger's configuration for this stack (pure)."""
    return JaegerConfig(
        service=Service(
            extensions=("jaeger_storage", "jaeger_query", "healthcheckv2"),
            pipelines={"traces": Pipeline(
                receivers=("otlp",), processors=("batch",), exporters=("jaeger_storage_exporter",))},
            telemetry=Telemetry(metrics=TelemetryMetrics(readers=(MetricReader(pull=PullReader(
                exporter=PullExporter(prometheus=PrometheusPull(host=LISTEN, port=METRICS_PORT)))),))),
        ),
        extensions=Extensions(
            jaeger_storage=JaegerStorage(backends={STORE: _backend(config)}),
            jaeger_query=JaegerQuery(storage=QueryStorage(traces=STORE), http=_listen(UI_PORT),
                                     grpc=_listen(QUERY_GRPC_PORT)),
            healthcheckv2=HealthCheckV2(http=HealthHttp(
                endpoint=f"{LISTEN}:{HEALTH_PORT}", status=PathConfig(enabled=True, path=HEALTH_PATH))),
        ),
        # Every endpoint explicit: the collector's defaults listen on localhost only.
        receivers=Receivers(otlp=OtlpReceiver(protocols=OtlpProtocols(
            grpc=_listen(OTLP_GRPC_PORT), http=_listen(OTLP_HTTP_PORT)))),
        processors=Processors(),
        exporters=Exporters(jaeger_storage_exporter=StorageExporter(trace_storage=STORE)),
    )


def render(config: StackConfig) -> str:
    return dump_yaml(jaeger_config(config).model_dump(mode="json", exclude_none=True, by_alias=True))


def flows(config: StackConfig) -> tuple[Flow, ...]:
    """Traces from any of MediaNest's pods, on the OTLP ports only; its storage when a server
    (memory and Badger keep spans in the pod)."""
    settings = config.services.jaeger
    storage = [url_port(url) for url in settings.server_urls] if settings.storage in ("elasticsearch",
                                                                                         "opensearch") else []
    return (Flow(Pods(config.kubernetes.backend.namespace), StackPods(NAME), tcp(OTLP_GRPC_PORT, OTLP_HTTP_PORT)),
            Flow(StackPods(NAME), ANYWHERE, tcp(*storage)))


def service(config: StackConfig) -> ServiceSpec:
    settings = config.services.jaeger
    volumes = (Volume(DATA_VOLUME, DATA_DIR, size=settings.volume_size),) if settings.storage == "badger" else ()
    return ServiceSpec(
        flows=flows(config),
        name=NAME,
        image=image(settings.image),
        user=USER,
        resources=resources(settings),
        args=(f"--config={CONFIG_PATH}",),
        ports=(
            Port("ui", UI_PORT, host_port=settings.publish),
            Port("query-grpc", QUERY_GRPC_PORT),
            Port("otlp-grpc", OTLP_GRPC_PORT),
            Port("otlp-http", OTLP_HTTP_PORT),
            Port("metrics", METRICS_PORT),
            Port("health", HEALTH_PORT),
        ),
        config_dir=CONFIG_DIR,
        files=(ConfigFile(source=CONFIG_FILE, path=CONFIG_PATH, content=render(config)),),
        secrets=secrets(config),
        # Only Badger keeps data here; memory loses it, Elasticsearch / OpenSearch keep it elsewhere.
        volumes=volumes,
        # Alpine-based image: busybox wget exists.
        health=http_health(HEALTH_PORT, HEALTH_PATH),
        metrics=MetricsEndpoint(job=config.jobs.jaeger, port=METRICS_PORT),
    )


# --- alerts and their tests ----------------------------------------------------------------------

WARNING = AlertSeverity.WARNING

# What each alert carries whatever the data, stated apart from the rules: a wrong severity,
# routing label or summary there fails the tests.
EXPECTED = {
    "JaegerDown": Expected("warning", "platform", "Jaeger is down"),
    "JaegerSpansRefused": Expected("warning", "platform", "Jaeger refuses spans"),
    "JaegerExportFailing": Expected("warning", "platform", "Jaeger fails to store spans"),
}

# The instance as the scrape config names it (Docker): its metrics port.
INSTANCE = f"{NAME}:{METRICS_PORT}"


def alerts(config: StackConfig) -> tuple[AlertingRule, ...]:
    jobs, t = config.jobs, config.thresholds
    common = {"runbook_base_url": config.runbook_base_url}
    jaeger = f'job="{jobs.jaeger}"'
    return (
        # Warning: traces are sampled and best effort; nothing else depends on them.
        alert("JaegerDown", target_down(jobs.jaeger), for_="5m", severity=WARNING, service="platform",
              summary="Jaeger is down",
              description=down_description("Jaeger", "5 minutes"), **common),
        alert("JaegerSpansRefused",
              loss_ratio("otelcol_receiver_refused_spans_total", "otelcol_receiver_accepted_spans_total",
                         "job, instance, receiver", jaeger) + f" > {number(t.span_loss_ratio)}",
              for_="10m", severity=WARNING, service="platform",
              summary="Jaeger refuses spans",
              description="Jaeger {{ $labels.instance }} refuses {{ $value | humanizePercentage }} of "
                          "the spans its {{ $labels.receiver }} receiver gets: traces are lost.",
              **common),
        alert("JaegerExportFailing",
              loss_ratio("otelcol_exporter_send_failed_spans_total", "otelcol_exporter_sent_spans_total",
                         "job, instance, exporter", jaeger) + f" > {number(t.span_loss_ratio)}",
              for_="10m", severity=WARNING, service="platform",
              summary="Jaeger fails to store spans",
              description="{{ $value | humanizePercentage }} of the spans Jaeger {{ $labels.instance }} "
                          "exports through {{ $labels.exporter }} fail to reach its storage.", **common),
    )


def _fires(at: str, alert_name: str, description: str, /, **labels: str) -> AlertAt:
    return _fires_of(EXPECTED, at, alert_name, description, **labels)


def alert_tests(config: StackConfig) -> tuple[RuleTest, ...]:
    jobs, t = config.jobs, config.thresholds
    jaeger = {"job": jobs.jaeger, "instance": INSTANCE}
    receiver = {"receiver": "otlp", "transport": "grpc", **jaeger}

    def refused(ratio: float) -> tuple[Series, ...]:
        return (series("otelcol_receiver_accepted_spans_total", counter(1000 * (1 - ratio), 30), **receiver),
                series("otelcol_receiver_refused_spans_total", counter(1000 * ratio, 30), **receiver))

    exporter = {"exporter": "jaeger_storage_exporter", **jaeger}

    def export_failed(ratio: float) -> tuple[Series, ...]:
        return (series("otelcol_exporter_sent_spans_total", counter(1000 * (1 - ratio), 30), **exporter),
                series("otelcol_exporter_send_failed_spans_total", counter(1000 * ratio, 30), **exporter))

    lost = 2 * t.span_loss_ratio
    return (
        RuleTest(
            "Jaeger down for 5 minutes opens a ticket",
            series=(series("up", "1 0x10", **jaeger),),
            alerts=(silent("5m", "JaegerDown"),
                    _fires("7m", "JaegerDown", f"Jaeger cannot be reached through {INSTANCE} for more "
                           "than 5 minutes.", **jaeger)),
        ),
        RuleTest(
            "Jaeger refusing spans over the threshold for 10 minutes opens a ticket",
            series=refused(lost),
            alerts=(silent("8m", "JaegerSpansRefused"),
                    _fires("15m", "JaegerSpansRefused", f"Jaeger {INSTANCE} refuses {pct(lost)} of the "
                           "spans its otlp receiver gets: traces are lost.", receiver="otlp", **jaeger)),
        ),
        RuleTest(
            "Jaeger refusing spans under the threshold stays silent",
            series=refused(t.span_loss_ratio / 2),
            alerts=(silent("15m", "JaegerSpansRefused"),),
        ),
        RuleTest(
            "Jaeger failing to store spans over the threshold for 10 minutes opens a ticket",
            series=export_failed(lost),
            alerts=(silent("8m", "JaegerExportFailing"),
                    _fires("15m", "JaegerExportFailing", f"{pct(lost)} of the spans Jaeger {INSTANCE} "
                           "exports through jaeger_storage_exporter fail to reach its storage.",
                           exporter="jaeger_storage_exporter", **jaeger)),
        ),
        RuleTest(
            "Jaeger failing to store spans under the threshold stays silent",
            series=export_failed(t.span_loss_ratio / 2),
            alerts=(silent("15m", "JaegerExportFailing"),),
        ),
    )


def _image_tag(version: str) -> str:
    """Jaeger releases v1.x and v2.x from one tag; v2.0.0 came with v1.63.0 (CHANGELOG.md:
    "v1.74.0 / v2.11.0"), and the image has no `v`."""
    _, minor, patch = numbers(version)
    return f"2.{minor - 63}.{patch}"


def _version_flags(tag: str, module_version: str) -> list[str]:
    """Jaeger's scripts/makefiles/BuildInfo.mk."""
    package = "github.com/jaegertracing/jaeger/internal/version"
    return [f"-X {package}.latestVersion=v{tag}", f"-X {package}.commitSHA={module_version}"]


JUDGE = Judge("jaeger", "github.com/jaegertracing/jaeger", ("jaeger",), "jaegertracing/jaeger",
              _image_tag, _version_flags)
# jaeger@v1.75.0/cmd/jaeger/Dockerfile on scripts/build/docker/base (alpine + CA certificates):
# /cmd/jaeger/jaeger-linux, USER 10001, VOLUME /tmp, ENV JAEGER_LISTEN_HOST=0.0.0.0.
LOCAL_IMAGE = Official({"/cmd/jaeger/jaeger-linux": "jaeger"}, ("/cmd/jaeger/jaeger-linux",),
                       ("4317/tcp", "4318/tcp", "5778/tcp", "5779/tcp", "9411/tcp", "13132/tcp", "13133/tcp",
                        "14250/tcp", "14268/tcp", "16686/tcp"),
                       user="10001", volumes=("/tmp",), env=("JAEGER_LISTEN_HOST=0.0.0.0",), base="alpine",
                       users={"jaeger": 10001})


_VERSION_LINE = re.compile(r"^\S+ \S+ application version: .*\n?", re.MULTILINE)


def validate(config: StackConfig, path: Path) -> tuple[bool, str]:
    """Jaeger's own validation of its config: every extension, receiver and exporter decoded
    (an unknown field or component fails), nothing started."""
    run = tools.run(["jaeger", "validate", f"--config={path}"])
    return run.ok, _VERSION_LINE.sub("", run.output).strip()


C = MetricType.COUNTER
# Jaeger v2 is an OpenTelemetry collector: its own metrics (port 8888) are the collector's, with
# the `_total` suffix the Prometheus exporter adds to counters. In 2.12 the resource attributes
# (service_instance_id, service_name, service_version) are on `target_info` only, and each series
# carries `otel_scope_name` (and an empty scope version and schema URL, which Prometheus drops):
# left out, rules sum them away. `refused` counts every span a receiver could not push: the
# collector's alpha gate receiverhelper.newReceiverMetrics, off in 2.12, would move internal
# errors to otelcol_receiver_failed_spans_total instead.
METRICS = (
    Metric("otelcol_receiver_accepted_spans_total", C, "Number of spans successfully pushed into the "
           "pipeline", ("receiver", "transport")),
    Metric("otelcol_receiver_refused_spans_total", C, "Number of spans that could not be pushed into the "
           "pipeline", ("receiver", "transport")),
    Metric("otelcol_exporter_sent_spans_total", C, "Number of spans successfully sent to destination",
           ("exporter",)),
    Metric("otelcol_exporter_send_failed_spans_total", C, "Number of spans in failed attempts to send to "
           "destination", ("exporter",)),
    # Only once a sending queue refuses spans: the shipped jaeger_storage_exporter has its queue off.
    Metric("otelcol_exporter_enqueue_failed_spans_total", C, "Number of spans failed to be added to the "
           "sending queue", ("exporter",)),
)


def dashboard_rows(config: StackConfig) -> tuple[Row, ...]:
    """Its row on the stack's health dashboard: spans in and out."""
    me = f'job="{config.jobs.jaeger}"'
    return (Row(title="Jaeger", panels=(
        timeseries("Jaeger spans", "Spans accepted, refused and failed to store per second.",
                   Unit.OPS_PER_SECOND,
                   prom(f"sum(rate(otelcol_receiver_accepted_spans_total{{{me}}}[$__rate_interval]))", "accepted"),
                   prom(f"sum(rate(otelcol_receiver_refused_spans_total{{{me}}}[$__rate_interval]))", "refused"),
                   prom(f"sum(rate(otelcol_exporter_send_failed_spans_total{{{me}}}[$__rate_interval]))",
                        "export failed"),
                   alerts=("JaegerSpansRefused", "JaegerExportFailing", "JaegerDown"), width=24),
    )),)


def _datasource(config: StackConfig, provisioned: frozenset[str]) -> tuple[str, dict[str, Any]]:
    settings: dict[str, Any] = {}
    if datasources.LOKI.uid in provisioned:
        settings["tracesToLogsV2"] = {
            "datasourceUid": datasources.LOKI.uid, "spanStartTimeShift": "-5m", "spanEndTimeShift": "5m",
            "filterByTraceID": True, "filterBySpanID": False,
            "tags": [{"key": "service.name", "value": "service"}],
        }
    settings["tracesToMetrics"] = {
        "datasourceUid": datasources.PROMETHEUS.uid, "spanStartTimeShift": "-5m", "spanEndTimeShift": "5m",
        "tags": [{"key": "http.route", "value": "endpoint"}],
        "queries": list(traces_to_metrics_queries(config)),
    }
    settings["nodeGraph"] = {"enabled": True}
    return config.services.jaeger.datasource_url, settings


# Its UI is an npm build too: its module embeds a placeholder page (cmd/query/app/ui).
SANDBOX_ENDPOINT = SandboxEndpoint(
    UI_PORT, "no web UI in this build; the query API: /api/services, /api/traces/<trace id> (the simulator's "
    "requests, by the trace ids in its log and its exemplars)")


COMPONENT = ComponentModule(
    sandbox_endpoint=SANDBOX_ENDPOINT, receives_traces=OTLP_HTTP_PORT,
    datasources=(datasources.Provided(datasources.JAEGER, _datasource),),
    dashboard=STACK_HEALTH, dashboard_rows=dashboard_rows,
    metrics=METRICS,
    file_checks=(FileCheck(CONFIG_FILE, "jaeger validate", validate),),
    judge=JUDGE, local_image=LOCAL_IMAGE,
    name=NAME, settings_key="jaeger", settings=JaegerService,
    service=lambda config, files, others: service(config),
    job=Job("jaeger", "jaeger"),
    alerts=alerts, alert_group="platform.meta", alert_tests=alert_tests, expected=EXPECTED,
    sandbox_binary="jaeger",
)
