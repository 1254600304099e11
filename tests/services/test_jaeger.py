"""Jaeger v2: config.yaml from typed models (memory, Badger, Elasticsearch or OpenSearch storage,
OTLP in, metrics and health out) and a service spec whose ports, volume, secret and health check
agree with that file."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from service_helpers import rendered, with_settings

from stack.config import PROJECT, ConfigError, StackConfig, from_mapping, memory_bytes
from stack.services import jaeger

CLUSTER = ("https://es-1.internal:9200", "https://es-2.internal:9200")
STORAGES = ["memory", "badger", "elasticsearch", "opensearch"]


def badger(config: StackConfig, ttl: str = "72h") -> StackConfig:
    return with_settings(config, "jaeger", storage="badger", badger_ttl=ttl)


def external(config: StackConfig, storage: str = "elasticsearch", **settings: object) -> StackConfig:
    return with_settings(config, "jaeger", storage=storage, server_urls=CLUSTER, **settings)


def storage_config(storage: str, config: StackConfig) -> StackConfig:
    return external(config, storage) if storage in ("elasticsearch", "opensearch") else (
        with_settings(config, "jaeger", storage=storage))


def load(jaeger_settings: dict[str, object]) -> StackConfig:
    """A stack file's config with `services.jaeger` set, as the CLI reads it."""
    return from_mapping({f"{PROJECT}:environment": "dev", f"{PROJECT}:runbookBaseUrl": "https://r",
                         f"{PROJECT}:services": {"jaeger": jaeger_settings}}, "Pulumi.dev.yaml")


def port_of(endpoint: str) -> int:
    host, _, port = endpoint.rpartition(":")
    assert host == "0.0.0.0", f"{endpoint} is not reachable from outside the container"
    return int(port)


@pytest.mark.parametrize("storage", STORAGES)
def test_rendered_file_loads_back_into_the_model(dev_config: StackConfig, storage: str) -> None:
    config = storage_config(storage, dev_config)
    assert jaeger.JaegerConfig.model_validate(rendered(jaeger.service(config))) == jaeger.jaeger_config(config)


def test_memory_storage_keeps_the_configured_traces_and_needs_no_volume(dev_config: StackConfig) -> None:
    config = with_settings(dev_config, "jaeger", storage="memory", max_traces=1234)
    spec = jaeger.service(config)
    assert spec.volumes == ()
    backends = rendered(spec)["extensions"]["jaeger_storage"]["backends"]
    assert backends == {jaeger.STORE: {"memory": {"max_traces": 1234}}}


@pytest.mark.parametrize(("ttl", "spans"), [("72h", "72h"), ("3d", "72h"), ("90m", "90m"), ("1w", "168h")])
def test_badger_storage_lives_on_the_data_volume(dev_config: StackConfig, ttl: str, spans: str) -> None:
    config = badger(dev_config, ttl)
    spec = jaeger.service(config)
    (volume,) = spec.volumes
    assert (volume.name, volume.path, volume.size) == ("jaeger-data", "/tmp", config.services.jaeger.volume_size)
    (backend,) = rendered(spec)["extensions"]["jaeger_storage"]["backends"].values()
    store = backend["badger"]
    assert set(backend) == {"badger"}
    assert store["ephemeral"] is False
    directories = store["directories"]
    assert directories["keys"] != directories["values"]
    assert all(d.startswith(f"{volume.path}/jaeger/") for d in directories.values()), directories
    # Badger's TTL is a Go duration: `3d` would not parse.
    assert store["ttl"] == {"spans": spans}


@pytest.mark.parametrize("storage", ["elasticsearch", "opensearch"])
def test_external_storage_is_the_cluster_and_nothing_local(dev_config: StackConfig, storage: str) -> None:
    spec = jaeger.service(external(dev_config, storage, index_prefix="medianest-prod"))
    backends = rendered(spec)["extensions"]["jaeger_storage"]["backends"]
    # jaeger_storage's TraceBackend: `elasticsearch` or `opensearch`, one Configuration struct.
    assert backends == {jaeger.STORE: {storage: {
        "server_urls": list(CLUSTER), "indices": {"index_prefix": "medianest-prod"}}}}
    assert spec.volumes == ()
    # No login configured: no secret to mount.
    assert spec.secrets == ()


