"""Generated promtool scenarios per SLO, each as cheap as its proof allows:

- alerts: at the stack's evaluation interval, the page and ticket carry their labels and
  annotations, and an SLI without data raises SLONoData;
- outage: a full outage pages within its computed detection time and clears after recovery;
- ticket: a burn between the ticket and page factors opens a ticket and never pages;
- healthy: traffic spending half the budget raises nothing over the longest window, and every
  recorded series holds its value.

Expected states come from the minute-by-minute model in detection.py; checkpoints sit only
where that model is certain, one evaluation either side of any change. A checkpoint scenario
(outage, ticket) is one promtool test per checkpoint, its rules evaluated only on a coarse grid
that the checkpoint falls on: the series start late (no samples before), so that the checkpoint
is on the grid and every reading is the schedule's own. Between checkpoints nothing is
asserted, so nothing is lost; `for` is honoured because the grid divides it and the scenarios'
conditions change once per phase.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence

import promql_parser as pp

from rules.catalog import Catalog
from rules.checks.le_selector import bucket_label
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
from rules.slo.generate import sli_windows
from rules.slo.spec import SLO, GaugeSLI, LatencySLI, RatioSLI
from rules.slo.windows import BurnWindow, burn_windows, window_name
from rules.testing import AlertAt, Expected, ExprAt, Firing, RuleTest, Series

EVENTS_PER_MINUTE = 600  # 10 requests a second
INSTANCE = "scenario:9000"
# Stated here apart from the generator: what each tier must carry to be routed.
SEVERITIES = {"page": "critical", "ticket": "warning"}
SUMMARIES = {"page": "An SLO burns its error budget fast", "ticket": "An SLO burns its error budget"}
# The coarsest grid a checkpoint scenario is evaluated on, in minutes (a `for` makes it finer).
GRID_MINUTES = 360
ALERTS, OUTAGE, TICKET, HEALTHY = "alerts", "outage", "ticket", "healthy"


# Scenarios are pure in the SLO and the catalog: built once per process (dev and prod share SLOs).
_BUILT: dict[tuple[str, int], tuple[Catalog, tuple[RuleTest, ...]]] = {}


def scenarios(slo: SLO, catalog: Catalog) -> list[RuleTest]:
    key = (slo.model_dump_json(), id(catalog))
    built = _BUILT.get(key)
    if built is None or built[0] is not catalog:
        built = _BUILT[key] = (catalog, _scenarios(slo, catalog))
    return list(built[1])


def _scenarios(slo: SLO, catalog: Catalog) -> tuple[RuleTest, ...]:
    windows = burn_windows(slo.period)
    tests = _alerts(slo, windows, catalog)
    if slo.page:
        tests += _outage(slo, windows, catalog)
    if slo.ticket:
        tests += _ticket_burn(slo, windows, catalog)
    tests.append(_healthy(slo, windows, catalog))
    return tuple(tests)


def _minutes(seconds: float) -> int:
    return math.ceil(seconds / STEP)


def _longest(windows: Sequence[BurnWindow], tier: str | None = None) -> int:
    return max(w.long for w in windows if tier is None or w.tier == tier) // STEP


def _for_seconds(slo: SLO) -> float:
    return duration_seconds(slo.for_) if slo.for_ else 0


def tiers(slo: SLO) -> list[str]:
    return [t for t, on in (("page", slo.page), ("ticket", slo.ticket)) if on]


def grid(slo: SLO) -> int:
    """Minutes between evaluations of a checkpoint scenario: a divisor of the burn alerts' `for`
    (a `for` in seconds keeps every minute)."""
    wait = _for_seconds(slo)
    if wait % STEP:
        return 1
    return math.gcd(GRID_MINUTES, int(wait // STEP))


def on_grid(slo: SLO, catalog: Catalog, title: str, suite: str, schedule: Schedule, minute: int,
            expect: AlertAt | ExprAt) -> RuleTest:
    """One checkpoint as its own test: `schedule`, cut after `minute`, starts late enough for
    `minute` to fall on the evaluation grid; before it the series have no samples, so every
    reading (of a young window too) is the same as the schedule's own."""
    every = grid(slo)
    shift = -minute % every
    at = f"{minute + shift}m"
    moved = AlertAt(at, expect.alert, expect.firing) if isinstance(expect, AlertAt) else ExprAt(
        at, expect.expr, expect.samples)
    series = tuple(Series(s.selector, f"_x{shift} {s.values}" if shift else s.values)
                   for s in _series(slo, Schedule(schedule.errors[:minute]), catalog))
    return RuleTest(title, series,
                    alerts=(moved,) if isinstance(moved, AlertAt) else (),
                    exprs=(moved,) if isinstance(moved, ExprAt) else (),
                    suite=suite, evaluation_interval=f"{every}m")


