"""Every Prometheus query parses and passes the rules' static checks (metrics, labels, counters,
histogram_quantile, vector matching, le selectors), with dashboard variables replaced by sample
values first; rates use `$__rate_interval`, and only defined variables are used."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import promql_parser as pp

from dashboards.checks import Context, PanelFinding, panels, queries
from dashboards.model import GeneratedDashboard
from rules.checks import Finding, check_expression
from rules.problems import Severity
from rules.promql import function_name, walk

VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")
# Grafana's global variables, with durations a parser accepts. The rate interval gets an odd
# value so that a rate over any other window can be told apart.
RATE_INTERVAL = timedelta(minutes=3, seconds=17)
# `increase(...[$__range])` (a total over the dashboard's time range) is fine too.
RANGE = timedelta(days=1, seconds=17)
BUILTINS = {"__rate_interval": "3m17s", "__interval": "1m", "__range": "1d17s", "__interval_ms": "60000",
            "__range_s": "86417", "__auto": "3m17s"}
RATES = {"rate", "irate", "increase"}


def substitute(expr: str, defined: set[str], context: Context) -> tuple[str, set[str]]:
    """The expression with variables replaced by samples, and the names that are not defined."""
    unknown: set[str] = set()

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name in BUILTINS:
            return BUILTINS[name]
        if name not in defined:
            unknown.add(name)
        return context.samples.get(name, "sample")

    return VARIABLE.sub(value, expr), unknown


def variables(dashboard: GeneratedDashboard) -> list[dict[str, Any]]:
    return list((dashboard.data.get("templating") or {}).get("list") or [])


def check(dashboard: GeneratedDashboard, context: Context) -> Iterator[PanelFinding]:
    defined = {v.get("name", "") for v in variables(dashboard)}
    for panel in panels(dashboard):
        for kind, target in queries(panel):
            if kind != "prometheus":
                continue
            for finding in check_query(target.get("expr", ""), defined, context):
                yield panel.get("title", ""), finding
    for variable in variables(dashboard):
        if variable.get("type") == "query":
            for finding in _variable(variable, defined, context):
                yield f"variable {variable.get('name')}", finding


def check_query(expr: str, defined: set[str], context: Context) -> Iterator[Finding]:
    if not expr.strip():
        yield Finding(Severity.ERROR, "empty query")
        return
    text, unknown = substitute(expr, defined, context)
    for name in sorted(unknown):
        yield Finding(Severity.ERROR, f"${name} is not a variable of this dashboard "
                      f"(variables: {', '.join(sorted(defined)) or 'none'})")
    analysis, findings = check_expression(text, context.catalog)
    for name, finding in findings:
        yield Finding(finding.severity, f"{finding.message} [{name}] in `{expr}`")
    if analysis is None:
        return
    for node in walk(analysis.root):
        if function_name(node) in RATES:
            arg = node.args[0]
            if isinstance(arg, pp.MatrixSelector) and arg.range not in (RATE_INTERVAL, RANGE):
                yield Finding(Severity.ERROR, f"{function_name(node)}() over a fixed window in `{expr}`: "
                              "use [$__rate_interval], which follows the scrape interval and the zoom")


_LABEL_VALUES = re.compile(r"^label_values\((.*),\s*(\w+)\s*\)$", re.S)


def _variable(variable: dict[str, Any], defined: set[str], context: Context) -> Iterator[Finding]:
    query = variable.get("query")
    text = query.get("query", "") if isinstance(query, dict) else str(query or "")
    match = _LABEL_VALUES.match(text.strip())
    if not match:
        yield Finding(Severity.ERROR, f"variable query `{text}` is not label_values(<selector>, <label>)")
        return
    # The label must exist on the selector: `count by (label) (selector)` asks the label check.
    yield from check_query(f"count by ({match.group(2)}) ({match.group(1)})", defined, context)
