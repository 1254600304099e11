"""The detection-time report: per SLO and tier, how long a constant error ratio takes to fire
(after a clean history), from the burn-rate maths; and promtool scenarios that confirm each
figure within one evaluation interval."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rules.catalog import Catalog
from rules.conventions import SLO_BURN_ALERT, duration_seconds, number
from rules.humanize import humanize_percentage
from rules.slo.detection import STEP, Schedule, human, tier_detection
from rules.slo.scenarios import SEVERITIES, on_grid, tiers
from rules.slo.spec import SLO
from rules.slo.windows import burn_windows
from rules.testing import ExprAt, RuleTest

DETECTION = "detection"

ERROR_RATIOS = (1.0, 0.1, 0.02)  # and the objective's own error ratio (a burn rate of 1)


@dataclass(frozen=True)
class Cell:
    slo: str
    tier: str
    error_ratio: float
    seconds: float | None  # None: never fires


def ratios(slo: SLO) -> tuple[float, ...]:
    return (*ERROR_RATIOS, float(slo.error_budget))


def table(slos: Sequence[SLO]) -> list[Cell]:
    cells = []
    for slo in slos:
        windows = burn_windows(slo.period)
        wait = duration_seconds(slo.for_) if slo.for_ else 0
        for tier in tiers(slo):
            for ratio in ratios(slo):
                cells.append(Cell(slo.name, tier, ratio, tier_detection(windows, tier, slo.error_budget, ratio, wait)))
    return cells


def confirmation_tests(slo: SLO, catalog: Catalog) -> list[RuleTest]:
    """Per error ratio and tier: a clean history as long as the longest window, then the ratio;
    the tier must be silent one evaluation before its computed time (rounded down) and firing one
    evaluation after it (rounded up); a tier that never fires is silent at the end of the run.
    Each check is its own test on the evaluation grid (scenarios.on_grid), reading only its tier's
    rules."""
    windows = burn_windows(slo.period)
    wait = duration_seconds(slo.for_) if slo.for_ else 0
    baseline = max(w.long for w in windows) // STEP
    tests = []
    for ratio in ratios(slo):
        times = {tier: tier_detection(windows, tier, slo.error_budget, ratio, wait) for tier in tiers(slo)}
        finite = [t for t in times.values() if t is not None]
        # "Never" needs no long run: after a clean history no window's ratio exceeds the steady
        # ratio, which is at or under the factor; the run checks it up to the last firing.
        length = math.ceil(max(finite, default=0) / STEP) + 5
        schedule = Schedule.of((0.0, baseline), (ratio, length))
        burn = f"{humanize_percentage(ratio)} errors ({number(ratio / float(slo.error_budget))}x burn)"
        for tier, seconds in times.items():
            alerts = f'ALERTS{{alertname="{SLO_BURN_ALERT}",alertstate="firing",slo="{slo.name}",tier="{tier}"}}'
            firing = (f'ALERTS{{alertname="{SLO_BURN_ALERT}",alertstate="firing",service="{slo.service}",'
                      f'severity="{SEVERITIES[tier]}",slo="{slo.name}",tier="{tier}"}}', 1.0)
            checks = []
            if seconds is None:
                checks.append((baseline + length, "silent at the end", ()))
            else:
                before = baseline + math.floor(seconds / STEP) - 1
                if before > baseline:
                    checks.append((before, "silent before", ()))
                checks.append((baseline + math.ceil(seconds / STEP) + 1, "firing after", (firing,)))
            for minute, what, samples in checks:
                tests.append(on_grid(slo, catalog, f"SLO {slo.name} at {burn}: {tier} {human(seconds)}, {what}",
                                     DETECTION, schedule, minute, ExprAt(f"{minute}m", alerts, samples)))
    return tests


def confirmed_cells(slo: SLO, tests: Sequence[RuleTest], failed: set[str]) -> dict[tuple[str, float], bool]:
    """(SLO, error ratio) -> whether every check of that ratio passed."""
    out: dict[tuple[str, float], bool] = {}
    for ratio in ratios(slo):
        burn = f"{humanize_percentage(ratio)} errors ({number(ratio / float(slo.error_budget))}x burn)"
        names = [t.name for t in tests if t.name.startswith(f"SLO {slo.name} at {burn}:")]
        out[(slo.name, ratio)] = bool(names) and not any(name in failed for name in names)
    return out


def render(cells: Sequence[Cell], confirmed: dict[tuple[str, float], bool] | None = None) -> str:
    """A Markdown table: one row per SLO and tier, one column per error ratio."""
    rows = ["| SLO | tier | 100% | 10% | 2% | at objective |", "|---|---|---|---|---|---|"]
    by_row: dict[tuple[str, str], list[Cell]] = {}
    for cell in cells:
        by_row.setdefault((cell.slo, cell.tier), []).append(cell)
    for (slo, tier), row in by_row.items():
        texts = []
        for cell in row:
            text = human(cell.seconds)
            if confirmed is not None:
                text += " ✓" if confirmed.get((slo, cell.error_ratio)) else " ✗"
            texts.append(text)
        rows.append(f"| {slo} | {tier} | " + " | ".join(texts) + " |")
    return "\n".join(rows)
