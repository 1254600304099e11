"""Prometheus's template functions, ported so tests can state a description as rendered.

promtool compares annotations exactly; computing the expected text with the same formatting
keeps tests in step with thresholds from config. Ported from prometheus/template/template.go.
"""

from __future__ import annotations

import math
from decimal import Decimal


def go_g(value: float, precision: int = 4) -> str:
    """Go's %.<precision>g (same as Python's, bar the exponent form they share)."""
    return format(value, f".{precision}g")


def value(v: float) -> str:
    """`{{ $value }}`: Go's %v of a float64 (shortest digits, exponent form from 1e+06)."""
    if v == 0 or math.isnan(v) or math.isinf(v):
        return {0: "0"}.get(v, "NaN" if math.isnan(v) else ("+Inf" if v > 0 else "-Inf"))
    shortest = repr(v)
    digits = Decimal(shortest).normalize()
    exp = digits.adjusted()
    if exp < -4 or exp >= 6:
        sign, figures, _ = digits.as_tuple()
        head = "".join(map(str, figures))
        mantissa = head[0] + ("." + head[1:] if len(head) > 1 else "")
        return f"{'-' if sign else ''}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    return format(digits, "f")


def humanize(v: float) -> str:
    if v == 0 or math.isnan(v) or math.isinf(v):
        return go_g(v)
    prefix = ""
    if abs(v) >= 1:
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(v) < 1000:
                break
            prefix, v = p, v / 1000
        return go_g(v) + prefix
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix, v = p, v * 1000
    return go_g(v) + prefix


def humanize1024(v: float) -> str:
    if abs(v) <= 1 or math.isnan(v) or math.isinf(v):
        return go_g(v)
    prefix = ""
    for p in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(v) < 1024:
            break
        prefix, v = p, v / 1024
    return go_g(v) + prefix


def humanize_percentage(v: float) -> str:
    return go_g(v * 100) + "%"


def humanize_duration(v: float) -> str:
    if math.isnan(v) or math.isinf(v):
        return go_g(v)
    if v == 0:
        return go_g(v) + "s"
    if abs(v) >= 1:
        sign = "-" if v < 0 else ""
        v = abs(v)
        whole = int(v)
        seconds, minutes = whole % 60, (whole // 60) % 60
        hours, days = (whole // 3600) % 24, whole // 86400
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{go_g(v)}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix, v = p, v * 1000
    return f"{go_g(v)}{prefix}s"
