"""redis_exporter: Redis's health (redis_up), memory and clients, from REDIS_ADDR.

Its password file (REDIS_PASSWORD_FILE) is not the bare password: the exporter parses it as a
JSON object from Redis address to password and looks up REDIS_ADDR in it (exporter/pwd_file.go,
lookupPasswordInPasswordMap). `password_file` writes that object for the password a user sets.
"""

from __future__ import annotations

import json
from functools import partial
from urllib.parse import urlsplit

from stack.config import StackConfig
from stack.services.common import image, resources
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
