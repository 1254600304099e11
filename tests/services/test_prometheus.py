"""prometheus.yml: every job the alerts select on is scraped, probes go through the blackbox
exporter, alerts reach Alertmanager without the replica label, the rule files are the bundle's,
the retention is the config's (and the shipped Prometheus keeps it)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from stack import services as registry
from stack.bundle import Bundle, build
from stack.config import StackConfig
from stack.sandbox import localize
from stack.sandbox.processes import LOOPBACK, Supervisor, binary, free_port
from stack.services import alertmanager, prometheus
from stack.services.spec import ServiceSpec

# Straight to loopback, whatever HTTP(S)_PROXY says.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _config(config: StackConfig) -> dict:
    bundle = build(config)
    spec = next(s for s in bundle.services if s.name == prometheus.NAME)
    file = next(f for f in spec.files if f.source == prometheus.CONFIG_FILE)
    assert bundle.files[prometheus.CONFIG_FILE] == file.content
    return yaml.safe_load(file.content)


def test_every_configured_job_is_scraped_exactly_once(dev_config: StackConfig) -> None:
    jobs = [job["job_name"] for job in _config(dev_config)["scrape_configs"]]
    assert len(jobs) == len(set(jobs))
    deployed = registry.deployed(dev_config)
    assert set(jobs) == {dev_config.jobs.backend} | {getattr(dev_config.jobs, job.key) for component in deployed
                                                     for job in (component.job, *component.other_jobs) if job}


def test_renamed_jobs_follow_the_config(dev_config: StackConfig) -> None:
    jobs = dev_config.jobs.model_copy(update={"backend": "api", "node": "hosts"})
    renamed = dev_config.model_copy(update={"jobs": jobs})
    jobs = {job["job_name"]: job for job in _config(renamed)["scrape_configs"]}
    assert jobs["api"]["static_configs"] == [{"targets": ["host.docker.internal:3001"]}]
    assert jobs["hosts"]["static_configs"] == [{"targets": ["node-exporter:9100"]}]


def test_components_are_scraped_where_their_specs_listen(dev_config: StackConfig) -> None:
    jobs = {job["job_name"]: job for job in _config(dev_config)["scrape_configs"]}
    for spec in build(dev_config).services:
        if spec.metrics and spec.name not in (prometheus.NAME, "blackbox"):
            assert jobs[spec.metrics.job]["static_configs"] == [{"targets": [f"{spec.name}:{spec.metrics.port}"]}]
            assert any(p.container_port == spec.metrics.port for p in spec.ports), spec.name


def test_probes_go_through_the_blackbox_exporter_with_the_url_as_instance(dev_config: StackConfig) -> None:
    urls = ("https://medianest.example.com/api/health", "http://host.docker.internal:3001/api/health")
    services = dev_config.services.model_copy(update={
        "blackbox_exporter": dev_config.services.blackbox_exporter.model_copy(update={"targets": urls})})
    job = next(j for j in _config(dev_config.model_copy(update={"services": services}))["scrape_configs"]
               if j["job_name"] == dev_config.jobs.blackbox)
    assert job["metrics_path"] == "/probe"
    assert job["static_configs"] == [
        {"targets": [urls[1]], "labels": {"module": "http_2xx"}},
        {"targets": [urls[0]], "labels": {"module": "http_2xx_tls"}},
    ]
    relabel = job["relabel_configs"]
    assert {"source_labels": ["__param_target"], "target_label": "instance"} in relabel
    assert {"target_label": "__address__", "replacement": "blackbox:9115"} in relabel
    assert relabel[-1] == {"action": "labeldrop", "regex": "module"}


def test_alerts_reach_alertmanager_without_the_replica_label(dev_config: StackConfig) -> None:
    config = _config(dev_config)
    assert config["global"]["external_labels"] == {"environment": "dev", "replica": "prometheus-0"}
    assert config["alerting"]["alert_relabel_configs"] == [{"action": "labeldrop", "regex": "replica"}]
    (manager,) = config["alerting"]["alertmanagers"]
    assert manager["static_configs"] == [{"targets": [f"{alertmanager.NAME}:{alertmanager.PORT}"]}]


def test_rule_files_are_the_bundles_relative_to_the_config(dev_config: StackConfig) -> None:
    bundle = build(dev_config)
    assert _config(dev_config)["rule_files"] == [p.removeprefix("prometheus/") for p in bundle.rule_paths]
    spec = next(s for s in bundle.services if s.name == prometheus.NAME)
    shipped = {f.path for f in spec.files}
    assert {f"/etc/prometheus/{p.removeprefix('prometheus/')}" for p in bundle.rule_paths} <= shipped
    assert not any("/tests/" in path for path in shipped), "promtool tests are not shipped"


def _with_prometheus(config: StackConfig, **settings: str) -> StackConfig:
    changed = config.services.prometheus.model_copy(update=settings)
    return config.model_copy(update={"services": config.services.model_copy(update={"prometheus": changed})})


def _spec(config: StackConfig) -> ServiceSpec:
    return next(s for s in build(config).services if s.name == prometheus.NAME)


def test_intervals_and_retention_come_from_config(dev_config: StackConfig) -> None:
    config = _with_prometheus(dev_config, scrape_interval="15s", retention_size="50GB")
    assert _config(config)["global"]["scrape_interval"] == "15s"
    assert _config(config)["global"]["evaluation_interval"] == "1m"
    # In prometheus.yml: 3.16 deprecates the --storage.tsdb.retention.* flags.
    assert _config(config)["storage"] == {"tsdb": {"retention": {"time": "30d", "size": "50GB"}}}
    spec = _spec(config)
    assert not any(a.startswith("--storage.tsdb.retention") for a in spec.args)
    assert not any("lifecycle" in a or "admin-api" in a for a in spec.args)


def test_the_shipped_prometheus_keeps_the_retention_its_config_file_says(
        dev_config: StackConfig, tmp_path: Path) -> None:
    """The judge at the image's version, run with the spec's own arguments (only addresses and
    paths mapped) and the rendered prometheus.yml reduced to scraping itself: its runtime info
    and its TSDB's limits are the file's. Neither Prometheus' default (15d, no size limit) nor
    the stack's (30d, 10GB): a retention block it ignored, or misread, fails this."""
    config = _with_prometheus(dev_config, retention_time="10d", retention_size="3GB")
    spec = _spec(config)
    port = free_port()
    url = f"http://{LOOPBACK}:{port}"
    with Supervisor(tmp_path) as supervisor:
        where = localize.placement(spec, {prometheus.PORT: port}, supervisor.directory("config"),
                                   supervisor.directory("data"))
        local = localize.localize(spec, where, {})
        path = localize.local_path(f"{prometheus.CONFIG_DIR}/prometheus.yml", where.paths)
        shipped = yaml.safe_load(local.files[path])
        itself = [job for job in shipped["scrape_configs"] if job["job_name"] == config.jobs.prometheus]
        assert itself[0]["static_configs"] == [{"targets": [f"{LOOPBACK}:{port}"]}]
        Path(path).write_text(yaml.safe_dump(
            {"global": shipped["global"], "scrape_configs": itself, "storage": shipped["storage"]}))
        supervisor.start(prometheus.NAME, [binary("prometheus"), *local.args], ready_url=f"{url}/-/ready")
        with HTTP.open(f"{url}/api/v1/status/runtimeinfo", timeout=10) as response:
            info = json.load(response)["data"]
        with HTTP.open(f"{url}/metrics", timeout=10) as response:
            exposed = response.read().decode()
    assert info["storageRetention"] == "10d or 3GiB"
    # What the TSDB itself enforces; sizes are powers of 2.
    limits = {s.name: s.value for family in text_string_to_metric_families(exposed) for s in family.samples
              if s.name.startswith("prometheus_tsdb_retention_limit_")}
    assert limits == {"prometheus_tsdb_retention_limit_seconds": 10 * 86400,
                      "prometheus_tsdb_retention_limit_bytes": 3 * 1024**3,
                      "prometheus_tsdb_retention_limit_percentage": 0}


