"""Prometheus: scrapes MediaNest's backend, the exporters, the blackbox probes and every component
of the stack; evaluates the generated rules; sends alerts to Alertmanager. No lifecycle or admin
API: nothing unauthenticated can reload, shut down or delete data (a config change replaces the
container; the data volume stays)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from stack.config import StackConfig
from stack.dump import dump_yaml
from stack.services import alertmanager, blackbox_exporter
from stack.services.common import image, mounted, resources
from stack.services.spec import (
    ConfigFile,
    MetricsEndpoint,
    Port,
    ServiceSpec,
    Volume,
    http_health,
)

NAME = "prometheus"
PORT = 9090
CONFIG_DIR = "/etc/prometheus"
CONFIG_FILE = "prometheus/prometheus.yml"
DATA_DIR = "/prometheus"
RULES = "prometheus/rules/"
# The replica's name, distinct per Prometheus of an HA pair; Alertmanager never sees it.
REPLICA_LABEL = "replica"


def prometheus_config(config: StackConfig, rule_files: Sequence[str], targets: Sequence[ServiceSpec],
                      replica: str = f"{NAME}-0") -> dict[str, Any]:
    """prometheus.yml. Rule files are relative: Prometheus resolves them from the config file's
    directory, in the container and in a rendered tree alike (so promtool checks them as shipped)."""
    settings = config.services.prometheus
    return {
        "global": {
            "scrape_interval": settings.scrape_interval,
            "evaluation_interval": settings.evaluation_interval or config.evaluation_interval,
            "external_labels": {"environment": config.environment, REPLICA_LABEL: replica},
        },
        "rule_files": [path.removeprefix("prometheus/") for path in rule_files],
        "alerting": {
            # Both replicas of an HA pair send the same alert: without their replica label the
            # two are identical and Alertmanager deduplicates them.
            "alert_relabel_configs": [{"action": "labeldrop", "regex": REPLICA_LABEL}],
            "alertmanagers": [{"api_version": "v2", "static_configs": [
                {"targets": addresses(config, alertmanager.NAME, f"{alertmanager.NAME}:{alertmanager.PORT}")}]}],
        },
        "scrape_configs": [
            _backend_job(config),
            *_probe_jobs(config, targets),
            {"job_name": config.jobs.prometheus,
             "static_configs": [{"targets": addresses(config, NAME, f"localhost:{PORT}")}]},
            *(_component_job(config, spec) for spec in targets
              if spec.metrics and spec.name != blackbox_exporter.NAME),
        ],
    }


def _backend_job(config: StackConfig) -> dict[str, Any]:
    backend = config.backend
    return {"job_name": config.jobs.backend, "scheme": backend.scheme, "metrics_path": backend.metrics_path,
            "static_configs": [{"targets": list(backend.targets)}]}


def addresses(config: StackConfig, name: str, default: str) -> list[str]:
    """Where a component is reached: `addresses.<name>` from config, else its default."""
    return list(config.addresses.get(name, (default,)))


def _component_job(config: StackConfig, spec: ServiceSpec) -> dict[str, Any]:
    assert spec.metrics is not None
    return {"job_name": spec.metrics.job, "metrics_path": spec.metrics.path,
            "static_configs": [{"targets": addresses(config, spec.name, spec.address)}]}


def _probe_jobs(config: StackConfig, targets: Sequence[ServiceSpec]) -> list[dict[str, Any]]:
    """MediaNest's health endpoints through the blackbox exporter: each URL becomes the probe's
    `target` parameter and the series' `instance`; the module follows from the URL's scheme."""
    blackbox = next((s for s in targets if s.name == blackbox_exporter.NAME), None)
    urls = config.services.blackbox_exporter.targets
    if blackbox is None or not urls:
        return []
    by_module: dict[str, list[str]] = {}
    for url in urls:
        by_module.setdefault(blackbox_exporter.probe_module(url), []).append(url)
    return [{
        "job_name": config.jobs.blackbox,
        "metrics_path": "/probe",
        "static_configs": [{"targets": sorted(group), "labels": {"module": module}}
                           for module, group in sorted(by_module.items())],
        "relabel_configs": [
            {"source_labels": ["module"], "target_label": "__param_module"},
            {"source_labels": ["__address__"], "target_label": "__param_target"},
            {"source_labels": ["__param_target"], "target_label": "instance"},
            {"target_label": "__address__", "replacement": addresses(config, blackbox.name, blackbox.address)[0]},
            {"action": "labeldrop", "regex": "module"},
        ],
    }]


def service(config: StackConfig, files: Mapping[str, str], targets: Sequence[ServiceSpec]) -> ServiceSpec:
    settings = config.services.prometheus
    rule_paths = sorted(p for p in files if p.startswith(RULES))
    generated = ConfigFile(CONFIG_FILE, f"{CONFIG_DIR}/prometheus.yml",
                           dump_yaml(prometheus_config(config, rule_paths, targets)))
    return ServiceSpec(
        name=NAME,
        image=image(settings.image),
        user="65534:65534",
        resources=resources(settings),
        args=(
            f"--config.file={generated.path}",
            f"--storage.tsdb.path={DATA_DIR}",
            f"--storage.tsdb.retention.time={settings.retention_time}",
            f"--storage.tsdb.retention.size={settings.retention_size}",
            f"--web.listen-address=:{PORT}",
        ),
        ports=(Port("http", PORT, host_port=settings.publish),),
        config_dir=CONFIG_DIR,
        files=(generated, *mounted(files, RULES, f"{CONFIG_DIR}/rules")),
        volumes=(Volume("prometheus-data", DATA_DIR, size=settings.volume_size),),
        health=http_health(PORT, "/-/ready", start_period_seconds=60),
        metrics=MetricsEndpoint(job=config.jobs.prometheus, port=PORT),
    )
