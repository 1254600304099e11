"""Loki, in one of two modes (`services.loki.mode`):

- `single` (the default): one process (target `all`) storing chunks and its TSDB index on the
  `loki-data` volume, or in an S3-compatible bucket (`objectStorage`), retention applied by the
  compactor.
- `scalable` (Kubernetes, with `objectStorage`): Loki's simple scalable deployment, the same
  loki.yaml run as three targets that scale apart: `read` (query frontends and queriers: this
  component, `loki`, what Grafana queries), `write` (distributors and ingesters, their WAL on a
  volume each: loki_write.py, what Alloy pushes to) and `backend` (compactor, index gateway,
  query scheduler, ruler: loki_backend.py), one memberlist ring between them, every stream
  written to `replicationFactor` ingesters. One scrape job for the three: Loki's alerts and
  row read them as one Loki.

loki.yaml is built from typed models whose field names are those of Loki 3.7's configuration
reference (docs/sources/shared/configuration.md); a model refuses any other field.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from dashboards import datasources
from dashboards.common import timeseries
from dashboards.model import Row, Unit, prom
from dashboards.provisioning import TRACE_ID_IN_LINE
from rules.alert_tests import counter, series, silent
from rules.alert_tests import fires as _fires_of
from rules.catalog import Metric, MetricType
from rules.conventions import AlertSeverity, number
from rules.expressions import down_description, target_down
from rules.humanize import humanize_percentage as pct
from rules.model import AlertingRule, alert
from rules.testing import AlertAt, Expected, RuleTest, Series
from stack import layout
from stack.dump import dump_yaml
from stack.services.common import image, resources
from stack.services.component import STACK_HEALTH, ComponentModule, FileCheck, Job
from stack.services.spec import (
    ANYWHERE,
    ConfigFile,
    Flow,
    HealthCheck,
    MetricsEndpoint,
    Port,
    SecretFile,
    ServiceSpec,
    StackPods,
    Volume,
    Workload,
    headless_service,
    tcp,
)
from stack.settings import (
    Component,
    Count,
    ImageRef,
    Memory,
    Retention,
    Url,
    VolumeSize,
    _at_least_a_day,
    _image,
    _in_secrets_dir,
    _secret_file,
    _Section,
)

if TYPE_CHECKING:
    from stack.config import StackConfig


# Where its secret files are mounted.
SECRETS_DIR = "/etc/loki/secrets/"


class LokiObjectStorage(_Section):
    """Chunks and index in an S3-compatible bucket (AWS S3, Ceph, R2, a MinIO run elsewhere)
    instead of the data volume: the volume then holds only the WAL and the index being built.
    Credentials come from an AWS shared credentials file (`[default]` with aws_access_key_id and
    aws_secret_access_key), mounted from `secrets.<file name>` and read through
    AWS_SHARED_CREDENTIALS_FILE; none: the pod's own identity (IRSA, an instance role)."""

    # host[:port], as Loki's s3 endpoint takes it; empty with AWS: s3.<region>.amazonaws.com.
    endpoint: Annotated[str, Field(pattern=r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$")]
    bucket: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
    region: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,32}$")] = "us-east-1"
    # Plain HTTP to the endpoint: only for a bucket on a private network.
    insecure: bool = False
    # Path-style URLs (endpoint/bucket/key): what S3-compatible stores other than AWS expect.
    force_path_style: bool = True
    credentials_file: Annotated[str, AfterValidator(_secret_file),
                                _in_secrets_dir(SECRETS_DIR, "Loki's")] | None = SECRETS_DIR + "s3-credentials"

    @property
    def port(self) -> int:
        return int(self.endpoint.rsplit(":", 1)[1]) if ":" in self.endpoint else (80 if self.insecure else 443)


class LokiService(Component):
    image: ImageRef = _image("grafana/loki", "3.7.1")
    # Where Grafana reaches it: its datasource's URL.
    datasource_url: Url = "http://loki:3100"
    memory: Memory = "1Gi"
    # Deleted by the compactor once older than this.
    retention_period: Annotated[Retention, AfterValidator(_at_least_a_day)] = "744h"
    volume_size: VolumeSize = "20Gi"
    # None: chunks and index on the data volume (the default; dev).
    object_storage: LokiObjectStorage | None = None
    # `scalable`: write, read and backend targets apart (services.lokiWrite, lokiRead, lokiBackend),
    # sharing `objectStorage`.
    mode: Literal["single", "scalable"] = "single"
    # Ingesters each stream is written to (scalable): a write replica may be lost without losing logs.
    replication_factor: Count(1, 5) = 3
    # Read replicas (scalable; one process alone).
    replicas: Count(1, 16) = 1

    @model_validator(mode="after")
    def _scalable_shares_a_bucket(self) -> LokiService:
        if self.mode == "scalable" and self.object_storage is None:
            raise ValueError("mode scalable needs objectStorage: its targets share chunks and index through a bucket")
        if self.mode == "single" and self.replicas > 1:
            raise ValueError(f"replicas {self.replicas} needs mode scalable: one Loki alone keeps its own index")
        return self


NAME = "loki"
HTTP_PORT = 3100
GRPC_PORT = 9095
CONFIG_DIR = "/etc/loki"
CONFIG_FILE = layout.LOKI_CONFIG
CONFIG_PATH = f"{CONFIG_DIR}/loki.yaml"
# The image's own data directory, owned by its uid 10001.
DATA_DIR = "/loki"
DATA_VOLUME = "loki-data"
USER = "10001:10001"
# The first day of the only schema period. Fixed: changing it would orphan the data written since.
SCHEMA_FROM = "2024-04-01"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Server(_Model):
    http_listen_port: int = HTTP_PORT
    grpc_listen_port: int = GRPC_PORT
    log_level: Literal["debug", "info", "warn", "error"] = "info"


class FilesystemStorage(_Model):
    chunks_directory: str
    rules_directory: str


class S3Storage(_Model):
    """Loki's aws.S3Config, as common.storage.s3: the fields this stack sets."""

    endpoint: str
    bucketnames: str
    region: str
    insecure: bool
    s3forcepathstyle: bool


class CommonStorage(_Model):
    # One of the two: the data volume, or a bucket.
    filesystem: FilesystemStorage | None = None
    s3: S3Storage | None = None


class KVStore(_Model):
    # One instance: the ring lives in memory; several (scalable): gossiped over memberlist.
    store: Literal["inmemory", "memberlist"] = "inmemory"


class Memberlist(_Model):
    # Seeds: every pod behind these DNS names (`dns+`: each A record) joins the ring through them.
    join_members: tuple[str, ...] = Field(min_length=1)
    bind_port: int = 7946


class Ring(_Model):
    kvstore: KVStore = KVStore()


class Common(_Model):
    # Also where Loki puts the WAL, the compactor's and the ruler's files unless told otherwise.
    path_prefix: str
    storage: CommonStorage
    replication_factor: int = Field(default=1, ge=1)
    ring: Ring = Ring()
    # Alone: loopback. Scalable: None, each pod's own address (what the others reach it on).
    instance_addr: str | None = "127.0.0.1"
    # Scalable: where the read and write targets reach the compactor (delete requests).
    compactor_address: str | None = None


class IndexConfig(_Model):
    prefix: str = "index_"
    # Retention with the tsdb store needs 24h index tables.
    period: Literal["24h"] = "24h"


class PeriodConfig(_Model):
    from_: str = Field(alias="from", pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
    store: Literal["tsdb"] = "tsdb"
    object_store: Literal["filesystem", "s3"] = "filesystem"
    schema_: Literal["v13"] = Field(default="v13", alias="schema")
    index: IndexConfig = IndexConfig()


class SchemaConfig(_Model):
    configs: tuple[PeriodConfig, ...] = Field(min_length=1)


class LimitsConfig(_Model):
    # Applied by the compactor (compactor.retention_enabled).
    retention_period: str
    reject_old_samples: bool = True
    reject_old_samples_max_age: str = "168h"
    # Streams are selected by a few bounded labels; ids belong in the line or structured metadata.
    max_label_names_per_series: int = Field(default=15, ge=1, le=30)
    allow_structured_metadata: bool = True
    # Log volume queries (Grafana's Logs Drilldown).
    volume_enabled: bool = True


class Compactor(_Model):
    working_directory: str
    compaction_interval: str = "10m"
    retention_enabled: bool = True
    # Marked chunks wait this long before deletion, so queriers holding an older index still find them.
    retention_delete_delay: str = "2h"
    # Required once retention is enabled: where delete requests are kept.
    delete_request_store: Literal["filesystem", "s3"] = "filesystem"


class Analytics(_Model):
    reporting_enabled: bool = False


class LokiConfig(_Model):
    """`loki.yaml`: the part of Loki's configuration this stack sets; the rest keeps Loki's defaults."""

    # One tenant ("fake"); the stack's network and Grafana are its only clients.
    auth_enabled: bool = False
    server: Server = Server()
    memberlist: Memberlist | None = None
    common: Common
    schema_config: SchemaConfig
    limits_config: LimitsConfig
    compactor: Compactor
    analytics: Analytics = Analytics()


def loki_config(config: StackConfig) -> LokiConfig:
    """Loki's configuration for this stack (pure)."""
    # At least 24h, Loki's minimum: stack/config.py validates it.
    settings = config.services.loki
    bucket = settings.object_storage
    if bucket is None:
        storage, store = CommonStorage(filesystem=FilesystemStorage(
            chunks_directory=f"{DATA_DIR}/chunks", rules_directory=f"{DATA_DIR}/rules")), "filesystem"
    else:
        storage, store = CommonStorage(s3=S3Storage(
            endpoint=bucket.endpoint, bucketnames=bucket.bucket, region=bucket.region, insecure=bucket.insecure,
            s3forcepathstyle=bucket.force_path_style)), "s3"
    if settings.mode == "scalable":
        namespace = config.kubernetes.namespace
        seeds = tuple(f"dns+{headless_service(scalable_name(t))}.{namespace}.svc:{MEMBERLIST_PORT}"
                      for t in SCALABLE_TARGETS)
        common = Common(path_prefix=DATA_DIR, storage=storage, replication_factor=settings.replication_factor,
                        ring=Ring(kvstore=KVStore(store="memberlist")), instance_addr=None,
                        compactor_address=f"http://{scalable_name('backend')}:{HTTP_PORT}")
        cluster = Memberlist(join_members=seeds, bind_port=MEMBERLIST_PORT)
    else:
        common, cluster = Common(path_prefix=DATA_DIR, storage=storage), None
    return LokiConfig(
        memberlist=cluster,
        common=common,
        # Switching a running Loki to a bucket starts its history over there: the data volume's
        # chunks stay where they are, under the same schema period.
        schema_config=SchemaConfig(configs=(PeriodConfig(from_=SCHEMA_FROM, object_store=store),)),
        limits_config=LimitsConfig(retention_period=settings.retention_period),
        compactor=Compactor(working_directory=f"{DATA_DIR}/compactor", delete_request_store=store),
    )


def render(config: StackConfig) -> str:
    return dump_yaml(loki_config(config).model_dump(mode="json", exclude_none=True, by_alias=True))


WORKLOAD = Workload(placement="stateful")
MEMBERLIST_PORT = 7946
# The simple scalable deployment's targets, each its own component: `loki` reads, `loki-<target>`
# the others.
SCALABLE_TARGETS = ("read", "write", "backend")


def scalable_name(target: str) -> str:
    return NAME if target == "read" else f"{NAME}-{target}"


def scalable(config: StackConfig) -> bool:
    return config.services.loki.mode == "scalable"


def push_address(config: StackConfig) -> tuple[str, int]:
    """Where logs are pushed: Loki, or its write target."""
    return (scalable_name("write") if scalable(config) else NAME), HTTP_PORT


def _bucket(config: StackConfig) -> tuple[tuple[Flow, ...], dict[str, str], tuple[SecretFile, ...]]:
    """The flow to its bucket (anywhere: the endpoint's address is the provider's), and the
    credentials file the AWS SDK's default chain reads (AWS_SHARED_CREDENTIALS_FILE)."""
    bucket = config.services.loki.object_storage
    if bucket is None:
        return (), {}, ()
    flows = (Flow(StackPods(NAME), ANYWHERE, tcp(bucket.port)),)
    credentials = bucket.credentials_file
    if credentials is None:
        return flows, {}, ()
    return flows, {"AWS_SHARED_CREDENTIALS_FILE": credentials}, (SecretFile(PurePosixPath(credentials).name,
                                                                             credentials),)


def _health() -> HealthCheck:
    # The image is distroless (no shell, no wget): `loki -health` (grafana/loki#20313) asks
    # http://localhost:3100/ready itself, so the server must listen on 3100.
    return HealthCheck(port=HTTP_PORT, path="/ready", command=("/usr/bin/loki", "-health"))


def scalable_service(config: StackConfig, target: str, settings: Any, volume_size: str) -> ServiceSpec:
    """One target of the simple scalable deployment: the shared loki.yaml with `-target`, a
    StatefulSet with a volume each (the WAL; the compactor's files; the queriers' caches),
    talking to the other targets over HTTP, gRPC and memberlist, and to the bucket."""
    name = scalable_name(target)
    flows, env, secrets = _bucket(config)
    mesh = tuple(Flow(StackPods(name), StackPods(scalable_name(other)), tcp(HTTP_PORT, GRPC_PORT, MEMBERLIST_PORT))
                 for other in SCALABLE_TARGETS)
    return ServiceSpec(
        workload=WORKLOAD,
        flows=tuple(Flow(StackPods(name), f.destination, f.ports) for f in flows) + mesh,
        name=name,
        image=image(config.services.loki.image),
        user=USER,
        resources=resources(settings),
        args=(f"-config.file={CONFIG_PATH}", f"-target={target}"),
        ports=(Port("http", HTTP_PORT), Port("grpc", GRPC_PORT), Port("memberlist", MEMBERLIST_PORT)),
        config_dir=CONFIG_DIR,
        files=(ConfigFile(source=CONFIG_FILE, path=CONFIG_PATH, content=render(config)),),
        env=env,
        secrets=secrets,
        volumes=(Volume(DATA_VOLUME if target == "read" else f"{name}-data", DATA_DIR, size=volume_size),),
        health=_health(),
        # One job for the whole deployment: Loki's alerts and row read it as one Loki.
        metrics=MetricsEndpoint(job=config.jobs.loki, port=HTTP_PORT),
        replicas=settings.replicas,
    )


def service(config: StackConfig) -> ServiceSpec:
    settings = config.services.loki
    if scalable(config):
        return scalable_service(config, "read", settings, settings.volume_size)
    flows, env, secrets = _bucket(config)
    return ServiceSpec(
        workload=WORKLOAD,
        flows=flows,
        name=NAME,
        image=image(settings.image),
        user=USER,
        resources=resources(settings),
        args=(f"-config.file={CONFIG_PATH}",),
        ports=(
            Port("http", HTTP_PORT, host_port=settings.publish),
            Port("grpc", GRPC_PORT),
        ),
        config_dir=CONFIG_DIR,
        files=(ConfigFile(source=CONFIG_FILE, path=CONFIG_PATH, content=render(config)),),
        env=env,
        secrets=secrets,
        volumes=(Volume(DATA_VOLUME, DATA_DIR, size=settings.volume_size),),
        health=_health(),
        metrics=MetricsEndpoint(job=config.jobs.loki, port=HTTP_PORT),
        # Writes only under /loki (the volume); /tmp is a tmpfs provided by the targets.
        read_only_root=True,
    )


# --- alerts and their tests ----------------------------------------------------------------------

CRITICAL, WARNING = AlertSeverity.CRITICAL, AlertSeverity.WARNING

# What each alert carries whatever the data, stated apart from the rules: a wrong severity,
# routing label or summary there fails the tests.
EXPECTED = {
    "LokiRequestErrors": Expected("warning", "platform", "Loki is failing requests"),
    "LokiDown": Expected("critical", "platform", "Loki is down"),
}

# The instance as the scrape config names it (Docker).
INSTANCE = f"{NAME}:{HTTP_PORT}"


def alerts(config: StackConfig) -> tuple[AlertingRule, ...]:
    jobs, t = config.jobs, config.thresholds
    common = {"runbook_base_url": config.runbook_base_url}
    loki = f'job="{jobs.loki}"'
    return (
        alert("LokiRequestErrors",
              f"sum by (job, route) (rate(loki_request_duration_seconds_count{{{loki},"
              f'status_code=~"5.."}}[5m])) '
              f"/ sum by (job, route) (rate(loki_request_duration_seconds_count{{{loki}}}[5m])) "
              f"> {number(t.loki_error_ratio)}",
              for_="15m", severity=WARNING, service="platform",
              summary="Loki is failing requests",
              description="{{ $value | humanizePercentage }} of the {{ $labels.route }} requests to "
                          "{{ $labels.job }} failed with a 5xx over the last 5 minutes.", **common),
        # Critical: Alloy buffers logs for a while only, then they are lost.
        alert("LokiDown", target_down(jobs.loki), for_="2m", severity=CRITICAL, service="platform",
              summary="Loki is down",
              description=down_description("Loki", "2 minutes"), **common),
    )


def _fires(at: str, alert_name: str, description: str, /, **labels: str) -> AlertAt:
    return _fires_of(EXPECTED, at, alert_name, description, **labels)


def alert_tests(config: StackConfig) -> tuple[RuleTest, ...]:
    jobs, t = config.jobs, config.thresholds
    loki = {"job": jobs.loki, "instance": INSTANCE}
    push = {"method": "POST", "route": "loki_api_v1_push", "ws": "false", **loki}

    def loki_requests(error_ratio: float) -> tuple[Series, ...]:
        return (series("loki_request_duration_seconds_count", counter(100 * (1 - error_ratio), 30),
                       status_code="204", **push),
                series("loki_request_duration_seconds_count", counter(100 * error_ratio, 30),
                       status_code="500", **push))

    return (
        RuleTest(
            "Loki failing requests over the threshold for 15 minutes opens a ticket",
            series=loki_requests(2 * t.loki_error_ratio),
            alerts=(silent("10m", "LokiRequestErrors"),
                    _fires("20m", "LokiRequestErrors", f"{pct(2 * t.loki_error_ratio)} of the "
                           f"loki_api_v1_push requests to {jobs.loki} failed with a 5xx over the last "
                           "5 minutes.", job=jobs.loki, route="loki_api_v1_push")),
        ),
        RuleTest(
            "Loki failing requests under the threshold stays silent",
            series=loki_requests(t.loki_error_ratio / 2),
            alerts=(silent("20m", "LokiRequestErrors"),),
        ),
        RuleTest(
            "Loki down for 2 minutes pages",
            series=(series("up", "1 0x10", **loki),),
            alerts=(silent("2m", "LokiDown"),
                    _fires("4m", "LokiDown", f"Loki cannot be reached through {INSTANCE} for more than "
                           "2 minutes.", **loki)),
        ),
    )


def check_config(config: StackConfig, path: Path) -> tuple[bool, str]:
    """No Loki binary here: its config read back into the typed model it was generated from."""
    try:
        LokiConfig.model_validate(yaml.safe_load(path.read_text()))
    except ValidationError as error:
        return False, str(error)
    return True, ""


C, G, H = MetricType.COUNTER, MetricType.GAUGE, MetricType.HISTOGRAM
# Its own metrics, from its sources (AGPL: no binary here). Loki's HTTP and gRPC server metrics
# come from dskit (instrument.DefBuckets).
METRICS = (
    Metric("loki_request_duration_seconds", H, "Time (in seconds) spent serving HTTP requests",
           ("method", "route", "status_code", "ws"),
           buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100)),
    Metric("loki_inflight_requests", G, "Current number of inflight requests", ("method", "route")),
    # Loki 3.x adds labels (retention_hours, policy, format...) depending on the version.
    Metric("loki_distributor_lines_received_total", C, "The total number of lines received per tenant",
           ("tenant",)),
    Metric("loki_distributor_bytes_received_total", C, "The total number of uncompressed bytes received "
           "per tenant", ("tenant",)),
    Metric("loki_discarded_samples_total", C, "The total number of samples that were discarded",
           ("reason", "tenant")),
    Metric("loki_discarded_bytes_total", C, "The total number of bytes that were discarded",
           ("reason", "tenant")),
)


def dashboard_rows(config: StackConfig) -> tuple[Row, ...]:
    """Its row on the stack's health dashboard: requests and ingestion."""
    me = f'job="{config.jobs.loki}"'
    return (Row(title="Loki", panels=(
        timeseries("Loki requests by status", "Loki HTTP requests per second by status code.",
                   Unit.REQUESTS_PER_SECOND,
                   prom(f"sum by (status_code) (rate(loki_request_duration_seconds_count{{{me}}}"
                        "[$__rate_interval]))", "{{status_code}}"),
                   alerts=("LokiRequestErrors", "LokiDown")),
        timeseries("Loki ingestion", "Log lines received and discarded per second.", Unit.OPS_PER_SECOND,
                   prom(f"sum(rate(loki_distributor_lines_received_total{{{me}}}[$__rate_interval]))", "received"),
                   prom(f"sum(rate(loki_discarded_samples_total{{{me}}}[$__rate_interval]))", "discarded")),
    )),)


def check(config: StackConfig) -> str | None:
    if scalable(config) and config.target != "kubernetes":
        return "mode: scalable needs target kubernetes (one container per component on Docker)"
    return None


def _datasource(config: StackConfig, provisioned: frozenset[str]) -> tuple[str, dict[str, Any]]:
    settings: dict[str, Any] = {"maxLines": 1000}
    if datasources.JAEGER.uid in provisioned:
        settings["derivedFields"] = [{
            "name": "TraceID", "matcherType": "regex", "matcherRegex": TRACE_ID_IN_LINE,
            "datasourceUid": datasources.JAEGER.uid, "url": "${__value.raw}", "urlDisplayLabel": "Open trace in Jaeger",
        }]
    return config.services.loki.datasource_url, settings


COMPONENT = ComponentModule(
    datasources=(datasources.Provided(datasources.LOKI, _datasource),),
    dashboard=STACK_HEALTH, dashboard_rows=dashboard_rows,
    metrics=METRICS,
    file_checks=(FileCheck(CONFIG_FILE, "the LokiConfig model", check_config),),
    name=NAME, settings_key="loki", settings=LokiService,
    service=lambda config, files, others: service(config), check=check,
    job=Job("loki", "loki"),
    alerts=alerts, alert_group="platform.meta", alert_tests=alert_tests, expected=EXPECTED,
    no_local_image="Loki is AGPL: not built or vendored here, and no binary of it exists on this machine",
    unjudged="its config is checked by typed models, not a binary",
)
