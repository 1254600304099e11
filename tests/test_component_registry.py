"""Adding a component is adding one module: a throwaway exporter, written by this test into
stack/services of a copy of the project and touching no other file, is deployed on both targets
(under Pulumi's mock runtime), scraped, reached by its flows only, alerted on (its promtool tests
pass), shown on a dashboard, and switched off in the sandbox, which has no binary of it."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest
from pydantic.alias_generators import to_camel

from stack.config import ROOT
from stack.services import components

THROWAWAY = '''"""echo-exporter: a throwaway component, declared by this one module."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dashboards.common import stat
from dashboards.model import Row, Unit, prom, steps
from rules.catalog import Metric, MetricType
from rules.conventions import AlertSeverity
from rules.expressions import down_description, target_down
from rules.model import alert
from rules.testing import AlertAt, Expected, RuleTest, Series
from stack.services.common import image, resources
from stack.services.component import ComponentModule, Job
from stack.services.spec import Flow, Hosts, MetricsEndpoint, Port, ServiceSpec, StackPods, http_health, tcp
from stack.settings import Component, ImageRef, _image

if TYPE_CHECKING:
    from stack.config import StackConfig

NAME, PORT = "echo-exporter", 9777


class EchoSettings(Component):
    image: ImageRef = _image("example/echo-exporter", "1.0.0")
    memory: str = "32Mi"


def service(config: StackConfig) -> ServiceSpec:
    settings = config.services.echo_exporter
    return ServiceSpec(
        name=NAME, image=image(settings.image), user="65534:65534", resources=resources(settings),
        args=(f"--listen=:{PORT}",), ports=(Port("http", PORT),), health=http_health(PORT, "/"),
        metrics=MetricsEndpoint(job=config.jobs.echo, port=PORT),
        flows=(Flow(StackPods(NAME), Hosts(("192.0.2.10/32",)), tcp(7)),),
    )


EXPECTED = {"EchoDown": Expected("warning", "probe", "The echo service is down")}


def alerts(config: StackConfig):
    return (alert("EchoDown", target_down(config.jobs.echo, "echo_up"), for_="1m", severity=AlertSeverity.WARNING,
                  service="probe", summary="The echo service is down",
                  description=down_description("Echo", "1 minute"), runbook_base_url=config.runbook_base_url),)


def alert_tests(config: StackConfig):
    labels = {"job": config.jobs.echo, "instance": f"{NAME}:{PORT}"}
    selector = "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
    return (RuleTest("Echo down pages after a minute, not before",
                     series=(Series("up" + selector, "1x10"), Series("echo_up" + selector, "1 1 0x8")),
                     alerts=(AlertAt("2m", "EchoDown"),
                             AlertAt("4m", "EchoDown", (EXPECTED["EchoDown"].firing(
                                 labels, f"Echo cannot be reached through {NAME}:{PORT} for more than 1 minute."),)))),)


def rows(config: StackConfig):
    return (Row(title="Echo", panels=(
        stat("Echo up", "Whether the exporter reaches echo.", Unit.UP_DOWN,
             prom(f'min(echo_up{{job="{config.jobs.echo}"}})'), thresholds=steps("red", (1, "green")),
             alerts=("EchoDown",), width=24),)),)


COMPONENT = ComponentModule(
    name=NAME, settings_key="echo_exporter", settings=EchoSettings,
    service=lambda config, files, others: service(config), job=Job("echo", "echo"),
    metrics=(Metric("echo_up", MetricType.GAUGE, "Whether echo answers"),),
    alerts=alerts, alert_tests=alert_tests, expected=EXPECTED, dashboard_rows=rows,
)
'''

INSPECT = '''
import json, sys
import yaml
sys.path[:0] = [".", "tests"]
from stack.bundle import build
from stack.config import load_stack
from stack.targets.kubernetes.manifests import manifests
from pulumi_mocks import run_program

