"""Building blocks of the promtool tests of alerts, shared by rules/platform.py and the component
modules (stack/services): series in promtool's notation, thresholds approached from either side,
expected alerts from an `expected` mapping (alert name -> `Expected`) the caller states apart from
its rules. Pure helpers: nothing here names an alert or a component.
"""

from __future__ import annotations

from collections.abc import Mapping

from rules.conventions import number
from rules.testing import AlertAt, Expected, RuleTest, Series

GIB = 1024**3

# How close to a threshold the tests go, relative to it: they prove the threshold within 2%.
MARGIN = 0.02


def over(threshold: float) -> float:
    return threshold * (1 + MARGIN)


def under(threshold: float) -> float:
    return threshold * (1 - MARGIN)


def series(metric: str, values: str, /, **labels: str) -> Series:
    return Series(metric + "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}", values)


def fires(expected: Mapping[str, Expected], at: str, alert_name: str, description: str, /,
          **labels: str) -> AlertAt:
    """At `at`, `alert_name` fires one instance with these labels and this description, and what
    `expected` states of it."""
    return AlertAt(at, alert_name, (expected[alert_name].firing(labels, description),))


def silent(at: str, alert_name: str) -> AlertAt:
    return AlertAt(at, alert_name)


def counter(per_minute: float, samples: int = 60) -> str:
    return f"0+{number(per_minute)}x{samples}"


def down_tests(expected: Mapping[str, Expected], alert_name: str, what: str, job: str, instance: str,
               exporter_up: str) -> list[RuleTest]:
    """An exporter's down alert (`target_down(job, exporter_up)`): it pages when the exporter
    reports its service down, and when the exporter itself cannot be scraped."""
    labels = {"job": job, "instance": instance}
    described = f"{what} (or its exporter) cannot be reached through {instance} for more than 1 minute."
    return [
        RuleTest(
            f"{what} reported down by its exporter pages after 1 minute",
            series=(series("up", "1x10", **labels), series(exporter_up, "1 1 0x8", **labels)),
            alerts=(silent("2m", alert_name), fires(expected, "4m", alert_name, described, **labels)),
        ),
        RuleTest(
            f"An unreachable {what} exporter pages as {alert_name}",
            series=(series("up", "1 1 0x8", **labels), series(exporter_up, "1 1 stale", **labels)),
            alerts=(fires(expected, "4m", alert_name, described, **labels),),
        ),
    ]
