"""One sandbox (one Alertmanager) on real binaries, shared by the tests of this module, which
run in order on one worker (`--dist loadfile`): every component on its spec's command line at the
shipped version, with its generated files loaded, every target up, the heartbeat, no page on
healthy traffic, a restart keeping data, a dependency down while the sink is down."""

from __future__ import annotations

import re
import shlex
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sandbox_helpers import firing_query, get_json, get_text, notified

from rules.alerting_policy import CRITICAL_ALERTS, DEADMAN
from rules.model import RecordingRule
from stack.bundle import ALERTMANAGER_CONFIG
from stack.sandbox import localize, processes
from stack.sandbox.run import Sandbox, wait_for
from stack.sandbox.sink import alerts_in
from stack.services import alertmanager, blackbox_exporter, node_exporter, prometheus, victoria_metrics, vmalert

pytestmark = pytest.mark.e2e
# Long enough for every alert with a `for` of a minute to have fired, had it a reason to.
HEALTHY_SECONDS = 120
# The version each binary built at the shipped version reports (the postgres and redis exporters
# are Debian's, older than their images).
BUILD_INFO = {prometheus.NAME: "prometheus_build_info", alertmanager.NAME: "alertmanager_build_info",
              node_exporter.NAME: "node_exporter_build_info", blackbox_exporter.NAME: "blackbox_exporter_build_info"}


@pytest.fixture(scope="module")
def single() -> Iterator[Sandbox]:
    with Sandbox(alertmanagers=1) as sandbox:
        yield sandbox


def test_every_component_runs_its_specs_command_line(single: Sandbox) -> None:
    assert {c.spec.name for c in single.components.values()} == {s.name for s in single.bundle.services}
    for name, component in single.components.items():
        pid = single.supervisor.pid(name)
        argv = Path(f"/proc/{pid}/cmdline").read_text().split("\0")[:-1]
        assert argv == [processes.binary(component.binary),
                        *localize.arguments(component.spec.args, component.where)], name
        environ = dict(v.split("=", 1) for v in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in v)
        expected = localize.environment(component.spec.env, component.where)
        assert {k: environ.get(k) for k in expected} == expected, name


def test_each_binary_built_at_the_shipped_version_reports_it(single: Sandbox) -> None:
    """Read from each one's own /metrics: Prometheus does not scrape the blackbox exporter's."""
    for component in single.components.values():
        metric = BUILD_INFO.get(component.spec.name)
        if metric is None:
            continue
        assert component.spec.metrics is not None
        port = component.where.ports[component.spec.metrics.port]
        text = get_text(f"http://127.0.0.1:{port}{component.spec.metrics.path}")
        versions = set(re.findall(rf'^{metric}{{.*\bversion="([^"]+)"', text, re.MULTILINE))
        assert versions == {component.spec.image.tag.removeprefix("v")}, metric


def test_prometheus_loaded_its_config_and_every_rule_group(single: Sandbox) -> None:
    rendered = yaml.safe_load(single.bundle.files[prometheus.CONFIG_FILE])
    loaded = yaml.safe_load(get_json(f"{single.prometheus_url}/api/v1/status/config")["data"]["yaml"])
    assert [j["job_name"] for j in loaded["scrape_configs"]] == [j["job_name"] for j in rendered["scrape_configs"]]
    assert loaded["global"]["external_labels"] == rendered["global"]["external_labels"]
    # Prometheus evaluates every group but the SLOs' period rules, which vmalert runs on the store.
    evaluators = {single.prometheus_url: [g.name for f in single.bundle.rule_files for g in f.prometheus_groups],
                  single.url_of(vmalert.NAME): [g.name for f in single.bundle.rule_files for g in f.store_groups]}
    assert evaluators[single.url_of(vmalert.NAME)], "the dev stack's period rules run on its long-term store"
    for url, expected in evaluators.items():

        def groups(url: str = url) -> list[dict]:
            return get_json(f"{url}/api/v1/rules")["data"]["groups"]

        assert sorted(g["name"] for g in groups()) == sorted(expected)
        # Once every rule was evaluated: none fails on Prometheus 3 or vmalert (a query error shows here).
        wait_for(lambda groups=groups: all(r["health"] not in ("unknown", "") for g in groups() for r in g["rules"]),
                 timeout=60, what=f"every rule of {url} evaluated")
        failing = {r["name"]: r.get("lastError") for g in groups() for r in g["rules"] if r["health"] != "ok"}
        assert failing == {}


def test_alertmanager_loaded_its_config(single: Sandbox) -> None:
    status = get_json(f"http://127.0.0.1:{single.ports.alertmanagers[0]}/api/v2/status")
    assert status["cluster"]["status"] == "disabled"  # one replica: --cluster.listen-address= from the spec
    loaded = yaml.safe_load(status["config"]["original"])
    rendered = yaml.safe_load(single.bundle.files[ALERTMANAGER_CONFIG])
    assert loaded["route"]["receiver"] == rendered["route"]["receiver"]
    assert [r["name"] for r in loaded["receivers"]] == [r["name"] for r in rendered["receivers"]]
    assert len(loaded["inhibit_rules"]) == len(rendered["inhibit_rules"])


