"""Faults the sandbox can inject, by name: what is done to MediaNest (a fault of the traffic
simulator, or a dependency stopped) and which alert must then reach which receiver.

The CLI (`python -m stack sandbox --scenario NAME`), the end-to-end tests and the detection bench
share these definitions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rules.alerting_policy import CRITICAL_ALERTS, DEFAULT


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    # Body of POST /faults on the simulator.
    faults: dict[str, Any] = field(default_factory=dict)
    # Sandbox processes stopped to cause it (a dependency down).
    stopped: tuple[str, ...] = ()
    # The first notification expected: (alertname, receiver), and the SLO it pages on, if any.
    expected: tuple[str, str] | None = None
    slo: str | None = None


SCENARIOS = {s.name: s for s in (
    Scenario("healthy", "no fault: realistic traffic, every alert silent but Watchdog"),
    Scenario("outage", "every request fails (5xx); /api/health answers 503",
             faults={"error_ratio": 1.0}, expected=("SLOErrorBudgetBurn", CRITICAL_ALERTS), slo="api-availability"),
    Scenario("errors-10", "one request in ten fails",
             faults={"error_ratio": 0.1}, expected=("SLOErrorBudgetBurn", CRITICAL_ALERTS), slo="api-availability"),
    Scenario("latency", "every request takes 2.5 s longer",
             faults={"latency_seconds": 2.5}, expected=("HighResponseTime", DEFAULT)),
    Scenario("postgres-down", "PostgreSQL stopped",
             stopped=("postgres",), expected=("PostgresDown", CRITICAL_ALERTS)),
    Scenario("circuit-open", "the Plex circuit breaker is open", faults={"circuit_open": ["plex"]}),
    Scenario("queue-buildup", "background jobs pile up", faults={"queue_growth_per_second": 2}),
    Scenario("database-connections", "the backend holds 150 database connections",
             faults={"database_connections": 150}),
    Scenario("memory-leak", "resident memory grows 8 MiB/s", faults={"memory_growth_bytes_per_second": 8 << 20}),
)}