def test_configured_addresses_replace_the_network_names(dev_config: StackConfig) -> None:
    """The sandbox runs each component on a loopback port; an Alertmanager cluster lists each peer."""
    peers = ("127.0.0.1:19093", "127.0.0.1:29093", "127.0.0.1:39093")
    config = StackConfig.model_validate({
        **dev_config.model_dump(by_alias=True),
        "addresses": {"alertmanager": peers, "node-exporter": ["127.0.0.1:19100"], "blackbox": ["127.0.0.1:19115"],
                      "prometheus": ["127.0.0.1:19090"]},
        "services": {**dev_config.services.model_dump(by_alias=True), "prometheus": {
            **dev_config.services.prometheus.model_dump(by_alias=True), "evaluationInterval": "5s"}},
    })
    document = _config(config)
    assert document["alerting"]["alertmanagers"][0]["static_configs"] == [{"targets": list(peers)}]
    jobs = {job["job_name"]: job for job in document["scrape_configs"]}
    assert jobs["node-exporter"]["static_configs"] == [{"targets": ["127.0.0.1:19100"]}]
    assert jobs["prometheus"]["static_configs"] == [{"targets": ["127.0.0.1:19090"]}]
    assert {"target_label": "__address__", "replacement": "127.0.0.1:19115"} in jobs["blackbox"]["relabel_configs"]
    assert document["global"]["evaluation_interval"] == "5s"


def test_addresses_of_unknown_components_are_refused(dev_config: StackConfig) -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="unknown component alertmanger; valid: alertmanager, alloy, blackbox"):
        StackConfig.model_validate({**dev_config.model_dump(by_alias=True),
                                    "addresses": {"alertmanger": ["127.0.0.1:9093"]}})


def test_component_names_are_the_configs(dev_config: StackConfig) -> None:
    assert [s.name for s in build(dev_config).services] == [c.name for c in registry.deployed(dev_config)]


def test_only_a_time_compressed_stack_changes_the_resend_delay(bundle: Bundle) -> None:
    """The sandbox's `--compressed` resends alerts after 5s; the flag comes from config
    (`compression`, sandbox only), so no shipped stack carries it."""
    spec = next(s for s in bundle.services if s.name == prometheus.NAME)
    assert not any(a.startswith("--rules.alert.resend-delay") for a in spec.args)
