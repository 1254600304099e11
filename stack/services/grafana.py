"""Grafana: the generated provisioning and dashboards, its settings in grafana.ini, the admin
password from a secret file (generated when not set), its database: SQLite on a volume (one
replica), or an external PostgreSQL / MySQL (services.grafana.database) whose password is a secret
file, with no volume at all, so that several replicas share one state."""

from __future__ import annotations

import configparser
import io
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from dashboards import provisioning
from dashboards.common import timeseries
from dashboards.model import Row, Unit, prom
from rules.catalog import Metric, MetricType
from stack import layout
from stack.dump import HEADER, dump_yaml
from stack.services.addresses import address_port, url_port
from stack.services.common import image, mounted, resources
from stack.services.component import STACK_HEALTH, ComponentModule, Job
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
    Component,
    Count,
    HostAndPort,
    HostPort,
    ImageRef,
    Memory,
    Url,
    UserName,
    _image,
    _in_secrets_dir,
    _secret_file,
    _Section,
)

if TYPE_CHECKING:
    from stack.config import StackConfig


# Where its secret files are mounted.
SECRETS_DIR = provisioning.SECRETS_DIR

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
        return SECRETS_DIR + "database-password"

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
    # The admin password is only ever read from this mounted file (GF_SECURITY_ADMIN_PASSWORD__FILE).
    admin_password_file: Annotated[str, AfterValidator(_secret_file),
                                   _in_secrets_dir(SECRETS_DIR, "Grafana's")] = (
        SECRETS_DIR + "admin-password")
    # Cookies only over HTTPS; prod serves Grafana behind TLS.
    cookie_secure: bool = False
    root_url: Url = "http://localhost:3000"

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


# --- its own config: grafana.ini and the container's environment -----------------------------------


def settings(config: StackConfig) -> dict[str, dict[str, str]]:
    """grafana.ini: no sign-up, no anonymous access, no admin password (it comes from a file)."""
    secure = config.services.grafana.cookie_secure
    return {
        "analytics": {"check_for_updates": "false", "reporting_enabled": "false"},
        "auth.anonymous": {"enabled": "false"},
        "paths": {"provisioning": provisioning.PROVISIONING_DIR},
        "security": {
            "admin_user": "admin",
            "allow_embedding": "false",
            "cookie_samesite": "strict" if secure else "lax",
            "cookie_secure": str(secure).lower(),
            "disable_gravatar": "true",
            "strict_transport_security": str(secure).lower(),
        },
        "server": {"root_url": config.services.grafana.root_url},
        "snapshots": {"external_enabled": "false"},
        "users": {"allow_org_create": "false", "allow_sign_up": "false"},
    }


def render_ini(sections: dict[str, dict[str, str]]) -> str:
    parser = configparser.ConfigParser(interpolation=None)
    for section in sorted(sections):
        parser[section] = dict(sorted(sections[section].items()))
    out = io.StringIO()
    parser.write(out)
    return out.getvalue().rstrip("\n") + "\n"


def environment(config: StackConfig) -> dict[str, str]:
    """The container's environment: the admin password is read from a mounted secret file; with an
    external database (services.grafana.database), where it is, its password read from a file too."""
    env = {
        "GF_PATHS_PROVISIONING": provisioning.PROVISIONING_DIR,
        # Logs to stdout only: the root filesystem is read-only.
        "GF_LOG_MODE": "console",
        "GF_SECURITY_ADMIN_PASSWORD__FILE": config.services.grafana.admin_password_file,
    }
    database = config.services.grafana.database
    if database is not None:
        env |= {
            "GF_DATABASE_TYPE": database.type,
            "GF_DATABASE_HOST": database.host,
            "GF_DATABASE_NAME": database.name,
            "GF_DATABASE_USER": database.user,
            "GF_DATABASE_SSL_MODE": database.ssl_mode,
            # The image's entrypoint sets GF_DATABASE_PASSWORD from this file's content.
            "GF_DATABASE_PASSWORD__FILE": database.password_file,
            # No data volume then (the state is in the database): Grafana's scratch files (caches,
            # search index, renders) go to the writable /tmp, not the image's read-only /var/lib/grafana.
            "GF_PATHS_DATA": "/tmp",
        }
    return env


