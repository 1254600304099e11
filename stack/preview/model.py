"""What every section of the report is made of: plain data, rendered by report.py as Markdown
or JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

ChangeKind = Literal["added", "removed", "changed"]
# Where `python -m stack export` puts what the rendered files alone do not say.
FACTS_DIR = ".preview"


@dataclass(frozen=True)
class Block:
    """Preformatted text in a detail: an expression diff (`lang` "diff"), a table ("markdown")."""

    text: str
    lang: str = "diff"


Detail = str | Block


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    # What changed, as a reviewer names it: "alert HighErrorRate", "panel 'Error rate' of dashboard X".
    subject: str
    details: tuple[Detail, ...] = ()
    # The same facts for --format json (JSON-able values only).
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Section:
    title: str
    changes: tuple[Change, ...] = ()
    # Remarks that are not changes: "the base has no SLO facts", "2 rule tests failed".
    notes: tuple[str, ...] = ()
    # True when the head is broken by this section's judgement (errors, failing rule tests):
    # `diff` exits 1.
    failed: bool = False


@dataclass(frozen=True)
class Trees:
    """One stack's exported base and head (`<export dir>/<stack>`)."""

    stack: str
    base: Path
    head: Path

    def facts(self, side: Literal["base", "head"], name: str) -> Path:
        """`.preview/<name>` of one side (it may not exist in an old base)."""
        return (self.base if side == "base" else self.head) / FACTS_DIR / name
