"""Alertmanager: the generated routing config and templates; silences and the notification log
on a volume, so a restart neither forgets a silence nor notifies twice."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath

from stack.config import StackConfig
from stack.services.common import image, mounted, resources
from stack.services.spec import MetricsEndpoint, Port, SecretFile, ServiceSpec, Volume, http_health

NAME = "alertmanager"
PORT = 9093
CONFIG_DIR = "/etc/alertmanager"
DATA_DIR = "/alertmanager"


def service(config: StackConfig, files: Mapping[str, str]) -> ServiceSpec:
    settings = config.services.alertmanager
    return ServiceSpec(
        name=NAME,
        image=image(settings.image),
        user="65534:65534",
        resources=resources(settings),
        args=(
            f"--config.file={CONFIG_DIR}/alertmanager.yml",
            f"--storage.path={DATA_DIR}",
            f"--web.listen-address=:{PORT}",
            # One instance on Docker: no gossip. The Kubernetes target forms a cluster.
            "--cluster.listen-address=",
        ),
        ports=(Port("http", PORT, host_port=settings.publish),),
        config_dir=CONFIG_DIR,
        files=mounted(files, "alertmanager/", CONFIG_DIR, exclude=("alertmanager/tests/",)),
        # Each receiver's secret is set as `secrets.<file name>`.
        secrets=tuple(SecretFile(PurePosixPath(path).name, path) for path in config.alerting.secret_files()),
        volumes=(Volume("alertmanager-data", DATA_DIR, size="1Gi"),),
        health=http_health(PORT, "/-/ready"),
        metrics=MetricsEndpoint(job=config.jobs.alertmanager, port=PORT),
    )
