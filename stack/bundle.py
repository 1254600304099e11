"""`build(config)`: the one place that knows how everything fits together.

It returns plain data (generated files by path, the rule files they came from) and never
touches Pulumi, the network or the disk. The CLI, the Pulumi program, the PR preview and the
sandbox all call it.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, field

from dashboards import dashboards as dashboard_definitions
from dashboards import provisioning
from dashboards.checks import Context as DashboardContext
from dashboards.checks import check_dashboards
from dashboards.checks.recorded import recorded_aggregations
from dashboards.model import GeneratedDashboard
from rules import alerting_policy, medianest, medianest_tests, notification_templates, platform, slos
from rules.catalog import Catalog
from rules.checks import check_groups, recorded_metrics
from rules.metrics import CATALOG
from rules.model import AlertingRule, RuleFile
from rules.problems import Problem
from rules.routing import AlertmanagerConfig, RouteCase, route_cases
from rules.routing_checks import Routing, check_routing
from rules.slo import slo_rule_files
from rules.slo.history import History, check_history
from rules.testing import Suite, coverage, render_test_file, suites
from stack import layout
from stack.config import StackConfig
from stack.dump import HEADER, dump_json, dump_yaml  # noqa: F401 - re-exported
from stack.layout import (  # noqa: F401 - re-exported: where each file goes is stack.layout's
    ALERTMANAGER_CONFIG,
    ALERTMANAGER_TEMPLATE,
    GRAFANA_DASHBOARD_PROVIDERS,
    GRAFANA_DATASOURCES,
    GRAFANA_ENVIRONMENT,
    GRAFANA_INI,
    ROUTE_TESTS,
    RULES_DIR,
    TESTS_DIR,
    long_term_rules_path,
    restricted_rules_path,
    rules_path,
    unit_tests_path,
)
from stack.services import deployed, period_rules_evaluator, service_specs
from stack.services.spec import ServiceSpec
from stack.targets import rendered_files as target_files


@dataclass(frozen=True)
class Bundle:
    config: StackConfig
    rule_files: tuple[RuleFile, ...]
    files: dict[str, str]  # relative path -> content
    # Problems found while building (an invalid SLO gets no rules); the static checks add theirs.
    build_problems: tuple[Problem, ...] = ()
    # Alertmanager's configuration and the route tests that prove it routes every alert.
    alertmanager: AlertmanagerConfig = field(kw_only=True)
    route_cases: tuple[RouteCase, ...] = field(kw_only=True)
    dashboards: tuple[GeneratedDashboard, ...] = field(kw_only=True, default=())
    # Every component of the stack, as the targets deploy it.
    services: tuple[ServiceSpec, ...] = field(kw_only=True, default=())
    # Each rule file's promtool runs, by rule file name.
    test_suites: dict[str, tuple[Suite, ...]] = field(kw_only=True, default_factory=dict)

    def problems(self, catalog: Catalog = CATALOG) -> list[Problem]:
        jobs = self.config.jobs.model_dump().values()
        return sorted([*self.build_problems, *check_groups(
            {rules_path(f.name): list(f.groups) for f in self.rule_files}, catalog.with_jobs(jobs)
        ), *check_routing(Routing(self.alertmanager, self.alerts, alerting_policy.POLICY, ALERTMANAGER_CONFIG)),
            *check_dashboards(self.dashboards, self.dashboard_context(catalog)),
            *check_history(slos.slos(self.config), self.period_history)])

    @property
    def period_history(self) -> History | None:
        """The history the SLOs' period rules read, where they are evaluated."""
        history = period_rules_evaluator(self.config).slo_period_history
        return history(self.config) if history else None

    def dashboard_context(self, catalog: Catalog = CATALOG) -> DashboardContext:
        """What dashboard queries are checked against: the catalog with our recorded series."""
        groups = [g for f in self.rule_files for g in f.groups]
        jobs = self.config.jobs.model_dump().values()
        return DashboardContext(
            catalog=catalog.with_metrics(recorded_metrics(groups, catalog)).with_jobs(jobs),
            datasources=frozenset(p.source.uid for p in provisioning.provided(self.config)),
            alerts=frozenset(rule.alert for _, rule in self.alerts),
            runbook_base_url=self.config.runbook_base_url,
            samples=dashboard_samples(self.config),
            recorded=recorded_aggregations(groups),
        )

    @property
    def alerts(self) -> list[tuple[str, AlertingRule]]:
        return alerts_of(self.rule_files)

    def coverage(self):  # noqa: ANN201 - rules.testing.Coverage
        return coverage(
            [g for f in self.rule_files for g in f.groups],
            [t for f in self.rule_files for t in f.tests],
        )

    @property
    def test_paths(self) -> list[str]:
        return sorted(p for p in self.files if p.startswith(TESTS_DIR + "/"))

    @property
    def rule_paths(self) -> list[str]:
        return sorted(p for p in self.files if p.startswith(RULES_DIR + "/"))


