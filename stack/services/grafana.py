"""Grafana: the generated provisioning and dashboards, its settings in grafana.ini, the admin
password from a secret file (generated when not set), its database: SQLite on a volume (one
replica), or an external PostgreSQL / MySQL (services.grafana.database) whose password is a secret
file, with no volume at all, so that several replicas share one state."""

from __future__ import annotations

from collections.abc import Mapping

from dashboards import provisioning
from stack.config import StackConfig
from stack.services import alertmanager, jaeger, loki, prometheus
from stack.services.addresses import address_port
from stack.services.common import image, mounted, resources
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
        files=mounted(files, "grafana/", CONFIG_DIR, exclude=("grafana/environment.yaml",)),
        secrets=tuple(secrets),
        volumes=volumes,
        health=http_health(PORT, "/api/health", start_period_seconds=60),
        metrics=MetricsEndpoint(job=config.jobs.grafana, port=PORT),
        replicas=settings.replicas,
    )
