"""The multi-window multi-burn-rate table (Google SRE workbook, "Alerting on SLOs", table 5-8).

For a 30-day period: page when 2% of the budget burns in 1 hour (14.4x) or 5% in 6 hours
(6x); open a ticket when 10% burns in a day (3x) or in 3 days (1x). Each long window has a
short one of 1/12 its length, so an alert stops soon after the burn does. For other periods
the windows scale with the period (as Pyrra does) and the factor is recomputed from the
budget share: factor = share x period / long window.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from rules.conventions import duration_seconds

REFERENCE_PERIOD = 30 * 86400
# (tier, share of the budget, long window, short window) for the reference period.
TABLE = (
    ("page", Decimal("0.02"), 3600, 300),
    ("page", Decimal("0.05"), 6 * 3600, 1800),
    ("ticket", Decimal("0.10"), 86400, 2 * 3600),
    ("ticket", Decimal("0.10"), 3 * 86400, 6 * 3600),
)
# Shorter rate windows hold too few scrapes to be trusted.
MIN_WINDOW = 300


@dataclass(frozen=True)
class BurnWindow:
    tier: str
    share: Decimal
    long: int  # seconds
    short: int
    factor: Decimal


class PeriodError(ValueError):
    pass


def burn_windows(period: str) -> tuple[BurnWindow, ...]:
    seconds = duration_seconds(period)
    windows = []
    for tier, share, long, short in TABLE:
        scaled_long = _minutes(long * seconds / REFERENCE_PERIOD)
        scaled_short = max(_minutes(short * seconds / REFERENCE_PERIOD), MIN_WINDOW)
        if scaled_long < 2 * scaled_short:
            raise PeriodError(
                f"period {period} is too short for the burn-rate windows: its {tier} window would "
                f"be {scaled_long // 60}m against a short window of {scaled_short // 60}m; "
                f"use a period of at least {_min_period_days()}d"
            )
        factor = share * Decimal(int(seconds)) / Decimal(scaled_long)
        windows.append(BurnWindow(tier, share, scaled_long, scaled_short, factor))
    return tuple(windows)


def _minutes(seconds: float) -> int:
    return max(60, round(seconds / 60) * 60)


def _min_period_days() -> int:
    shortest_long = min(long for _, _, long, _ in TABLE)
    return -(-2 * MIN_WINDOW * REFERENCE_PERIOD // shortest_long // 86400)


def window_name(seconds: int) -> str:
    """5m, 1h, 1d: the largest unit that divides the window."""
    for unit, name in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds % unit == 0:
            return f"{seconds // unit}{name}"
    return f"{seconds}s"