def alerts_of(rule_files: tuple[RuleFile, ...]) -> list[tuple[str, AlertingRule]]:
    """Every alerting rule, with its file and group."""
    return [(f"{rules_path(f.name)} group {g.name}", r) for f in rule_files
            for g in f.groups for r in g.rules if isinstance(r, AlertingRule)]


def dashboard_samples(config: StackConfig) -> dict[str, str]:
    """Values dashboard variables are replaced with before a query is parsed."""
    return {"environment": config.environment, "job": config.jobs.backend, "instance": medianest.INSTANCE,
            "endpoint": "/api/v1/media", "level": "error"}


def dashboard_path(dashboard: GeneratedDashboard) -> str:
    return layout.dashboard_path(dashboard.folder, dashboard.uid)


def rule_files(config: StackConfig) -> tuple[tuple[RuleFile, ...], list[Problem]]:
    slo_files, slo_problems = slo_rule_files(slos.slos(config), config.runbook_base_url, CATALOG,
                                             periods_on_store=not period_rules_evaluator(config).scrapes_others)
    medianest_file = RuleFile(
        name="medianest",
        groups=(medianest.recording_rules(config.jobs.backend), medianest.alerts(config)),
        tests=medianest_tests.tests(config),
    )
    return (medianest_file, platform.rule_file(config), *slo_files), slo_problems


def _relative(path: str, test_file: str) -> str:
    """A bundle path as a test file names it: promtool resolves rule_files from the test file's
    directory (`../../rules/<rule file>.yaml`, `rules/<suite>.yaml`). Pure: no working directory."""
    return posixpath.relpath("/" + path, "/" + posixpath.dirname(test_file))


def rule_file_tree(rule_file: RuleFile, test_suites: Sequence[Suite], runbook_base_url: str) -> dict[str, str]:
    """A rule file and its promtool suites as files: each suite's test file, and the rules it
    reads beside it unless those are the whole rule file."""
    shipped = {rules_path(rule_file.name): rule_file.prometheus_groups}
    if rule_file.store_groups:
        shipped[long_term_rules_path(rule_file.name)] = rule_file.store_groups
    files = {path: dump_yaml({"groups": [g.to_dict() for g in groups]}) for path, groups in shipped.items()}
    for suite in test_suites:
        tests = unit_tests_path(rule_file.name, suite.name)
        if suite.whole:
            # Both shipped files, as Prometheus and the store's evaluator run them together.
            loaded = [_relative(path, tests) for path in shipped]
        else:
            restricted = restricted_rules_path(rule_file.name, suite.name)
            loaded = [_relative(restricted, tests)]
            files[restricted] = dump_yaml({"groups": [g.to_dict() for g in suite.groups]})
        files[tests] = dump_yaml(render_test_file(
            loaded, suite.tests, suite.evaluation_interval, runbook_base_url))
    return files


def build(config: StackConfig) -> Bundle:
    files: dict[str, str] = {}
    generated, problems = rule_files(config)
    test_suites = {}
    for rule_file in generated:
        test_suites[rule_file.name] = tuple(suites(rule_file, config.evaluation_interval))
        files.update(rule_file_tree(rule_file, test_suites[rule_file.name], config.runbook_base_url))
    alertmanager = alerting_policy.alertmanager_config(config)
    cases = route_cases((r for _, r in alerts_of(generated)), alerting_policy.expected_receivers)
    files[ALERTMANAGER_CONFIG] = dump_yaml(alertmanager.to_dict())
    files[ALERTMANAGER_TEMPLATE] = HEADER + notification_templates.TEMPLATE
    files[ROUTE_TESTS] = dump_yaml([c.to_dict() for c in cases])
    # Nothing deployed shows dashboards (no Grafana: the sandbox): none to ship.
    chosen = deployed(config)
    shown = any(component.shows_dashboards for component in chosen)
    generated_dashboards = dashboard_definitions(config) if shown else ()
    if shown:
        for dashboard in generated_dashboards:
            files[dashboard_path(dashboard)] = dump_json(dashboard.data)
        files[GRAFANA_DATASOURCES] = dump_yaml(provisioning.datasources(config))
        files[GRAFANA_DASHBOARD_PROVIDERS] = dump_yaml(
            provisioning.dashboard_providers(d.folder for d in generated_dashboards))
    for component in chosen:
        files.update(component.rendered_files(config))
    services = service_specs(config, files)
    for spec in services:
        for file in spec.files:
            # A component ships either a file generated above or its own config (prometheus.yml...).
            assert files.setdefault(file.source, file.content) == file.content, file.source
    # What the target adds for a user without Pulumi (Kubernetes: manifests and a Secrets script).
    files.update(target_files(config, services, files))
    return Bundle(config, generated, dict(sorted(files.items())), tuple(problems),
                  alertmanager=alertmanager, route_cases=cases, dashboards=generated_dashboards,
                  services=services, test_suites=test_suites)
