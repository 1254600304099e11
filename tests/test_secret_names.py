"""stack.secret_names: one answer to "may a setting of this name hold a secret?" for the PR
preview (masking), the Alertmanager check (inline secrets) and the URL validators (query
parameters)."""

from __future__ import annotations

import pytest

from rules.routing_checks.secrets import inline_secrets
from stack.preview import routing
from stack.secret_names import is_file_reference, is_url, may_hold_secret, words

# Names that may hold a secret, whatever their spelling.
SECRET = [
    "password", "auth_password", "smtp_auth_password", "smtpAuthPassword", "passwd", "pwd", "db_pwd",
    "secret", "client_secret", "api_secret", "token", "bot_token", "X-Auth-Token", "access_token",
    "key", "api_key", "apikey", "APIKey", "routing_key", "service_key", "user_key", "credentials",
    "authorization", "Authorization", "bearer", "bearer_token", "cookie", "Set-Cookie", "session",
    "sessionid", "sig", "signature", "url", "api_url", "webhook_url", "slackApiUrl", "webhook",
]
# A file reference names the mounted file a secret is read from: a path, shown and allowed.
FILE_REFERENCES = [
    "password_file", "auth_password_file", "credentials_file", "routing_key_file", "api_url_file",
    "url_file", "urlFile", "credentialsFile", "token-file", "TOKEN_FILE", "slackApiUrlFile",
]
# Names with no secret word: nothing to hide.
PLAIN = ["channel", "to", "from", "send_resolved", "group_wait", "severity", "chat_id", "smarthost", "username",
         "title", "text", "headers", "max_alerts", "profile", "filename"]


@pytest.mark.parametrize("name", SECRET)
def test_a_name_that_may_hold_a_secret_is_detected(name: str) -> None:
    assert may_hold_secret(name)
    assert may_hold_secret(name, section="pagerduty_configs")


@pytest.mark.parametrize("name", FILE_REFERENCES)
def test_a_file_reference_is_a_path_not_a_secret(name: str) -> None:
    assert is_file_reference(name)
    assert not may_hold_secret(name)


@pytest.mark.parametrize("name", ["profile", "file", "filename", "password", "files", "token_files"])
def test_file_only_as_a_name_s_last_word_makes_a_file_reference(name: str) -> None:
    assert not is_file_reference(name)


@pytest.mark.parametrize("name", PLAIN)
def test_a_plain_name_holds_no_secret(name: str) -> None:
    assert not may_hold_secret(name)


# The documented exceptions: a secret word, yet no secret.
@pytest.mark.parametrize(("name", "section"), [
    ("auth_username", None),  # who, not how: Alertmanager's email auth_username
    ("smtp_auth_username", "global"),
    ("authUsername", None),
    ("routing_key", "victorops_configs"),  # VictorOps' routing key names a route
])
def test_a_documented_exception_holds_no_secret(name: str, section: str | None) -> None:
    assert not may_hold_secret(name, section)


@pytest.mark.parametrize(("name", "section"), [
    ("routing_key", None),  # no section: the stricter answer
    ("routing_key", "pagerduty_configs"),  # PagerDuty's routing key is the integration's secret
    ("api_key", "victorops_configs"),  # the exception is the routing key only
    ("username_token", None),  # the public word counts last only
])
def test_an_exception_holds_only_where_it_is_documented(name: str, section: str | None) -> None:
    assert may_hold_secret(name, section)


@pytest.mark.parametrize(("name", "expected"), [
    ("smtp_auth_password", ["smtp", "auth", "password"]),
    ("smtpAuthPassword", ["smtp", "auth", "password"]),
    ("X-Auth-Token", ["x", "auth", "token"]),
    ("APIKey", ["api", "key"]),
    ("headers.Authorization", ["headers", "authorization"]),
])
def test_words_split_every_spelling(name: str, expected: list[str]) -> None:
    assert words(name) == expected


@pytest.mark.parametrize(("name", "expected"), [
    ("url", True), ("api_url", True), ("webhookUrl", True), ("URL", True),
    ("url_file", False), ("urls", False), ("curl", False), ("channel", False),
])
def test_a_url_name_is_recognised(name: str, expected: bool) -> None:
    assert is_url(name) is expected


# The three users agree: what the check rejects inline, the preview never prints.
@pytest.mark.parametrize(("key", "value"), [
    ("api_key", "abc"), ("client_secret", "abc"), ("access_token", "abc"), ("passphrase", "abc"),
])
def test_the_check_and_the_preview_agree(key: str, value: str) -> None:
    document = {"receivers": [{"name": "r", "webhook_configs": [{"url": "https://x", key: value}]}]}
    assert [p for p, _ in inline_secrets(document)] == [f"receivers[r].webhook_configs[0].{key}"]
    assert routing.shown(key, value) == "(secret, not shown)"
    assert routing.shown(f"{key}_file", "/s/x") == "/s/x"


def test_a_url_named_setting_with_a_credential_in_its_query_is_rejected() -> None:
    document = {"receivers": [{"name": "o", "opsgenie_configs": [
        {"api_key_file": "/s/k", "api_url": "https://api.opsgenie.example/?apiKey=abc"}]}]}
    assert [p for p, _ in inline_secrets(document)] == ["receivers[o].opsgenie_configs[0].api_url"]
    document["receivers"][0]["opsgenie_configs"][0]["api_url"] = "https://api.opsgenie.example/?region=eu"
    assert list(inline_secrets(document)) == []
