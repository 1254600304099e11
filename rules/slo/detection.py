"""When a burn-rate alert fires: the closed form for a report, and a minute-by-minute model of
what Prometheus computes, for the expectations of generated promtool scenarios.

The model follows Prometheus 3: `rate(x[w])` at time t uses the samples in (t-w, t] (left-open:
not one at exactly t-w), so with one sample a minute the error ratio is the traffic-weighted
share of bad events over the last w/1m - 1 one-minute intervals, fewer while the series is
younger than the window; `avg_over_time` averages those w/1m samples. Scenario checkpoints stay a
minute away from every change of state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from itertools import accumulate

from rules.conventions import duration_seconds
from rules.slo.windows import BurnWindow

STEP = 60  # seconds between samples and between rule evaluations in the scenarios


def closed_form(window: BurnWindow, budget: Decimal, error_ratio: float,
                history_seconds: float = math.inf) -> float | None:
    """Seconds from the start of a constant error ratio, after `history_seconds` of clean
    traffic (by default at least as long as the window), until both windows of this path exceed
    the factor; None: never. A window longer than the history averages over what there is, as
    Prometheus's rate() does on a young series: a fresh Prometheus detects sooner."""
    threshold = float(window.factor * budget)
    if error_ratio <= threshold:
        return None
    full = threshold * window.long / error_ratio  # the long window crosses last
    if history_seconds + full >= window.long:
        return full
    return threshold * history_seconds / (error_ratio - threshold)


def tier_detection(windows: Sequence[BurnWindow], tier: str, budget: Decimal, error_ratio: float,
                   for_seconds: float = 0, history_seconds: float = math.inf) -> float | None:
    times = [t for w in windows if w.tier == tier
             if (t := closed_form(w, budget, error_ratio, history_seconds)) is not None]
    return min(times) + for_seconds if times else None


@dataclass(frozen=True)
class Schedule:
    """Error ratio for each one-minute interval k (from minute k-1 to k), constant traffic."""

    errors: tuple[float, ...]

    @classmethod
    def of(cls, *segments: tuple[float, int]) -> Schedule:
        out: list[float] = []
        for ratio, minutes in segments:
            out += [ratio] * minutes
        return cls(tuple(out))

    @property
    def minutes(self) -> int:
        return len(self.errors)

    @cached_property
    def _prefix(self) -> list[float]:
        """_prefix[k] = sum of the first k intervals' error ratios (window sums in O(1))."""
        return [0.0, *accumulate(self.errors)]

    def ratio(self, minute: int, window_seconds: int, gauge: bool = False) -> float | None:
        samples = window_seconds // STEP
        if gauge:
            # avg_over_time of a 0/1 gauge sampled each minute; minute 0 holds interval 1's value.
            first = max(0, minute - samples + 1)
            at_zero = self.errors[0] if first == 0 else 0.0
            first_interval = max(1, first)
            total = self._prefix[minute] - self._prefix[first_interval - 1] + at_zero
            return total / (minute - first + 1)
        first = max(1, minute - samples + 2)  # intervals whose both ends are in the window
        if minute < 1 or first > minute:
            return None
        return (self._prefix[minute] - self._prefix[first - 1]) / (minute - first + 1)


def tiers_firing(schedule: Schedule, windows: Sequence[BurnWindow], budget: Decimal, minute: int,
                 gauge: bool = False) -> set[str]:
    """Tiers whose condition holds at this evaluation (before any `for`)."""
    firing = set()
    for window in windows:
        threshold = float(window.factor * budget)
        long = schedule.ratio(minute, window.long, gauge)
        short = schedule.ratio(minute, window.short, gauge)
        if long is not None and short is not None and long > threshold and short > threshold:
            firing.add(window.tier)
    return firing


def timeline(schedule: Schedule, windows: Sequence[BurnWindow], budget: Decimal, for_: str | None = None,
             gauge: bool = False) -> list[set[str]]:
    """The tiers firing at each minute 0..N, honouring `for` as Prometheus does."""
    wait = math.ceil(duration_seconds(for_) / STEP) if for_ else 0
    active_since: dict[str, int] = {}
    # Nothing fires on a clean history (every factor is above 0): skip the model through it.
    clean = next((k for k, e in enumerate(schedule.errors) if e), schedule.minutes)
    out: list[set[str]] = [set() for _ in range(clean + 1)]
    for minute in range(clean + 1, schedule.minutes + 1):
        now = tiers_firing(schedule, windows, budget, minute, gauge)
        active_since = {t: active_since.get(t, minute) for t in now}
        out.append({t for t, since in active_since.items() if minute - since >= wait})
    return out


def certain_minutes(schedule: Schedule, windows: Sequence[BurnWindow], budget: Decimal,
                    for_: str | None = None, gauge: bool = False) -> tuple[list[set[str]], set[int]]:
    """The timeline, and the minutes where it is certain: nothing changes within a minute either
    side (rate extrapolation stays well inside that)."""
    states = timeline(schedule, windows, budget, for_, gauge)
    unsure = {m + d for m in transitions(states) for d in (-1, 0, 1)}
    return states, {m for m in range(len(states)) if m not in unsure}


def transitions(states: Sequence[set[str]]) -> list[int]:
    """Minutes at which the set of firing tiers changes."""
    return [m for m in range(1, len(states)) if states[m] != states[m - 1]]


def human(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"