def _alerts(slo: SLO, windows: Sequence[BurnWindow], catalog: Catalog) -> list[RuleTest]:
    """At the stack's own evaluation interval: what the alerts carry when they reach Alertmanager.
    Errors from the start; checked once every short window is full (a traffic guard reads the
    short window, which underestimates the rate of a younger series)."""
    settled = max(w.short for w in windows) // STEP + 1
    runs = settled + 15 + _minutes(_for_seconds(slo))
    schedule = Schedule.of((1.0, runs))
    states, certain = certain_minutes(schedule, windows, slo.error_budget, slo.for_, isinstance(slo.sli, GaugeSLI))
    every = set(tiers(slo))
    both = next((m for m in sorted(certain) if m >= settled and states[m] == every), None)
    tests = []
    if every and both is not None:
        tests.append(RuleTest(
            f"SLO {slo.name}: {' and '.join(sorted(every))} carry their routing labels and annotations",
            _series(slo, Schedule(schedule.errors[:both]), catalog),
            alerts=(AlertAt(f"{both}m", SLO_BURN_ALERT, tuple(_annotated(slo, t) for t in sorted(every))),),
            suite=ALERTS))
    no_data = Expected("warning", slo.service, "An SLO has no data", {"slo": slo.name})
    tests.append(RuleTest(
        f"SLO {slo.name}: an SLI without any series raises SLONoData after 15 minutes",
        (Series('up{job="unrelated"}', "1x30"),),
        alerts=(AlertAt("14m", SLO_NO_DATA_ALERT),
                AlertAt("16m", SLO_NO_DATA_ALERT, (no_data.firing(
                    {}, f"SLO {slo.name} has had no SLI data for 15 minutes: its burn-rate alerts cannot fire. "
                        "Check the scrape target and the SLI's metric names."),))),
        suite=ALERTS))
    return tests


def _annotated(slo: SLO, tier: str) -> Firing:
    where = "".join(f" for {label} {value}" for label, value in _group_labels(slo).items())
    paths = ", or ".join(f"{number(w.factor)}x over {window_name(w.long)} (and {window_name(w.short)})"
                         for w in burn_windows(slo.period) if w.tier == tier)
    expected = Expected(SEVERITIES[tier], slo.service, SUMMARIES[tier], {"slo": slo.name, TIER_LABEL: tier})
    return expected.firing(_group_labels(slo), (
        f"SLO {slo.name}{where} ({number(slo.objective)}% {slo.description} over {slo.period}) burns its "
        f"error budget at {paths} the sustainable rate."))


def _outage(slo: SLO, windows: Sequence[BurnWindow], catalog: Catalog) -> list[RuleTest]:
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
    title = (f"SLO {slo.name}: a full outage pages within {human(detect)} (plus one evaluation) and "
             f"the page clears {cleared - baseline - outage}m after recovery")
    return [on_grid(slo, catalog, f"{title}: {_state(states[m])} at {_relative(m, baseline, outage)}", OUTAGE,
                    schedule, m, _expect(slo, states, m))
            for m in sorted(c for c in checkpoints if c is not None)]


def _ticket_burn(slo: SLO, windows: Sequence[BurnWindow], catalog: Catalog) -> list[RuleTest]:
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
    title = f"SLO {slo.name}: burning the budget {number(burn)}x opens a ticket and never pages"
    return [on_grid(slo, catalog, f"{title}: {_state(states[m])} at {_relative(m, baseline)}", TICKET,
                    schedule, m, _expect(slo, states, m))
            for m in sorted(c for c in checkpoints if c is not None)]


def _healthy(slo: SLO, windows: Sequence[BurnWindow], catalog: Catalog) -> RuleTest:
    """A constant error ratio is the same over every window, so no model is needed: half the
    budget is below every factor. Evaluated every shortest window (the recorded 5-minute rates
    then tile the period, as the period ratio assumes), sampled twice per shortest window."""
    shortest = min(sli_windows(windows))
    evaluation, spacing = shortest, shortest / 2
    length = _longest(windows) * STEP + 3600  # seconds: every window full, then an hour
    samples = math.ceil(length / spacing)
    ratio = float(slo.error_budget) / 2
    schedule = Schedule.of((ratio, samples))
    checkpoints = range(3600, length + 1, 4 * 3600)
    return RuleTest(
        f"SLO {slo.name}: healthy traffic spending half the budget raises nothing over its longest window "
        f"and an hour ({human(length)})",
        _series(slo, schedule, catalog, spacing / STEP),
        alerts=tuple(AlertAt(f"{s // 60}m", name) for s in checkpoints for name in (SLO_BURN_ALERT, SLO_NO_DATA_ALERT)),
        # Rounded to 1e-9: 1 - good/total carries float noise that promtool compares exactly.
        exprs=tuple(
            ExprAt(f"{length // 60}m", f'round({series}{{slo="{slo.name}"}} * 1e9)',
                   ((f'{{slo="{slo.name}"}}', round(value * 1e9)),))
            for series, value in _recorded_values(slo, windows, ratio)
        ),
        interval=_duration(spacing), suite=HEALTHY, evaluation_interval=_duration(evaluation),
    )


