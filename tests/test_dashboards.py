"""Dashboards: each check catches its broken dashboard, generated JSON round-trips through the
SDK's schema, provisioning escapes `$` and links the datasources, and `render` refuses bad ones."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from dashboards import datasources, provisioning, slo
from dashboards.checks import check_dashboards, panels
from dashboards.checks.promql import check_query
from dashboards.model import GeneratedDashboard, encode, parse_dashboard
from rules.problems import Severity
from rules.slos import slos
from stack import bundle as bundle_module
from stack.bundle import GRAFANA_DASHBOARD_PROVIDERS, GRAFANA_DATASOURCES, Bundle, build
from stack.config import StackConfig


@pytest.fixture(scope="module")
def dev(dev_config: StackConfig) -> Bundle:
    return build(dev_config)


def overview(bundle: Bundle) -> GeneratedDashboard:
    return next(d for d in bundle.dashboards if d.uid == "medianest-overview")


def _panel(data: dict[str, Any], title: str) -> dict[str, Any]:
    return next(p for p in data["panels"] if p.get("title") == title)


def _expr(title: str, expr: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        _panel(data, title)["targets"][0]["expr"] = expr
    return change


def _set(title: str, path: tuple[str, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        node = _panel(data, title)
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return change


def _drop_unit(data: dict[str, Any]) -> None:
    del _panel(data, "Request rate")["fieldConfig"]["defaults"]["unit"]


def _overlap(data: dict[str, Any]) -> None:
    _panel(data, "Error ratio")["gridPos"] = dict(_panel(data, "Request rate")["gridPos"])


def _duplicate_id(data: dict[str, Any]) -> None:
    _panel(data, "Error ratio")["id"] = _panel(data, "Request rate")["id"]


def _angular(data: dict[str, Any]) -> None:
    _panel(data, "Request rate")["type"] = "graph"


def _runbook(data: dict[str, Any]) -> None:
    _panel(data, "Error ratio")["links"][0]["url"] = "https://runbooks.medianest.example/alerts/NoSuchAlert"


# (sentence, change to the overview dashboard's JSON, check that must report it, words of the message)
BROKEN = [
    ("a panel querying an unknown metric", _expr("Request rate", "sum(medianest_http_requests_totl)"),
     "promql", "unknown metric medianest_http_requests_totl"),
    ("a panel querying a label the metric does not have",
     _expr("Request rate", 'sum(medianest_user_sessions_active{user_id="1"})'), "promql", "label user_id"),
    ("an invalid query", _expr("Request rate", "sum(rate(up[$__rate_interval])"), "promql", "invalid PromQL"),
    ("a rate over a fixed window",
     _expr("Request rate", 'sum(rate(medianest_http_requests_total{job="medianest-backend"}[5m]))'),
     "promql", "$__rate_interval"),
    ("a variable the dashboard does not define",
     _expr("Request rate", 'sum(medianest_user_sessions_active{instance=~"$host"})'), "promql", "$host"),
    ("a rate over a histogram's base name",
     _expr("Request rate", "sum(rate(medianest_http_request_duration_seconds[$__rate_interval]))"),
     "promql", "medianest_http_request_duration_seconds"),
    ("a sum of a rate that a recording rule records",
     _expr("Request rate", 'sum by (job) (rate(medianest_http_requests_total{job="medianest-backend"}'
                           "[$__rate_interval]))"), "recorded", "job:medianest_http_requests:rate5m"),
    ("a panel without a unit", _drop_unit, "metadata", "no unit"),
    ("a panel without a description", _set("Request rate", ("description",), ""), "metadata", "no description"),
    ("an Angular panel type", _angular, "metadata", "Angular"),
    ("overlapping panels", _overlap, "layout", "overlaps"),
    ("a duplicate panel id", _duplicate_id, "layout", "must be unique"),
    ("a panel off the grid", _set("Request rate", ("gridPos", "x"), 20), "layout", "off the"),
    ("a datasource that is not provisioned", _set("Request rate", ("datasource",), {"type": "prometheus",
                                                                                    "uid": "mimir"}),
     "datasources", "'mimir' is not provisioned"),
    ("a runbook link to an alert that does not exist", _runbook, "runbooks", "NoSuchAlert"),
]


def test_the_broken_table_is_complete() -> None:
    assert len(BROKEN) == 15


@pytest.mark.parametrize(("change", "check", "words"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_a_broken_dashboard_is_reported_against_dashboard_and_panel(dev: Bundle, change, check: str,
                                                                    words: str) -> None:
    data = copy.deepcopy(overview(dev).data)
    change(data)
    problems = check_dashboards([GeneratedDashboard("medianest", data)], dev.dashboard_context())
    found = [p for p in problems if p.check == check and words in p.message]
    assert found, [p.render() for p in problems]
    assert found[0].source == "dashboard medianest-overview (MediaNest / System overview)"
    assert found[0].subject.startswith("panel ")


def test_a_duplicate_dashboard_uid_is_reported(dev: Bundle) -> None:
    copied = GeneratedDashboard("stack", copy.deepcopy(overview(dev).data))
    problems = check_dashboards([overview(dev), copied], dev.dashboard_context())
    assert [p.check for p in problems] == ["uids", "uids"]


LOGQL = [
    ("an unbounded stream label", '{job="medianest-backend", trace_id="abc"}', "trace_id is not a stream label"),
    ("no stream selector", 'sum(count_over_time([5m]))', "no stream selector"),
    ("an undefined variable", '{job="medianest-backend", level=~"$severity"}', "$severity"),
]


@pytest.mark.parametrize(("expr", "words"), [c[1:] for c in LOGQL], ids=[c[0] for c in LOGQL])
def test_logql_stream_selectors_only_use_bounded_labels(dev: Bundle, expr: str, words: str) -> None:
    logs = copy.deepcopy(next(d for d in dev.dashboards if d.uid == "medianest-logs-traces").data)
    _panel(logs, "Backend logs")["targets"][0]["expr"] = expr
    problems = check_dashboards([GeneratedDashboard("logs", logs)], dev.dashboard_context())
    assert any(p.check == "logql" and words in p.message for p in problems), [p.render() for p in problems]


def test_generated_dashboards_have_no_problems(bundle: Bundle) -> None:
    problems = [p for p in bundle.problems() if p.source.startswith("dashboard")]
    assert [p.render() for p in problems if p.severity >= Severity.WARNING] == []


def test_dashboards_round_trip_through_the_schema_model(bundle: Bundle) -> None:
    for dashboard in bundle.dashboards:
        assert encode(parse_dashboard(dashboard.data)) == dashboard.data, dashboard.uid
        assert dashboard.data["schemaVersion"] == 42


def test_dashboards_are_deterministic_with_stable_uids_and_ids(config: StackConfig) -> None:
    first, second = build(config), build(config)
    assert {p: c for p, c in first.files.items() if p.startswith("grafana/")} == \
        {p: c for p, c in second.files.items() if p.startswith("grafana/")}
    for dashboard in first.dashboards:
        ids = [p["id"] for p in panels(dashboard)]
        assert ids == list(range(1, len(ids) + 1)), dashboard.uid


def test_every_value_panel_has_a_unit_and_every_panel_a_description(bundle: Bundle) -> None:
    for dashboard in bundle.dashboards:
        for panel in panels(dashboard):
            if panel["type"] != "row":
                assert panel.get("description"), (dashboard.uid, panel["title"])


def test_a_new_slo_gets_its_row_without_dashboard_code(dev_config: StackConfig) -> None:
    extra = slos(dev_config)[0].model_copy(update={"name": "search-availability"})
    rows = [slo.slo_row(s) for s in (*slos(dev_config), extra)]
    assert rows[-1].title.startswith("search-availability:")
    burn = next(p for p in rows[-1].panels if p.title == "Burn rate per window")
    assert {q.legend for q in burn.queries} >= {"5m", "30m", "1h", "2h", "6h", "1d", "3d"}


def test_the_overview_has_the_variables_a_user_expects(dev: Bundle) -> None:
    names = [v["name"] for v in overview(dev).data["templating"]["list"]]
    assert names == ["environment", "instance", "endpoint"]


def test_alerting_panels_link_to_their_runbook(dev: Bundle) -> None:
    links = _panel(overview(dev).data, "Error ratio")["links"]
    assert links[0]["url"] == "https://runbooks.medianest.example/alerts/HighErrorRate"


def test_no_dashboard_uses_an_angular_panel(bundle: Bundle) -> None:
    kinds = {p["type"] for d in bundle.dashboards for p in panels(d)}
    assert not kinds & {"graph", "singlestat", "table-old"}
    assert {"timeseries", "stat", "gauge", "bargauge", "table", "logs", "traces", "text", "row"} <= kinds


def test_provisioning_escapes_every_dollar(bundle: Bundle) -> None:
    for path in (GRAFANA_DATASOURCES, GRAFANA_DASHBOARD_PROVIDERS):
        assert provisioning.unescaped_dollars(bundle.files[path]) == [], path
    assert "$${__value.raw}" in bundle.files[GRAFANA_DATASOURCES]


def test_datasources_have_fixed_uids_and_link_to_each_other(bundle: Bundle) -> None:
    provisioned = yaml.safe_load(bundle.files[GRAFANA_DATASOURCES])["datasources"]
    by_uid = {d["uid"]: d for d in provisioned}
    # Every datasource but the long-term store's, which only a stack with one has (dev).
    assert set(by_uid) - {datasources.LONG_TERM.uid} == {d.uid for d in datasources.ALL} - {datasources.LONG_TERM.uid}
    assert (datasources.LONG_TERM.uid in by_uid) == (bundle.config.long_term_storage.mode == "deploy")
    assert by_uid["prometheus"]["jsonData"]["exemplarTraceIdDestinations"][0]["datasourceUid"] == "jaeger"
    assert by_uid["loki"]["jsonData"]["derivedFields"][0]["datasourceUid"] == "jaeger"
    assert by_uid["jaeger"]["jsonData"]["tracesToLogsV2"]["datasourceUid"] == "loki"
    assert by_uid["jaeger"]["jsonData"]["tracesToMetrics"]["datasourceUid"] == "prometheus"
    assert by_uid["prometheus"]["url"] == bundle.config.services.prometheus.datasource_url


def test_traces_to_metrics_queries_pass_the_static_checks(dev: Bundle, dev_config: StackConfig) -> None:
    for query in provisioning.traces_to_metrics_queries(dev_config):
        expr = query["query"].replace("$__tags", 'endpoint="/api/v1/media"')
        assert list(check_query(expr, set(), dev.dashboard_context())) == [], query["name"]


def test_one_dashboard_provider_per_folder(bundle: Bundle) -> None:
    providers = yaml.safe_load(bundle.files[GRAFANA_DASHBOARD_PROVIDERS])["providers"]
    assert sorted(p["folderUid"] for p in providers) == sorted({d.folder for d in bundle.dashboards})
    for dashboard in bundle.dashboards:
        path = bundle_module.dashboard_path(dashboard)
        assert json.loads(bundle.files[path])["uid"] == dashboard.uid


def test_grafana_security_settings(bundle: Bundle, stack_name: str) -> None:
    ini = bundle.files["grafana/grafana.ini"]
    assert "allow_sign_up = false" in ini
    assert "[auth.anonymous]\nenabled = false" in ini
    assert ("cookie_secure = true" in ini) == (stack_name == "prod")
    assert "admin_password" not in ini
    env = yaml.safe_load(bundle.files["grafana/environment.yaml"])
    assert env["GF_SECURITY_ADMIN_PASSWORD__FILE"].startswith("/")


def test_render_writes_nothing_when_a_dashboard_is_broken(tmp_path, monkeypatch, capsys) -> None:
    from stack import cli

    real = bundle_module.dashboard_definitions

    def broken(config: StackConfig) -> tuple[GeneratedDashboard, ...]:
        generated = real(config)
        data = copy.deepcopy(generated[0].data)
        data["panels"][1]["targets"][0]["expr"] = "sum(no_such_metric)"
        return (GeneratedDashboard(generated[0].folder, data), *generated[1:])

    monkeypatch.setattr(bundle_module, "dashboard_definitions", broken)
    out = tmp_path / "out"
    assert cli.main(["render", "--stack", "dev", "--out", str(out)]) == cli.PROBLEMS
    assert not out.exists()
    assert "unknown metric no_such_metric" in capsys.readouterr().out
