"""`le` selectors that match on Prometheus 2 and 3, and name a real bucket.

Prometheus 3 writes classic histogram bucket bounds as floats (`le="1.0"`), 2.x as exposed
(`le="1"`): `le="1"` silently matches nothing on one of them. `le=~"1(\\.0)?"` works on both.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from rules.checks import Finding
from rules.problems import Severity
from rules.promql import Analysis, matchers_of

_INTEGER = re.compile(r"^[+-]?\d+$")
_PORTABLE = re.compile(r"^(?P<number>[+-]?\d+)\(\\\.0\)\?$")


def portable_le(bound: float) -> str:
    """The `le` matcher text for a bucket bound that matches on Prometheus 2 and 3."""
    if float(bound).is_integer():
        return f'le=~"{int(bound)}(\\\\.0)?"'
    return f'le="{bound}"'


def check(analysis: Analysis) -> Iterator[Finding]:
    for selector in analysis.selectors:
        series = analysis.shape(selector).series
        buckets = series.metric.buckets if series is not None else ()
        for matcher in matchers_of(selector):
            if matcher.name != "le":
                continue
            op = str(matcher.op).rsplit(".", 1)[-1]
            value = matcher.value
            if op in ("Equal", "NotEqual") and _INTEGER.match(value):
                portable = portable_le(float(value))
                if op == "NotEqual":
                    portable = portable.replace("=~", "!~")
                yield Finding(Severity.ERROR, f'le{"=" if op == "Equal" else "!="}"{value}" behaves differently '
                              f'on Prometheus 2 ("{value}") and 3 ("{value}.0"): write {portable}')
            bound = _bound(op, value)
            if bound is not None and buckets and bound not in buckets and bound != float("inf"):
                yield Finding(Severity.ERROR, f"le {value!r} is not a bucket of {series.metric.name} "
                              f"(buckets: {', '.join(f'{b:g}' for b in buckets)}, +Inf)")


def _bound(op: str, value: str) -> float | None:
    if op == "Equal":
        text = value
    elif op == "Re" and (match := _PORTABLE.match(value)):
        text = match.group("number")
    else:
        return None
    try:
        return float(text)
    except ValueError:
        return None



