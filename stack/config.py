"""The stack configuration: one pydantic model, read from `Pulumi.<stack>.yaml` by the CLI
and from Pulumi config by the program. Defaults live here and nowhere else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from rules.conventions import duration_seconds

PROJECT = "medianest-observability"
ROOT = Path(__file__).resolve().parent.parent


class ConfigError(Exception):
    """Bad stack configuration; the message names the file and the key."""


def _duration(value: str) -> str:
    duration_seconds(value)
    return value


def _https(value: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise ValueError("must be an http(s) URL")
    return value


Duration = Annotated[str, AfterValidator(_duration)]
Ratio = Annotated[float, Field(gt=0, lt=1)]
Positive = Annotated[float, Field(gt=0)]


class _Section(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True,
    )


class Jobs(_Section):
    """Scrape job names. Alerts select on them, so they must agree with the scrape config."""

    backend: str = "medianest-backend"
    node: str = "node-exporter"
    postgres: str = "postgres-exporter"
    redis: str = "redis-exporter"
    blackbox: str = "blackbox"
    prometheus: str = "prometheus"
    alertmanager: str = "alertmanager"
    grafana: str = "grafana"
    loki: str = "loki"
    jaeger: str = "jaeger"
    alloy: str = "alloy"


class Thresholds(_Section):
    """Where MediaNest's and the platform's alerts fire."""

    # MediaNest backend
    error_ratio: Ratio = 0.05
    response_time_p95_seconds: Positive = 2.0
    database_query_p95_seconds: Positive = 1.0
    database_connections: Annotated[int, Field(gt=0)] = 80
    resident_memory_bytes: Annotated[int, Field(gt=0)] = 1024**3
    heap_growth_bytes_per_minute: Annotated[int, Field(gt=0)] = 1024**2
    event_loop_lag_seconds: Positive = 0.1
    queue_backlog_items: Annotated[int, Field(gt=0)] = 50
    auth_failure_ratio: Ratio = 0.25
    # Below this many attempts per second a failure ratio means little (a quiet hour).
    auth_min_attempts_per_second: Positive = 0.1
    # Platform
    host_cpu_ratio: Ratio = 0.8
    host_memory_available_ratio: Ratio = 0.1
    filesystem_fill_hours: Positive = 24
    filesystem_available_ratio: Ratio = 0.4
    certificate_expiry_days: Positive = 14
    postgres_connections_ratio: Ratio = 0.8
    redis_memory_ratio: Ratio = 0.9
    prometheus_storage_ratio: Ratio = 0.8
    # Share of alerts (Prometheus) or notifications (Alertmanager) that fail to go out.
    notification_failure_ratio: Ratio = 0.01
    # Share of Loki requests answered with a 5xx (the Loki mixin's value).
    loki_error_ratio: Ratio = 0.1
    # Share of spans Jaeger refuses or fails to store.
    span_loss_ratio: Ratio = 0.01


class StackConfig(_Section):
    environment: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    runbook_base_url: Annotated[str, AfterValidator(_https)]
    jobs: Jobs = Jobs()
    thresholds: Thresholds = Thresholds()
    # The rule evaluation interval of Prometheus; promtool tests evaluate at the same pace.
    evaluation_interval: Duration = "1m"


def stack_file(stack: str, root: Path = ROOT) -> Path:
    return root / f"Pulumi.{stack}.yaml"


def load_stack(stack: str, root: Path = ROOT) -> StackConfig:
    """The config of `Pulumi.<stack>.yaml`; ConfigError naming the file and key when bad."""
    path = stack_file(stack, root)
    if not path.exists():
        stacks = sorted(p.name.split(".")[1] for p in root.glob("Pulumi.*.yaml"))
        raise ConfigError(f"{path.name}: no such stack file (stacks: {', '.join(stacks)})")
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path.name}: not valid YAML: {error}") from error
    if not isinstance(document, dict) or not isinstance(document.get("config", {}), dict):
        raise ConfigError(f"{path.name}: expected a mapping with a `config:` mapping")
    return from_mapping(document.get("config") or {}, path.name)


def from_mapping(config: dict[str, Any], source: str) -> StackConfig:
    """Our project's keys (`medianest-observability:<key>`) of a Pulumi config mapping;
    other namespaces belong to providers and are left alone."""
    ours: dict[str, Any] = {}
    for key, value in config.items():
        namespace, _, name = str(key).partition(":")
        if namespace == PROJECT:
            ours[name] = value
    try:
        return StackConfig.model_validate(ours)
    except ValidationError as error:
        raise ConfigError(_describe(error, source)) from None


def from_pulumi() -> StackConfig:
    """The config of the running Pulumi program (values arrive as strings, objects as JSON)."""
    from pulumi.runtime import config as runtime_config

    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    decoded = {key: _decode(value) for key, value in merged.items()}
    import pulumi

    return from_mapping(decoded, f"Pulumi.{pulumi.get_stack()}.yaml")


def _decode(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _describe(error: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid configuration"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"])
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key; valid keys here: " + ", ".join(_valid_keys(item["loc"][:-1]))
        got = "" if item["type"] in ("missing", "extra_forbidden") else f" (got {item['input']!r})"
        lines.append(f"  {PROJECT}:{key}: {message}{got}")
    return "\n".join(lines)


def _valid_keys(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = StackConfig
    for part in loc:
        field = next((f for n, f in model.model_fields.items() if f.alias == part or n == part), None)
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return sorted(f.alias or n for n, f in model.model_fields.items())
