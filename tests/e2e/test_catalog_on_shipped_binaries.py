"""The metric catalog against the binaries we ship: every metric the shipped rules and dashboards
read is exposed by the judge built at the image's version, with the catalog's type, labels and
buckets, and every label matcher a rule or panel puts on it can match. A metric renamed or
relabelled by a new version would otherwise make an alert that can never fire.

Each judge runs standalone on free loopback ports under one `Supervisor`, made to emit what the
catalog declares for it:

- Prometheus scrapes itself and evaluates a one-alert rule file, notifying the Alertmanager below
  (its notification counters, `up` and the scrape series, `ALERTS` read back through its API);
- Alertmanager (clustered, as prod runs it) receives an alert through `POST /api/v2/alerts` and
  fails to notify a webhook on a closed loopback port (its failure counters);
- Jaeger v2 runs the shipped config (`stack.services.jaeger.render`, in-memory storage) moved to
  loopback ports and receives one span over OTLP/HTTP JSON (its otelcol_* counters);
- node_exporter runs the shipped arguments, the host's /proc, /sys and / for the container's
  /host/... mounts;
- blackbox_exporter runs the generated blackbox.yml and probes two servers of this test, over
  plain HTTP and over TLS (a throwaway certificate it trusts through SSL_CERT_FILE).

Which catalog group each binary exposes is `EXPOSED_BY` (rules/metrics/ has one group per
component); groups no judge runs are `NOT_JUDGED`, with why.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import promql_parser as pp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from sandbox_helpers import get, post_json

from dashboards.checks import panels, queries
from dashboards.checks.promql import _LABEL_VALUES, substitute, variables
from rules.catalog import Metric, MetricType
from rules.metrics import CATALOG, medianest, prometheus_stack
from rules.promql import Analysis, label_matches, match_op, matchers_of, parse
from stack import layout
from stack.bundle import build
from stack.config import StackConfig, load_stack
from stack.sandbox import processes
from stack.sandbox.processes import Supervisor
from stack.sandbox.run import wait_for
from stack.services import (
    alertmanager,
    blackbox_exporter,
    cadvisor,
    grafana,
    jaeger,
    kube_state_metrics,
    loki,
    node_exporter,
    postgres_exporter,
    prometheus,
    redis_exporter,
    victoria_metrics,
    vmalert,
)

pytestmark = pytest.mark.e2e

LOOPBACK = "127.0.0.1"
WAIT_SECONDS = 30
STACKS = ("dev", "prod")

# The catalog group each judge exposes on its /metrics.
EXPOSED_BY: dict[str, tuple[Metric, ...]] = {
    "prometheus": prometheus.METRICS,
    "alertmanager": alertmanager.METRICS,
    "jaeger": jaeger.METRICS,
    "victoria_metrics": victoria_metrics.METRICS,
    "vmalert": vmalert.METRICS,
    "node_exporter": node_exporter.METRICS,
    "blackbox_exporter": blackbox_exporter.METRICS,
}
# Series Prometheus writes itself (scrape health, ALERTS): read back through its query API.
WRITTEN_BY_PROMETHEUS = "prometheus (its own series)"
GROUPS: dict[str, tuple[Metric, ...]] = {
    **EXPOSED_BY, WRITTEN_BY_PROMETHEUS: prometheus_stack.SCRAPE + prometheus_stack.RULES,
}
# Catalog groups no judge here runs.
NOT_JUDGED: dict[str, tuple[Metric, ...]] = {
    "Loki: AGPL, not built (its config is checked by a typed model)": loki.METRICS,
    "Grafana: AGPL, not built": grafana.METRICS,
    "postgres_exporter: only Debian's 0.11, older than the image": postgres_exporter.METRICS,
    "redis_exporter: only Debian's 1.45, older than the image": redis_exporter.METRICS,
    "MediaNest's own instrumentation: the backend is not part of this stack": medianest.METRICS,
    "cAdvisor: its main module is not served, no binary here (names from its docs/storage/prometheus.md)":
        cadvisor.METRICS,
    "kube-state-metrics and the kubelets' cAdvisor: they run only against a Kubernetes cluster":
        tuple(m for m in kube_state_metrics.METRICS if m.name not in {c.name for c in cadvisor.METRICS}),
}
# Declared, but exposed only on an event this test cannot cause.
EVENT_ONLY = {
    "otelcol_exporter_enqueue_failed_spans_total":
        "only once a sending queue refuses spans; the shipped jaeger_storage_exporter has no queue",
}
# A label the scrape adds: a matcher on it names the stack's jobs and targets, not the exporter's.
SCRAPE_LABELS = frozenset({"job", "instance"})

ALERT_NAME = "CatalogCheck"
RULE_GROUP = "catalog"


# --- what the shipped rules and dashboards read ----------------------------------------------------

@dataclass(frozen=True)
class Use:
    where: str  # "dev: rule X", "prod: dashboard Y panel Z"
    selector: pp.VectorSelector


def uses_of(expr: str, where: str) -> Iterator[tuple[str, Use]]:
    """(catalog family, use) of every selector of `expr` naming a catalog metric (recorded series
    are ours, unknown names the static checks' business)."""
    for selector in Analysis(parse(expr), CATALOG).selectors:
        series = CATALOG.series(selector.name) if selector.name else None
        if series is not None:
            yield series.metric.name, Use(where, selector)


def collect_uses() -> dict[str, list[Use]]:
    """Catalog family -> its uses by the rules and dashboards of every stack."""
    uses: dict[str, list[Use]] = defaultdict(list)

    def add(expr: str, where: str) -> None:
        for family, use in uses_of(expr, where):
            uses[family].append(use)

    for stack in STACKS:
        bundle = build(load_stack(stack))
        for rule_file in bundle.rule_files:
            for group in rule_file.groups:
                for rule in group.rules:
                    add(rule.expr, f"{stack}: rule {rule.name}")
        context = bundle.dashboard_context()
        for dashboard in bundle.dashboards:
            defined = {v.get("name", "") for v in variables(dashboard)}
            for panel in panels(dashboard):
                for kind, target in queries(panel):
                    if kind == "prometheus":
                        text, _ = substitute(target.get("expr", ""), defined, context)
                        add(text, f"{stack}: dashboard {dashboard.uid} panel {panel.get('title')!r}")
            for variable in variables(dashboard):
                query = variable.get("query")
                text = query.get("query", "") if isinstance(query, dict) else str(query or "")
                # label_values(<selector>, <label>), as the dashboards' own check reads it.
                if variable.get("type") == "query" and (found := _LABEL_VALUES.match(text.strip())):
                    add(substitute(found.group(1), defined, context)[0],
                        f"{stack}: dashboard {dashboard.uid} variable {variable.get('name')}")
    return dict(uses)


@pytest.fixture(scope="module")
def uses() -> dict[str, list[Use]]:
    return collect_uses()


# --- what a binary exposes -------------------------------------------------------------------------

@dataclass
class Exposed:
    """Samples by series name (`x_bucket`, `x_total`...), with the type of their family.

    A label with an empty value is left out: Prometheus stores none (node_exporter's
    `device_error=""`, the collector's `otel_scope_version=""`)."""

    samples: dict[str, list[dict[str, str]]]
    types: dict[str, str]

    @classmethod
    def parse(cls, *texts: str) -> Exposed:
        exposed = cls({}, {})
        for text in texts:
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    labels = {name: value for name, value in sample.labels.items() if value}
                    exposed.samples.setdefault(sample.name, []).append(labels)
                    exposed.types[sample.name] = family.type
        return exposed


def series_names(metric: Metric) -> list[str]:
    if metric.type is MetricType.HISTOGRAM:
        return [metric.name + suffix for suffix in ("_bucket", "_sum", "_count")]
    if metric.type is MetricType.SUMMARY:
        return [metric.name, metric.name + "_sum", metric.name + "_count"]
    return [metric.name]


def differences(metric: Metric, exposed: Exposed, uses: Sequence[Use]) -> list[str]:
    """How the binary's series differ from the catalog's entry and its uses; [] when they agree."""
    found: list[str] = []
    for name in series_names(metric):
        if name not in exposed.samples:
            close = sorted(n for n in exposed.samples if n.startswith(metric.name.removesuffix("_total")))
            found.append(f"{name} is not exposed" + (f" (close: {', '.join(close[:5])})" if close else ""))
    if found:
        return found
    main = exposed.samples[series_names(metric)[0]]
    kind = exposed.types.get(series_names(metric)[0])
    # "unknown": the exposition declares no type (VictoriaMetrics writes no # TYPE line).
    if kind not in (None, "unknown") and kind != metric.type.value:
        found.append(f"{metric.name} is a {kind}, the catalog says {metric.type.value}")
    # Prometheus' own series carry the target's labels too; an exporter's get them from the scrape.
    wanted = set(metric.labels) | (set(metric.target_labels) if kind is None else set())
    if not any(wanted <= labels.keys() for labels in main):
        seen = sorted(set().union(*(labels.keys() for labels in main)))
        found.append(f"{metric.name} has no series with the catalog's labels {sorted(wanted)} "
                     f"(labels seen: {seen})")
    if metric.type is MetricType.HISTOGRAM:
        buckets = sorted({float(labels["le"]) for labels in main} - {float("inf")})
        if buckets != [float(b) for b in metric.buckets]:
            found.append(f"{metric.name} has buckets {buckets}, the catalog says {list(metric.buckets)}")
    if not metric.open_labels:
        for use in uses:
            series = exposed.samples.get(use.selector.name, [])
            # Only the exporter's own labels: job and instance name the stack's targets.
            matchers = [m for m in matchers_of(use.selector) if m.name not in SCRAPE_LABELS]
            if matchers and not any(all(label_matches(match_op(m), m.value, labels.get(m.name, ""))
                                        for m in matchers) for labels in series):
                found.append(f"{use.selector} ({use.where}) matches none of the binary's series")
    return found


def _text(url: str) -> str:
    status, body = get(url)
    assert status == 200, f"GET {url}: {status} {body[:300]!r}"
    return body.decode()


def _until(what: str, attempt: Callable[[], Any], timeout: float = WAIT_SECONDS) -> Any:
    """attempt()'s first truthy answer, polling; fails naming `what` after `timeout` seconds."""
    return wait_for(attempt, timeout, 0.3, what)


def _total(url: str, name: str, **labels: str) -> float:
    """The sum of the samples of series `name` with these labels on a /metrics page."""
    return sum(sample.value for family in text_string_to_metric_families(_text(url)) for sample in family.samples
               if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()))


