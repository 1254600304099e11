"""The stack as Pulumi components: one `MonitoringStack` (type `medianest:observability:MonitoringStack`)
holding one component per service it deploys (`medianest:observability:Prometheus`, `...:NodeExporter`),
each the parent of that service's resources; what the services share (the Docker network, the
Kubernetes namespaces and secret-checksum key, the secrets Pulumi generates) is parented to
the stack itself. `pulumi preview` shows the tree, and another Pulumi program can deploy the
stack as a library:

    from stack.config import load_stack
    from stack.targets.components import MonitoringStack, MonitoringStackArgs

    monitoring = MonitoringStack("medianest", MonitoringStackArgs(config=load_stack("dev")))
    pulumi.export("grafana", monitoring.urls["grafana"])
    pulumi.export("grafanaAdminPassword", monitoring.generated_secrets["grafana-admin-password"])

URN continuity: before these components, every resource sat at the stack's root. Each resource
carries `Alias(parent=ROOT_STACK_RESOURCE)`, its old URN, so a stack deployed then is updated in
place, never replaced: no data volume, claim or StatefulSet is recreated (tests/golden/urns holds
the URNs that program produced; tests/test_pulumi_components.py checks every one is still claimed).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi

from rules.problems import Severity
from stack import secrets
from stack.bundle import build
from stack.config import StackConfig

PACKAGE = "medianest:observability"
# Every resource's URN before it had a component parent: the stack's root, same type and name.
ROOT_ALIAS = pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)


def type_name(component: str) -> str:
    """node-exporter -> NodeExporter."""
    return "".join(part.capitalize() for part in re.split(r"[-_]", component))


def output_name(component: str) -> str:
    """node-exporter -> nodeExporter: a component's name in stack outputs."""
    first, *rest = re.split(r"[-_]", component)
    return first + "".join(part.capitalize() for part in rest)


def child_options(parent: pulumi.Resource, **options: object) -> pulumi.ResourceOptions:
    """Options of a resource under `parent` that keeps its URN from before the components."""
    return pulumi.ResourceOptions(parent=parent, aliases=[ROOT_ALIAS], **options)  # type: ignore[arg-type]


class Component(pulumi.ComponentResource):
    """One service of the stack (a ServiceSpec) and every resource deployed for it."""

    def __init__(self, name: str, parent: pulumi.Resource) -> None:
        super().__init__(f"{PACKAGE}:{type_name(name)}", name, None, pulumi.ResourceOptions(parent=parent))

    def options(self, **options: object) -> pulumi.ResourceOptions:
        return child_options(self, **options)


@dataclass(frozen=True)
class MonitoringStackArgs:
    config: StackConfig
    # Secret values by file name (`secrets.<name>` of the stack config); None: read them from this
    # program's config key `medianest-observability:secrets`.
    secrets: Mapping[str, str] | None = None


class MonitoringStack(pulumi.ComponentResource):
    """MediaNest's monitoring stack on the target its config names (Docker or Kubernetes).

    Outputs: `urls` (where each UI or API is reached, by component), `generated_secrets` (each
    secret Pulumi generates when the config sets none, by its file name, whichever value it
    holds: Grafana's admin password; Pulumi secrets), `rule_files` and `alerts`."""

    urls: dict[str, str]
    generated_secrets: dict[str, pulumi.Output[str]]
    rule_files: list[str]
    alerts: list[str]

    def __init__(self, name: str, args: MonitoringStackArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{PACKAGE}:MonitoringStack", name, None, opts)
        config = args.config
        bundle = build(config)
        errors = [p.render() for p in bundle.problems() if p.severity >= Severity.ERROR]
        if errors:
            # Deploying rules that fail the static checks would ship alerts that never fire.
            raise ValueError("the generated rules have problems:\n" + "\n".join(errors))
        stack = pulumi.get_stack()
        values = secrets.configured(stack) if args.secrets is None else dict(args.secrets)
        shared = child_options(self)
        secret_values = secrets.resolve(stack, bundle.services, values, shared)
        components = {spec.name: Component(spec.name, self) for spec in bundle.services}
        # The provider SDK is loaded only for its target.
        if config.target == "kubernetes":
            from stack.targets.kubernetes import resources

            self.urls = resources.deploy(config, bundle.services, bundle.files, secret_values, components, shared)
        else:
            from stack.targets import docker

            self.urls = docker.deploy(config, bundle.services, secret_values, components, shared)
        generated = {secret.name for spec in bundle.services for secret in spec.secrets if secret.generated}
        self.generated_secrets = {name: value for name, value in secret_values.items() if name in generated}
        self.rule_files = bundle.rule_paths
        self.alerts = sorted(rule.alert for _, rule in bundle.alerts)
        self.register_outputs({"urls": self.urls, "generatedSecrets": self.generated_secrets,
                               "ruleFiles": self.rule_files, "alerts": self.alerts})
