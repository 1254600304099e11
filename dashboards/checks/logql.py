"""LogQL cannot be parsed by promql-parser; what we can check is the stream selector: it must
exist and only use Loki's bounded stream labels (an id label would be unbounded)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from dashboards.checks import Context, PanelFinding, panels, queries
from dashboards.checks.promql import substitute, variables
from dashboards.model import GeneratedDashboard
from rules.checks import Finding
from rules.conventions import LOKI_STREAM_LABELS
from rules.problems import Severity

SELECTOR = re.compile(r"\{([^{}]*)\}")
MATCHER = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*$')


def check(dashboard: GeneratedDashboard, context: Context) -> Iterator[PanelFinding]:
    defined = {v.get("name", "") for v in variables(dashboard)}
    for panel in panels(dashboard):
        for kind, target in queries(panel):
            if kind == "loki":
                for finding in check_query(target.get("expr", ""), defined, context):
                    yield panel.get("title", ""), finding


def check_query(expr: str, defined: set[str], context: Context) -> Iterator[Finding]:
    text, unknown = substitute(expr, defined, context)
    for name in sorted(unknown):
        yield Finding(Severity.ERROR, f"${name} is not a variable of this dashboard")
    selectors = SELECTOR.findall(text)
    if not selectors:
        yield Finding(Severity.ERROR, f"`{expr}` has no stream selector {{label=\"value\"}}")
        return
    for selector in selectors:
        parts = [p for p in _split(selector) if p.strip()]
        if not parts:
            yield Finding(Severity.ERROR, f"`{expr}`: an empty stream selector matches nothing in Loki")
        for part in parts:
            match = MATCHER.match(part)
            if not match:
                yield Finding(Severity.ERROR, f"`{expr}`: `{part.strip()}` is not a label matcher")
            elif match.group(1) not in LOKI_STREAM_LABELS:
                yield Finding(Severity.ERROR, f"`{expr}`: {match.group(1)} is not a stream label "
                              f"(stream labels: {', '.join(LOKI_STREAM_LABELS)}); "
                              "filter on it after a parser stage instead")


def _split(selector: str) -> list[str]:
    """Split matchers on commas outside quotes."""
    parts, current, quoted, escaped = [], "", False, False
    for char in selector:
        if escaped:
            current, escaped = current + char, False
        elif char == "\\":
            current, escaped = current + char, True
        elif char == '"':
            current, quoted = current + char, not quoted
        elif char == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]
