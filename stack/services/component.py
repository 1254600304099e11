"""What a component module provides: one `COMPONENT = ComponentModule(...)` per module of this
package, found by the registry (stack/services/__init__.py) without being listed anywhere.

A component module owns everything about its component, and nothing outside it names it:

- `settings`: its config model, a `stack.settings.Component` subclass read from
  `services.<settingsKey>` of the stack file (image, memory, cpus, publish, enabled, and its
  own keys). `enabled: false` leaves it out everywhere: not deployed, not scraped, not alerted on.
- `service(config, files, others)`: its `ServiceSpec` (image, args, files, secrets, volumes,
  probes, resources), with its network flows (`spec.flows`: whom it talks to, besides being
  scraped) and its workload facts (`spec.workload`: placement, host network, the Kubernetes API
  access and so the RBAC it needs). The targets turn these into containers, NetworkPolicies,
  Roles. Pure: no I/O. `others` are the specs of every other component, for the one that
  scrapes them (`scrapes_others`); everyone else ignores it.
- `required`: why it cannot be disabled, if it cannot; `check(config)`: a rule across keys of
  the stack (its settings against the target), as `<its key>: <the problem>`.
- `targets`: where it runs (`docker`, `kubernetes`): cAdvisor reads a Docker host, kube-state-
  metrics a cluster's API.
- `job`: its scrape job's key under `jobs` and default name: alerts and panels select on it.
  `scrape_jobs(config)`: scrape jobs beyond its own /metrics (the kubelet's, for example), and
  `operator_monitors(config, spec)` their prometheus-operator form (Probes, PodMonitors).
- `metrics`: catalog entries for every metric its alerts and panels read (checked against the
  rules by the static checks).
- `alerts(config)` with `alert_tests(config)` (promtool tests, each alert firing on its failure
  and silent on healthy data) and `expected` (severity, service and summary of each alert,
  stated apart from the rules); `alert_group` names the rule group of platform.yaml they join.
- `shows_dashboards`: it is the one showing them (Grafana); `rendered_files(config)`: files of
  its own config written beside the generated ones (grafana.ini).
- `dashboard_rows(config)`: its rows on the `dashboard` (a uid) it appears on, with the
  `dashboard_variables(config)` they select on; `datasource`: its Grafana datasource, if it
  serves queries (a panel reading an absent datasource is left out).
- `file_checks`: its rendered files judged by the program that reads them (promtool, amtool,
  `jaeger validate`...) or by the typed model they were generated from.
- `sandbox_binary`: the binary the sandbox (stack/sandbox) runs it with, from its spec, and
  `sandbox_settings(world)` pointing it at what the sandbox runs (its PostgreSQL...), with
  `sandbox_secrets(world)`; none: the sandbox switches it off, with its alerts. The sandbox
  prints its `sandbox_endpoint` and sends MediaNest's traces to the one that `receives_traces`.
- `judge`: the Go module its binary is built from here at the shipped version (stack/judges.py),
  or `unjudged`: why none is. `local_image`: its official image's layout, for the image
  stack/images.py builds from that binary, or `no_local_image`: why none can be built here.

Defaults say "nothing": a component with no alerts or rows simply has none.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from dashboards.datasources import Provided
    from dashboards.model import Row, Variable
    from rules.catalog import Metric
    from rules.model import AlertingRule
    from rules.slo.history import History
    from rules.testing import Expected, RuleTest
    from stack.config import StackConfig
    from stack.images import Official
    from stack.judges import Judge
    from stack.services.spec import ServiceSpec
    from stack.settings import Component

# The dashboards a component's rows appear on (their uids): the hosts and datastores MediaNest
# runs on (its exporters), and the monitoring stack's own health.
INFRASTRUCTURE = "infrastructure"
STACK_HEALTH = "stack-health"

Target = Literal["docker", "kubernetes"]
TARGETS: tuple[Target, ...] = ("docker", "kubernetes")


def _nothing(config: StackConfig) -> tuple[Any, ...]:
    return ()


def _no_problem(config: StackConfig) -> str | None:
    return None


@dataclass(frozen=True)
class SandboxWorld:
    """What the sandbox (stack/sandbox) runs around the stack, each `host:port` on loopback: a
    component's `sandbox_settings` point it there."""

    simulator: str  # MediaNest's simulated backend
    postgres: str
    postgres_database: str
    postgres_user: str
    postgres_password: str  # postgres_user's
    redis: str
    scrape_interval: str
    evaluation_interval: str


@dataclass(frozen=True)
class FileCheck:
    """A rendered file judged by the program that will read it: `run(config, file)` gives
    (passes, what the judge said)."""

    path: str  # in the bundle (stack.layout): a file, or a directory of them
    judge: str  # as `check` reports it: "amtool check-config"
    run: Callable[[StackConfig, Path], tuple[bool, str]]


@dataclass(frozen=True)
class SandboxEndpoint:
    """What the sandbox's printout says a component serves on `port` (a listener of its spec),
    and a command asking it at its URL (with the tools built at the shipped version)."""

    port: int
    serves: str
    command: Callable[[str], list[str]] | None = None


