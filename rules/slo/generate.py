"""SLO -> rule group: SLI error ratios per window, budget series and burn-rate alerts.

Pure functions of a validated SLO; `validate.py` has already rejected what would not work.
"""

from __future__ import annotations

from decimal import Decimal

from rules.checks.le_selector import le_matcher
from rules.conventions import (
    SLO_BUDGET_REMAINING,
    SLO_BURN_ALERT,
    SLO_BURN_RATE,
    SLO_ERROR_BUDGET,
    SLO_ERROR_EVENTS_RATE,
    SLO_ERROR_RATIO,
    SLO_EVENTS_RATE,
    SLO_LABEL,
    SLO_NO_DATA_ALERT,
    SLO_OBJECTIVE,
    TIER_LABEL,
    AlertSeverity,
)
from rules.expressions import or_zero
from rules.model import AlertingRule, RecordingRule, RuleGroup, alert, record
from rules.slo.spec import SLO, GaugeSLI, LatencySLI, RatioSLI
from rules.slo.windows import BurnWindow, burn_windows, window_name

NO_DATA_DESCRIPTION = ("SLO {slo} has had no SLI data for 15 minutes: its burn-rate alerts cannot fire. "
                       "Check the scrape target and the SLI's metric names.")
SEVERITY = {"page": AlertSeverity.CRITICAL, "ticket": AlertSeverity.WARNING}


def decimal_text(value: Decimal) -> str:
    """0.001 rather than 1E-3 or 0.0010: exact and readable."""
    text = format(value.normalize(), "f")
    return text


def rule_group(slo: SLO, runbook_base_url: str) -> RuleGroup:
    """Everything but the period-long rules: the burn-rate windows (at most days) and alerts."""
    windows = burn_windows(slo.period)
    return RuleGroup(name=f"slo.{slo.name}", rules=(
        *recording_rules(slo, windows), *alerting_rules(slo, windows, runbook_base_url),
    ))


def period_rule_group(slo: SLO) -> RuleGroup:
    """The rules reading the whole period (its error ratio, the budget left): a group of their
    own, evaluated where the period's history is kept (Prometheus, or the long-term store)."""
    return RuleGroup(name=f"slo.{slo.name}.period", rules=tuple(period_rules(slo)))


def rule_groups(slo: SLO, runbook_base_url: str) -> tuple[RuleGroup, RuleGroup]:
    return rule_group(slo, runbook_base_url), period_rule_group(slo)


def sli_windows(windows: tuple[BurnWindow, ...]) -> list[int]:
    return sorted({w.long for w in windows} | {w.short for w in windows} | {300})


def _by(slo: SLO) -> str:
    return f"sum by ({', '.join(slo.grouping)})" if slo.grouping else "sum"


def _total_selector(sli: RatioSLI | LatencySLI) -> str:
    if isinstance(sli, RatioSLI):
        return sli.total
    return f"{sli.histogram}_count{{{sli.matchers}}}"


def _good_selector(sli: LatencySLI) -> str:
    le = le_matcher(sli.threshold_seconds)
    matchers = f"{sli.matchers},{le}" if sli.matchers else le
    return f"{sli.histogram}_bucket{{{matchers}}}"


def error_ratio_expr(slo: SLO, window: str) -> str:
    """The share of bad events over `window`. A numerator with no series (no error ever
    happened) counts as zero, not as no data."""
    sli, by = slo.sli, _by(slo)
    if isinstance(sli, GaugeSLI):
        return f"1 - avg by ({', '.join(slo.grouping)}) (avg_over_time({sli.selector}[{window}]))" \
            if slo.grouping else f"1 - avg(avg_over_time({sli.selector}[{window}]))"
    total = f"{by} (rate({_total_selector(sli)}[{window}]))"
    if isinstance(sli, RatioSLI) and sli.errors:
        return f"{or_zero(f'{by} (rate({sli.errors}[{window}]))', total)} / {total}"
    good = sli.good if isinstance(sli, RatioSLI) else _good_selector(sli)
    return f"1 - {or_zero(f'{by} (rate({good}[{window}]))', total)} / {total}"


def _error_events_expr(slo: SLO) -> str:
    sli, by = slo.sli, _by(slo)
    total = f"{by} (rate({_total_selector(sli)}[5m]))"
    if isinstance(sli, RatioSLI) and sli.errors:
        return or_zero(f"{by} (rate({sli.errors}[5m]))", total)
    good = sli.good if isinstance(sli, RatioSLI) else _good_selector(sli)
    return f"{total} - {or_zero(f'{by} (rate({good}[5m]))', total)}"


