"""No secret is written into the Alertmanager config: keys, tokens, passwords and secret URLs
are references to mounted files (`*_file`, `credentials_file`).

The typed receivers have no field that could hold a secret; this check reads the rendered
mapping, so a hand-written or future field cannot slip one in either.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from rules.problems import Problem, Severity
from rules.routing_checks import Routing
from stack.secret_names import is_url, may_hold_secret

NAME = "routing-secrets"

# Which names may hold a secret is stack.secret_names' answer (also the PR preview's). Here,
# what to write instead: the file-reference twin Alertmanager has for a secret setting (None: it
# has none).
FILE_FORMS = {
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
    "smtp_auth_password": "smtp_auth_password_file",
    "smtp_auth_secret": None,
    "opsgenie_api_key": "opsgenie_api_key_file",
    "victorops_api_key": "victorops_api_key_file",
    "wechat_api_secret": None,
}
# URLs that are wholly a secret, by section (None: anywhere): an incoming webhook's URL is its
# secret. Other URLs are secret only in part: no user:password@, no credential in the query.
SECRET_URLS = {
    None: ("webhook_url", "slack_api_url"),
    "slack_configs": ("api_url",),
}
# A webhook receiver's URL takes no query at all (stack.config's WebhookUrl): its token belongs
# in http_config.authorization.credentials_file.
PLAIN_URLS = ("url",)


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
        if not isinstance(value, str) or not value or not may_hold_secret(str(key), parent):
            continue
        if key in SECRET_URLS[None] or key in SECRET_URLS.get(parent, ()):
            yield where, f"{key} is a secret URL written inline: use {key}_file"
        elif is_url(str(key)):
            if _url_credentials(value, any_query=key in PLAIN_URLS):
                yield where, (f"{key} carries credentials (user:password@ or a query string): use a "
                              "plain URL and http_config.authorization.credentials_file")
        else:
            if key not in FILE_FORMS:
                fix = f"use a mounted secret file ({key}_file, where Alertmanager has one) or do not set it"
            elif FILE_FORMS[key]:
                fix = f"use {FILE_FORMS[key]} with a mounted secret file"
            else:
                fix = "Alertmanager has no file form of it: do not use it"
            yield where, f"{key} holds a literal secret: {fix}"


def _url_credentials(url: str, any_query: bool) -> bool:
    """Whether a URL carries a credential: user:password@, or a query parameter named like one
    (any query at all, for `any_query`)."""
    try:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return True  # not a URL a reviewer can read: say so rather than let it through
    if parts.username or parts.password:
        return True
    return bool(parts.query) if any_query else any(may_hold_secret(name) for name, _ in query)