# --- the binaries ----------------------------------------------------------------------------------

class _Webserver:
    """A loopback HTTP(S) server answering 200 to anything: blackbox's probe targets."""

    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        if context is not None:
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if context is not None else "http"
        self.url = f"{scheme}://{LOOPBACK}:{self.server.server_address[1]}/health"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def jaeger_on_loopback(config: StackConfig, ports: Iterator[int]) -> tuple[str, dict[int, int]]:
    """The shipped Jaeger config with in-memory storage, every `0.0.0.0:<port>` endpoint and the
    telemetry reader's `host: 0.0.0.0`/`port: 8888` moved to 127.0.0.1 and a free port; the query
    API's gRPC endpoint, left to its default (16685 on every interface), too. Also: shipped port ->
    free port."""
    settings = config.services.jaeger
    memory = type(settings).model_validate({**settings.model_dump(), "storage": "memory"})
    config = config.model_copy(update={"services": config.services.model_copy(update={"jaeger": memory})})
    document = yaml.safe_load(jaeger.render(config))
    query_grpc = 16685
    document["extensions"]["jaeger_query"]["grpc"] = {"endpoint": f"{jaeger.LISTEN}:{query_grpc}"}
    moved: dict[int, int] = {}

    def move(node: Any) -> None:
        if isinstance(node, dict):
            endpoint = node.get("endpoint")
            if isinstance(endpoint, str) and endpoint.startswith(f"{jaeger.LISTEN}:"):
                port = moved[int(endpoint.rsplit(":", 1)[1])] = next(ports)
                node["endpoint"] = f"{LOOPBACK}:{port}"
            if node.get("host") == jaeger.LISTEN and node.get("port") == jaeger.METRICS_PORT:
                node["host"], node["port"] = LOOPBACK, moved.setdefault(jaeger.METRICS_PORT, next(ports))
            for value in node.values():
                move(value)
        elif isinstance(node, list):
            for value in node:
                move(value)

    move(document)
    expected = {jaeger.OTLP_GRPC_PORT, jaeger.OTLP_HTTP_PORT, jaeger.UI_PORT, jaeger.HEALTH_PORT,
                jaeger.METRICS_PORT, query_grpc}
    assert set(moved) == expected, f"moved {sorted(moved)}, expected {sorted(expected)}"
    assert jaeger.LISTEN not in json.dumps(document)
    return yaml.safe_dump(document, sort_keys=False), moved


