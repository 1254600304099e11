"""Golden files: every generated file for both stacks, byte for byte. Refresh with
`make golden` and review the diff like code."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

GOLDEN = Path(__file__).parent / "golden"


def test_generated_files_match_golden(bundle, stack_name: str) -> None:
    root = GOLDEN / stack_name
    if os.environ.get("UPDATE_GOLDEN"):
        shutil.rmtree(root, ignore_errors=True)
        for relative, content in bundle.files.items():
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).write_text(content)
    on_disk = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    assert on_disk == set(bundle.files), "files added or removed: run `make golden`"
    for relative, content in bundle.files.items():
        assert (root / relative).read_text() == content, f"{relative} changed: run `make golden`"
