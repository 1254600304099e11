"""The "Static checks" section: the problems (`python -m stack check`) the change introduces,
grouped by severity, and the ones it fixes. The section fails when the head has any error,
new or not: a head with errors is broken whatever the base was.

Reads `.preview/problems.json` of both sides (written by `stack/preview/facts.py`)."""

from __future__ import annotations

import json
from typing import Any, Literal

from rules.problems import Severity
from stack.preview.model import Change, Section, Trees

TITLE = "Static checks"
FACTS = "problems.json"
# Most severe first; a severity this code does not know comes last.
ORDER = tuple(s.name.lower() for s in sorted(Severity, reverse=True))
# Problems quoted in one note, the rest counted.
MAX_QUOTED = 5

Problem = dict[str, Any]


def load(trees: Trees, side: Literal["base", "head"]) -> list[Problem] | None:
    """The side's problems; None when the side has no problem facts (an older export)."""
    path = trees.facts(side, FACTS)
    return json.loads(path.read_text()) if path.exists() else None


def key(problem: Problem) -> tuple[str, str, str, str]:
    """What makes a problem the same one on both sides (its severity may change with config)."""
    return (problem.get("source", ""), problem.get("subject", ""), problem.get("check", ""),
            problem.get("message", ""))


def text(problem: Problem) -> str:
    if problem.get("text"):
        return problem["text"]
    return (f"{problem.get('source')}: {problem.get('subject')}: {problem.get('severity')} "
            f"[{problem.get('check')}] {problem.get('message')}")


def _rank(severity: str) -> int:
    return ORDER.index(severity) if severity in ORDER else len(ORDER)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _counts(problems: list[Problem]) -> str:
    by: dict[str, int] = {}
    for problem in problems:
        by[problem.get("severity", "unknown")] = by.get(problem.get("severity", "unknown"), 0) + 1
    return ", ".join(_plural(n, s) for s, n in sorted(by.items(), key=lambda item: _rank(item[0])))


def _quoted(problems: list[Problem]) -> str:
    shown = "; ".join(text(p) for p in problems[:MAX_QUOTED])
    return shown + (f"; and {len(problems) - MAX_QUOTED} more" if len(problems) > MAX_QUOTED else "")


def section(trees: Trees) -> Section:
    head = load(trees, "head")
    if head is None:
        return Section(TITLE, notes=("the head has no static check facts (.preview/problems.json): not compared",))
    notes = []
    base = load(trees, "base")
    if base is None:
        notes.append("the base has no static check facts (exported by an older version): every problem of "
                     "the head is listed, whether or not this change introduced it")
    before = {key(p) for p in base or []}
    after = {key(p) for p in head}
    introduced = [p for p in head if key(p) not in before]
    fixed = [p for p in base or [] if key(p) not in after]

    by_severity: dict[str, list[Problem]] = {}
    for problem in sorted(introduced, key=lambda p: (_rank(p.get("severity", "")), text(p))):
        by_severity.setdefault(problem.get("severity", "unknown"), []).append(problem)
    changes = tuple(
        Change("added", f"{_plural(len(found), severity)} introduced", tuple(text(p) for p in found),
               {"severity": severity, "problems": found})
        for severity, found in by_severity.items()
    )

    errors = [p for p in head if p.get("severity") == Severity.ERROR.name.lower()]
    existing = [p for p in errors if key(p) in before]
    if existing:
        notes.append(f"the head still has {_plural(len(existing), 'error')} the base already had: {_quoted(existing)}")
    if fixed:
        notes.append(f"fixed by this change: {_counts(fixed)} ({_quoted(fixed)})")
    return Section(TITLE, changes, tuple(notes), failed=bool(errors))
