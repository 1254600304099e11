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
- `dashboard_rows(config)`: its rows on the `dashboard` (a uid) it appears on, with the
  `dashboard_variables(config)` they select on.
- `sandbox_binary`: the binary the sandbox (stack/sandbox) runs it with, from its spec, and
  `sandbox_settings(world)` pointing it at what the sandbox runs (its PostgreSQL...); none:
  the sandbox switches it off, with its alerts. `no_local_image` and `unjudged`: why its image
  cannot be built here, and why no binary of it judges it here (None: they are).

Defaults say "nothing": a component with no alerts or rows simply has none.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from dashboards.model import Row, Variable
    from rules.catalog import Metric
    from rules.model import AlertingRule
    from rules.testing import Expected, RuleTest
    from stack.config import StackConfig
    from stack.services.spec import ServiceSpec
    from stack.settings import Component

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
    redis: str
    scrape_interval: str
    evaluation_interval: str


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
    dashboard: str = "infrastructure"
    dashboard_rows: Callable[[StackConfig], tuple[Row, ...]] = _nothing
    dashboard_variables: Callable[[StackConfig], tuple[Variable, ...]] = _nothing
    # The binary the sandbox runs it with (its image's entrypoint, given the spec's args, found
    # by stack.sandbox.processes.binary); None: the sandbox runs without it (switched off there).
    sandbox_binary: str | None = None
    # Its settings in the sandbox (camelCase keys laid over the dev stack's), from what runs there.
    sandbox_settings: Callable[[SandboxWorld], dict[str, Any]] = lambda world: {}
    # Why this machine cannot build its image from a binary here (stack/images.py builds the
    # others for the Docker engine tests, which then run without it); None: it can.
    no_local_image: str | None = None
    # Why no binary of it judges its config or flags here (stack/judges.py builds the others).
    unjudged: str | None = None

    def settings_of(self, config: StackConfig) -> Component:
        return getattr(config.services, self.settings_key)

    def deployed(self, config: StackConfig) -> bool:
        """Enabled and made for the stack's target."""
        return config.target in self.targets and self.settings_of(config).enabled
