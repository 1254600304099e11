"""Counter functions read counters, and counters are read through them.

rate/irate/increase/resets only make sense on a counter (or a histogram's or summary's
_bucket, _sum and _count); deriv/delta/predict_linear are for gauges; a raw counter value
is an arbitrary number that resets on restart.
"""

from __future__ import annotations

from collections.abc import Iterator

import promql_parser as pp

from rules.checks import Finding
from rules.problems import Severity
from rules.promql import Analysis, children, function_name, op_name, unwrap

COUNTER_FUNCTIONS = {"rate", "irate", "increase", "resets"}
GAUGE_FUNCTIONS = {"deriv", "delta", "idelta", "predict_linear", "holt_winters", "double_exponential_smoothing"}
# Where reading a counter's raw value is fine: existence, counting and timestamps.
RAW_COUNTER_OK = {"absent", "absent_over_time", "present_over_time", "timestamp", "changes",
                  "count_over_time", "last_over_time", "count", "group"}


def check(analysis: Analysis) -> Iterator[Finding]:
    yield from _visit(analysis, analysis.root, inside=None)


def _visit(analysis: Analysis, node: object, inside: str | None) -> Iterator[Finding]:
    name = function_name(node) or (op_name(node) if isinstance(node, pp.AggregateExpr) else None)
    if name in COUNTER_FUNCTIONS | GAUGE_FUNCTIONS:
        yield from _range_function(analysis, node, name)
    if isinstance(node, pp.VectorSelector) and inside is None:
        series = analysis.shape(node).series
        if series is not None and series.is_counter:
            yield Finding(Severity.WARNING, f"{node.name} is a counter read as a raw value: it only "
                          "grows and resets on restart; use rate() or increase()")
    if isinstance(node, pp.MatrixSelector) or name in RAW_COUNTER_OK:
        inside = name or "range"
    for child in children(node):
        yield from _visit(analysis, child, inside)


def _range_function(analysis: Analysis, node: pp.Call, name: str) -> Iterator[Finding]:
    arg = unwrap(node.args[0]) if node.args else None
    if not isinstance(arg, pp.MatrixSelector):
        return
    series = analysis.shape(arg).series
    if series is None or series.is_histogram_base:
        return
    if name in COUNTER_FUNCTIONS and not series.is_counter:
        yield Finding(Severity.ERROR, f"{name}() over {series.name}, which is a "
                      f"{series.metric.type}, not a counter: use deriv() or delta() for a gauge")
    if name in GAUGE_FUNCTIONS and series.is_counter:
        yield Finding(Severity.ERROR, f"{name}() over the counter {series.name}: counter resets "
                      "make it wrong; use rate() or increase()")
