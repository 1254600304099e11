"""The layout of a rendered bundle: where each generated file lives, relative to the bundle's
root (`build/<stack>/...`, what `render` writes and `export` reads back).

Every module that writes, mounts or reads a generated file names its path from here. Plain
strings only: the PR preview reads exported trees with it, without importing the generators.
"""

from __future__ import annotations

# --- Prometheus -------------------------------------------------------------------------------

PROMETHEUS_DIR = "prometheus"
PROMETHEUS_CONFIG = f"{PROMETHEUS_DIR}/prometheus.yml"
# One file per rule file: `prometheus/rules/<rule file>.yaml`.
RULES_DIR = f"{PROMETHEUS_DIR}/rules"
# promtool's unit tests: `prometheus/tests/<rule file>/<suite>.yaml`, and the rules a suite reads
# when not the whole rule file beside them, under `SUITE_RULES_DIR`.
TESTS_DIR = f"{PROMETHEUS_DIR}/tests"
SUITE_RULES_DIR = "rules"

# The rules the long-term store's evaluator (vmalert) runs against the store: one file per rule
# file that has such groups, `long-term/rules/<rule file>.yaml`; promtool's tests load it beside
# the Prometheus one.
LONG_TERM_RULES_DIR = "long-term/rules"

# --- Alertmanager -----------------------------------------------------------------------------

ALERTMANAGER_DIR = "alertmanager"
ALERTMANAGER_CONFIG = f"{ALERTMANAGER_DIR}/alertmanager.yml"
# Notification templates, relative to alertmanager.yml (its `templates:` glob reads them there).
ALERTMANAGER_TEMPLATES_DIR = "templates"
ALERTMANAGER_TEMPLATE = f"{ALERTMANAGER_DIR}/{ALERTMANAGER_TEMPLATES_DIR}/medianest.tmpl"
# amtool's route tests: generated beside the config, never mounted into Alertmanager.
ALERTMANAGER_TESTS_DIR = f"{ALERTMANAGER_DIR}/tests"
ROUTE_TESTS = f"{ALERTMANAGER_TESTS_DIR}/routes.yaml"

# --- Grafana ----------------------------------------------------------------------------------

GRAFANA_DIR = "grafana"
GRAFANA_INI = f"{GRAFANA_DIR}/grafana.ini"
# Grafana's environment variables: read by the targets, not mounted as a file.
GRAFANA_ENVIRONMENT = f"{GRAFANA_DIR}/environment.yaml"
GRAFANA_PROVISIONING_DIR = f"{GRAFANA_DIR}/provisioning"
GRAFANA_DATASOURCES = f"{GRAFANA_PROVISIONING_DIR}/datasources/datasources.yaml"
GRAFANA_DASHBOARD_PROVISIONING_DIR = f"{GRAFANA_PROVISIONING_DIR}/dashboards"
GRAFANA_DASHBOARD_PROVIDERS = f"{GRAFANA_DASHBOARD_PROVISIONING_DIR}/dashboards.yaml"
# One file per dashboard: `grafana/dashboards/<folder>/<uid>.json`.
GRAFANA_DASHBOARDS_DIR = f"{GRAFANA_DIR}/dashboards"

# --- the other components' configs -------------------------------------------------------------

LOKI_CONFIG = "loki/loki.yaml"
ALLOY_CONFIG = "alloy/config.alloy"
JAEGER_CONFIG = "jaeger/config.yaml"
BLACKBOX_CONFIG = "blackbox/blackbox.yml"

# --- the Kubernetes target ----------------------------------------------------------------------

# `kubectl apply -f kubernetes/`: one file per component, no Secret.
KUBERNETES_DIR = "kubernetes"
# The script creating the Secrets those manifests mount (never applied with them).
KUBERNETES_SECRETS_DIR = "kubernetes-secrets"
KUBERNETES_SECRETS_SCRIPT = f"{KUBERNETES_SECRETS_DIR}/create-secrets.sh"


def rules_path(rule_file: str) -> str:
    """A rule file: `prometheus/rules/<rule file>.yaml`."""
    return f"{RULES_DIR}/{rule_file}.yaml"


def long_term_rules_path(rule_file: str) -> str:
    """A rule file's groups run on the long-term store: `long-term/rules/<rule file>.yaml`."""
    return f"{LONG_TERM_RULES_DIR}/{rule_file}.yaml"


def unit_tests_path(rule_file: str, suite: str) -> str:
    """A suite's promtool test file: `prometheus/tests/<rule file>/<suite>.yaml`."""
    return f"{TESTS_DIR}/{rule_file}/{suite}.yaml"


def restricted_rules_path(rule_file: str, suite: str) -> str:
    """The rules a suite reads, when not the whole rule file: beside its tests, under rules/."""
    return f"{TESTS_DIR}/{rule_file}/{SUITE_RULES_DIR}/{suite}.yaml"


def dashboard_path(folder: str, uid: str) -> str:
    """A dashboard: `grafana/dashboards/<folder>/<uid>.json`."""
    return f"{GRAFANA_DASHBOARDS_DIR}/{folder}/{uid}.json"
