"""The datasources dashboards read, by query language. Fixed uids: dashboards and the
datasources' own correlations (exemplars, derived fields, traces to logs) refer to each other by
them. The component behind each provisions it (`COMPONENT.datasources`), only when deployed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stack.config import StackConfig


@dataclass(frozen=True)
class Datasource:
    uid: str
    type: str  # Grafana plugin id
    name: str


PROMETHEUS = Datasource("prometheus", "prometheus", "Prometheus")
LOKI = Datasource("loki", "loki", "Loki")
JAEGER = Datasource("jaeger", "jaeger", "Jaeger")
ALERTMANAGER = Datasource("alertmanager", "alertmanager", "Alertmanager")
# Where history outlives Prometheus (longTermStorage): a Prometheus-compatible query API.
LONG_TERM = Datasource("long-term", "prometheus", "Long-term")

ALL = (PROMETHEUS, LOKI, JAEGER, ALERTMANAGER, LONG_TERM)
BY_UID = {d.uid: d for d in ALL}


@dataclass(frozen=True)
class Credentials:
    """How Grafana authenticates to a datasource outside the stack: a bearer token, or a basic-auth
    password for `user`, read from the secret file `secret` (`secrets.<secret>`) Grafana mounts
    under its secrets directory; provisioning names the file (`$__file{...}`), never the value."""

    secret: str
    user: str | None = None  # None: a bearer token


@dataclass(frozen=True)
class Provided:
    """A component's datasource in Grafana: `settings(config, provisioned)` gives its URL and
    jsonData, linking only to the datasources provisioned with it (their uids)."""

    source: Datasource
    settings: Callable[[StackConfig, frozenset[str]], tuple[str, dict[str, Any]]]
    default: bool = False
    # Whether the stack's config asks for it (an external store's, only with its query URL).
    wanted: Callable[[StackConfig], bool] = lambda config: True
    # Served outside the stack (an external store): Grafana's flow goes anywhere on its port.
    outside: bool = False
    # What Grafana authenticates with, if anything (an external store's credentials).
    credentials: Callable[[StackConfig], Credentials | None] = lambda config: None
