"""The Pulumi program: read the stack's config and deploy it as one `MonitoringStack` component
(stack/targets/components.py), which builds the bundle and hands its service specs to the target
the config names. Everything generated comes from `stack.bundle.build`; this file only wires the
stack's config and outputs to Pulumi."""

import pulumi

from stack.config import from_pulumi
from stack.targets.components import MonitoringStack, MonitoringStackArgs, output_name

config = from_pulumi()
monitoring = MonitoringStack("medianest", MonitoringStackArgs(config=config))
urls = monitoring.urls

pulumi.export("environment", config.environment)
# Each UI or API the stack deploys (`grafanaUrl`, `prometheusUrl`...): with prometheus-operator,
# the cluster's own Prometheus and Alertmanager are not ours, and have none.
for name, url in urls.items():
    pulumi.export(f"{output_name(name)}Url", url)
# Secrets Pulumi generated (`grafanaAdminPassword`: Grafana's user is `admin`), as Pulumi secrets.
for name, value in monitoring.generated_secrets.items():
    pulumi.export(output_name(name), value)
pulumi.export("ruleFiles", monitoring.rule_files)
pulumi.export("alerts", monitoring.alerts)
