"""The labels of one good and one bad event of an SLI: the selectors' equality matchers plus
the SLI's examples. Validation proves they fall on the right side of the selectors; the
scenarios emit series with them."""

from __future__ import annotations

import promql_parser as pp

from rules.promql import matchers_of
from rules.slo.spec import GaugeSLI, LatencySLI, RatioSLI


def equalities(selector: str) -> dict[str, str]:
    node = pp.parse(selector)
    return {m.name: m.value for m in matchers_of(node) if m.op == pp.MatchOp.Equal}


def ratio_events(sli: RatioSLI) -> tuple[dict[str, str], dict[str, str]]:
    """(good event labels, bad event labels)."""
    good_selector = sli.good or sli.total
    bad_selector = sli.errors or sli.total
    good = {**equalities(sli.total), **equalities(good_selector), **sli.good_example}
    bad = {**equalities(sli.total), **equalities(bad_selector), **sli.bad_example}
    return good, bad


def latency_labels(sli: LatencySLI) -> dict[str, str]:
    return {**equalities(f"x{{{sli.matchers}}}"), **sli.example}


def gauge_labels(sli: GaugeSLI) -> dict[str, str]:
    return {**equalities(sli.selector), **sli.example}