def recording_rules(slo: SLO, windows: tuple[BurnWindow, ...]) -> list[RecordingRule]:
    labels = {"slo": slo.name}
    sel = f'{{slo="{slo.name}"}}'
    budget = decimal_text(slo.error_budget)
    rules = [
        record(SLO_ERROR_RATIO.format(window=window_name(w)), error_ratio_expr(slo, window_name(w)), labels)
        for w in sli_windows(windows)
    ]
    ratio_5m = SLO_ERROR_RATIO.format(window="5m")
    if not isinstance(slo.sli, GaugeSLI):
        rules += [
            record(SLO_EVENTS_RATE, f"{_by(slo)} (rate({_total_selector(slo.sli)}[5m]))", labels),
            record(SLO_ERROR_EVENTS_RATE, _error_events_expr(slo), labels),
        ]
    rules += [
        record(SLO_OBJECTIVE, f"vector({decimal_text(slo.objective_ratio)})", labels),
        record(SLO_ERROR_BUDGET, f"vector({budget})", labels),
        record(SLO_BURN_RATE, f"{ratio_5m}{sel} / {budget}", labels),
    ]
    return rules


def period_rules(slo: SLO) -> list[RecordingRule]:
    """The period's error ratio and the budget left, from the 5m series the other group records."""
    labels = {"slo": slo.name}
    sel = f'{{slo="{slo.name}"}}'
    period = slo.period
    period_ratio = SLO_ERROR_RATIO.format(window=period)
    if isinstance(slo.sli, GaugeSLI):
        ratio = record(period_ratio, f"avg_over_time({SLO_ERROR_RATIO.format(window='5m')}{sel}[{period}])", labels)
    else:
        # Traffic-weighted over the period, from the 5m rates: cheap to evaluate, and unlike an
        # average of ratios a quiet night weighs less than a busy day.
        ratio = record(period_ratio, f"sum_over_time({SLO_ERROR_EVENTS_RATE}{sel}[{period}]) "
                                     f"/ sum_over_time({SLO_EVENTS_RATE}{sel}[{period}])", labels)
    return [ratio, record(SLO_BUDGET_REMAINING, f"1 - {period_ratio}{sel} / {decimal_text(slo.error_budget)}",
                          labels)]


def burn_condition(slo: SLO, window: BurnWindow) -> str:
    sel = f'{{slo="{slo.name}"}}'
    budget = decimal_text(slo.error_budget)
    factor = decimal_text(window.factor)
    long, short = window_name(window.long), window_name(window.short)
    condition = (f"{SLO_ERROR_RATIO.format(window=long)}{sel} / {budget} > {factor} "
                 f"and {SLO_ERROR_RATIO.format(window=short)}{sel} / {budget} > {factor}")
    if slo.min_events_per_second is not None and not isinstance(slo.sli, GaugeSLI):
        on = ", ".join(slo.grouping)
        # Over the short window: a long one underestimates the rate of a series younger than it.
        condition += (f" and on ({on}) {_by(slo)} (rate({_total_selector(slo.sli)}[{short}])) "
                      f"> {slo.min_events_per_second:g}")
    return condition


def alerting_rules(slo: SLO, windows: tuple[BurnWindow, ...], runbook_base_url: str) -> list[AlertingRule]:
    rules = []
    where = "".join(f" for {label} {{{{ $labels.{label} }}}}" for label in slo.grouping)
    for tier, enabled in (("page", slo.page), ("ticket", slo.ticket)):
        tier_windows = [w for w in windows if w.tier == tier]
        if not enabled or not tier_windows:
            continue
        expr = " or ".join(f"({burn_condition(slo, w)})" for w in tier_windows)
        paths = ", or ".join(
            f"{decimal_text(w.factor)}x over {window_name(w.long)} (and {window_name(w.short)})"
            for w in tier_windows
        )
        rules.append(alert(
            SLO_BURN_ALERT, expr, for_=slo.for_, severity=SEVERITY[tier], service=slo.service,
            labels={SLO_LABEL: slo.name, TIER_LABEL: tier},
            summary="An SLO burns its error budget fast" if tier == "page" else "An SLO burns its error budget",
            description=f"SLO {slo.name}{where} ({slo.objective}% {slo.description} over {slo.period}) "
                        f"burns its error budget at {paths} the sustainable rate.",
            runbook_base_url=runbook_base_url,
        ))
    rules.append(alert(
        SLO_NO_DATA_ALERT, f'absent({SLO_ERROR_RATIO.format(window="5m")}{{slo="{slo.name}"}})', for_="15m",
        severity=AlertSeverity.WARNING, service=slo.service, labels={SLO_LABEL: slo.name},
        summary="An SLO has no data",
        description=NO_DATA_DESCRIPTION.format(slo="{{ $labels.slo }}"),
        runbook_base_url=runbook_base_url,
    ))
    return rules

