"""One SLO dashboard generated from the SLO definitions (rules/slos.py) and their burn-rate windows
(rules/slo/windows.py): a new SLO gets its row without touching this file."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dashboards.common import environment, gauge, stat, table, timeseries
from dashboards.model import DashboardSpec, Row, Unit, prom, steps
from rules.conventions import (
    SLO_BUDGET_REMAINING,
    SLO_BURN_ALERT,
    SLO_BURN_RATE,
    SLO_ERROR_BUDGET,
    SLO_ERROR_RATIO,
    SLO_NO_DATA_ALERT,
    SLO_OBJECTIVE,
)
from rules.conventions import duration_seconds as seconds
from rules.slo.spec import SLO
from rules.slo.windows import burn_windows, window_name
from rules.slos import slos

if TYPE_CHECKING:
    from stack.config import StackConfig

FOLDER = "slo"


def slo_row(slo: SLO) -> Row:
    sel = f'slo="{slo.name}"'
    period = window_name(int(seconds(slo.period)))
    windows = burn_windows(slo.period)
    burn = [prom(f"{SLO_ERROR_RATIO.format(window=window_name(w))}{{{sel}}} / on (slo) {SLO_ERROR_BUDGET}{{{sel}}}",
                 f"{window_name(w)}")
            for w in sorted({w.long for w in windows} | {w.short for w in windows})]
    factors = sorted({float(w.factor) for w in windows})
    return Row(title=f"{slo.name}: {slo.objective}% {slo.description} ({slo.period})", panels=(
        stat("Objective", f"The objective of {slo.name}: {slo.objective}% {slo.description}.", Unit.PERCENT_UNIT,
             prom(f"{SLO_OBJECTIVE}{{{sel}}}"), width=4),
        stat(f"SLI over {period}", f"Share of good events over the SLO period ({slo.period}).", Unit.PERCENT_UNIT,
             prom(f"1 - {SLO_ERROR_RATIO.format(window=period)}{{{sel}}}"),
             thresholds=steps("red", (float(slo.objective_ratio), "green")), width=4),
        gauge("Error budget remaining", f"Share of the {slo.period} error budget left; below zero the SLO is missed.",
              Unit.PERCENT_UNIT, prom(f"{SLO_BUDGET_REMAINING}{{{sel}}}"), min=0, max=1,
              thresholds=steps("red", (0.25, "orange"), (0.5, "green")), width=4, height=8),
        timeseries("Burn rate per window", "Error ratio over each alert window divided by the error budget; "
                   f"alerts fire above {', '.join(f'{f:g}x' for f in factors)}.", Unit.TIMES, *burn,
                   prom(f"{SLO_BURN_RATE}{{{sel}}}", "current (5m)"),
                   thresholds=steps("green", *((f, "red") for f in factors[:1]))),
        table("Alert state", "Burn-rate and no-data alerts of this SLO now: empty when none is pending or firing.",
              Unit.NONE, prom(f'sum by (alertname, tier, alertstate) (ALERTS{{alertname=~"{SLO_BURN_ALERT}|'
                              f'{SLO_NO_DATA_ALERT}",{sel}}})', instant=True),
              alerts=(SLO_BURN_ALERT, SLO_NO_DATA_ALERT), width=24, height=5, no_value="No alert"),
    ))


def dashboard(config: StackConfig) -> DashboardSpec:
    return DashboardSpec(
        uid="medianest-slos", title="MediaNest / SLOs", folder=FOLDER,
        description="Per SLO: objective, SLI over the period, error budget left, burn rate per alert window "
                    "and alert state. Generated from rules/slos.py.",
        tags=("slo", "generated"), variables=(environment(config),), time_from="now-7d",
        rows=tuple(slo_row(s) for s in slos(config)),
    )
