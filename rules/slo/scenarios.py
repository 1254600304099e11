"""Generated promtool scenarios per SLO: a full outage pages within its computed detection time
and clears after recovery; a ticket-rate burn opens a ticket and no page; healthy traffic that
spends half the budget raises nothing for days; an SLI without data raises SLONoData.

Expected states come from the minute-by-minute model in detection.py; checkpoints sit only
where that model is certain, one evaluation either side of any change.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import promql_parser as pp

from rules.catalog import Catalog
from rules.conventions import (
    SLO_BUDGET_REMAINING,
    SLO_BURN_ALERT,
    SLO_BURN_RATE,
    SLO_ERROR_BUDGET,
    SLO_ERROR_EVENTS_RATE,
    SLO_ERROR_RATIO,
    SLO_EVENTS_RATE,
    SLO_NO_DATA_ALERT,
    SLO_OBJECTIVE,
    TIER_LABEL,
    duration_seconds,
    number,
)
from rules.slo.detection import STEP, Schedule, certain_minutes, human, tier_detection
from rules.slo.events import gauge_labels, latency_labels, ratio_events
from rules.slo.generate import NO_DATA_DESCRIPTION, sli_windows
from rules.slo.spec import SLO, GaugeSLI, LatencySLI, RatioSLI
from rules.slo.windows import BurnWindow, burn_windows, window_name
from rules.testing import AlertAt, ExprAt, Firing, RuleTest, Series

EVENTS_PER_MINUTE = 600  # 10 requests a second
INSTANCE = "scenario:9000"


def scenarios(slo: SLO, catalog: Catalog) -> list[RuleTest]:
    windows = burn_windows(slo.period)
    tests = []
    if slo.page:
        tests.append(_outage(slo, windows, catalog))
    if slo.ticket:
        tests.append(_ticket_burn(slo, windows, catalog))
    tests.append(_healthy(slo, windows, catalog))
    tests.append(_no_data(slo))
    return tests


def _minutes(seconds: float) -> int:
    return math.ceil(seconds / STEP)


def _longest(windows: Sequence[BurnWindow], tier: str | None = None) -> int:
    return max(w.long for w in windows if tier is None or w.tier == tier) // STEP


def _for_seconds(slo: SLO) -> float:
    return duration_seconds(slo.for_) if slo.for_ else 0


def _outage(slo: SLO, windows: Sequence[BurnWindow], catalog: Catalog) -> RuleTest:
    budget = slo.error_budget
    detect = tier_detection(windows, "page", budget, 1.0, _for_seconds(slo))
    assert detect is not None  # a full outage always exceeds every factor below 1/budget
    baseline = _longest(windows, "page")
    outage = _minutes(detect) + 15
    recovery = max(w.short for w in windows) // STEP * 2 + _minutes(_for_seconds(slo)) + 15
    schedule = Schedule.of((0.0, baseline), (1.0, outage), (0.0, recovery))
    states, certain = certain_minutes(schedule, windows, budget, slo.for_, isinstance(slo.sli, GaugeSLI))
    page = [m for m, s in enumerate(states) if "page" in s]
    fired, cleared = page[0], page[-1] + 1
    within = baseline + _minutes(detect) + 1  # the closed form, plus one evaluation
    checkpoints = {
        _last_certain(certain, fired), within, _last_certain(certain, cleared),
        _first_certain(certain, cleared),
    }
    return RuleTest(
        f"SLO {slo.name}: a full outage pages within {human(detect)} (plus one evaluation) and "
        f"the page clears {cleared - baseline - outage}m after recovery",
        _series(slo, schedule, catalog),
        alerts=tuple(_expect(slo, states, m) for m in sorted(checkpoints) if m is not None),
    )


def _ticket_burn(slo: SLO, windows: Sequence[BurnWindow], catalog: Catalog) -> RuleTest:
    budget = float(slo.error_budget)
    ticket_factor = max(float(w.factor) for w in windows if w.tier == "ticket")
    page_factors = [float(w.factor) for w in windows if w.tier == "page"] if slo.page else []
    burn = (ticket_factor + min(page_factors)) / 2 if page_factors else ticket_factor * 1.5
    ratio = min(burn * budget, 1.0)
    baseline = min(w.long for w in windows if w.tier == "ticket") // STEP
    detect = tier_detection(windows, "ticket", slo.error_budget, ratio, _for_seconds(slo))
    assert detect is not None
    length = _minutes(detect) + 120
    schedule = Schedule.of((0.0, baseline), (ratio, length))
    states, certain = certain_minutes(schedule, windows, slo.error_budget, slo.for_,
                                      isinstance(slo.sli, GaugeSLI))
    ticket = [m for m, s in enumerate(states) if "ticket" in s]
    if not ticket or any("page" in s for s in states):
        raise ValueError(f"SLO {slo.name}: no burn rate opens a ticket without a page; check its windows")
    checkpoints = {_last_certain(certain, ticket[0]), _first_certain(certain, ticket[0])}
    checkpoints |= {m for m in range(baseline, len(states), 240) if m in certain}
    return RuleTest(
        f"SLO {slo.name}: burning the budget {number(burn)}x opens a ticket and never pages",
        _series(slo, schedule, catalog),
        alerts=tuple(_expect(slo, states, m) for m in sorted(checkpoints) if m is not None),
    )


def _healthy(slo: SLO, windows: Sequence[BurnWindow], catalog: Catalog) -> RuleTest:
    # A constant error ratio is the same over every window, so no model is needed: half the
    # budget is below every factor. Samples every 2 minutes halve promtool's work over days.
    step = 2
    length = _longest(windows) + 24 * 60
    schedule = Schedule.of((float(slo.error_budget) / 2, length // step))
    checkpoints = range(60, length + 1, 6 * 60)
    ratio = float(slo.error_budget) / 2
    return RuleTest(
        f"SLO {slo.name}: healthy traffic spending half the budget raises nothing for "
        f"{human(length * STEP)}",
        _series(slo, schedule, catalog, step),
        alerts=tuple(AlertAt(f"{m}m", name) for m in checkpoints for name in (SLO_BURN_ALERT, SLO_NO_DATA_ALERT)),
        # Rounded to 1e-9: 1 - good/total carries float noise that promtool compares exactly.
        exprs=tuple(
            ExprAt(f"{length}m", f'round({series}{{slo="{slo.name}"}} * 1e9)',
                   ((f'{{slo="{slo.name}"}}', round(value * 1e9)),))
            for series, value in _recorded_values(slo, windows, ratio)
        ),
        interval=f"{step}m",
    )


def _recorded_values(slo: SLO, windows: Sequence[BurnWindow], ratio: float) -> list[tuple[str, float]]:
    """Every series the SLO records, under a constant error ratio (the same over any window)."""
    budget = float(slo.error_budget)
    values = [(SLO_ERROR_RATIO.format(window=window_name(w)), ratio) for w in sli_windows(windows)]
    values += [
        (SLO_ERROR_RATIO.format(window=slo.period), ratio),
        (SLO_OBJECTIVE, float(slo.objective_ratio)),
        (SLO_ERROR_BUDGET, budget),
        (SLO_BUDGET_REMAINING, 1 - ratio / budget),
        (SLO_BURN_RATE, ratio / budget),
    ]
    if not isinstance(slo.sli, GaugeSLI):
        events = EVENTS_PER_MINUTE / 60
        values += [(SLO_EVENTS_RATE, events), (SLO_ERROR_EVENTS_RATE, events * ratio)]
    return values


def _no_data(slo: SLO) -> RuleTest:
    return RuleTest(
        f"SLO {slo.name}: an SLI without any series raises SLONoData after 15 minutes",
        (Series('up{job="unrelated"}', "1x30"),),
        alerts=(AlertAt("14m", SLO_NO_DATA_ALERT),
                AlertAt("16m", SLO_NO_DATA_ALERT, (Firing({"slo": slo.name},
                                                          NO_DATA_DESCRIPTION.format(slo=slo.name)),))),
    )


def _last_certain(certain: set[int], before: int) -> int | None:
    return max((m for m in certain if m < before), default=None)


def _first_certain(certain: set[int], after: int) -> int | None:
    return min((m for m in certain if m >= after), default=None)


def _expect(slo: SLO, states: Sequence[set[str]], minute: int) -> AlertAt:
    group = _group_labels(slo)
    return AlertAt(f"{minute}m", SLO_BURN_ALERT, tuple(
        Firing({"slo": slo.name, TIER_LABEL: tier, **group}) for tier in sorted(states[minute])
    ))


def _group_labels(slo: SLO) -> dict[str, str]:
    example = _example(slo)
    return {label: example.get(label, "") for label in slo.grouping}


def _example(slo: SLO) -> dict[str, str]:
    sli = slo.sli
    if isinstance(sli, RatioSLI):
        return ratio_events(sli)[1]
    return latency_labels(sli) if isinstance(sli, LatencySLI) else gauge_labels(sli)


def _labels_text(name: str, labels: dict[str, str]) -> str:
    pairs = {**labels, "instance": INSTANCE}
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(pairs.items())) + "}"


def _series(slo: SLO, schedule: Schedule, catalog: Catalog, step_minutes: int = 1) -> tuple[Series, ...]:
    """Series for a schedule of one entry per sample step, at constant traffic."""
    sli = slo.sli
    events = EVENTS_PER_MINUTE * step_minutes
    bad = [events * e for e in schedule.errors]
    good = [events - b for b in bad]
    if isinstance(sli, RatioSLI):
        good_labels, bad_labels = ratio_events(sli)
        return (
            Series(_labels_text(pp.parse(sli.total).name, good_labels), counter(good)),
            Series(_labels_text(pp.parse(sli.total).name, bad_labels), counter(bad)),
        )
    if isinstance(sli, LatencySLI):
        labels = latency_labels(sli)
        bounds = catalog.metrics[sli.histogram].buckets
        out = []
        for bound in (*bounds, math.inf):
            # Good observations land in the threshold's bucket, bad ones in the next.
            if bound < sli.threshold_seconds:
                per_minute = [0.0] * len(bad)
            elif bound == sli.threshold_seconds:
                per_minute = good
            else:
                per_minute = [g + b for g, b in zip(good, bad, strict=True)]
            le = "+Inf" if bound == math.inf else f"{bound:g}"
            out.append(Series(_labels_text(f"{sli.histogram}_bucket", {**labels, "le": le}), counter(per_minute)))
        out.append(Series(_labels_text(f"{sli.histogram}_count", labels),
                          counter([g + b for g, b in zip(good, bad, strict=True)])))
        return tuple(out)
    labels = gauge_labels(sli)
    return (Series(_labels_text(pp.parse(sli.selector).name, labels),
                   gauge([1 - e for e in schedule.errors])),)


def counter(increments: Iterable[float]) -> str:
    """promtool expanding notation for a counter rising by `increments[k]` in minute k+1."""
    runs = _runs(increments)
    parts, value = [], 0.0
    for index, (increment, count) in enumerate(runs):
        if index == 0:
            parts.append(f"0+{number(increment)}x{count}")
            value = increment * count
        else:
            start = value + increment
            parts.append(f"{number(start)}+{number(increment)}x{count - 1}")
            value += increment * count
    return " ".join(parts) if parts else "0"


def gauge(values_after_minute: Sequence[float]) -> str:
    """A gauge holding `values[k]` at minute k+1 (and values[0] at minute 0)."""
    runs = _runs(values_after_minute)
    parts = []
    for index, (value, count) in enumerate(runs):
        parts.append(f"{number(value)}x{count if index == 0 else count - 1}")
    return " ".join(parts)


def _runs(values: Iterable[float]) -> list[tuple[float, int]]:
    runs: list[tuple[float, int]] = []
    for value in values:
        if runs and math.isclose(runs[-1][0], value):
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((value, 1))
    return runs