def node_exporter_args(config: StackConfig, port: int) -> list[str]:
    """The shipped arguments, the host's directories for the container's /host/... mounts and the
    listen address on loopback."""
    spec = node_exporter.service(config)
    args = []
    for arg in spec.args:
        flag, _, value = arg.partition("=")
        for mount in spec.host_mounts:
            if value == mount.path:
                value = mount.host_path
        if flag == "--web.listen-address":
            value = f"{LOOPBACK}:{port}"
        args.append(f"{flag}={value}")
    assert not any("/host/" in arg for arg in args), args
    return args


def _span() -> dict[str, Any]:
    now = time.time_ns()
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "catalog-check"}}]},
        "scopeSpans": [{"scope": {"name": "catalog-check"}, "spans": [{
            "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "probe",
            "kind": 2, "startTimeUnixNano": str(now - 10**6), "endTimeUnixNano": str(now)}]}]}]}


def _prometheus_series(url: str, metrics: Sequence[Metric]) -> Exposed:
    """Prometheus' own series as its query API returns them (no type: there is no /metrics)."""
    exposed = Exposed({}, {})
    for metric in metrics:
        for name in series_names(metric):
            query = urllib.parse.urlencode({"query": f'{{__name__="{name}"}}'})
            result = json.loads(_text(f"{url}/api/v1/query?{query}"))["data"]["result"]
            if result:
                exposed.samples[name] = [{k: v for k, v in r["metric"].items() if k != "__name__"} for r in result]
    return exposed


