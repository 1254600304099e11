"""Problems are data: every check returns them, reporters render them (pint's habit)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Severity(IntEnum):
    """How bad a problem is. `check` fails on ERROR only; warnings are reported."""

    INFO = 1
    WARNING = 2
    ERROR = 3

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, order=True)
class Problem:
    """One problem, reported against the thing that caused it.

    `source` is where it lives (a rule file and group, or a dashboard), `subject` the rule
    or panel name, `check` the module that found it.
    """

    source: str
    subject: str
    check: str
    severity: Severity
    message: str

    def render(self) -> str:
        return f"{self.source}: {self.subject}: {self.severity} [{self.check}] {self.message}"


def has_errors(problems: list[Problem]) -> bool:
    return any(p.severity >= Severity.ERROR for p in problems)
