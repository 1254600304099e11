"""The datasources Grafana is provisioned with. Fixed uids: dashboards and the datasources'
own correlations (exemplars, derived fields, traces to logs) refer to each other by them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Datasource:
    uid: str
    type: str  # Grafana plugin id
    name: str


PROMETHEUS = Datasource("prometheus", "prometheus", "Prometheus")
LOKI = Datasource("loki", "loki", "Loki")
JAEGER = Datasource("jaeger", "jaeger", "Jaeger")
ALERTMANAGER = Datasource("alertmanager", "alertmanager", "Alertmanager")

ALL = (PROMETHEUS, LOKI, JAEGER, ALERTMANAGER)
BY_UID = {d.uid: d for d in ALL}
