"""histogram_quantile reads buckets summed by `le`, with a quantile between 0 and 1."""

from __future__ import annotations

from collections.abc import Iterator

import promql_parser as pp

from rules.checks import Finding
from rules.problems import Severity
from rules.promql import Analysis, function_name, unwrap, walk


def check(analysis: Analysis) -> Iterator[Finding]:
    for node in analysis.nodes:
        if function_name(node) != "histogram_quantile" or len(node.args) != 2:
            continue
        quantile, buckets = unwrap(node.args[0]), unwrap(node.args[1])
        if isinstance(quantile, pp.NumberLiteral) and not 0 <= quantile.val <= 1:
            yield Finding(Severity.ERROR, f"histogram_quantile({quantile.val}, ...): the quantile "
                          "must be between 0 and 1 (0.95 for p95)")
        shape = analysis.shape(buckets)
        if not shape.has("le"):
            yield Finding(Severity.ERROR, "histogram_quantile over series without an `le` label: "
                          "keep it when aggregating, e.g. sum by (le) (rate(x_bucket[5m]))")
        elif not isinstance(buckets, pp.AggregateExpr) and shape.series is None and _raw_buckets(buckets):
            yield Finding(Severity.ERROR, "histogram_quantile over unaggregated buckets gives one "
                          "quantile per series (per instance, status...): sum the bucket rates "
                          "by (le) and any label you want to keep")


def _raw_buckets(node: object) -> bool:
    """True when the buckets come straight from a rate() of a _bucket series."""
    return function_name(node) in ("rate", "irate", "increase") and any(
        isinstance(n, pp.VectorSelector) and (n.name or "").endswith("_bucket") for n in walk(node)
    )
