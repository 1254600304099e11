"""Long-term storage as config (`longTermStorage`): the modes and their validation, the
remote_write block Prometheus gets for each (judged by promtool with the rest of
prometheus.yml in tests/test_cli.py's `check`), and the history check of every SLO's period.
The real write path runs in tests/e2e/test_long_term_storage.py."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import pytest
import yaml

from dashboards import provisioning
from rules.problems import Severity
from rules.slo.history import History, check_history
from rules.slos import slos
from stack.bundle import build
from stack.config import PROJECT, ConfigError, StackConfig, from_mapping, load_stack
from stack.services import prometheus, victoria_metrics

EXTERNAL = {"url": "https://mimir.example.com/api/v1/push", "queryUrl": "https://mimir.example.com/prometheus",
            "retention": "400d"}


def _config(storage: dict[str, Any], **others: Any) -> StackConfig:
    data = load_stack("dev").model_dump(by_alias=True)
    data["longTermStorage"] = storage
    data.update(others)
    return StackConfig.model_validate(data)


def _remote_write(config: StackConfig) -> list[dict[str, Any]]:
    return yaml.safe_load(build(config).files["prometheus/prometheus.yml"]).get("remote_write", [])


# --- the modes ---------------------------------------------------------------------------------------


def test_none_writes_nowhere_and_deploys_no_store() -> None:
    config = _config({"mode": "none"})
    bundle = build(config)
    assert _remote_write(config) == []
    assert victoria_metrics.NAME not in {s.name for s in bundle.services}
    assert not {r.alert for _, r in bundle.alerts} & {"PrometheusRemoteWriteBehind", "LongTermStoreDown"}


def test_deploy_writes_to_the_store_it_deploys_without_the_replica_label() -> None:
    config = _config({"mode": "deploy"})
    bundle = build(config)
    [entry] = _remote_write(config)
    assert entry["url"] == "http://victoria-metrics:8428/api/v1/write"
    assert entry["write_relabel_configs"][-1] == {"action": "labeldrop", "regex": prometheus.REPLICA_LABEL}
    [store] = [s for s in bundle.services if s.name == victoria_metrics.NAME]
    assert "-retentionPeriod=90d" in store.args and "-dedup.minScrapeInterval=30s" in store.args
    alerts = {r.alert for _, r in bundle.alerts}
    assert {"PrometheusRemoteWriteFailing", "PrometheusRemoteWriteBehind", "LongTermStoreDown"} <= alerts
    sources = yaml.safe_load(bundle.files["grafana/provisioning/datasources/datasources.yaml"])["datasources"]
    assert {"uid": "long-term", "url": "http://victoria-metrics:8428"}.items() <= {
        k: v for s in sources if s["uid"] == "long-term" for k, v in s.items()}.items()


def test_an_external_store_s_query_api_is_grafana_s_long_term_datasource() -> None:
    config = _config({"mode": "remoteWrite", "external": EXTERNAL})
    bundle = build(config)
    sources = {s["uid"]: s for s in yaml.safe_load(
        bundle.files["grafana/provisioning/datasources/datasources.yaml"])["datasources"]}
    assert sources["long-term"]["url"] == EXTERNAL["queryUrl"] and sources["long-term"]["type"] == "prometheus"
    slo = next(v for k, v in bundle.files.items() if k.endswith("medianest-slos.json"))
    assert '"uid": "long-term"' in slo
    # Grafana goes out to it on its port; no store is deployed.
    [grafana] = [s for s in bundle.services if s.name == "grafana"]
    assert any(f.ports == ((443, "TCP"),) and type(f.destination).__name__ == "Hosts" for f in grafana.flows)
    assert victoria_metrics.NAME not in {s.name for s in bundle.services}
    assert not [p.render() for p in bundle.problems() if p.severity >= Severity.ERROR]


def test_without_a_query_url_grafana_reads_prometheus_alone() -> None:
    external = {k: v for k, v in EXTERNAL.items() if k != "queryUrl"}
    bundle = build(_config({"mode": "remoteWrite", "external": external}))
    sources = yaml.safe_load(bundle.files["grafana/provisioning/datasources/datasources.yaml"])["datasources"]
    assert "long-term" not in {s["uid"] for s in sources}
    slo = next(v for k, v in bundle.files.items() if k.endswith("medianest-slos.json"))
    assert '"uid": "long-term"' not in slo


def test_remote_write_sends_to_the_external_store_with_credentials_from_files() -> None:
    external = {**{k: v for k, v in EXTERNAL.items() if k != "queryUrl"},
                "bearerTokenFile": "/etc/prometheus/secrets/remote-write-token"}
    config = _config({"mode": "remoteWrite", "external": external, "queue": {"maxShards": 10},
                      "writeFilters": [{"action": "drop", "metricNames": "go_.*"}], "sendExemplars": False})
    [entry] = _remote_write(config)
    assert entry == {
        "name": "long-term", "url": EXTERNAL["url"],
        "authorization": {"credentials_file": "/etc/prometheus/secrets/remote-write-token"},
        "send_exemplars": False, "metadata_config": {"send": True},
        "queue_config": {"capacity": 10000, "max_shards": 10, "max_samples_per_send": 2000,
                         "batch_send_deadline": "5s"},
        # The replica label stays: the store deduplicates an HA pair by it.
        "write_relabel_configs": [{"source_labels": ["__name__"], "regex": "go_.*", "action": "drop"}],
    }
    bundle = build(config)
    [spec] = [s for s in bundle.services if s.name == prometheus.NAME]
    assert [(s.name, s.path) for s in spec.secrets] == [("remote-write-token",
                                                         "/etc/prometheus/secrets/remote-write-token")]
    assert "remote-write-token" not in bundle.files["prometheus/prometheus.yml"].split("credentials_file")[0]
    assert victoria_metrics.NAME not in {s.name for s in bundle.services}


@pytest.mark.parametrize(("credentials", "expected"), [
    ({"bearerTokenFile": "/etc/prometheus/secrets/remote-write-token"},
     {"jsonData": {"httpHeaderName1": "Authorization"},
      "secureJsonData": {"httpHeaderValue1": "Bearer $__file{/etc/grafana/secrets/remote-write-token}"}}),
    ({"basicAuthUsername": "medi$nest", "basicAuthPasswordFile": "/etc/prometheus/secrets/remote-write-password"},
     {"basicAuth": True, "basicAuthUser": "medi$$nest",
      "secureJsonData": {"basicAuthPassword": "$__file{/etc/grafana/secrets/remote-write-password}"}}),
], ids=["bearer token", "basic auth"])
def test_grafana_reads_the_external_store_with_the_same_credentials_from_its_own_file(
        credentials: dict[str, str], expected: dict[str, Any]) -> None:
    bundle = build(_config({"mode": "remoteWrite", "external": {**EXTERNAL, **credentials}}))
    text = bundle.files["grafana/provisioning/datasources/datasources.yaml"]
    [source] = [s for s in yaml.safe_load(text)["datasources"] if s["uid"] == "long-term"]
    for key, value in expected.items():
        assert source[key] == (source[key] | value if key == "jsonData" else value), key
    # Grafana expands the file reference, and nothing else of the file.
    assert provisioning.unescaped_dollars(text) == []
    [grafana] = [s for s in bundle.services if s.name == "grafana"]
    secret = PurePosixPath(credentials.get("bearerTokenFile") or credentials["basicAuthPasswordFile"]).name
    assert (secret, f"/etc/grafana/secrets/{secret}") in {(s.name, s.path) for s in grafana.secrets}
    assert not [p.render() for p in bundle.problems() if p.severity >= Severity.ERROR]


def test_basic_auth_reads_its_password_from_a_file() -> None:
    external = {"url": EXTERNAL["url"], "retention": "400d", "basicAuthUsername": "medianest",
                "basicAuthPasswordFile": "/etc/prometheus/secrets/remote-write-password"}
    [entry] = _remote_write(_config({"mode": "remoteWrite", "external": external}))
    assert entry["basic_auth"] == {"username": "medianest",
                                   "password_file": "/etc/prometheus/secrets/remote-write-password"}


# --- bad config: one line naming the key ------------------------------------------------------------

BAD = [
    ("remoteWrite without its store", {"mode": "remoteWrite"}, "longTermStorage: Value error, external: required"),
    ("a store for another mode", {"mode": "deploy", "external": EXTERNAL},
     "longTermStorage: Value error, external: only with mode remoteWrite"),
    ("an unknown mode", {"mode": "thanos"}, "longTermStorage.mode: Input should be 'none', 'remoteWrite' or 'deploy'"),
    ("a token outside Prometheus' secrets", {"mode": "remoteWrite", "external": {
        **EXTERNAL, "bearerTokenFile": "/run/token"}}, "longTermStorage.external.bearerTokenFile: Value error, "
     "must live under /etc/prometheus/secrets/"),
    ("two kinds of credentials", {"mode": "remoteWrite", "external": {
        **EXTERNAL, "bearerTokenFile": "/etc/prometheus/secrets/t", "basicAuthUsername": "u",
        "basicAuthPasswordFile": "/etc/prometheus/secrets/p"}},
     "longTermStorage.external: Value error, bearerTokenFile or basicAuth*, not both"),
    ("a user without a password", {"mode": "remoteWrite", "external": {**EXTERNAL, "basicAuthUsername": "u"}},
     "longTermStorage.external: Value error, basicAuthUsername and basicAuthPasswordFile go together"),
    ("a password in the URL", {"mode": "remoteWrite", "external": {
        **EXTERNAL, "url": "https://u:hunter2@mimir.example.com/api/v1/push"}},
     "longTermStorage.external.url: Value error, must not carry credentials"),
    ("a filter that is no regex", {"mode": "deploy", "writeFilters": [{"action": "keep", "metricNames": "go_(.*"}]},
     "longTermStorage.writeFilters.0.metricNames: Value error, not a regular expression"),
]


@pytest.mark.parametrize(("storage", "expected"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_long_term_storage_is_refused_naming_the_key(storage: dict[str, Any], expected: str) -> None:
    data = {f"{PROJECT}:environment": "dev", f"{PROJECT}:runbookBaseUrl": "https://r",
            f"{PROJECT}:longTermStorage": storage}
    with pytest.raises(ConfigError) as error:
        from_mapping(data, "Pulumi.dev.yaml")
    assert f"Pulumi.dev.yaml: {PROJECT}:{expected}" in str(error.value)
    assert "hunter2" not in str(error.value)


def test_the_cluster_s_prometheus_is_not_ours_to_make_write() -> None:
    data = load_stack("prod").model_dump(by_alias=True)
    data["kubernetes"]["prometheusOperator"] = {"enabled": True, "prometheusNamespace": "kps"}
    data["longTermStorage"] = {"mode": "deploy"}
    with pytest.raises(ValueError, match="longTermStorage.mode: none with kubernetes.prometheusOperator"):
        StackConfig.model_validate(data)


# --- the history that answers each SLO's period ------------------------------------------------------

HISTORY = [
    # (retention, period, refused)
    ("15d", "30d", True),
    ("29d", "30d", True),
    ("720h", "30d", False),
    ("30d", "30d", False),
    ("90d", "30d", False),
    ("1d", "5d", True),
]


@pytest.mark.parametrize(("retention", "period", "refused"), HISTORY)
def test_a_period_longer_than_its_history_is_an_error_naming_both(retention: str, period: str,
                                                                   refused: bool) -> None:
    [slo, *_] = slos(load_stack("dev"))
    slo = slo.model_copy(update={"period": period})
    problems = check_history([slo], History(retention, "services.prometheus.retentionTime"))
    assert bool(problems) == refused
    if refused:
        [problem] = problems
        assert problem.severity is Severity.ERROR and problem.source == f"slo {slo.name}"
        assert (f"its period {period} is longer than the history that answers it: "
                f"services.prometheus.retentionTime is {retention}") in problem.message


def _history_problems(storage: dict[str, Any], **services: dict[str, Any]) -> list[str]:
    data = load_stack("dev").model_dump(by_alias=True)
    data["longTermStorage"] = storage
    for key, settings in services.items():
        data["services"][key].update(settings)
    return [p.render() for p in build(StackConfig.model_validate(data)).problems() if p.check == "slo/history"]


def test_dev_s_old_fifteen_days_are_refused_and_the_shipped_stacks_pass() -> None:
    # Without a store, Prometheus evaluates the period rules on its own 15 days: refused, per SLO.
    problems = _history_problems({"mode": "none"}, prometheus={"retentionTime": "15d"})
    assert len(problems) == len(slos(load_stack("dev")))
    assert all("services.prometheus.retentionTime is 15d" in p for p in problems)
    for stack in ("dev", "prod"):
        assert not [p.render() for p in build(load_stack(stack)).problems() if p.check == "slo/history"]


def test_with_a_deployed_store_its_retention_answers_the_periods() -> None:
    # vmalert evaluates the period rules on the store: Prometheus' 15 days no longer matter...
    assert _history_problems({"mode": "deploy"}, prometheus={"retentionTime": "15d"}) == []
    # ...the store's retention does.
    problems = _history_problems({"mode": "deploy"}, victoriaMetrics={"retention": "20d"})
    assert problems and all("services.victoriaMetrics.retention is 20d" in p for p in problems)
    config = _config({"mode": "deploy"})
    bundle = build(config)
    # The period rules ship to the store's evaluator, not to Prometheus.
    store_rules = [p for p in bundle.files if p.startswith("long-term/rules/")]
    assert len(store_rules) == len(slos(config))
    for path in store_rules:
        [group] = yaml.safe_load(bundle.files[path])["groups"]
        assert group["name"].endswith(".period")
        prometheus_file = yaml.safe_load(bundle.files[path.replace("long-term/rules/", "prometheus/rules/")])
        assert not [g for g in prometheus_file["groups"] if g["name"].endswith(".period")]


def test_without_a_deployed_store_prometheus_evaluates_the_period_rules() -> None:
    for storage in ({"mode": "none"}, {"mode": "remoteWrite", "external": EXTERNAL}):
        bundle = build(_config(storage))
        assert not [p for p in bundle.files if p.startswith("long-term/")]
        groups = [g["name"] for p, text in bundle.files.items() if p.startswith("prometheus/rules/slo-")
                  for g in yaml.safe_load(text)["groups"]]
        assert len([g for g in groups if g.endswith(".period")]) == len(slos(bundle.config))


def test_the_history_of_a_cluster_s_prometheus_is_not_judged() -> None:
    data = load_stack("prod").model_dump(by_alias=True)
    data["kubernetes"]["prometheusOperator"] = {"enabled": True, "prometheusNamespace": "kps"}
    data["longTermStorage"] = {"mode": "none"}
    data["services"]["prometheus"]["retentionTime"] = "1d"
    assert prometheus.rule_history(StackConfig.model_validate(data)) is None
