"""Loki's write target (`services.loki.mode: scalable`): distributors and ingesters, what Alloy
pushes to. A StatefulSet: each ingester's WAL on its own volume, so a restarted one replays what
it had not flushed to the bucket yet; each stream on `services.loki.replicationFactor` of them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stack.services import loki
from stack.services.component import ComponentModule
from stack.settings import Component, Count, Memory, VolumeSize

if TYPE_CHECKING:
    from stack.config import StackConfig


class LokiWriteService(Component):
    memory: Memory = "2Gi"
    # At least services.loki.replicationFactor: a stream is written to that many of them.
    replicas: Count(1, 32) = 3
    volume_size: VolumeSize = "20Gi"


NAME = loki.scalable_name("write")


def check(config: StackConfig) -> str | None:
    copies = config.services.loki.replication_factor
    if loki.scalable(config) and config.services.loki_write.replicas < copies:
        return (f"replicas: {config.services.loki_write.replicas} is fewer than services.loki.replicationFactor "
                f"{copies} (each stream is written to that many)")
    return None


COMPONENT = ComponentModule(
    name=NAME, settings_key="loki_write", settings=LokiWriteService,
    service=lambda config, files, others: loki.scalable_service(
        config, "write", config.services.loki_write, config.services.loki_write.volume_size),
    targets=("kubernetes",), wanted=loki.scalable, check=check,
    unjudged="its config is checked by typed models, not a binary (Loki is AGPL, not built here)",
)
