"""One module per component of the stack, each building a target-neutral `ServiceSpec`."""

from __future__ import annotations

from collections.abc import Mapping

from stack.config import StackConfig
from stack.services import (
    alertmanager,
    alloy,
    blackbox_exporter,
    grafana,
    jaeger,
    loki,
    node_exporter,
    postgres_exporter,
    prometheus,
    redis_exporter,
)
from stack.services.spec import ServiceSpec


def service_specs(config: StackConfig, files: Mapping[str, str]) -> tuple[ServiceSpec, ...]:
    """Every enabled component; Prometheus last built, since it scrapes all the others."""
    services = config.services
    others = tuple(make() for settings, make in (
        (services.alertmanager, lambda: alertmanager.service(config, files)),
        (services.grafana, lambda: grafana.service(config, files)),
        (services.loki, lambda: loki.service(config)),
        (services.alloy, lambda: alloy.service(config)),
        (services.jaeger, lambda: jaeger.service(config)),
        (services.node_exporter, lambda: node_exporter.service(config)),
        (services.postgres_exporter, lambda: postgres_exporter.service(config)),
        (services.redis_exporter, lambda: redis_exporter.service(config)),
        (services.blackbox_exporter, lambda: blackbox_exporter.service(config)),
    ) if settings.enabled)
    return (prometheus.service(config, files, others), *others)
