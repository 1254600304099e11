"""Time to detect, on the sandbox (real Prometheus, Alertmanager and exporters): for each fault,
the time from injecting it to the first notification of its alert at the webhook sink, next to
its floor, and the sandbox's start-up time. Prints a table and writes bench/results/sandbox.json.

The floor is what the rules make unavoidable: the time the alert's expression needs to become
true (the burn-rate detection time for an SLO page; the rate window's share for the others),
its `for`, plus one scrape interval, one evaluation interval and the route's group_wait.
Target (issue 6): at most 1.25 times the floor for the page scenarios.

A sandbox's Prometheus is young: its 1h and 6h burn-rate windows average over the warm-up only,
so a page comes far sooner than after a month of history; the floor is computed for the same
history (rules/slo/detection.py), and `--warm-up 7h` measures against production's windows.
Each scenario runs in its own sandbox, side by side; with the default warm-up the bench takes
about 15 minutes.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import write_results  # noqa: E402
from rules import slos  # noqa: E402
from rules.conventions import duration_seconds  # noqa: E402
from rules.slo.detection import tier_detection  # noqa: E402
from rules.slo.windows import burn_windows  # noqa: E402
from stack.sandbox.console import apply  # noqa: E402
from stack.sandbox.run import Sandbox, wait_for  # noqa: E402
from stack.sandbox.scenarios import SCENARIOS, Scenario  # noqa: E402
from stack.sandbox.sink import alerts_in  # noqa: E402

TARGET_RATIO = 1.25
WARM_UP = "90s"  # healthy traffic first, so the rate windows hold data before the fault
BENCHED = ("outage", "errors-10", "latency", "postgres-down")
# The share of a 5m rate window that must see the fault before a threshold on it is crossed.
WINDOW_SECONDS = 300


@dataclass
class Measured:
    scenario: str
    alert: str
    seconds: float
    floor: float
    page: bool

    @property
    def ratio(self) -> float:
        return self.seconds / self.floor


def group_wait(sandbox: Sandbox, receiver: str) -> float:
    """The group_wait of the top-level route to `receiver` (the root's when it sets none)."""
    root = sandbox.bundle.alertmanager.route
    route = next((r for r in root.routes if r.receiver == receiver), root)
    return duration_seconds(route.group_wait or root.group_wait or "30s")


def floor(sandbox: Sandbox, scenario: Scenario, history_seconds: float) -> float:
    """Seconds the rules make unavoidable between the fault and the notification."""
    alertname, receiver = scenario.expected
    settings = sandbox.config.services.prometheus
    pipeline = (duration_seconds(settings.scrape_interval) + duration_seconds(settings.evaluation_interval)
                + group_wait(sandbox, receiver))
    if scenario.slo:
        slo = next(s for s in slos.slos(sandbox.config) if s.name == scenario.slo)
        wait = duration_seconds(slo.for_) if slo.for_ else 0
        detect = tier_detection(burn_windows(slo.period), "page", slo.error_budget,
                                scenario.faults.get("error_ratio", 1.0), wait, history_seconds)
        assert detect is not None
        return detect + pipeline
    rule = next(r for _, r in sandbox.bundle.alerts if r.alert == alertname)
    for_ = duration_seconds(rule.for_) if rule.for_ else 0
    # A `down` alert is true at the first failed scrape; a threshold on a 5m rate once the
    # window's share of faulty samples crosses it (p95 over +2.5 s latency: 5% of the window).
    expression = 0.0 if scenario.stopped else WINDOW_SECONDS * 0.05
    return expression + for_ + pipeline


def measure(name: str, warm_up: float) -> tuple[Measured, float]:
    scenario = SCENARIOS[name]
    alertname, receiver = scenario.expected
    with Sandbox() as sandbox:
        started, began = sandbox.started_seconds, time.time()  # Prometheus starts last
        time.sleep(warm_up)
        labels = {"slo": scenario.slo, "tier": "page"} if scenario.slo else {}
        injected = time.time()
        history = injected - began
        apply(sandbox, scenario)

        def arrived() -> list[dict]:
            return [a for a in alerts_in(sandbox.notifications(), alertname, status="firing", receiver=receiver)
                    if all(a["labels"].get(k) == v for k, v in labels.items())]

        first = wait_for(arrived, timeout=3600, interval=0.5, what=f"{alertname} for {name}")
        seconds = min(a["received_at"] for a in first) - injected
        return Measured(name, alertname, seconds, floor(sandbox, scenario, history), bool(scenario.slo)), started



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--warm-up", default=WARM_UP, help="healthy traffic before each fault (default %(default)s)")
    parser.add_argument("--scenarios", nargs="+", choices=BENCHED, default=BENCHED)
    args = parser.parse_args()
    warm_up = duration_seconds(args.warm_up)
    with ThreadPoolExecutor(max_workers=len(args.scenarios)) as pool:
        results = list(pool.map(lambda name: measure(name, warm_up), args.scenarios))
    print(f"{'scenario':<16}{'alert':<22}{'detected':>10}{'floor':>10}{'ratio':>8}  target")
    for measured, _ in results:
        target = f"<= {TARGET_RATIO}" if measured.page else ""
        print(f"{measured.scenario:<16}{measured.alert:<22}{measured.seconds:>9.1f}s{measured.floor:>9.1f}s"
              f"{measured.ratio:>8.2f}  {target}")
    startups = [started for _, started in results]
    print(f"sandbox start-up: {min(startups):.1f}-{max(startups):.1f} s ({len(startups)} sandboxes side by side)")
    write_results(f"sandbox-{args.warm_up}", {
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "target_ratio_for_pages": TARGET_RATIO, "warm_up_seconds": warm_up,
        "scenarios": {m.scenario: {"alert": m.alert, "seconds": m.seconds, "floor_seconds": m.floor,
                                   "ratio": m.ratio, "page": m.page} for m, _ in results},
        "startup_seconds": startups,
    })


if __name__ == "__main__":
    main()
