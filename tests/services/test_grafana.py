"""Grafana: SQLite on its data volume (one replica) or an external PostgreSQL / MySQL shared by
several replicas, its password a mounted secret file, no volume; the environment.yaml the bundle
ships is the container's environment."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from service_helpers import with_settings

from stack.bundle import build
from stack.config import PROJECT, ConfigError, StackConfig, from_mapping
from stack.services import grafana

POSTGRES = {"type": "postgres", "host": "grafana-db.internal:5432", "name": "grafana", "user": "grafana"}
DATABASE_ENV = ("GF_DATABASE_TYPE", "GF_DATABASE_HOST", "GF_DATABASE_NAME", "GF_DATABASE_USER",
                "GF_DATABASE_SSL_MODE", "GF_DATABASE_PASSWORD__FILE")


def with_database(config: StackConfig, replicas: int = 2, **database: str) -> StackConfig:
    return with_settings(config, "grafana", replicas=replicas, database={**POSTGRES, **database})


def load(grafana_settings: dict[str, Any], target: str = "docker") -> StackConfig:
    """A stack file's config with `services.grafana` set, as the CLI reads it."""
    # Kubernetes wants to know where its API server is.
    cluster = {f"{PROJECT}:kubernetes": {"apiServerCidrs": ["10.96.0.1/32"]}} if target == "kubernetes" else {}
    return from_mapping({f"{PROJECT}:environment": "dev", f"{PROJECT}:runbookBaseUrl": "https://r",
                         f"{PROJECT}:target": target,
                         f"{PROJECT}:services": {"grafana": grafana_settings}, **cluster}, "Pulumi.dev.yaml")


def test_sqlite_on_the_data_volume_by_default(dev_config: StackConfig) -> None:
    spec = grafana.service(dev_config, {})
    assert dev_config.services.grafana.database is None
    (volume,) = spec.volumes
    assert (volume.name, volume.path) == ("grafana-data", grafana.DATA_DIR)
    assert spec.replicas == 1
    assert [s.name for s in spec.secrets] == [grafana.ADMIN_PASSWORD]
    assert not any(key.startswith("GF_DATABASE_") for key in spec.env)
    assert "GF_PATHS_DATA" not in spec.env  # the image's /var/lib/grafana, the volume


def test_an_external_database_is_shared_by_the_replicas(dev_config: StackConfig) -> None:
    config = with_database(dev_config, replicas=3)
    spec = grafana.service(config, {})
    assert spec.replicas == 3
    # Users, sessions and dashboards are in the database: no claim that one replica would hold.
    assert spec.volumes == ()
    admin, database = spec.secrets
    assert admin.name == grafana.ADMIN_PASSWORD
    assert (database.name, database.path) == ("grafana-database-password", "/etc/grafana/secrets/database-password")
    assert not database.generated  # the database's password is set by whoever runs the database
    assert database.path.startswith(spec.config_dir + "/")
    assert {key: spec.env[key] for key in DATABASE_ENV} == {
        "GF_DATABASE_TYPE": "postgres",
        "GF_DATABASE_HOST": "grafana-db.internal:5432",
        "GF_DATABASE_NAME": "grafana",
        "GF_DATABASE_USER": "grafana",
        "GF_DATABASE_SSL_MODE": "require",
        "GF_DATABASE_PASSWORD__FILE": database.path,
    }
    # Never the password itself: the image's entrypoint reads it from the file.
    assert "GF_DATABASE_PASSWORD" not in spec.env
    # Scratch data goes where the read-only root filesystem lets Grafana write.
    assert spec.env["GF_PATHS_DATA"] == "/tmp"
    assert spec.read_only_root


def test_one_replica_may_use_an_external_database(dev_config: StackConfig) -> None:
    spec = grafana.service(with_database(dev_config, replicas=1, ssl_mode="verify-full"), {})
    assert (spec.replicas, spec.volumes) == (1, ())
    assert spec.env["GF_DATABASE_SSL_MODE"] == "verify-full"


