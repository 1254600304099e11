"""Grafana: the generated provisioning and dashboards, its settings in grafana.ini, the admin
password from a secret file (generated when not set), its database: SQLite on a volume (one
replica), or an external PostgreSQL / MySQL (services.grafana.database) whose password is a secret
file, with no volume at all, so that several replicas share one state."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from dashboards import provisioning
from stack import layout
from stack.services import alertmanager, jaeger, loki, prometheus
from stack.services.addresses import address_port
from stack.services.common import image, mounted, resources
from stack.services.component import ComponentModule, Job
from stack.services.spec import (
    ANYWHERE,
    Flow,
    MetricsEndpoint,
    Pods,
    Port,
    SecretFile,
    ServiceSpec,
    StackPods,
    Volume,
    Workload,
    http_health,
    tcp,
)
from stack.settings import (
    GRAFANA_SECRETS_DIR,
    Component,
    Count,
    HostAndPort,
    HostPort,
    ImageRef,
    Memory,
    UserName,
    _image,
    _Section,
)

if TYPE_CHECKING:
    from stack.config import StackConfig


class GrafanaDatabase(_Section):
    """An external database holding Grafana's state (users, sessions, dashboards, alert state), so
    several replicas share it. Its password is the secret `grafana-database-password`, read from
    a mounted file (GF_DATABASE_PASSWORD__FILE)."""

    type: Literal["postgres", "mysql"]
    # host:port, as Grafana's [database] host takes it.
    host: HostAndPort
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,63}$")
    user: UserName
    # Grafana's [database] ssl_mode. postgres: disable, require, verify-ca, verify-full (verify-*
    # check the server's certificate against the image's system CAs). mysql: Grafana's TLS (true,
    # skip-verify) needs a CA file (ca_cert_path) this stack does not mount: only "false" works.
    ssl_mode: Literal["disable", "require", "verify-ca", "verify-full", "true", "false", "skip-verify"] = "require"

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
    replicas: Count(1, 5) = 1
    # Null: SQLite on the grafana-data volume.
    database: GrafanaDatabase | None = None

    @model_validator(mode="after")
    def _replicas_share_a_database(self) -> GrafanaService:
        if self.replicas > 1 and self.database is None:
            raise ValueError(f"replicas {self.replicas} needs database (an external postgres or mysql): "
                             "the default SQLite on the grafana-data volume cannot be shared between replicas")
        return self


NAME = "grafana"
PORT = 3000
CONFIG_DIR = "/etc/grafana"
DATA_DIR = "/var/lib/grafana"
ADMIN_PASSWORD = "grafana-admin-password"
DATABASE_PASSWORD = "grafana-database-password"
DATA_VOLUME = "grafana-data"


def flows(config: StackConfig) -> tuple[Flow, ...]:
    """Its datasources and its database; people come through the ingress controller."""
    me = StackPods(NAME)
    database = config.services.grafana.database  # none: SQLite on its volume
    ingress = config.kubernetes.ingress
    return (Flow(me, StackPods(prometheus.NAME), tcp(prometheus.PORT)),
            Flow(me, StackPods(loki.NAME), tcp(loki.HTTP_PORT)),
            Flow(me, StackPods(jaeger.NAME), tcp(jaeger.UI_PORT)),
            Flow(me, StackPods(alertmanager.NAME), tcp(alertmanager.PORT)),
            Flow(me, ANYWHERE, tcp(*([address_port(database.host)] if database else []))),
            *([Flow(Pods(ingress.controller_namespace), me, tcp(PORT))] if ingress else []))


def service(config: StackConfig, files: Mapping[str, str]) -> ServiceSpec:
    settings = config.services.grafana
    secrets = [SecretFile(ADMIN_PASSWORD, config.grafana.admin_password_file, generated=True)]
    volumes: tuple[Volume, ...] = (Volume(DATA_VOLUME, DATA_DIR, size="5Gi"),)
    if settings.database is not None:
        # Users, sessions and dashboards live in the database: nothing local to keep.
        secrets.append(SecretFile(DATABASE_PASSWORD, settings.database.password_file))
        volumes = ()
    return ServiceSpec(
        workload=Workload(ingress=True),
        flows=flows(config),
        name=NAME,
        image=image(settings.image),
        user="472:472",
        resources=resources(settings),
        env=provisioning.environment(config),
        ports=(Port("http", PORT, host_port=settings.publish),),
        config_dir=CONFIG_DIR,
        # environment.yaml documents the container's environment; it is not a file Grafana reads.
        files=mounted(files, f"{layout.GRAFANA_DIR}/", CONFIG_DIR, exclude=(layout.GRAFANA_ENVIRONMENT,)),
        secrets=tuple(secrets),
        volumes=volumes,
        health=http_health(PORT, "/api/health", start_period_seconds=60),
        metrics=MetricsEndpoint(job=config.jobs.grafana, port=PORT),
        replicas=settings.replicas,
    )


COMPONENT = ComponentModule(
    name=NAME, settings_key="grafana", settings=GrafanaService,
    service=lambda config, files, others: service(config, files),
    job=Job("grafana", "grafana"),
    no_local_image=("Grafana is AGPL: not built or vendored here, and no binary of it exists on "
                    "this machine (the image must come from a registry)"),
    unjudged="its config is checked by typed models, not a binary",
)