def _duration(seconds: float) -> str:
    return f"{int(seconds // 60)}m" if seconds % 60 == 0 else f"{int(seconds)}s"


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


def _state(tiers_firing: set[str]) -> str:
    return f"{' and '.join(sorted(tiers_firing))} firing" if tiers_firing else "nothing firing"


def _relative(minute: int, start: int, length: int | None = None) -> str:
    """A checkpoint in words: minutes into the burn, or after recovery."""
    if length is not None and minute >= start + length:
        return f"{minute - start - length}m after recovery"
    return f"{minute - start}m into the burn" if minute >= start else f"{start - minute}m before the burn"


def _last_certain(certain: set[int], before: int) -> int | None:
    return max((m for m in certain if m < before), default=None)


def _first_certain(certain: set[int], after: int) -> int | None:
    return min((m for m in certain if m >= after), default=None)


def _expect(slo: SLO, states: Sequence[set[str]], minute: int) -> AlertAt:
    group = _group_labels(slo)
    return AlertAt(f"{minute}m", SLO_BURN_ALERT, tuple(
        Firing({"slo": slo.name, TIER_LABEL: tier, "severity": SEVERITIES[tier], "service": slo.service, **group})
        for tier in sorted(states[minute])
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


def _series(slo: SLO, schedule: Schedule, catalog: Catalog, step_minutes: float = 1) -> tuple[Series, ...]:
    """Series for a schedule of one entry per sample step, at constant traffic."""
    sli = slo.sli
    events = EVENTS_PER_MINUTE * step_minutes
    errors = [(ratio, len(list(run))) for ratio, run in itertools.groupby(schedule.errors)]
    bad = [(events * ratio, count) for ratio, count in errors]
    good = [(events - b, count) for b, count in bad]
    if isinstance(sli, RatioSLI):
        good_labels, bad_labels = ratio_events(sli)
        return (
            Series(_labels_text(pp.parse(sli.total).name, good_labels), counter(good)),
            Series(_labels_text(pp.parse(sli.total).name, bad_labels), counter(bad)),
        )
    every = [(events, count) for _, count in errors]
    if isinstance(sli, LatencySLI):
        labels = latency_labels(sli)
        bounds = catalog.metrics[sli.histogram].buckets
        out = []
        for bound in (*bounds, math.inf):
            # Good observations land in the threshold's bucket, bad ones in the next.
            if bound < sli.threshold_seconds:
                per_step = [(0.0, count) for _, count in errors]
            elif bound == sli.threshold_seconds:
                per_step = good
            else:
                per_step = every
            le = bucket_label(bound)  # as Prometheus 3 stores it
            out.append(Series(_labels_text(f"{sli.histogram}_bucket", {**labels, "le": le}), counter(per_step)))
        out.append(Series(_labels_text(f"{sli.histogram}_count", labels), counter(every)))
        return tuple(out)
    labels = gauge_labels(sli)
    return (Series(_labels_text(pp.parse(sli.selector).name, labels),
                   gauge([(1 - ratio, count) for ratio, count in errors])),)


def counter(runs: Sequence[tuple[float, int]]) -> str:
    """promtool expanding notation for a counter rising by `increment` in each of `count` steps,
    run after run."""
    parts, value = [], 0.0
    for increment, count in _merged(runs):
        if not parts:
            parts.append(f"0+{number(increment)}x{count}")
        else:
            parts.append(f"{number(value + increment)}+{number(increment)}x{count - 1}")
        value += increment * count
    return " ".join(parts) if parts else "0"


def gauge(runs: Sequence[tuple[float, int]]) -> str:
    """A gauge holding `value` for `count` steps, run after run (the first value also at 0)."""
    return " ".join(f"{number(value)}x{count if index == 0 else count - 1}"
                    for index, (value, count) in enumerate(_merged(runs)))


def _merged(runs: Iterable[tuple[float, int]]) -> list[tuple[float, int]]:
    """Adjacent runs of (nearly) the same value as one."""
    out: list[tuple[float, int]] = []
    for value, count in runs:
        if out and math.isclose(out[-1][0], value):
            out[-1] = (out[-1][0], out[-1][1] + count)
        elif count:
            out.append((value, count))
    return out
