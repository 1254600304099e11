"""What the component tests share: a config with one component's settings changed, and a
spec's single generated YAML file read back."""

from __future__ import annotations

from typing import Any

import yaml

from stack.config import StackConfig
from stack.services.spec import ServiceSpec


def with_settings(config: StackConfig, component: str, **settings: object) -> StackConfig:
    """`config` with some of `services.<component>` changed, validated as config would be."""
    current = getattr(config.services, component)
    changed = type(current).model_validate({**current.model_dump(), **settings})
    return config.model_copy(update={"services": config.services.model_copy(update={component: changed})})


def rendered(spec: ServiceSpec) -> dict[str, Any]:
    (file,) = spec.files
    assert file.content.startswith("# Generated")
    document = yaml.safe_load(file.content)
    assert isinstance(document, dict)
    return document