@dataclass(frozen=True)
class Job:
    """A scrape job: `key` under `jobs` in the stack file, `default` its name."""

    key: str
    default: str


ServiceBuilder = Callable[["StackConfig", Mapping[str, str], Sequence["ServiceSpec"]], "ServiceSpec"]


@dataclass(frozen=True)
class ComponentModule:
    name: str  # its DNS name on the stack's network, its Pulumi component's name
    settings_key: str  # services.<key> (snake_case here, camelCase in the stack file)
    settings: type[Component]
    service: ServiceBuilder
    targets: tuple[Target, ...] = TARGETS
    # Whether the stack's config asks for it beyond `enabled` (the long-term store: only with
    # `longTermStorage.mode: deploy`).
    wanted: Callable[[StackConfig], bool] = lambda config: True
    # Why it cannot be disabled (Prometheus and Alertmanager: the alerting path); None: it can.
    required: str | None = None
    # A rule across keys of the stack (its settings against the target, say): the problem as
    # `<key under its settings>: <what is wrong; what is valid>`, or None.
    check: Callable[[StackConfig], str | None] = _no_problem
    scrapes_others: bool = False
    job: Job | None = None
    # The jobs its `scrape_jobs` name, besides its own.
    other_jobs: tuple[Job, ...] = ()
    scrape_jobs: Callable[[StackConfig], tuple[dict[str, Any], ...]] = _nothing
    # With prometheus-operator: monitors beyond the ServiceMonitor of its metrics (the blackbox
    # exporter's Probes), each (kind, name, spec); the operator target adds metadata.
    operator_monitors: Callable[[StackConfig, ServiceSpec], tuple[tuple[str, str, dict[str, Any]], ...]] = (
        lambda config, spec: ())
    metrics: tuple[Metric, ...] = ()
    alerts: Callable[[StackConfig], tuple[AlertingRule, ...]] = _nothing
    alert_group: str = "platform.exporters"
    alert_tests: Callable[[StackConfig], tuple[RuleTest, ...]] = _nothing
    expected: Mapping[str, Expected] = field(default_factory=dict)
    dashboard: str = INFRASTRUCTURE
    dashboard_rows: Callable[[StackConfig], tuple[Row, ...]] = _nothing
    dashboard_variables: Callable[[StackConfig], tuple[Variable, ...]] = _nothing
    # It shows the dashboards (Grafana): the bundle generates them, with their datasources and
    # providers, only when such a component is deployed.
    shows_dashboards: bool = False
    # Files of its own config it reads or documents, generated from the config alone (Grafana's
    # grafana.ini and environment.yaml), by bundle path: written before the specs are built.
    rendered_files: Callable[[StackConfig], dict[str, str]] = lambda config: {}
    # It evaluates the SLOs' period-long rules (Prometheus; the long-term store's evaluator takes
    # them when deployed): the history they read there (retention, and the key setting it), or
    # None when that is not ours to know.
    slo_period_history: Callable[[StackConfig], History | None] | None = None
    # Where the scraper remote-writes to it (the long-term store the stack deploys), or None.
    remote_write_url: Callable[[StackConfig], str] | None = None
    # Its datasource in Grafana, when it serves queries (Prometheus, Loki, Jaeger, Alertmanager):
    # provisioned only while it is deployed, and only then linked to by the others.
    datasources: tuple[Provided, ...] = ()
    # The binary the sandbox runs it with (its image's entrypoint, given the spec's args, found
    # by stack.sandbox.processes.binary); None: the sandbox runs without it (switched off there).
    sandbox_binary: str | None = None
    # Its settings in the sandbox (camelCase keys laid over the dev stack's), from what runs there,
    # and the values of its secrets there (by secret name).
    sandbox_settings: Callable[[SandboxWorld], dict[str, Any]] = lambda world: {}
    sandbox_secrets: Callable[[SandboxWorld], dict[str, str]] = lambda world: {}
    # What the sandbox's printout says it serves; None: it is listed with no URL of its own.
    sandbox_endpoint: SandboxEndpoint | None = None
    # The port of its spec where it receives traces over OTLP/HTTP (Jaeger): the sandbox's
    # MediaNest sends its traces there.
    receives_traces: int | None = None
    # How stack/images.py builds its image here from its binary, laid out as the official image
    # (for the Docker engine tests); or why this machine cannot (they then run without it).
    local_image: Official | None = None
    no_local_image: str | None = None
    # Its judge: its Go module under tools/, built at the shipped version by stack/judges.py
    # (its image's tag is derived from it); or why no binary of it judges it here.
    judge: Judge | None = None
    unjudged: str | None = None
    # Its rendered files, each judged by the program that reads it (or the typed model it was
    # generated from, where that program does not run here): `python -m stack check` runs them.
    file_checks: tuple[FileCheck, ...] = ()

    def settings_of(self, config: StackConfig) -> Component:
        return getattr(config.services, self.settings_key)

    def deployed(self, config: StackConfig) -> bool:
        """Enabled, asked for, and made for the stack's target."""
        return config.target in self.targets and self.settings_of(config).enabled and self.wanted(config)
