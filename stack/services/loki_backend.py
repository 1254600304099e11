"""Loki's backend target (`services.loki.mode: scalable`): the compactor (retention), the index
gateway, the query scheduler and the ruler. A StatefulSet: the compactor's working files on a
volume each; one replica compacts at a time (its ring), the others stand by."""

from __future__ import annotations

from stack.services import loki
from stack.services.component import ComponentModule
from stack.settings import Component, Count, Memory, VolumeSize


class LokiBackendService(Component):
    memory: Memory = "1Gi"
    replicas: Count(1, 16) = 2
    volume_size: VolumeSize = "10Gi"


COMPONENT = ComponentModule(
    name=loki.scalable_name("backend"), settings_key="loki_backend", settings=LokiBackendService,
    service=lambda config, files, others: loki.scalable_service(
        config, "backend", config.services.loki_backend, config.services.loki_backend.volume_size),
    targets=("kubernetes",), wanted=loki.scalable,
    unjudged="its config is checked by typed models, not a binary (Loki is AGPL, not built here)",
)