def test_what_the_sandbox_says_is_served_answers(single: Sandbox) -> None:
    """The printout's API paths answer, and its commands (promtool, amtool built at the shipped
    version) work as printed."""
    endpoints = single.endpoints()
    for endpoint in endpoints:
        for path in re.findall(r"/api/v[12]/\w+", endpoint.serves):
            get_json(endpoint.url + path + ("?query=up" if path.endswith("/query") else ""))
    wait_for(lambda: single.query("up"), timeout=30, what="a first scrape")
    outputs = {}
    for endpoint in endpoints:
        if endpoint.command:
            result = subprocess.run(shlex.split(endpoint.command), capture_output=True, text=True, timeout=30)
            assert result.returncode == 0, (endpoint.command, result.stderr)
            outputs[endpoint.name] = result.stdout
    assert "up{" in outputs[prometheus.NAME] and "Alertname" in outputs[Sandbox.alertmanager_name(0)]


def test_every_target_is_up_and_every_recording_rule_produces_data(single: Sandbox) -> None:
    jobs = {s.metrics.job for s in single.bundle.services if s.metrics} | {single.config.jobs.backend}

    def all_up() -> bool:
        targets = single.targets()
        return all(t["health"] == "up" for t in targets) and {t["labels"]["job"] for t in targets} == jobs

    wait_for(all_up, timeout=60, what=f"every target of {sorted(jobs)} up")
    def recorded(groups: str) -> list[str]:
        return sorted({r.record for f in single.bundle.rule_files for g in getattr(f, groups) for r in g.rules
                       if isinstance(r, RecordingRule)})

    records, on_store = recorded("prometheus_groups"), recorded("store_groups")
    assert len(records) > 20 and on_store

    def empty() -> list[str]:
        store = single.url_of(victoria_metrics.NAME)
        return ([name for name in records if not single.query(name)]
                + [name for name in on_store if not get_json(f"{store}/api/v1/query?query={name}")["data"]["result"]])

    # vmalert asks the store 30 s in the past (-rule.evalDelay), which answers up to 30 s ago
    # (-search.latencyOffset): the store's first records take about a minute.
    wait_for(lambda: not empty(), timeout=150, what="data for every recording rule")


def test_watchdog_reaches_the_dead_mans_switch(single: Sandbox) -> None:
    # Prometheus drops what fires before it has discovered Alertmanager and resends a minute
    # later (--rules.alert.resend-delay): the first heartbeat can take that long after a start.
    wait_for(lambda: notified(single, "Watchdog", "firing", DEADMAN), timeout=120,
             what="Watchdog at the deadman receiver")
    # A heartbeat, never a page.
    assert not notified(single, "Watchdog", "firing", CRITICAL_ALERTS)


def test_healthy_traffic_pages_nobody(single: Sandbox) -> None:
    # Not before the path to the sink is proven (the heartbeat arrived) and the rules have seen
    # a while of healthy traffic: otherwise "no page" would hold for a sandbox that cannot page.
    wait_for(lambda: notified(single, "Watchdog", "firing", DEADMAN), timeout=120,
             what="the heartbeat at the deadman receiver")
    time.sleep(max(0.0, HEALTHY_SECONDS - (time.time() - single.started_at)))
    assert single.query('ALERTS{severity="critical"}') == [], "a page is pending or firing on healthy traffic"
    pages = [a["labels"]["alertname"] for a in alerts_in(single.notifications(), None, receiver=CRITICAL_ALERTS)]
    assert pages == [], f"healthy traffic paged: {pages}"


def test_prometheus_restarted_on_its_data_directory_keeps_its_samples(single: Sandbox) -> None:
    job = single.config.jobs.prometheus
    before = time.time() - 5
    assert single.query(f'up{{job="{job}"}}', at=before), "no sample before the restart"
    single.supervisor.stop("prometheus")
    single.supervisor.restart("prometheus")
    samples = single.query(f'up{{job="{job}"}}', at=before)
    assert samples and samples[0]["value"][1] == "1", "samples from before the restart are gone"


def test_postgres_down_reaches_its_receiver_once_the_sink_is_back(single: Sandbox) -> None:
    """PostgreSQL stops while the webhook is down: Alertmanager keeps retrying, and the page
    arrives once the webhook is back."""
    single.supervisor.stop("sink")
    single.supervisor.stop("postgres")
    wait_for(lambda: single.query(firing_query("PostgresDown")), timeout=150, what="PostgresDown firing")
    time.sleep(10)  # Alertmanager has tried by now, and failed
    assert not notified(single, "PostgresDown", "firing", CRITICAL_ALERTS)
    single.supervisor.restart("sink")
    wait_for(lambda: notified(single, "PostgresDown", "firing", CRITICAL_ALERTS), timeout=120,
             what="PostgresDown at critical-alerts after the sink came back")
