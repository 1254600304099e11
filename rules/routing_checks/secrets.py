"""No secret is written into the Alertmanager config: keys, tokens, passwords and secret URLs
are references to mounted files (`*_file`, `credentials_file`).

The typed receivers have no field that could hold a secret; this check reads the rendered
mapping, so a hand-written or future field cannot slip one in either.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from rules.problems import Problem, Severity
from rules.routing_checks import Routing

NAME = "routing-secrets"

# Keys whose value is a secret wherever they appear (Alertmanager's receivers, http_config,
# global), each with its file-reference twin where Alertmanager has one.
SECRET_KEYS = {
    "routing_key": "routing_key_file",
    "service_key": "service_key_file",
    "auth_password": "auth_password_file",
    "auth_secret": None,
    "api_key": "api_key_file",
    "api_secret": None,
    "bot_token": "bot_token_file",
    "token": "token_file",
    "user_key": "user_key_file",
    "password": "password_file",
    "bearer_token": "bearer_token_file",
    "credentials": "credentials_file",
    "webhook_url": "webhook_url_file",
    "slack_api_url": "slack_api_url_file",
    "smtp_auth_password": "smtp_auth_password_file",
    "smtp_auth_secret": None,
    "opsgenie_api_key": "opsgenie_api_key_file",
    "victorops_api_key": "victorops_api_key_file",
    "wechat_api_secret": None,
}
# A Slack incoming webhook's URL is its secret.
SECRET_URL_KEYS = {"slack_configs": ("api_url", "api_url_file")}
# VictorOps's routing key names a route; it is not a secret (PagerDuty's is).
NOT_SECRET = {"victorops_configs": ("routing_key",)}


def check(routing: Routing) -> Iterator[Problem]:
    for path, message in inline_secrets(routing.config.to_dict()):
        yield Problem(routing.source, path, NAME, Severity.ERROR, message)


def inline_secrets(document: Any, path: str = "", parent: str = "") -> Iterator[tuple[str, str]]:
    """(path, message) for every literal secret in an Alertmanager config mapping."""
    if isinstance(document, list):
        for index, item in enumerate(document):
            name = item.get("name") if isinstance(item, dict) and path == "receivers" else None
            yield from inline_secrets(item, f"{path}[{name or index}]", parent)
        return
    if not isinstance(document, dict):
        return
    for key, value in document.items():
        where = f"{path}.{key}" if path else str(key)
        if isinstance(value, dict | list):
            yield from inline_secrets(value, where, str(key))
            continue
        if not isinstance(value, str) or not value:
            continue
        if key in SECRET_KEYS and key not in NOT_SECRET.get(parent, ()):
            twin = SECRET_KEYS[key]
            fix = (f"use {twin} with a mounted secret file" if twin
                   else "Alertmanager has no file form of it: do not use it")
            yield where, f"{key} holds a literal secret: {fix}"
        elif SECRET_URL_KEYS.get(parent, ("",))[0] == key:
            yield where, f"{key} is a secret URL written inline: use {SECRET_URL_KEYS[parent][1]}"
        elif key == "url":
            parts = urlsplit(value)
            if parts.username or parts.password or parts.query:
                yield where, ("url carries credentials (user:password@ or a query string): use a "
                              "plain URL and http_config.authorization.credentials_file")
