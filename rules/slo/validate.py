"""Everything that would make an SLO's rules wrong, as Problems naming the SLO and the field."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import ROUND_CEILING, Decimal

import promql_parser as pp

from rules.catalog import Catalog, MetricType
from rules.checks import check_expression
from rules.conventions import SERVICES, duration_seconds
from rules.problems import Problem, Severity
from rules.promql import selector_matches
from rules.slo.events import latency_labels, ratio_events
from rules.slo.spec import SLO, GaugeSLI, LatencySLI, RatioSLI
from rules.slo.windows import BurnWindow, PeriodError, burn_windows, window_name

NAME = re.compile(r"^[a-z][a-z0-9-]*$")
# Past five nines a 30-day budget is under half a minute of errors: less than one evaluation
# of the rules, so no burn rate can be measured (and float maths runs out of digits further on).
MAX_OBJECTIVE = Decimal("99.999")


def validate(slo: SLO, catalog: Catalog) -> list[Problem]:
    return [
        Problem(f"slo {slo.name}", field, "slo", severity, message)
        for field, severity, message in _problems(slo, catalog)
    ]


def _problems(slo: SLO, catalog: Catalog) -> Iterator[tuple[str, Severity, str]]:
    error = Severity.ERROR
    if not NAME.match(slo.name):
        yield "name", error, f"{slo.name!r} must be kebab-case (api-availability)"
    if slo.service not in SERVICES:
        yield "service", error, f"{slo.service!r} must be one of {', '.join(SERVICES)}"
    windows: tuple[BurnWindow, ...] = ()
    try:
        windows = burn_windows(slo.period)
    except PeriodError as problem:
        yield "period", error, str(problem)
    except ValueError as problem:
        yield "period", error, str(problem)
    yield from _objective(slo, windows)
    if slo.for_ is not None:
        try:
            duration_seconds(slo.for_)
        except ValueError as problem:
            yield "for", error, str(problem)
    if slo.min_events_per_second is not None and slo.min_events_per_second <= 0:
        yield "min_events_per_second", error, "must be positive"
    if not (slo.page or slo.ticket):
        yield "page", Severity.WARNING, "both tiers are disabled: this SLO never alerts"
    yield from _sli(slo, catalog)


def _objective(slo: SLO, windows: tuple[BurnWindow, ...]) -> Iterator[tuple[str, Severity, str]]:
    """An objective is a percentage whose error budget an outage can burn at every alerting
    factor: budget x factor < 1, i.e. objective > 100 - 100 / factor. Past that, even a total
    outage never reaches the factor, and the alert could never fire."""
    error = Severity.ERROR
    objective = slo.objective
    if not objective.is_finite() or not 0 < objective < 100:
        yield "objective", error, f"{_shown(objective)} must be a percentage between 0 and 100 (exclusive)"
        return
    if objective <= 1:
        yield "objective", error, (f"{objective} looks like a fraction: objectives are percentages "
                                   f"(write {format((objective * 100).normalize(), 'f')} for {objective})")
        return
    if objective > MAX_OBJECTIVE:
        yield "objective", error, (f"{_shown(objective)} is above {MAX_OBJECTIVE}: its error budget is too small "
                                   "for any burn rate to be measured; valid range: above the lowest objective "
                                   f"its alert windows allow, up to {MAX_OBJECTIVE}")
        return
    tiers = {"page"} if slo.page else set()
    tiers |= {"ticket"} if slo.ticket else set()
    alerting = [w for w in windows if w.tier in tiers]
    if not alerting:
        return
    steepest = max(alerting, key=lambda w: w.factor)
    lowest = Decimal(100) - Decimal(100) / steepest.factor
    if objective <= lowest:
        shown = lowest.quantize(Decimal("0.01"), rounding=ROUND_CEILING)
        yield "objective", error, (
            f"{objective} is outside the valid range {shown} to {MAX_OBJECTIVE}: with an error budget of "
            f"{(Decimal(100) - objective).normalize():f}% even a total outage burns it at "
            f"{(Decimal(100) / (Decimal(100) - objective)).quantize(Decimal('0.01')).normalize():f}x, below the "
            f"{steepest.factor.normalize():f}x of its {steepest.tier} tier over {window_name(steepest.long)}: "
            "that alert could never fire")


def _shown(value: Decimal) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:40] + "..."


def _sli(slo: SLO, catalog: Catalog) -> Iterator[tuple[str, Severity, str]]:
    sli = slo.sli
    if isinstance(sli, RatioSLI):
        if (sli.errors is None) == (sli.good is None):
            yield "sli", Severity.ERROR, "a ratio SLI needs exactly one of `errors` and `good`"
            return
        for field in ("total", "errors", "good"):
            selector = getattr(sli, field)
            if selector is not None:
                yield from _selector(f"sli.{field}", selector, catalog, MetricType.COUNTER, slo.grouping)
        yield from _examples(sli)
    elif isinstance(sli, LatencySLI):
        metric = catalog.metrics.get(sli.histogram)
        if metric is None or metric.type is not MetricType.HISTOGRAM:
            yield "sli.histogram", Severity.ERROR, (f"{sli.histogram} is not a histogram in the metric catalog"
                                                     " (name the histogram without _bucket)")
            return
        if sli.threshold_seconds not in metric.buckets:
            buckets = ", ".join(f"{b:g}" for b in metric.buckets)
            yield "sli.threshold_seconds", Severity.ERROR, (
                f"{sli.threshold_seconds:g} is not a bucket bound of {sli.histogram} ({buckets}): "
                "the share under it cannot be counted")
        selector = f"{sli.histogram}_count{{{sli.matchers}}}"
        yield from _selector("sli.matchers", selector, catalog, None, slo.grouping)
        yield from _example_matches("sli.example", latency_labels(sli), selector, True)
    elif isinstance(sli, GaugeSLI):
        yield from _selector("sli.selector", sli.selector, catalog, MetricType.GAUGE, slo.grouping)


def _selector(field: str, selector: str, catalog: Catalog, kind: MetricType | None,
              grouping: tuple[str, ...]) -> Iterator[tuple[str, Severity, str]]:
    try:
        node = pp.parse(selector)
    except ValueError as problem:
        yield field, Severity.ERROR, f"invalid selector {selector!r}: {problem}"
        return
    if not isinstance(node, pp.VectorSelector) or not node.name:
        yield field, Severity.ERROR, f"{selector!r} must be a plain selector such as metric{{label=\"v\"}}"
        return
    wrapped = f"rate({selector}[5m])" if kind is not MetricType.GAUGE else f"avg_over_time({selector}[5m])"
    analysis, findings = check_expression(wrapped, catalog)
    for _, finding in findings:
        yield field, finding.severity, finding.message
    series = catalog.series(node.name)
    if series is not None and analysis is not None:
        for label in grouping:
            if label not in series.labels and not series.open_labels:
                yield "grouping", Severity.ERROR, f"{node.name} has no {label} label to group by"


def _examples(sli: RatioSLI) -> Iterator[tuple[str, Severity, str]]:
    try:
        good, bad = ratio_events(sli)
    except ValueError:
        return  # reported against the selector
    yield from _example_matches("sli.good_example", good, sli.total, True)
    yield from _example_matches("sli.bad_example", bad, sli.total, True)
    if sli.errors:
        yield from _example_matches("sli.good_example", good, sli.errors, False)
        yield from _example_matches("sli.bad_example", bad, sli.errors, True)
    elif sli.good:
        yield from _example_matches("sli.good_example", good, sli.good, True)
        yield from _example_matches("sli.bad_example", bad, sli.good, False)


def _example_matches(field: str, labels: dict[str, str], selector: str, expected: bool
                     ) -> Iterator[tuple[str, Severity, str]]:
    try:
        node = pp.parse(selector)
    except ValueError:
        return  # reported against the selector
    if not isinstance(node, pp.VectorSelector):
        return
    if selector_matches(node, labels) != expected:
        yield field, Severity.ERROR, (f"the example event {labels} {'does not match' if expected else 'matches'} "
                                      f"{selector}: the scenarios would test the wrong events")
