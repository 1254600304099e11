"""Loki: one process (target `all`) storing chunks and its TSDB index on the filesystem of the
`loki-data` volume, with retention applied by the compactor.

loki.yaml is built from typed models whose field names are those of Loki 3.7's configuration
reference (docs/sources/shared/configuration.md); a model refuses any other field.

Moving to object storage (documentation only; not implemented here):
- `common.storage`: replace `filesystem` with an `s3` (or `gcs`, `azure`) block: bucket, endpoint,
  region; credentials from mounted files or the workload's identity, never inline.
- `schema_config.configs`: add a period with `object_store: s3` (or `gcs`) starting at a future
  date; never edit the `from` of a period already written.
- `compactor.delete_request_store`: the same object store (`s3`, `gcs`, ...).
The volume then only holds the WAL, the compactor's working files and caches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from stack.dump import dump_yaml
from stack.services.common import image, resources
from stack.services.component import ComponentModule, Job
from stack.services.spec import (
    ConfigFile,
    HealthCheck,
    MetricsEndpoint,
    Port,
    ServiceSpec,
    Volume,
    Workload,
)
from stack.settings import Component, ImageRef, Memory, Retention, VolumeSize, _at_least_a_day, _image

if TYPE_CHECKING:
    from stack.config import StackConfig


class LokiService(Component):
    image: ImageRef = _image("grafana/loki", "3.7.1")
    memory: Memory = "1Gi"
    # Deleted by the compactor once older than this.
    retention_period: Annotated[Retention, AfterValidator(_at_least_a_day)] = "744h"
    volume_size: VolumeSize = "20Gi"


NAME = "loki"
HTTP_PORT = 3100
GRPC_PORT = 9095
CONFIG_DIR = "/etc/loki"
CONFIG_FILE = "loki/loki.yaml"
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


class CommonStorage(_Model):
    filesystem: FilesystemStorage


class KVStore(_Model):
    # One instance: the ring lives in memory, no memberlist or consul.
    store: Literal["inmemory"] = "inmemory"


class Ring(_Model):
    kvstore: KVStore = KVStore()


class Common(_Model):
    # Also where Loki puts the WAL, the compactor's and the ruler's files unless told otherwise.
    path_prefix: str
    storage: CommonStorage
    replication_factor: int = Field(default=1, ge=1)
    ring: Ring = Ring()
    instance_addr: str = "127.0.0.1"


class IndexConfig(_Model):
    prefix: str = "index_"
    # Retention with the tsdb store needs 24h index tables.
    period: Literal["24h"] = "24h"


class PeriodConfig(_Model):
    from_: str = Field(alias="from", pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
    store: Literal["tsdb"] = "tsdb"
    object_store: str = "filesystem"
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
    delete_request_store: str = "filesystem"


class Analytics(_Model):
    reporting_enabled: bool = False


class LokiConfig(_Model):
    """`loki.yaml`: the part of Loki's configuration this stack sets; the rest keeps Loki's defaults."""

    # One tenant ("fake"); the stack's network and Grafana are its only clients.
    auth_enabled: bool = False
    server: Server = Server()
    common: Common
    schema_config: SchemaConfig
    limits_config: LimitsConfig
    compactor: Compactor
    analytics: Analytics = Analytics()


def loki_config(config: StackConfig) -> LokiConfig:
    """Loki's configuration for this stack (pure)."""
    # At least 24h, Loki's minimum: stack/config.py validates it.
    retention = config.services.loki.retention_period
    return LokiConfig(
        common=Common(
            path_prefix=DATA_DIR,
            storage=CommonStorage(filesystem=FilesystemStorage(
                chunks_directory=f"{DATA_DIR}/chunks", rules_directory=f"{DATA_DIR}/rules")),
        ),
        schema_config=SchemaConfig(configs=(PeriodConfig(from_=SCHEMA_FROM),)),
        limits_config=LimitsConfig(retention_period=retention),
        compactor=Compactor(working_directory=f"{DATA_DIR}/compactor"),
    )


def render(config: StackConfig) -> str:
    return dump_yaml(loki_config(config).model_dump(mode="json", exclude_none=True, by_alias=True))


WORKLOAD = Workload(placement="stateful")


def service(config: StackConfig) -> ServiceSpec:
    settings = config.services.loki
    return ServiceSpec(
        workload=WORKLOAD,
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
        volumes=(Volume(DATA_VOLUME, DATA_DIR, size=settings.volume_size),),
        # The image is distroless (no shell, no wget): `loki -health` (grafana/loki#20313) asks
        # http://localhost:3100/ready itself, so the server must listen on 3100.
        health=HealthCheck(port=HTTP_PORT, path="/ready", command=("/usr/bin/loki", "-health")),
        metrics=MetricsEndpoint(job=config.jobs.loki, port=HTTP_PORT),
        # Writes only under /loki (the volume); /tmp is a tmpfs provided by the targets.
        read_only_root=True,
    )


COMPONENT = ComponentModule(
    name=NAME, settings_key="loki", settings=LokiService,
    service=lambda config, files, others: service(config),
    job=Job("loki", "loki"),
)
