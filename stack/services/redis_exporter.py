"""redis_exporter: Redis's health (redis_up), memory and clients, from REDIS_ADDR.

Its password file (REDIS_PASSWORD_FILE) is not the bare password: the exporter parses it as a
JSON object from Redis address to password and looks up REDIS_ADDR in it (exporter/pwd_file.go,
lookupPasswordInPasswordMap). `password_file` writes that object for the password a user sets.
"""

from __future__ import annotations

import json
from functools import partial
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator

from stack.services.common import image, resources
from stack.services.component import ComponentModule, Job
from stack.services.spec import (
    ANYWHERE,
    Flow,
    MetricsEndpoint,
    Port,
    SecretFile,
    ServiceSpec,
    StackPods,
    http_health,
    tcp,
)
from stack.settings import Component, ImageRef, Memory, _image, _redis_address

if TYPE_CHECKING:
    from stack.config import StackConfig


class RedisExporterService(Component):
    # The -alpine build: the scratch one has no tool to run a health check with.
    image: ImageRef = _image("oliver006/redis_exporter", "v1.80.0-alpine")
    memory: Memory = "64Mi"
    # redis://host:port (REDIS_ADDR), never a password: that is the `redis-password` secret,
    # mounted as REDIS_PASSWORD_FILE.
    address: Annotated[str, AfterValidator(_redis_address)] = "redis://host.docker.internal:6379"
    # Whether Redis needs a password (the `redis-password` secret).
    password: bool = False


NAME = "redis-exporter"
PORT = 9121
CONFIG_DIR = "/etc/redis-exporter"
PASSWORD_NAME = "redis-password"
PASSWORD_PATH = f"{CONFIG_DIR}/secrets/redis-password"


def password_file(address: str, password: str) -> str:
    """The content of REDIS_PASSWORD_FILE: `{"<REDIS_ADDR>": "<password>"}`. The key must be the
    address exactly as configured (scheme included), or the exporter connects without a password."""
    return json.dumps({address: password})


def flows(config: StackConfig) -> tuple[Flow, ...]:
    """The Redis it queries."""
    return (Flow(StackPods(NAME), ANYWHERE, tcp(urlsplit(config.services.redis_exporter.address).port or 6379)),)


def service(config: StackConfig) -> ServiceSpec:
    settings = config.services.redis_exporter
    env = {"REDIS_ADDR": settings.address}
    password = SecretFile(PASSWORD_NAME, PASSWORD_PATH, content=partial(password_file, settings.address))
    if settings.password:
        env["REDIS_PASSWORD_FILE"] = PASSWORD_PATH
    return ServiceSpec(
        flows=flows(config),
        name=NAME,
        image=image(settings.image),
        # The image's own user (USER 59000:59000 in its Dockerfile, alpine build included).
        user="59000:59000",
        resources=resources(settings),
        args=(f"--web.listen-address=:{PORT}",),
        env=env,
        ports=(Port("http", PORT, host_port=settings.publish),),
        config_dir=CONFIG_DIR,
        secrets=(password,) if settings.password else (),
        # /health answers without connecting to Redis (/metrics would, on every check).
        health=http_health(PORT, "/health"),
        metrics=MetricsEndpoint(job=config.jobs.redis, port=PORT),
    )


COMPONENT = ComponentModule(
    name=NAME, settings_key="redis_exporter", settings=RedisExporterService,
    service=lambda config, files, others: service(config),
    job=Job("redis", "redis-exporter"),
    sandbox_binary="prometheus-redis-exporter",
)
