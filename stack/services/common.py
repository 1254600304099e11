"""What every component module needs from its settings: its image, its resources, and the
generated files it reads (bundle paths mapped to where the component reads them)."""

from __future__ import annotations

from collections.abc import Mapping

from stack.services.spec import ConfigFile, Image, Resources
from stack.settings import Component, ImageRef, memory_bytes


def image(settings: ImageRef) -> Image:
    return Image(settings.repository, settings.tag, settings.digest)


def resources(settings: Component) -> Resources:
    return Resources(memory_bytes(settings.memory), settings.cpus)


def mounted(files: Mapping[str, str], prefix: str, directory: str,
            exclude: tuple[str, ...] = ()) -> tuple[ConfigFile, ...]:
    """Every bundle file under `prefix` (but not under `exclude`), at the same relative path
    under `directory`: `prometheus/rules/x.yaml` -> `/etc/prometheus/rules/x.yaml`."""
    return tuple(
        ConfigFile(source=path, path=f"{directory}/{path.removeprefix(prefix)}", content=content)
        for path, content in sorted(files.items())
        if path.startswith(prefix) and not path.startswith(exclude)
    )
