"""`le` selectors that match what Prometheus 3 stores, and name a real bucket.

Prometheus 3 normalises classic histogram bucket bounds to floats at ingestion (`le="1.0"`, even
when the target exposes `le="1"`): `le="1"` silently matches nothing. (`le=~"1(\\.0)?"`, which
also matched Prometheus 2, is accepted.)
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from rules.checks import Finding
from rules.problems import Severity
from rules.promql import Analysis, matchers_of

_INTEGER = re.compile(r"^[+-]?\d+$")
_PORTABLE = re.compile(r"^(?P<number>[+-]?\d+)\(\\\.0\)\?$")


def bucket_label(bound: float) -> str:
    """A bucket bound as Prometheus 3 stores it in `le`: a float, `1.0` not `1`."""
    return "+Inf" if bound == float("inf") else repr(float(bound))


def le_matcher(bound: float) -> str:
    """The `le` matcher text for a bucket bound."""
    return f'le="{bucket_label(bound)}"'


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
                sign = "=" if op == "Equal" else "!="
                yield Finding(Severity.ERROR, f'le{sign}"{value}" matches no bucket on Prometheus 3, which stores '
                              f'bounds as floats: write le{sign}"{bucket_label(float(value))}"')
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