def test_the_shipped_environment_is_the_containers(dev_config: StackConfig) -> None:
    for config in (dev_config, with_database(dev_config)):
        bundle = build(config)
        (spec,) = [s for s in bundle.services if s.name == grafana.NAME]
        assert yaml.safe_load(bundle.files["grafana/environment.yaml"]) == spec.env


def test_replicas_without_a_database_are_refused() -> None:
    with pytest.raises(ConfigError) as error:
        load({"replicas": 2})
    assert (f"{PROJECT}:services.grafana: Value error, replicas 2 needs database (an external postgres or mysql)"
            in str(error.value))
    assert "cannot be shared between replicas" in str(error.value)


@pytest.mark.parametrize(("replicas", "message"), [(0, "greater than or equal to 1"), (6, "less than or equal to 5")])
def test_replicas_are_bounded(replicas: int, message: str) -> None:
    with pytest.raises(ConfigError, match=f"services.grafana.replicas: Input should be {message}"):
        load({"replicas": replicas, "database": POSTGRES})


def test_a_database_in_the_stack_file(dev_config: StackConfig) -> None:
    config = load({"replicas": 2, "database": {**POSTGRES, "sslMode": "verify-ca"}}, target="kubernetes")
    database = config.services.grafana.database
    assert database is not None
    assert (config.services.grafana.replicas, database.ssl_mode) == (2, "verify-ca")


def test_replicas_need_the_kubernetes_target() -> None:
    with pytest.raises(ConfigError) as error:
        load({"replicas": 2, "database": POSTGRES})
    assert str(error.value) == ("Pulumi.dev.yaml: medianest-observability:services.grafana."
                                "replicas: above 1 needs target kubernetes (one container per component on Docker)")


@pytest.mark.parametrize(("database", "message"), [
    ({**POSTGRES, "host": "grafana-db.internal"}, "database.host: String should match pattern"),
    ({**POSTGRES, "type": "sqlite3"}, "database.type: Input should be 'postgres' or 'mysql'"),
    ({**POSTGRES, "sslMode": "true"}, "database: Value error, sslMode 'true' is not one of postgres' modes: "
                                      "disable, require, verify-ca, verify-full"),
    # Grafana's TLS to MySQL reads a CA file (ca_cert_path) the stack does not mount.
    ({**POSTGRES, "type": "mysql", "host": "db:3306"}, "database: Value error, sslMode 'require' does not work "
                                                        "for mysql here"),
    ({**POSTGRES, "type": "mysql", "host": "db:3306", "sslMode": "skip-verify"},
     "database: Value error, sslMode 'skip-verify' does not work for mysql here: Grafana's TLS to MySQL "
     "(true, skip-verify) needs a CA certificate file"),
    ({**POSTGRES, "password": "hunter2"}, "database.password: unknown key; valid keys here: host, name, sslMode, "
                                          "type, user"),
])
def test_bad_databases_name_the_key(database: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load({"replicas": 2, "database": database})
    assert f"{PROJECT}:services.grafana.{message}" in str(error.value)
    assert "hunter2" not in str(error.value)


def test_mysql_without_tls_is_a_choice_made_in_config(dev_config: StackConfig) -> None:
    config = with_database(dev_config, type="mysql", host="grafana-db.internal:3306", ssl_mode="false")
    env = grafana.service(config, {}).env
    assert (env["GF_DATABASE_TYPE"], env["GF_DATABASE_SSL_MODE"]) == ("mysql", "false")


def test_the_model_refuses_replicas_without_a_database(dev_config: StackConfig) -> None:
    with pytest.raises(ValidationError, match="replicas 2 needs database"):
        with_settings(dev_config, "grafana", replicas=2)


def test_output_is_deterministic(dev_config: StackConfig) -> None:
    for config in (dev_config, with_database(dev_config)):
        assert grafana.service(config, {}) == grafana.service(config, {})
