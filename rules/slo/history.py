"""Each SLO's period is answered from stored history: its period-long rules (the error budget
left, the period's ratio) read `[<period>]` of samples. A period longer than the history kept
where those rules are evaluated silently covers less than it says (dev kept 15 days under 30-day
SLOs). One problem per SLO, naming its period and the retention, and where to change it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rules.conventions import duration_seconds
from rules.problems import Problem, Severity
from rules.slo.spec import SLO

CHECK = "slo/history"


@dataclass(frozen=True)
class History:
    """How long samples are kept where the period-long rules are evaluated, and the config key
    that sets it."""

    retention: str
    key: str


def check_history(slos: Sequence[SLO], history: History | None) -> list[Problem]:
    """None: the history is not ours to know (the cluster's Prometheus evaluates the rules)."""
    if history is None:
        return []
    kept = duration_seconds(history.retention)
    return [Problem(f"slo {slo.name}", "period", CHECK, Severity.ERROR,
                    f"its period {slo.period} is longer than the history that answers it: {history.key} is "
                    f"{history.retention}; keep at least {slo.period}")
            for slo in slos if duration_seconds(slo.period) > kept]
