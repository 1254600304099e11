"""Every selected metric is in the catalog, and no histogram is selected by its base name."""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from rules.checks import Finding
from rules.problems import Severity
from rules.promql import Analysis


def check(analysis: Analysis) -> Iterator[Finding]:
    catalog = analysis.catalog
    for selector in analysis.selectors:
        name = selector.name
        if not name:
            yield Finding(Severity.WARNING, f"selector {selector} has no metric name: "
                          "name the metric so the catalog can check it")
            continue
        series = catalog.series(name)
        if series is None:
            close = difflib.get_close_matches(name, list(catalog.metrics) + [
                n + s for n in catalog.metrics for s in ("_bucket", "_sum", "_count")], n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            yield Finding(Severity.ERROR, f"unknown metric {name}: it is not in the metric catalog"
                          f"{hint}; add it to rules/metrics/ if an exporter really exposes it")
        elif series.is_histogram_base:
            yield Finding(Severity.ERROR, f"{name} is a histogram: no series has its base name; "
                          f"select {name}_bucket, {name}_sum or {name}_count")
