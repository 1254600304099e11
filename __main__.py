"""The Pulumi program: read the stack's config and deploy it as one `MonitoringStack` component
(stack/targets/components.py), which builds the bundle and hands its service specs to the target
the config names. Everything generated comes from `stack.bundle.build`; this file only wires the
stack's config and outputs to Pulumi."""

import pulumi

from stack.config import from_pulumi
from stack.targets.components import MonitoringStack, MonitoringStackArgs

config = from_pulumi()
monitoring = MonitoringStack("medianest", MonitoringStackArgs(config=config))
urls = monitoring.urls

pulumi.export("environment", config.environment)
for name in ("grafana", "prometheus", "alertmanager", "jaeger"):
    # Not ours with prometheus-operator (the cluster's own Prometheus and Alertmanager).
    pulumi.export(f"{name}Url", urls.get(name, "not deployed by this stack"))
if monitoring.grafana_admin_password is not None:  # Grafana may be switched off
    pulumi.export("grafanaAdminUser", "admin")
    pulumi.export("grafanaAdminPassword", monitoring.grafana_admin_password)
pulumi.export("ruleFiles", monitoring.rule_files)
pulumi.export("alerts", monitoring.alerts)