found = {}
for stack in ("dev", "prod"):
    config = load_stack(stack)
    bundle = build(config)
    jobs = {j["job_name"]: j for j in yaml.safe_load(bundle.files["prometheus/prometheus.yml"])["scrape_configs"]}
    dashboard = next(v for k, v in bundle.files.items() if k.endswith("infrastructure.json"))
    found[stack] = {
        "services": [s.name for s in bundle.services],
        "job": jobs.get("echo"),
        "alerts": sorted(rule.alert for _, rule in bundle.alerts),
        "row": '"title": "Echo"' in dashboard,
        "problems": [p.render() for p in bundle.problems()],
    }
    if stack == "prod":
        objects = manifests(config, bundle.services, bundle.files)
        found[stack]["policy"] = next(o["spec"] for o in objects
                                      if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "echo-exporter")
mocks, _ = run_program("dev", secrets={})
found["dev"]["containers"] = sorted(mocks.containers)
from kubernetes.test_kubernetes_program import SECRETS
mocks, _ = run_program("prod", secrets=SECRETS)
found["prod"]["kinds"] = sorted({r.inputs["kind"] for r in mocks.declared
                                 if r.typ.startswith("kubernetes:") and r.name.endswith("echo-exporter")})
found["components"] = sorted(r.typ for r in mocks.components if "Echo" in r.typ)
from stack.sandbox.run import UNAVAILABLE
found["sandbox_off"] = "echo_exporter" in UNAVAILABLE
print(json.dumps(found))
'''


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project's tracked files plus the throwaway module, and nothing else changed."""
    copy = tmp_path_factory.mktemp("project")
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in tracked.decode().split("\0"):
        if name and (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    (copy / "stack" / "services" / "echo_exporter.py").write_text(THROWAWAY)
    return copy


def _run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MEDIANEST_TOOLS_DIR": str(ROOT / ".tools"), "PYTHONPATH": str(project)}
    return subprocess.run([sys.executable, *args], cwd=project, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def found(project: Path) -> dict:
    run = _run(project, "-c", INSPECT)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.splitlines()[-1])


def test_only_the_new_module_differs_from_the_project(project: Path) -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    differing = [name for name in tracked if (ROOT / name).is_file()
                 and (ROOT / name).read_bytes() != (project / name).read_bytes()]
    added = sorted(str(p.relative_to(project)) for p in project.rglob("*.py")
                   if "__pycache__" not in p.parts and str(p.relative_to(project)) not in tracked)
    assert differing == [] and added == ["stack/services/echo_exporter.py"]


def test_it_is_deployed_on_both_targets(found: dict) -> None:
    assert "echo-exporter" in found["dev"]["services"] and "echo-exporter" in found["dev"]["containers"]
    assert found["prod"]["kinds"] and "Deployment" in found["prod"]["kinds"]
    assert found["components"] == ["medianest:observability:EchoExporter"]


def test_it_is_scraped_under_its_job(found: dict) -> None:
    assert found["dev"]["job"]["static_configs"] == [{"targets": ["echo-exporter:9777"]}]
    assert found["prod"]["job"]["kubernetes_sd_configs"]


def test_it_is_reached_by_its_flows_only(found: dict) -> None:
    policy = found["prod"]["policy"]
    assert policy["egress"] == [{"to": [{"ipBlock": {"cidr": "192.0.2.10/32"}}],
                                 "ports": [{"protocol": "TCP", "port": 7}]}]
    (ingress,) = policy["ingress"]
    assert ingress["ports"] == [{"protocol": "TCP", "port": 9777}]
    assert [peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for peer in ingress["from"]] == ["prometheus"]


def test_it_is_alerted_on_and_shown_with_no_problem(found: dict) -> None:
    for stack in ("dev", "prod"):
        assert "EchoDown" in found[stack]["alerts"] and found[stack]["row"]
        assert found[stack]["problems"] == []


def test_its_alert_tests_pass_in_promtool(project: Path) -> None:
    junit = project / "junit.xml"
    run = _run(project, "-m", "stack", "test", "--stack", "dev", "--no-cache", "--junit", str(junit))
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    report = junit.read_text()
    assert "Echo down pages after a minute, not before" in report
    assert 'failures="0"' in report


def test_the_sandbox_runs_without_it(found: dict) -> None:
    assert found["sandbox_off"]


# --- nothing outside a component names one --------------------------------------------------------

# Where an optional component's name may appear outside stack/services, and why.
ALLOWED_NAMES = {
    # The rendered bundle's layout names every file by design (one module for every path).
    ("stack/layout.py", "grafana"), ("stack/layout.py", "loki"), ("stack/layout.py", "alloy"),
    ("stack/layout.py", "jaeger"), ("stack/layout.py", "blackbox"),
    # Grafana's datasource types: the query languages panels are written in (LogQL, traces).
    ("dashboards/datasources.py", "loki"), ("dashboards/datasources.py", "jaeger"),
    ("dashboards/model.py", "loki"), ("dashboards/checks/logql.py", "loki"),
    # Grafana's panel plugin ids, refused by the metadata check.
    ("dashboards/checks/metadata.py", "grafana"),
    # Where Grafana's container reads the provisioned dashboards (the dashboards' output format).
    ("dashboards/provisioning.py", "grafana"),
    # A key of an earlier version, and where it went.
    ("stack/config.py", "grafana"),
    # The PostgreSQL role the sandbox's database gives the exporter (a name in that world).
    ("stack/sandbox/datastores.py", "postgres_exporter"),
}


def _names_in_code(path: Path, pattern: re.Pattern[str]) -> set[str]:
    """Names `pattern` finds in identifiers and strings of `path`, not in comments or docstrings."""
    found, previous = set(), tokenize.NEWLINE
    for token in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        statement_start = previous in (tokenize.NEWLINE, tokenize.NL, tokenize.INDENT, tokenize.DEDENT)
        if token.type == tokenize.NAME or (token.type == tokenize.STRING and not statement_start):
            found |= set(pattern.findall(token.string))
        if token.type not in (tokenize.COMMENT, tokenize.NL):
            previous = token.type
    return found


def test_no_module_outside_a_component_names_an_optional_component() -> None:
    """Only the alerting path (Prometheus, Alertmanager: required) is named outside stack/services;
    an optional component is known by the registry alone."""
    names = {n for c in components() if c.required is None
             for n in (c.name, c.settings_key, to_camel(c.settings_key))}
    pattern = re.compile(r"\b(" + "|".join(sorted(map(re.escape, names), key=len, reverse=True)) + r")\b")
    sources = [p for d in ("stack", "rules", "dashboards") for p in (ROOT / d).rglob("*.py")
               if ROOT / "stack" / "services" not in p.parents] + [ROOT / "__main__.py"]
    named = {(str(p.relative_to(ROOT)), name) for p in sources for name in _names_in_code(p, pattern)}
    assert named - ALLOWED_NAMES == set()
    # The scan sees what it is meant to: a component module names itself, in code.
    assert {"loki", "jaeger"} <= _names_in_code(ROOT / "stack" / "services" / "grafana.py", pattern) | \
        _names_in_code(ROOT / "stack" / "services" / "jaeger.py", pattern) | \
        _names_in_code(ROOT / "stack" / "services" / "loki.py", pattern)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_component_says_how_it_is_built_judged_and_checked(stack: str) -> None:
    from stack.bundle import build
    from stack.config import load_stack

    config = load_stack(stack)
    bundle = build(config)
    for component in components():
        # A judge, or why none; on Docker, a local image (the engine tests'), or why none.
        assert (component.judge is None) != (component.unjudged is None), component.name
        if "docker" in component.targets:
            assert (component.local_image is None) != (component.no_local_image is None), component.name
        # Each file (or directory of files) it checks is one it ships, when deployed.
        if component.deployed(config):
            for check in component.file_checks:
                assert check.path in bundle.files or any(p.startswith(check.path + "/") for p in bundle.files), (
                    component.name, check.path)
