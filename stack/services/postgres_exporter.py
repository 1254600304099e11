"""postgres_exporter: PostgreSQL's health (pg_up), connections and activity. It connects with
DATA_SOURCE_URI (host:port/database?options) and _USER; the password is only ever read from a
mounted file (DATA_SOURCE_PASS_FILE), never from the environment."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator, Field

from stack.services.addresses import address_port
from stack.services.common import image, resources
from stack.services.component import ComponentModule, Job
from stack.services.spec import (
    ANYWHERE,
    Flow,
    MetricsEndpoint,
    Port,
    SecretFile,
    ServiceSpec,
    StackPods,
    http_health,
    tcp,
)
from stack.settings import Component, ImageRef, Memory, _image, _postgres_dsn

if TYPE_CHECKING:
    from stack.config import StackConfig


class PostgresExporterService(Component):
    image: ImageRef = _image("prometheuscommunity/postgres-exporter", "v0.20.0")
    memory: Memory = "64Mi"
    # host:port/database?options (DATA_SOURCE_URI), never a password: that is the
    # `postgres-password` secret, mounted as DATA_SOURCE_PASS_FILE.
    data_source_uri: Annotated[str, AfterValidator(_postgres_dsn)] = (
        "host.docker.internal:5432/medianest?sslmode=disable")
    # DATA_SOURCE_USER: a role name alone (a password never rides along as user:password).
    user: str = Field(default="postgres_exporter", pattern=r"^[A-Za-z0-9_.@-]{1,63}$")
    # Whether PostgreSQL needs a password (the `postgres-password` secret).
    password: bool = True


NAME = "postgres-exporter"
PORT = 9187
CONFIG_DIR = "/etc/postgres-exporter"
PASSWORD = SecretFile(name="postgres-password", path=f"{CONFIG_DIR}/secrets/postgres-password")


def flows(config: StackConfig) -> tuple[Flow, ...]:
    """The PostgreSQL it queries."""
    uri = config.services.postgres_exporter.data_source_uri
    return (Flow(StackPods(NAME), ANYWHERE, tcp(address_port(uri.split("/", 1)[0]))),)


def service(config: StackConfig) -> ServiceSpec:
    settings = config.services.postgres_exporter
    env = {"DATA_SOURCE_URI": settings.data_source_uri, "DATA_SOURCE_USER": settings.user}
    # The exporter reads the file's content as the password (surrounding whitespace trimmed).
    if settings.password:
        env["DATA_SOURCE_PASS_FILE"] = PASSWORD.path
    return ServiceSpec(
        flows=flows(config),
        name=NAME,
        image=image(settings.image),
        user="65534:65534",
        resources=resources(settings),
        args=(f"--web.listen-address=:{PORT}",),
        env=env,
        ports=(Port("http", PORT, host_port=settings.publish),),
        config_dir=CONFIG_DIR,
        secrets=(PASSWORD,) if settings.password else (),
        # The landing page: /metrics would open a database connection on every health check.
        health=http_health(PORT, "/"),
        metrics=MetricsEndpoint(job=config.jobs.postgres, port=PORT),
    )


COMPONENT = ComponentModule(
    name=NAME, settings_key="postgres_exporter", settings=PostgresExporterService,
    service=lambda config, files, others: service(config),
    job=Job("postgres", "postgres-exporter"),
    sandbox_binary="prometheus-postgres-exporter",
)
