"""The Pulumi program: read the stack's config, build the bundle, hand its service specs to the
target the config names. Everything generated comes from `stack.bundle.build`; this file only
wires it to Pulumi."""

import pulumi

from rules.problems import Severity
from stack import secrets
from stack.bundle import build
from stack.config import from_pulumi
from stack.services import grafana

config = from_pulumi()
bundle = build(config)
errors = [p.render() for p in bundle.problems() if p.severity >= Severity.ERROR]
if errors:
    # Deploying rules that fail the static checks would ship alerts that never fire.
    raise ValueError("the generated rules have problems:\n" + "\n".join(errors))

stack = pulumi.get_stack()
secret_values = secrets.resolve(stack, bundle.services, secrets.configured(stack))
# The provider SDK is loaded only for its target.
if config.target == "kubernetes":
    from stack.targets.kubernetes import resources

    urls = resources.deploy(config, bundle.services, bundle.files, secret_values)
else:
    from stack.targets import docker

    urls = docker.deploy(config, bundle.services, secret_values)

pulumi.export("environment", config.environment)
for name in ("grafana", "prometheus", "alertmanager", "jaeger"):
    # Not ours with prometheus-operator (the cluster's own Prometheus and Alertmanager).
    pulumi.export(f"{name}Url", urls.get(name, "not deployed by this stack"))
if grafana.ADMIN_PASSWORD in secret_values:  # Grafana may be switched off
    pulumi.export("grafanaAdminUser", "admin")
    pulumi.export("grafanaAdminPassword", secret_values[grafana.ADMIN_PASSWORD])
pulumi.export("ruleFiles", bundle.rule_paths)
pulumi.export("alerts", sorted(rule.alert for _, rule in bundle.alerts))