def rendered_files(config: StackConfig) -> dict[str, str]:
    """grafana.ini, and environment.yaml: the container's environment, for a reader of the
    rendered bundle (the targets set it from the spec; Grafana never reads the file)."""
    return {layout.GRAFANA_INI: HEADER + render_ini(settings(config)),
            layout.GRAFANA_ENVIRONMENT: dump_yaml(environment(config))}


def flows(config: StackConfig) -> tuple[Flow, ...]:
    """Its datasources (each deployed component that has one, at its datasource URL's port) and its
    database; people come through the ingress controller."""
    me = StackPods(NAME)
    database = config.services.grafana.database  # none: SQLite on its volume
    ingress = config.kubernetes.ingress
    sources = [(ANYWHERE if p.outside else StackPods(name), p.settings(config, frozenset())[0])
               for name, p in provisioning.provided_by(config)]
    return (*(Flow(me, where, tcp(url_port(url))) for where, url in sources),
            Flow(me, ANYWHERE, tcp(*([address_port(database.host)] if database else []))),
            *([Flow(Pods(ingress.controller_namespace), me, tcp(PORT))] if ingress else []))


def service(config: StackConfig, files: Mapping[str, str]) -> ServiceSpec:
    settings = config.services.grafana
    secrets = [SecretFile(ADMIN_PASSWORD, settings.admin_password_file, generated=True)]
    volumes: tuple[Volume, ...] = (Volume(DATA_VOLUME, DATA_DIR, size="5Gi"),)
    if settings.database is not None:
        # Users, sessions and dashboards live in the database: nothing local to keep.
        secrets.append(SecretFile(DATABASE_PASSWORD, settings.database.password_file))
        volumes = ()
    # Credentials of datasources outside the stack (an external long-term store's).
    for _, source in provisioning.provided_by(config):
        credentials = source.credentials(config)
        if credentials is not None:
            secrets.append(SecretFile(credentials.secret, provisioning.secret_path(credentials.secret)))
    return ServiceSpec(
        workload=Workload(ingress=True),
        flows=flows(config),
        name=NAME,
        image=image(settings.image),
        user="472:472",
        resources=resources(settings),
        env=environment(config),
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


G, H = MetricType.GAUGE, MetricType.HISTOGRAM
# Its own metrics, from its sources (AGPL: no binary here).
METRICS = (
    Metric("grafana_http_request_duration_seconds", H, "Histogram of latencies for HTTP requests",
           ("handler", "status_code", "method", "status_source", "slo_group"),
           buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25)),
    Metric("grafana_http_request_in_flight", G, "A gauge of requests currently being served by Grafana"),
)


def dashboard_rows(config: StackConfig) -> tuple[Row, ...]:
    """Its row on the stack's health dashboard: how fast it serves."""
    me = f'job="{config.jobs.grafana}"'
    return (Row(title="Grafana", panels=(
        timeseries("Grafana request p95", "95th percentile Grafana HTTP response time.", Unit.SECONDS,
                   prom("histogram_quantile(0.95, sum by (le) (rate(grafana_http_request_duration_seconds_"
                        f"bucket{{{me}}}[$__rate_interval])))", "p95")),
        timeseries("Grafana requests in flight", "Requests Grafana is serving now.", Unit.SHORT,
                   prom(f"sum(grafana_http_request_in_flight{{{me}}})", "in flight")),
    )),)


COMPONENT = ComponentModule(
    shows_dashboards=True, rendered_files=rendered_files,
    dashboard=STACK_HEALTH, dashboard_rows=dashboard_rows,
    metrics=METRICS,
    name=NAME, settings_key="grafana", settings=GrafanaService,
    service=lambda config, files, others: service(config, files),
    job=Job("grafana", "grafana"),
    no_local_image=("Grafana is AGPL: not built or vendored here, and no binary of it exists on "
                    "this machine (the image must come from a registry)"),
    unjudged="its config is checked by typed models, not a binary",
)
