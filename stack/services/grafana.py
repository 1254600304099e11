"""Grafana: the generated provisioning and dashboards, its settings in grafana.ini, the admin
password from a secret file (generated when not set), its database on a volume."""

from __future__ import annotations

from collections.abc import Mapping

from dashboards import provisioning
from stack.config import StackConfig
from stack.services.common import image, mounted, resources
from stack.services.spec import MetricsEndpoint, Port, SecretFile, ServiceSpec, Volume, http_health

NAME = "grafana"
PORT = 3000
CONFIG_DIR = "/etc/grafana"
DATA_DIR = "/var/lib/grafana"
ADMIN_PASSWORD = "grafana-admin-password"


def service(config: StackConfig, files: Mapping[str, str]) -> ServiceSpec:
    settings = config.services.grafana
    return ServiceSpec(
        name=NAME,
        image=image(settings.image),
        user="472:472",
        resources=resources(settings),
        env=provisioning.environment(config),
        ports=(Port("http", PORT, host_port=settings.publish),),
        config_dir=CONFIG_DIR,
        # environment.yaml documents the container's environment; it is not a file Grafana reads.
        files=mounted(files, "grafana/", CONFIG_DIR, exclude=("grafana/environment.yaml",)),
        secrets=(SecretFile(ADMIN_PASSWORD, config.grafana.admin_password_file, generated=True),),
        volumes=(Volume("grafana-data", DATA_DIR, size="5Gi"),),
        health=http_health(PORT, "/api/health", start_period_seconds=60),
        metrics=MetricsEndpoint(job=config.jobs.grafana, port=PORT),
    )