@pytest.fixture(scope="module")
def scraped() -> Iterator[dict[str, Exposed]]:
    """Each component's exposition, once it emitted what the catalog declares for it."""
    config = load_stack("dev")
    with Supervisor() as supervisor:
        ports = iter(processes.free_ports(16))
        work = supervisor.workdir

        # Alertmanager: clustered on loopback (prod's replicas gossip), notifying a closed port.
        am_port, am_cluster, closed = next(ports), next(ports), next(ports)
        am_url = f"http://{LOOPBACK}:{am_port}"
        (work / "alertmanager.yml").write_text(yaml.safe_dump({
            "route": {"receiver": "webhook", "group_by": ["alertname"], "group_wait": "0s",
                      "group_interval": "1s", "repeat_interval": "1h"},
            "receivers": [{"name": "webhook", "webhook_configs": [
                {"url": f"http://{LOOPBACK}:{closed}/nobody-listens", "send_resolved": False}]}],
        }))
        supervisor.start("alertmanager", [
            processes.binary("alertmanager"), f"--config.file={work / 'alertmanager.yml'}",
            f"--storage.path={supervisor.directory('alertmanager-data')}",
            f"--web.listen-address={LOOPBACK}:{am_port}", f"--cluster.listen-address={LOOPBACK}:{am_cluster}",
            # Alone in its cluster: no need to wait a minute for peers before notifying.
            "--cluster.settle-timeout=1s",
        ], ready_url=f"{am_url}/-/ready")

        # VictoriaMetrics: the long-term store, its shipped arguments on loopback.
        vm_port = next(ports)
        vm_url = f"http://{LOOPBACK}:{vm_port}"
        vm_args = [a for a in victoria_metrics.service(config).args
                   if not a.startswith(("-storageDataPath=", "-httpListenAddr="))]
        supervisor.start("victoria-metrics", [
            processes.binary("victoria-metrics"), *vm_args,
            f"-storageDataPath={supervisor.directory('vm-data')}", f"-httpListenAddr={LOOPBACK}:{vm_port}",
        ], ready_url=f"{vm_url}/health")

        # vmalert: the dev stack's SLO period rules, evaluated on the store and written back to it.
        vmalert_port = next(ports)
        vmalert_url = f"http://{LOOPBACK}:{vmalert_port}"
        store_rules = supervisor.directory("vmalert-rules")
        for path, text in build(config).files.items():
            if path.startswith(layout.LONG_TERM_RULES_DIR + "/"):
                (Path(store_rules) / Path(path).name).write_text(text)
        supervisor.start("vmalert", [
            processes.binary("vmalert"), f"-rule={store_rules}/*.yaml", f"-datasource.url={vm_url}",
            f"-remoteWrite.url={vm_url}", "-evaluationInterval=1s", f"-httpListenAddr={LOOPBACK}:{vmalert_port}",
        ], ready_url=f"{vmalert_url}/health")

        # Prometheus: scrapes itself, evaluates one always-firing alert, sends it to Alertmanager,
        # and remote-writes to the long-term store as the dev stack's prometheus.yml does.
        prom_port = next(ports)
        prom_url = f"http://{LOOPBACK}:{prom_port}"
        (work / "rules.yml").write_text(yaml.safe_dump({"groups": [{"name": RULE_GROUP, "rules": [
            {"alert": ALERT_NAME, "expr": "vector(1)", "labels": {"severity": "info"}}]}]}))
        (work / "prometheus.yml").write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(work / "rules.yml")],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"{LOOPBACK}:{am_port}"]}]}]},
            "scrape_configs": [{"job_name": config.jobs.prometheus,
                                "static_configs": [{"targets": [f"{LOOPBACK}:{prom_port}"]}]}],
            "remote_write": [prometheus.remote_write(config) | {"url": f"{vm_url}{victoria_metrics.WRITE_PATH}"}],
        }))
        supervisor.start("prometheus", [
            processes.binary("prometheus"), f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={supervisor.directory('prometheus-data')}",
            f"--web.listen-address={LOOPBACK}:{prom_port}",
        ], ready_url=f"{prom_url}/-/ready")

        # Jaeger: the shipped config on loopback.
        jaeger_config, jaeger_ports = jaeger_on_loopback(config, ports)
        (work / "jaeger.yaml").write_text(jaeger_config)
        supervisor.start("jaeger", [processes.binary("jaeger"), f"--config={work / 'jaeger.yaml'}"],
                         ready_url=f"http://{LOOPBACK}:{jaeger_ports[jaeger.HEALTH_PORT]}{jaeger.HEALTH_PATH}")
        jaeger_metrics = f"http://{LOOPBACK}:{jaeger_ports[jaeger.METRICS_PORT]}/metrics"

        # node_exporter: the shipped arguments on the host's directories.
        node_port = next(ports)
        node_url = f"http://{LOOPBACK}:{node_port}"
        supervisor.start("node_exporter", [processes.binary("node_exporter"), *node_exporter_args(config, node_port)],
                         ready_url=f"{node_url}/")

        # blackbox_exporter: the generated modules, trusting only this test's certificate.
        supervisor.run("openssl", [processes.binary("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                                   "-keyout", str(work / "key.pem"), "-out", str(work / "cert.pem"), "-days", "2",
                                   "-subj", f"/CN={LOOPBACK}", "-addext", f"subjectAltName=IP:{LOOPBACK}"])
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(work / "cert.pem", work / "key.pem")
        plain_target, tls_target = _Webserver(), _Webserver(tls)
        try:
            (work / "blackbox.yml").write_text(blackbox_exporter.render())
            blackbox_port = next(ports)
            blackbox_url = f"http://{LOOPBACK}:{blackbox_port}"
            supervisor.start("blackbox_exporter", [
                processes.binary("blackbox_exporter"), f"--config.file={work / 'blackbox.yml'}",
                f"--web.listen-address={LOOPBACK}:{blackbox_port}",
            ], env={"SSL_CERT_FILE": str(work / "cert.pem")}, ready_url=f"{blackbox_url}/-/healthy")

            # Events: an alert straight into Alertmanager, a span into Jaeger.
            post_json(f"{am_url}/api/v2/alerts", [{"labels": {"alertname": "CatalogCheckDirect", "severity": "info"}}])
            post_json(f"http://{LOOPBACK}:{jaeger_ports[jaeger.OTLP_HTTP_PORT]}/v1/traces", _span())

            probes = []
            for target in (plain_target.url, tls_target.url):
                module = blackbox_exporter.probe_module(target)
                probe = _text(f"{blackbox_url}/probe?" + urllib.parse.urlencode({"target": target, "module": module}))
                assert "\nprobe_success 1" in probe, f"probe of {target} with {module} failed:\n{probe}"
                probes.append(probe)

            _until("Alertmanager to fail notifying the webhook",
                   lambda: _total(f"{am_url}/metrics", "alertmanager_notifications_failed_total",
                                  integration="webhook") > 0)
            try:
                # Longer: once, on a loaded CI machine, 30 s did not suffice (the output below says why).
                _until("Prometheus to send its alert to Alertmanager",
                       lambda: _total(f"{prom_url}/metrics", "prometheus_notifications_sent_total") > 0, 90)
            except BaseException:
                # What Prometheus knows of its Alertmanagers and alerts, and what it logged.
                print(_text(f"{prom_url}/api/v1/alertmanagers"), _text(f"{prom_url}/api/v1/alerts"),
                      [line for line in _text(f"{prom_url}/metrics").splitlines() if "notifications" in line],
                      supervisor.log_tail("prometheus"), supervisor.log_tail("alertmanager"), sep="\n")
                raise
            _until(f"ALERTS{{alertname={ALERT_NAME!r}}} in Prometheus", lambda: _prometheus_series(
                prom_url, [CATALOG.metrics["ALERTS"]]).samples)
            _until("up and the scrape series in Prometheus", lambda: len(_prometheus_series(
                prom_url, prometheus_stack.SCRAPE).samples) == len(prometheus_stack.SCRAPE))
            _until("Jaeger to store the span",
                   lambda: _total(jaeger_metrics, "otelcol_exporter_sent_spans_total") > 0)
            _until("the long-term store to take Prometheus' samples",
                   lambda: _total(f"{vm_url}/metrics", "vm_rows_inserted_total", type="promremotewrite") > 0, 60)

            yield {
                "prometheus": Exposed.parse(_text(f"{prom_url}/metrics")),
                WRITTEN_BY_PROMETHEUS: _prometheus_series(prom_url, GROUPS[WRITTEN_BY_PROMETHEUS]),
                "alertmanager": Exposed.parse(_text(f"{am_url}/metrics")),
                "jaeger": Exposed.parse(_text(jaeger_metrics)),
                "victoria_metrics": Exposed.parse(_text(f"{vm_url}/metrics")),
                "vmalert": Exposed.parse(_text(f"{vmalert_url}/metrics")),
                "node_exporter": Exposed.parse(_text(f"{node_url}/metrics")),
                "blackbox_exporter": Exposed.parse(*probes),
            }
        finally:
            plain_target.close()
            tls_target.close()


# --- the tests -------------------------------------------------------------------------------------

def test_every_catalog_metric_has_a_component() -> None:
    """The mapping covers the catalog: a new group must say which binary exposes it."""
    mapped = [m.name for group in (*GROUPS.values(), *NOT_JUDGED.values()) for m in group]
    assert sorted(mapped) == sorted(CATALOG.metrics)
    assert set(EVENT_ONLY) <= {m.name for group in GROUPS.values() for m in group}


def test_the_rules_and_dashboards_use_judged_metrics(uses: dict[str, list[Use]]) -> None:
    """The collection of uses finds each judged component's metrics (a broken collection would
    let everything pass)."""
    for component, group in GROUPS.items():
        assert {m.name for m in group} & uses.keys(), f"no rule or dashboard reads a metric of {component}"


def _judge(component: str, exposed: Exposed, metrics: Sequence[Metric], uses: dict[str, list[Use]]) -> None:
    found = [difference for metric in metrics if metric.name not in EVENT_ONLY
             for difference in differences(metric, exposed, uses.get(metric.name, []))]
    if found:
        pytest.fail(f"{component}: the catalog (rules/metrics/) differs from the shipped binary:\n  "
                    + "\n  ".join(found), pytrace=False)


@pytest.mark.parametrize("component", list(GROUPS))
def test_metrics_the_stack_uses_are_exposed(component: str, scraped: dict[str, Exposed],
                                            uses: dict[str, list[Use]]) -> None:
    _judge(component, scraped[component], [m for m in GROUPS[component] if m.name in uses], uses)


@pytest.mark.parametrize("component", list(GROUPS))
def test_declared_metrics_nothing_uses_yet_are_exposed(component: str, scraped: dict[str, Exposed],
                                                       uses: dict[str, list[Use]]) -> None:
    """The rest of the catalog is honest too: a rule written tomorrow may read it."""
    _judge(component, scraped[component], [m for m in GROUPS[component] if m.name not in uses], uses)
