"""Fixtures the preview sections' tests share: one dev export, copied as base and head."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from preview_helpers import config_with, export_tree

from stack.preview.model import Trees


@pytest.fixture(scope="module")
def dev_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_tree(config_with("dev"), tmp_path_factory.mktemp("export") / "dev")


@pytest.fixture
def same(dev_export: Path, tmp_path: Path) -> Trees:
    """Two copies of the dev export: edit the head's files to make a change."""
    return Trees("dev", Path(shutil.copytree(dev_export, tmp_path / "base" / "dev")),
                 Path(shutil.copytree(dev_export, tmp_path / "head" / "dev")))