def test_elasticsearch_login_reads_the_password_from_a_secret_file(dev_config: StackConfig) -> None:
    spec = jaeger.service(external(dev_config, username="jaeger"))
    (secret,) = spec.secrets
    assert (secret.name, secret.path) == ("jaeger-storage-password", "/etc/jaeger/secrets/storage-password")
    assert secret.path.startswith(spec.config_dir + "/")
    assert not secret.generated  # the cluster's password is set by whoever runs the cluster
    cluster = rendered(spec)["extensions"]["jaeger_storage"]["backends"][jaeger.STORE]["elasticsearch"]
    # auth.basic: the password only ever from password_file.
    assert cluster["auth"] == {"basic": {"username": "jaeger", "password_file": secret.path}}
    assert cluster["indices"] == {"index_prefix": "medianest"}
    assert spec.volumes == ()


def test_the_default_index_prefix_is_medianest(dev_config: StackConfig) -> None:
    assert dev_config.services.jaeger.index_prefix == "medianest"


def test_memory_and_badger_mount_no_secret(dev_config: StackConfig) -> None:
    for config in (dev_config, badger(dev_config)):
        assert jaeger.service(config).secrets == ()


@pytest.mark.parametrize(("settings", "message"), [
    ({"storage": "elasticsearch"},
     "services.jaeger: Value error, storage elasticsearch needs serverUrls (the cluster's http(s) URLs)"),
    ({"storage": "opensearch", "serverUrls": []}, "services.jaeger: Value error, storage opensearch needs serverUrls"),
    ({"storage": "memory", "serverUrls": ["https://es:9200"]},
     "services.jaeger: Value error, serverUrls and username are for storage elasticsearch or opensearch, not memory"),
    ({"storage": "badger", "username": "jaeger"},
     "services.jaeger: Value error, serverUrls and username are for storage elasticsearch or opensearch, not badger"),
    ({"storage": "elasticsearch", "serverUrls": ["es:9200"]},
     "services.jaeger.serverUrls.0: Value error, must be an http(s) URL"),
    ({"storage": "elasticsearch", "serverUrls": ["https://jaeger:hunter2@es:9200"]},
     "services.jaeger.serverUrls.0: Value error, must not carry credentials (user:password@): set username, and "
     "the password as the secret jaeger-storage-password"),
    ({"storage": "elasticsearch", "serverUrls": ["https://es:9200"], "indexPrefix": "MediaNest"},
     "services.jaeger.indexPrefix: String should match pattern"),
    ({"storage": "cassandra"},
     "services.jaeger.storage: Input should be 'memory', 'badger', 'elasticsearch' or 'opensearch'"),
])
def test_bad_storage_settings_name_the_key(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load(settings)
    assert f"{PROJECT}:{message}" in str(error.value)
    assert "hunter2" not in str(error.value)


def test_an_external_cluster_in_the_stack_file() -> None:
    settings = load({"storage": "opensearch", "serverUrls": list(CLUSTER), "username": "jaeger"}).services.jaeger
    assert (settings.storage, settings.server_urls, settings.username) == ("opensearch", CLUSTER, "jaeger")


def test_pipeline_stores_where_the_ui_reads(dev_config: StackConfig) -> None:
    for config in (dev_config, badger(dev_config), external(dev_config)):
        document = rendered(jaeger.service(config))
        backends = document["extensions"]["jaeger_storage"]["backends"]
        trace_storage = document["exporters"]["jaeger_storage_exporter"]["trace_storage"]
        assert trace_storage == document["extensions"]["jaeger_query"]["storage"]["traces"]
        assert trace_storage in backends
        assert document["service"]["pipelines"]["traces"] == {
            "receivers": ["otlp"], "processors": ["batch"], "exporters": ["jaeger_storage_exporter"]}
        assert set(document["service"]["extensions"]) == set(document["extensions"])


def test_endpoints_match_the_spec_ports(dev_config: StackConfig) -> None:
    spec = jaeger.service(dev_config)
    document = rendered(spec)
    otlp = document["receivers"]["otlp"]["protocols"]
    assert port_of(otlp["grpc"]["endpoint"]) == spec.port("otlp-grpc").container_port == 4317
    assert port_of(otlp["http"]["endpoint"]) == spec.port("otlp-http").container_port == 4318
    assert port_of(document["extensions"]["jaeger_query"]["http"]["endpoint"]) == spec.port("ui").container_port


def test_telemetry_exposes_the_catalogued_metrics_where_prometheus_scrapes(dev_config: StackConfig) -> None:
    spec = jaeger.service(dev_config)
    metrics = rendered(spec)["service"]["telemetry"]["metrics"]
    (reader,) = metrics["readers"]
    prometheus = reader["pull"]["exporter"]["prometheus"]
    assert spec.metrics is not None
    assert prometheus == {"host": "0.0.0.0", "port": spec.metrics.port}
    assert spec.port("metrics").container_port == spec.metrics.port
    assert spec.metrics.job == dev_config.jobs.jaeger
    # otelcol_receiver_* and otelcol_exporter_* are `basic`-level metrics: any level above none has them.
    assert metrics["level"] in ("basic", "normal", "detailed")


def test_health_check_probes_healthcheckv2(dev_config: StackConfig) -> None:
    spec = jaeger.service(dev_config)
    health = rendered(spec)["extensions"]["healthcheckv2"]
    assert health["use_v2"] is True
    assert spec.health is not None
    assert port_of(health["http"]["endpoint"]) == spec.health.port == spec.port("health").container_port
    assert health["http"]["status"] == {"enabled": True, "path": spec.health.path}
    assert spec.health.command[-1] == f"http://127.0.0.1:{spec.health.port}{spec.health.path}"


def test_service_spec(dev_config: StackConfig) -> None:
    config = with_settings(dev_config, "jaeger", publish=16686)
    spec = jaeger.service(config)
    (file,) = spec.files
    assert (file.source, file.path) == ("jaeger/config.yaml", "/etc/jaeger/config.yaml")
    assert spec.args == (f"--config={file.path}",)
    assert spec.user == "10001:10001"
    assert spec.port("ui").host_port == 16686
    assert all(p.host_port is None for p in spec.ports if p.name != "ui")
    assert spec.resources.memory_limit_bytes == memory_bytes(config.services.jaeger.memory)


def test_models_reject_unknown_fields(dev_config: StackConfig) -> None:
    document = rendered(jaeger.service(dev_config))
    backend = document["extensions"]["jaeger_storage"]["backends"][jaeger.STORE]
    backend["memory"]["max_trace"] = backend["memory"].pop("max_traces")
    with pytest.raises(ValidationError, match="max_trace"):
        jaeger.JaegerConfig.model_validate(document)


def test_models_reject_dangling_references(dev_config: StackConfig) -> None:
    document = rendered(jaeger.service(dev_config))
    document["service"]["pipelines"]["traces"]["exporters"] = ["otlp"]
    with pytest.raises(ValidationError, match="not configured: otlp"):
        jaeger.JaegerConfig.model_validate(document)
    document = rendered(jaeger.service(dev_config))
    document["exporters"]["jaeger_storage_exporter"]["trace_storage"] = "other"
    with pytest.raises(ValidationError, match="other is not a jaeger_storage backend"):
        jaeger.JaegerConfig.model_validate(document)
    with pytest.raises(ValidationError, match="exactly one of memory, badger, elasticsearch, opensearch"):
        jaeger.TraceBackend.model_validate({})
    with pytest.raises(ValidationError, match="exactly one of"):
        jaeger.TraceBackend.model_validate({"memory": {"max_traces": 1}, "elasticsearch": {
            "server_urls": ["http://es:9200"], "indices": {"index_prefix": "x"}}})


def test_cluster_models_use_jaegers_field_names(dev_config: StackConfig) -> None:
    document = rendered(jaeger.service(external(dev_config, username="jaeger")))
    cluster = document["extensions"]["jaeger_storage"]["backends"][jaeger.STORE]["elasticsearch"]
    # `servers` is the Go field's name, `server_urls` its config key; `password` inline is never written.
    cluster["servers"] = cluster.pop("server_urls")
    with pytest.raises(ValidationError, match="servers"):
        jaeger.JaegerConfig.model_validate(document)
    cluster["server_urls"] = cluster.pop("servers")
    cluster["auth"]["basic"]["password"] = "x"
    with pytest.raises(ValidationError, match="password"):
        jaeger.JaegerConfig.model_validate(document)
    del cluster["auth"]["basic"]["password"]
    cluster["server_urls"] = ["es:9200"]
    with pytest.raises(ValidationError, match="server_urls must be http"):
        jaeger.JaegerConfig.model_validate(document)


def test_output_is_deterministic(dev_config: StackConfig) -> None:
    for config in (dev_config, badger(dev_config), external(dev_config, username="jaeger")):
        assert jaeger.service(config) == jaeger.service(config)
        assert jaeger.render(config) == jaeger.render(config)
