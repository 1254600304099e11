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
    """Every component; Prometheus last built, since it scrapes all the others."""
    others = (
        alertmanager.service(config, files),
        grafana.service(config, files),
        loki.service(config),
        alloy.service(config),
        jaeger.service(config),
        node_exporter.service(config),
        postgres_exporter.service(config),
        redis_exporter.service(config),
        blackbox_exporter.service(config),
    )
    return (prometheus.service(config, files, others), *others)
