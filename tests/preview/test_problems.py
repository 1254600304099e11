"""The Static checks section: problems the change introduces (by severity), problems it fixes,
and a failed section whenever the head has an error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from preview_helpers import trees

from rules.problems import Problem, Severity
from stack.preview.model import FACTS_DIR, Section, Trees
from stack.preview.problems import section


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Trees:
    return trees(tmp_path_factory.mktemp("problems"), "dev")


def problem(subject: str, severity: Severity, message: str = "something is off") -> dict[str, Any]:
    """A problem as `facts.problems` writes it."""
    found = Problem("prometheus/rules/medianest.yaml medianest.alerts", subject, "labels", severity, message)
    return {"source": found.source, "subject": found.subject, "check": found.check,
            "severity": found.severity.name.lower(), "message": found.message, "text": found.render()}


ERROR = problem("HighErrorRate", Severity.ERROR, "severity label missing")
WARNING = problem("HighResponseTime", Severity.WARNING, "no runbook")
OTHER_WARNING = problem("SlowDatabaseQueries", Severity.WARNING, "no runbook")
INFO = problem("ApplicationDown", Severity.INFO, "long description")


def with_problems(source: Trees, to: Path, base: list[dict[str, Any]] | None,
                  head: list[dict[str, Any]]) -> Trees:
    """Copies of both sides with these problems (base None: an old base without the facts)."""
    copy = Trees(source.stack, Path(shutil.copytree(source.base, to / "base")),
                 Path(shutil.copytree(source.head, to / "head")))
    if base is None:
        copy.facts("base", "problems.json").unlink()
    else:
        copy.facts("base", "problems.json").write_text(json.dumps(base))
    copy.facts("head", "problems.json").write_text(json.dumps(head))
    return copy


def test_identical_trees_change_nothing(dev: Trees) -> None:
    assert json.loads((dev.head / FACTS_DIR / "problems.json").read_text()) == []
    assert section(dev) == Section("Static checks")


CASES = [
    # (id, base, head, introduced as (subject, texts), failed, notes starting with)
    ("an error introduced fails", [], [ERROR], [("1 error introduced", [ERROR["text"]])], True, []),
    ("a warning in both is not introduced", [WARNING], [WARNING], [], False, []),
    ("new problems grouped by severity, most severe first", [WARNING], [INFO, OTHER_WARNING, WARNING, ERROR],
     [("1 error introduced", [ERROR["text"]]), ("1 warning introduced", [OTHER_WARNING["text"]]),
      ("1 info introduced", [INFO["text"]])], True, []),
    ("an error already in the base still fails the head", [ERROR], [ERROR], [], True,
     ["the head still has 1 error the base already had: "]),
    ("a fixed problem is a note", [ERROR, WARNING], [WARNING], [], False,
     ["fixed by this change: 1 error ("]),
    ("an old base without facts", None, [WARNING], [("1 warning introduced", [WARNING["text"]])], False,
     ["the base has no static check facts"]),
]


@pytest.mark.parametrize(("base", "head", "introduced", "failed", "notes"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_problems(dev: Trees, tmp_path: Path, base: list[dict[str, Any]] | None, head: list[dict[str, Any]],
                  introduced: list[tuple[str, list[str]]], failed: bool, notes: list[str]) -> None:
    result = section(with_problems(dev, tmp_path, base, head))
    assert [(c.subject, list(c.details)) for c in result.changes] == introduced
    assert all(c.kind == "added" for c in result.changes)
    assert result.failed is failed
    assert len(result.notes) == len(notes)
    for note, start in zip(result.notes, notes, strict=True):
        assert note.startswith(start)
