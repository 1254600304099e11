"""A component switched off (`services.<x>.enabled: false`) is not deployed, not scraped, and no
alert watches for it: the sandbox, which has no Loki, Jaeger, Grafana or Alloy, stays quiet."""

from __future__ import annotations

import dataclasses
import json

import pytest
import yaml
from pydantic import ValidationError

from rules.platform import absent_alerts
from stack import services as registry
from stack.bundle import build
from stack.config import StackConfig
from stack.services import postgres_exporter


def _without(config: StackConfig, *components: str) -> StackConfig:
    data = config.model_dump(by_alias=True)
    for component in components:
        data["services"][component]["enabled"] = False
    return StackConfig.model_validate(data)


def test_a_disabled_component_is_neither_deployed_nor_scraped_nor_alerted_on(dev_config: StackConfig) -> None:
    bundle = build(_without(dev_config, "loki", "jaeger"))
    assert {s.name for s in bundle.services} & {"loki", "jaeger"} == set()
    jobs = {j["job_name"] for j in yaml.safe_load(bundle.files["prometheus/prometheus.yml"])["scrape_configs"]}
    assert jobs.isdisjoint({"loki", "jaeger"}) and "alertmanager" in jobs
    alerts = {rule.alert for _, rule in bundle.alerts}
    assert alerts.isdisjoint({"LokiDown", "LokiRequestErrors", "JaegerDown", "JaegerSpansRefused",
                              "JaegerExportFailing"})
    assert "PostgresDown" in alerts
    platform = next(f for f in bundle.rule_files if f.name == "platform")
    assert not any("Loki" in t.name or "Jaeger" in t.name for t in platform.tests)
    assert bundle.coverage().ratio == 1.0
    assert "loki/loki.yaml" not in bundle.files


def test_without_loki_and_jaeger_grafana_has_neither_datasource_nor_their_panels(dev_config: StackConfig) -> None:
    """Found moving the datasources into their components: a stack without Loki or Jaeger still
    provisioned both, linked to from the others, and shipped log and trace panels reading them."""
    full = build(dev_config)
    bundle = build(_without(dev_config, "loki", "jaeger"))
    sources = yaml.safe_load(bundle.files["grafana/provisioning/datasources/datasources.yaml"])["datasources"]
    assert [s["uid"] for s in sources] == ["prometheus", "alertmanager", "long-term"]
    assert sources[0]["isDefault"] and "exemplarTraceIdDestinations" not in sources[0]["jsonData"]
    # With them, each links to the other.
    linked = {s["uid"]: s["jsonData"] for s in yaml.safe_load(
        full.files["grafana/provisioning/datasources/datasources.yaml"])["datasources"]}
    assert linked["loki"]["derivedFields"][0]["datasourceUid"] == "jaeger"
    assert linked["jaeger"]["tracesToLogsV2"]["datasourceUid"] == "loki"
    assert linked["prometheus"]["exemplarTraceIdDestinations"][0]["datasourceUid"] == "jaeger"
    # The logs dashboard reads only Loki and Jaeger: it is gone; the stack's health has no Loki row.
    assert any(path.endswith("/medianest-logs-traces.json") for path in full.files)
    assert not any(path.endswith("/medianest-logs-traces.json") for path in bundle.files)
    health = json.loads(next(v for k, v in bundle.files.items() if k.endswith("stack-health.json")))
    titles = {panel["title"] for panel in health["panels"]}
    assert {"Prometheus", "Alertmanager", "Grafana"} <= titles and titles.isdisjoint({"Loki", "Jaeger"})
    assert not [p.render() for p in bundle.problems()]


def test_without_grafana_no_dashboards_are_shipped(dev_config: StackConfig) -> None:
    bundle = build(_without(dev_config, "grafana", "loki", "jaeger", "alloy"))
    assert not any(path.startswith("grafana/") for path in bundle.files)
    assert not bundle.problems()


def test_the_alerting_path_cannot_be_disabled(dev_config: StackConfig) -> None:
    with pytest.raises(ValidationError, match="prometheus and alertmanager cannot be disabled"):
        _without(dev_config, "alertmanager")


def test_disabled_exporters_take_their_alerts_rows_and_probe_job_along(dev_config: StackConfig) -> None:
    exporters = ("nodeExporter", "postgresExporter", "redisExporter", "blackboxExporter")
    bundle = build(_without(dev_config, *exporters))
    jobs = {j["job_name"] for j in yaml.safe_load(bundle.files["prometheus/prometheus.yml"])["scrape_configs"]}
    assert jobs.isdisjoint({dev_config.jobs.node, dev_config.jobs.postgres, dev_config.jobs.redis,
                            dev_config.jobs.blackbox})
    alerts = {rule.alert for _, rule in bundle.alerts}
    assert alerts.isdisjoint({"HostHighCpu", "PostgresDown", "RedisDown", "BlackboxProbeFailed"})
    assert "TargetDown" in alerts
    infrastructure = next(v for k, v in bundle.files.items() if k.endswith("infrastructure.json"))
    titles = {panel["title"] for panel in json.loads(infrastructure)["panels"]}
    assert titles.isdisjoint({"Hosts", "PostgreSQL", "Redis", "Blackbox probes"})
    assert bundle.coverage().ratio == 1.0


def test_an_alert_a_deployed_component_defines_is_never_absent(dev_config: StackConfig,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # A component made for no target (so never deployed) that defines PostgresDown too.
    twin = dataclasses.replace(postgres_exporter.COMPONENT, name="postgres-twin", settings_key="postgres_twin",
                               targets=())
    components = registry.components()
    monkeypatch.setattr(registry, "components", lambda: (*components, twin))
    assert "PostgresDown" not in absent_alerts(dev_config)
    assert "PostgresDown" in absent_alerts(_without(dev_config, "postgresExporter"))
