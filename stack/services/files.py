"""Mapping generated files (bundle paths) to where a component reads them."""

from __future__ import annotations

from collections.abc import Mapping

from stack.services.spec import ConfigFile


def mounted(files: Mapping[str, str], prefix: str, directory: str,
            exclude: tuple[str, ...] = ()) -> tuple[ConfigFile, ...]:
    """Every bundle file under `prefix` (but not under `exclude`), at the same relative path
    under `directory`: `prometheus/rules/x.yaml` -> `/etc/prometheus/rules/x.yaml`."""
    return tuple(
        ConfigFile(source=path, path=f"{directory}/{path.removeprefix(prefix)}", content=content)
        for path, content in sorted(files.items())
        if path.startswith(prefix) and not path.startswith(exclude)
    )
