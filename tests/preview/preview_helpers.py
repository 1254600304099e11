"""Exported trees for the preview sections' tests: what `python -m stack export` writes for one
stack, built in-process from a config (so a test can change any key)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pulumi_mocks import merged, stack_config

from stack.bundle import build
from stack.config import PROJECT, StackConfig, from_mapping
from stack.output import write_tree
from stack.preview import facts
from stack.preview.model import Trees


def config_with(stack: str, overrides: dict[str, Any] | None = None) -> StackConfig:
    """`Pulumi.<stack>.yaml` with `overrides` of project keys laid over it (objects merged)."""
    config = stack_config(stack)
    for key, value in (overrides or {}).items():
        config[f"{PROJECT}:{key}"] = merged(config.get(f"{PROJECT}:{key}"), value)
    return from_mapping(config, f"Pulumi.{stack}.yaml")


def export_tree(config: StackConfig, out: Path) -> Path:
    bundle = build(config)
    write_tree({**bundle.files, **facts.files(bundle)}, out)
    return out


def trees(tmp_path: Path, stack: str, base: dict[str, Any] | None = None,
          head: dict[str, Any] | None = None) -> Trees:
    """Base and head of `stack`, each its stack file with some overrides."""
    return Trees(stack, export_tree(config_with(stack, base), tmp_path / "base" / stack),
                 export_tree(config_with(stack, head), tmp_path / "head" / stack))
