"""Loki: loki.yaml from typed models (retention by the compactor, tsdb v13, structured metadata),
and a service spec whose ports, health check and volume agree with that file."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from service_helpers import rendered, with_settings

from stack.config import StackConfig, memory_bytes
from stack.services import loki


def test_rendered_file_loads_back_into_the_model(dev_config: StackConfig) -> None:
    spec = loki.service(dev_config)
    assert loki.LokiConfig.model_validate(rendered(spec)) == loki.loki_config(dev_config)


@pytest.mark.parametrize("retention", ["168h", "744h", "30d"])
def test_retention_is_the_configured_one_and_the_compactor_applies_it(dev_config: StackConfig, retention: str) -> None:
    document = rendered(loki.service(with_settings(dev_config, "loki", retention_period=retention)))
    assert document["limits_config"]["retention_period"] == retention
    compactor = document["compactor"]
    assert compactor["retention_enabled"] is True
    # Loki refuses to start with retention enabled and no delete request store.
    assert compactor["delete_request_store"] == "filesystem"


def test_retention_below_loki_minimum_is_refused(dev_config: StackConfig) -> None:
    with pytest.raises(ValidationError, match=r"retention_period\n.*must be at least 24h"):
        with_settings(dev_config, "loki", retention_period="12h")


def test_schema_is_tsdb_v13_with_daily_index(dev_config: StackConfig) -> None:
    (period,) = rendered(loki.service(dev_config))["schema_config"]["configs"]
    assert (period["store"], period["schema"], period["object_store"]) == ("tsdb", "v13", "filesystem")
    assert period["index"] == {"prefix": "index_", "period": "24h"}
    # A string, not a YAML date: Loki reads `from` as YYYY-MM-DD text.
    assert period["from"] == loki.SCHEMA_FROM


def test_structured_metadata_is_allowed_and_labels_bounded(dev_config: StackConfig) -> None:
    limits = rendered(loki.service(dev_config))["limits_config"]
    assert limits["allow_structured_metadata"] is True
    assert 0 < limits["max_label_names_per_series"] <= 30


def test_server_listens_where_the_spec_says(dev_config: StackConfig) -> None:
    spec = loki.service(dev_config)
    server = rendered(spec)["server"]
    assert server["http_listen_port"] == spec.port("http").container_port
    assert server["grpc_listen_port"] == spec.port("grpc").container_port
    assert spec.health is not None and spec.metrics is not None
    assert spec.health.port == spec.metrics.port == server["http_listen_port"]
    # `loki -health` asks http://localhost:3100/ready: it only works while the server is on 3100.
    assert spec.health.command == ("/usr/bin/loki", "-health")
    assert (spec.health.port, spec.health.path) == (3100, "/ready")


def test_every_directory_loki_writes_is_on_the_data_volume(dev_config: StackConfig) -> None:
    spec = loki.service(dev_config)
    (volume,) = spec.volumes
    assert (volume.name, volume.path) == ("loki-data", "/loki")
    assert volume.size == dev_config.services.loki.volume_size
    document = rendered(spec)
    directories = [
        document["common"]["path_prefix"],
        *document["common"]["storage"]["filesystem"].values(),
        document["compactor"]["working_directory"],
    ]
    assert all(d == volume.path or d.startswith(volume.path + "/") for d in directories), directories
    assert spec.read_only_root


def test_service_spec(dev_config: StackConfig) -> None:
    config = with_settings(dev_config, "loki", publish=3100, cpus=1.5)
    spec = loki.service(config)
    (file,) = spec.files
    assert (file.source, file.path) == ("loki/loki.yaml", "/etc/loki/loki.yaml")
    assert spec.args == (f"-config.file={file.path}",)
    assert spec.user == "10001:10001"
    assert spec.image.reference == f"grafana/loki:{config.services.loki.image.tag}"
    assert spec.port("http").host_port == 3100
    assert spec.port("grpc").host_port is None
    assert spec.resources.memory_limit_bytes == memory_bytes(config.services.loki.memory)
    assert spec.resources.cpu_limit == 1.5
    assert spec.metrics is not None and spec.metrics.job == config.jobs.loki


def test_models_reject_unknown_fields(dev_config: StackConfig) -> None:
    document = rendered(loki.service(dev_config))
    document["compactor"]["retention_enable"] = True  # the typo that would silently keep logs forever
    with pytest.raises(ValidationError, match="retention_enable"):
        loki.LokiConfig.model_validate(document)


def test_output_is_deterministic(dev_config: StackConfig) -> None:
    assert loki.service(dev_config) == loki.service(dev_config)
    assert loki.render(dev_config) == loki.render(dev_config)


# --- object storage (prod's option) -------------------------------------------------------------

BUCKET = {"endpoint": "s3.eu-west-1.amazonaws.com", "bucket": "medianest-logs", "region": "eu-west-1",
          "forcePathStyle": False}


def test_a_bucket_holds_chunks_index_and_delete_requests(dev_config: StackConfig) -> None:
    config = with_settings(dev_config, "loki", object_storage=loki.LokiObjectStorage.model_validate(BUCKET))
    spec = loki.service(config)
    document = rendered(spec)
    assert document["common"]["storage"] == {"s3": {
        "endpoint": "s3.eu-west-1.amazonaws.com", "bucketnames": "medianest-logs", "region": "eu-west-1",
        "insecure": False, "s3forcepathstyle": False}}
    (period,) = document["schema_config"]["configs"]
    assert period["object_store"] == "s3" and document["compactor"]["delete_request_store"] == "s3"
    assert loki.LokiConfig.model_validate(document) == loki.loki_config(config)
    # Credentials: a mounted file, never in loki.yaml; the SDK reads it through its environment.
    [secret] = spec.secrets
    assert (secret.name, secret.path) == ("s3-credentials", "/etc/loki/secrets/s3-credentials")
    assert spec.env["AWS_SHARED_CREDENTIALS_FILE"] == secret.path
    assert "secret" not in str(document["common"]["storage"]).lower()
    # Out to the bucket on HTTPS only.
    [flow] = spec.flows
    assert flow.ports == ((443, "TCP"),)


def test_without_a_credentials_file_the_pod_identity_is_used(dev_config: StackConfig) -> None:
    bucket = loki.LokiObjectStorage.model_validate({**BUCKET, "credentialsFile": None, "endpoint": "minio.lan:9000",
                                                     "insecure": True})
    spec = loki.service(with_settings(dev_config, "loki", object_storage=bucket))
    assert spec.secrets == () and "AWS_SHARED_CREDENTIALS_FILE" not in spec.env
    assert spec.flows[0].ports == ((9000, "TCP"),)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("bucket", "Medianest_Logs", "bucket\n  String should match pattern"),
    ("endpoint", "https://s3.amazonaws.com", "endpoint\n  String should match pattern"),
    ("credentialsFile", "/run/secrets/aws", "credentialsFile\n  Value error, must live under /etc/loki/secrets/"),
])
def test_a_bad_bucket_is_refused_naming_the_field(field: str, value: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        loki.LokiObjectStorage.model_validate({**BUCKET, field: value})
