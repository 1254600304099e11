"""Alertmanager routing, judged by amtool: both stacks' configs load, every alert in the bundle
reaches the receivers the policy means for it, a misspelt label or route fails the route
tests and the checks, notifications render readably, and no secret is written inline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from rules import alerting_policy as policy
from rules.checks import check_groups
from rules.metrics import CATALOG
from rules.model import RuleGroup
from rules.notification_templates import TEXT, TITLE
from rules.routing import Route, alert_labels, eq, receivers_for, route_cases
from rules.routing_checks import Routing, check_routing
from rules.routing_checks.secrets import inline_secrets
from stack import cli, tools
from stack.bundle import ALERTMANAGER_CONFIG, ALERTMANAGER_TEMPLATE, ROUTE_TESTS, dump_yaml
from stack.cli import main
from stack.output import write_tree
from stack.progress import Progress


@pytest.fixture(scope="session")
def rendered(bundle, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rendered") / "out"
    write_tree(bundle.files, out)
    return out


def _route_test(root: Path, labels: dict[str, str], receivers) -> tools.ToolRun:
    return tools.amtool_test_route(root / ALERTMANAGER_CONFIG, labels, receivers)


def test_the_config_and_its_templates_pass_amtool_check_config(rendered: Path) -> None:
    run = tools.amtool_check_config(rendered / ALERTMANAGER_CONFIG)
    assert run.ok, run.output
    assert "3 inhibit rules" in run.output and "6 receivers" in run.output and "1 templates" in run.output


def test_a_webhook_whose_url_is_the_secret_is_read_from_a_file(tmp_path: Path) -> None:
    """Alertmanager reads a webhook's URL from `url_file` (0.35; 0.25 had no such field), so a
    URL carrying a token never appears in the config."""
    from stack.bundle import build
    from stack.config import load_stack

    base = load_stack("prod")
    data = base.model_dump(by_alias=True)
    data["alerting"]["receivers"]["deadman"] = {"webhook": [{"urlFile": "/etc/alertmanager/secrets/deadman-url"}]}
    bundle = build(type(base).model_validate(data))
    [deadman] = [r for r in bundle.alertmanager.to_dict()["receivers"] if r["name"] == "deadman"]
    # The dead man's switch is told only that alerts still flow, never that they resolved.
    assert deadman["webhook_configs"] == [{"url_file": "/etc/alertmanager/secrets/deadman-url", "send_resolved": False}]
    write_tree(bundle.files, tmp_path / "out")
    run = tools.amtool_check_config(tmp_path / "out" / ALERTMANAGER_CONFIG)
    assert run.ok, run.output
    assert "/etc/alertmanager/secrets/deadman-url" in bundle.config.alerting.secret_files()


@pytest.mark.parametrize("webhook", [
    {}, {"url": "https://hooks.example.com/x", "urlFile": "/etc/alertmanager/secrets/x"}])
def test_a_webhook_needs_exactly_one_url(webhook: dict) -> None:
    from pydantic import ValidationError

    from stack.config import Webhook
    with pytest.raises(ValidationError, match="set exactly one of url and urlFile"):
        Webhook.model_validate(webhook)


def test_every_alert_of_the_bundle_has_a_route_case(bundle) -> None:
    alerts = {tuple(sorted(alert_labels(rule).items())) for _, rule in bundle.alerts}
    cases = [tuple(sorted(c.labels.items())) for c in bundle.route_cases]
    assert sorted(cases) == sorted(alerts), "one case per distinct alert label set"
    assert len(cases) >= 40
    assert yaml.safe_load(bundle.files[ROUTE_TESTS]) == [c.to_dict() for c in bundle.route_cases]


def test_every_alert_reaches_its_receivers(bundle, rendered: Path) -> None:
    failures = [f"{case.name}: amtool resolved {run.output}" for case in bundle.route_cases
                if not (run := _route_test(rendered, case.labels, case.receivers)).ok]
    assert not failures, "\n".join(failures)


def test_the_route_cases_are_reported_per_case_in_junit(bundle, rendered: Path, tmp_path: Path, capsys) -> None:
    suite = cli._route_tests("dev", bundle, rendered, Progress("test"), None)
    assert len(suite.cases) == len(bundle.route_cases) and not any(f for _, f in suite.cases)
    assert f"alertmanager routes: {len(suite.cases)}/{len(suite.cases)} passed" in capsys.readouterr().out
    cli._write_junit(tmp_path / "junit.xml", [suite])
    text = (tmp_path / "junit.xml").read_text()
    assert 'name="dev.alertmanager-routes"' in text
    assert "ApplicationDown {service=medianest, severity=critical} reaches critical-alerts" in text


def _labels(alertname: str, severity: str, service: str, **more: str) -> dict[str, str]:
    return {"alertname": alertname, "severity": severity, "service": service, **more}


# The policy's intent, and the rendered tree's agreement with it. The SLO rows are synthetic
# label sets, named as such: they hold whether or not the bundle's SLO file defines them.
INTENT = [
    ("a critical alert pages", _labels("HighErrorRate", "critical", "medianest"), "critical-alerts"),
    ("a critical business alert pages rather than going to the business team",
     _labels("SomethingCritical", "critical", "business"), "critical-alerts"),
    ("a business warning goes to the business team", _labels("QueueBacklog", "warning", "business"),
     "business-team"),
    ("a platform warning goes to default", _labels("TargetDown", "warning", "platform"), "default"),
    ("an info alert is not notified", _labels("LowActiveUsers", "info", "business"), "not-notified"),
    ("the Watchdog feeds the dead man's switch although it is info",
     _labels("Watchdog", "info", "platform"), "deadman"),
    ("synthetic SLO alert: a page pages",
     _labels("SLOErrorBudgetBurn", "critical", "medianest", slo="api-availability", tier="page"),
     "critical-alerts"),
    ("synthetic SLO alert: a ticket goes to the ticket queue",
     _labels("SLOErrorBudgetBurn", "warning", "medianest", slo="api-availability", tier="ticket"), "tickets"),
    ("synthetic SLO alert: a business SLO's ticket goes to the ticket queue, not the business team",
     _labels("SLOErrorBudgetBurn", "warning", "business", slo="media-upload-success", tier="ticket"),
     "tickets"),
    ("synthetic SLO alert: a business SLO's page pages",
     _labels("SLOErrorBudgetBurn", "critical", "business", slo="media-upload-success", tier="page"),
     "critical-alerts"),
    ("synthetic SLO alert: no data is a warning of its service",
     _labels("SLONoData", "warning", "medianest", slo="api-availability"), "default"),
    ("synthetic SLO alert: no data of a business SLO goes to the business team",
     _labels("SLONoData", "warning", "business", slo="media-upload-success"), "business-team"),
]
assert len(INTENT) == 12


@pytest.mark.parametrize(("labels", "receiver"), [r[1:] for r in INTENT], ids=[r[0] for r in INTENT])
def test_the_policy_means(labels: dict[str, str], receiver: str) -> None:
    assert policy.expected_receivers(labels) == (receiver,)


@pytest.mark.parametrize(("labels", "receiver"), [r[1:] for r in INTENT], ids=[r[0] for r in INTENT])
def test_the_rendered_tree_routes_as_the_policy_means(rendered: Path, bundle, labels, receiver: str) -> None:
    run = _route_test(rendered, labels, [receiver])
    assert run.ok, f"amtool resolved {run.output}"
    assert receivers_for(bundle.alertmanager.route, labels) == (receiver,)


# The static checks evaluate the tree in Python: it must agree with amtool, typos included.
AGREEMENT = [
    ("a misspelt severity", _labels("HighErrorRate", "critcal", "medianest")),
    ("a misspelt service", _labels("QueueBacklog", "warning", "busines")),
    ("no severity at all", {"alertname": "Bare", "service": "medianest"}),
    ("a critical Watchdog still feeds the dead man's switch", _labels("Watchdog", "critical", "platform")),
    ("a critical alert with a ticket tier pages", _labels("X", "critical", "medianest", tier="ticket")),
    ("an info alert with a ticket tier is not notified", _labels("X", "info", "business", tier="ticket")),
]


@pytest.mark.parametrize("labels", [r[1] for r in AGREEMENT], ids=[r[0] for r in AGREEMENT])
def test_python_route_evaluation_agrees_with_amtool(rendered: Path, bundle, labels) -> None:
    python = receivers_for(bundle.alertmanager.route, labels)
    run = _route_test(rendered, labels, python)
    assert run.ok, f"Python says {python}, amtool says {run.output}"


def _relabelled(bundle, alertname: str, **labels: str):
    return [(source, rule.model_copy(update={"labels": {**rule.labels, **labels}}) if rule.alert == alertname
             else rule) for source, rule in bundle.alerts]


def _routing(bundle, alerts=None, config=None) -> Routing:
    return Routing(config or bundle.alertmanager, alerts or bundle.alerts, policy.POLICY, ALERTMANAGER_CONFIG)


def test_a_misspelt_critical_fails_its_route_test_and_is_reported_as_a_lost_page(bundle, rendered: Path) -> None:
    alerts = _relabelled(bundle, "HighErrorRate", severity="critcal")
    case = next(c for c in route_cases([r for _, r in alerts], policy.expected_receivers)
                if c.labels["alertname"] == "HighErrorRate")
    assert case.receivers == ("critical-alerts",), "an unknown severity is expected to page"
    run = _route_test(rendered, case.labels, case.receivers)
    assert not run.ok and run.output.startswith("default"), run.output
    lost = [p for p in check_routing(_routing(bundle, alerts)) if p.check == "routing-intent"]
    assert [(p.subject, p.severity.name) for p in lost] == [("alert HighErrorRate", "ERROR")]
    assert "a page lost" in lost[0].message and "reaches default instead of critical-alerts" in lost[0].message


@pytest.mark.parametrize(("alertname", "service"), [("QueueBacklog", "busines"), ("HighResponseTime", "medinest")],
                         ids=["a misspelt business service", "a misspelt medianest service"])
def test_a_misspelt_service_lands_in_default_and_the_checks_report_it(bundle, rendered: Path, alertname,
                                                                      service) -> None:
    rule = next(r for _, r in _relabelled(bundle, alertname, service=service) if r.alert == alertname)
    assert _route_test(rendered, alert_labels(rule), ["default"]).ok
    problems = check_groups({"x.yaml": [RuleGroup(name="g", rules=(rule,))]}, CATALOG.with_jobs(["medianest-backend"]))
    assert any(p.check == "conventions" and f"service label {service!r} must be one of" in p.message
               and p.subject == f"alert {alertname}" for p in problems), problems


def _with_route(route: Route, index: int, **update) -> Route:
    routes = list(route.routes)
    routes[index] = routes[index].model_copy(update=update)
    return route.model_copy(update={"routes": tuple(routes)})


def test_a_typo_in_the_tree_fails_the_route_test_of_every_page_and_the_checks(bundle, tmp_path: Path) -> None:
    pages = 2  # the critical route's index
    assert bundle.alertmanager.route.routes[pages].receiver == "critical-alerts"
    broken = bundle.alertmanager.model_copy(update={"route": _with_route(
        bundle.alertmanager.route, pages, matchers=(eq("severity", "critcal"),))})
    files = {**bundle.files, ALERTMANAGER_CONFIG: dump_yaml(broken.to_dict())}
    write_tree(files, tmp_path / "out")
    failed = {c.labels["alertname"] for c in bundle.route_cases
              if not _route_test(tmp_path / "out", c.labels, c.receivers).ok}
    critical = {c.labels["alertname"] for c in bundle.route_cases if c.receivers == ("critical-alerts",)}
    assert failed == critical and "ApplicationDown" in failed
    problems = check_routing(_routing(bundle, config=broken))
    assert any(p.check == "routing-matchers" and p.subject == 'route.routes[2] {severity="critcal"}'
               and "did you mean critical?" in p.message for p in problems), problems
    assert {p.subject for p in problems if "a page lost" in p.message} >= {"alert ApplicationDown"}


def _render_template(root: Path, text: str, data: dict, tmp_path: Path) -> str:
    (tmp_path / "data.json").write_text(json.dumps(data))
    run = tools.run(["amtool", "template", "render", f"--template.glob={root / ALERTMANAGER_TEMPLATE}",
                     f"--template.data={tmp_path / 'data.json'}", f"--template.text={text}"])
    assert run.ok, run.output
    return run.output


def _notification(status: str = "firing") -> dict:
    def one(instance: str, value: str) -> dict:
        return {"status": status, "startsAt": "2026-01-01T00:00:00Z",
                "labels": _labels("HighErrorRate", "critical", "medianest", job="medianest-backend", instance=instance),
                "annotations": {"summary": "MediaNest backend is failing requests",
                                "description": f"{value} of medianest-backend requests failed with a 5xx.",
                                "runbook_url": "https://runbooks.medianest.com/alerts/HighErrorRate"}}
    alerts = [one("backend:3000", "12%"), one("backend:3001", "9%")]
    common = {k: v for k, v in alerts[0]["labels"].items() if k != "instance"}
    return {"receiver": "critical-alerts", "status": status, "alerts": alerts,
            "groupLabels": {"alertname": "HighErrorRate", "service": "medianest"}, "commonLabels": common,
            "commonAnnotations": {"summary": "MediaNest backend is failing requests",
                                  "runbook_url": "https://runbooks.medianest.com/alerts/HighErrorRate"},
            "externalURL": "http://alertmanager:9093"}


def test_notifications_say_what_fires_how_often_and_where_the_runbook_is(rendered: Path, tmp_path: Path) -> None:
    title = _render_template(rendered, f'{{{{ template "{TITLE}" . }}}}', _notification(), tmp_path)
    assert title == "[FIRING:2] HighErrorRate (medianest): MediaNest backend is failing requests"
    text = _render_template(rendered, f'{{{{ template "{TEXT}" . }}}}', _notification(), tmp_path)
    assert text.splitlines()[:3] == [
        "[critical] 12% of medianest-backend requests failed with a 5xx.",
        "Runbook: https://runbooks.medianest.com/alerts/HighErrorRate",
        "Labels: instance=backend:3000 job=medianest-backend service=medianest severity=critical",
    ]
    resolved = _render_template(rendered, f'{{{{ template "{TEXT}" . }}}}', _notification("resolved"), tmp_path)
    assert resolved.startswith("Resolved:\n[critical] 12%")


def test_every_template_a_prod_receiver_uses_renders(tmp_path: Path) -> None:
    from stack.bundle import build
    from stack.config import load_stack

    bundle = build(load_stack("prod"))
    write_tree(bundle.files, tmp_path / "out")
    texts = {value for receiver in bundle.alertmanager.to_dict()["receivers"]
             for key, configs in receiver.items() if key.endswith("_configs")
             for config in configs for value in [*config.values(), *config.get("headers", {}).values()]
             if isinstance(value, str) and "{{" in value}
    assert len(texts) == 3, texts  # title, text and PagerDuty's severity
    for text in texts:
        output = _render_template(tmp_path / "out", text, _notification(), tmp_path)
        assert output.strip() and "<no value>" not in output, (text, output)


def test_prod_secrets_are_mounted_files_and_nothing_else(bundle, stack_name: str) -> None:
    document = bundle.alertmanager.to_dict()
    assert list(inline_secrets(document)) == []
    if stack_name != "prod":
        return
    files: dict[str, str] = {}

    def collect(node, key=""):
        if isinstance(node, dict):
            for k, v in node.items():
                collect(v, k)
        elif isinstance(node, list):
            for item in node:
                collect(item, key)
        elif key.endswith("_file"):
            files[node] = key

    collect(document)
    assert set(files.values()) == {"routing_key_file", "api_url_file", "auth_password_file", "credentials_file"}
    assert all(path.startswith("/etc/alertmanager/secrets/") for path in files), files
    assert "127.0.0.1" not in bundle.files[ALERTMANAGER_CONFIG]


def test_dev_delivers_every_receiver_to_the_local_webhook(dev_config) -> None:
    config = policy.alertmanager_config(dev_config)
    urls = {r.name: [w.url for w in r.webhook_configs] for r in config.receivers}
    assert dev_config.alerting.local_webhook_url == "http://host.docker.internal:9099"
    assert urls == {name: [f"http://host.docker.internal:9099/{name}"] for name in policy.CONFIGURED} | {
        "not-notified": []}


# Bad routing reaches `check` as problems naming the route: exit 1, and render writes nothing.
BAD_TREES = [
    ("a route to an undefined receiver", {"receiver": "pagerduty"},
     'route.routes[2] {severity="critical"}: error [routing-receivers] receiver \'pagerduty\' is not defined'),
    ("a route matching a label no alert sets", {"matchers": (eq("sevrity", "critical"),)},
     'route.routes[2] {sevrity="critical"}: error [routing-matchers] sevrity="critical" matches on sevrity, '
     "which no alert sets (did you mean severity?)"),
]


@pytest.mark.parametrize("update, message", [r[1:] for r in BAD_TREES], ids=[r[0] for r in BAD_TREES])
def test_bad_routing_fails_check_and_render_writes_nothing(monkeypatch, capsys, tmp_path: Path, update,
                                                           message) -> None:
    real = policy.route
    monkeypatch.setattr(policy, "route", lambda *args: _with_route(real(*args), 2, **update))
    assert main(["check", "--stack", "dev"]) == 1
    assert f"[dev] alertmanager/alertmanager.yml: {message}" in capsys.readouterr().out
    assert main(["render", "--stack", "dev", "--out", str(tmp_path / "out")]) == 1
    assert not (tmp_path / "out").exists()


def test_check_runs_amtool_check_config_on_both_stacks(capsys) -> None:
    assert main(["check", "--stack", "all"]) == 0
    out = capsys.readouterr().out
    for stack in ("dev", "prod"):
        assert f"check: {stack}: alertmanager/alertmanager.yml passes amtool check-config" in out


def test_a_template_amtool_rejects_fails_check(monkeypatch, capsys) -> None:
    from rules import notification_templates

    monkeypatch.setattr(notification_templates, "TEMPLATE", notification_templates.TEMPLATE + '{{ define "x" }}{{ .\n')
    assert main(["check", "--stack", "dev"]) == 1
    out = capsys.readouterr().out
    assert "medianest.tmpl" in out
    assert "check: dev: alertmanager/alertmanager.yml fails amtool check-config" in out
