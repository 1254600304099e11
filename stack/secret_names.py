"""May a setting or parameter of this name hold a secret? One answer for every place that asks:
the PR preview (whose values it must not print), the Alertmanager check (which literal values
must be mounted files instead) and the URL validators (which query parameters carry a credential).

Names only, never values. A name is suspect when it contains one of `SECRET_WORDS` anywhere
(`apikey`, `X-Auth-Token` and `smtp_auth_password` alike), except:

- a file reference (`*_file`, `*-file`, `*File`): its value is the path of a mounted secret;
- a name that ends in a word of `PUBLIC_WORDS` (`auth_username`): it names who, not how;
- a name listed in `NOT_SECRET` for the section it appears in (VictorOps' `routing_key` names a
  route, PagerDuty's is the integration's secret).

Pure functions and constants: no project import.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# Substrings of a name that may hold a secret: "pass" covers password, passwd and passphrase,
# "key" api_key and apikey, "auth" authorization, "sig" a signature, "url" a URL whose path or
# query may carry a token, "webhook" an incoming webhook (its URL is the secret).
SECRET_WORDS = ("pass", "pwd", "secret", "token", "key", "auth", "sig", "credential", "session", "cookie",
                "bearer", "webhook", "url")
# A name ending in one of these words names an identity, not a secret (`auth_username`).
PUBLIC_WORDS = frozenset({"username"})
# Names that hold no secret in one section (the key of the mapping or list they appear in)
# though they may in others.
NOT_SECRET: Mapping[str, frozenset[str]] = {
    "victorops_configs": frozenset({"routing_key"}),  # a route's name; PagerDuty's is a secret
}

# snake_case, kebab-case, dotted and camelCase names, split into lowercase words.
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def words(name: str) -> list[str]:
    """A name's words, lowercase: `smtpAuthPassword`, `smtp_auth_password` -> smtp, auth, password."""
    return [w.lower() for w in _WORD.findall(name)]


def is_file_reference(name: str) -> bool:
    """Whether a setting of this name holds a path (`credentials_file`, `urlFile`, `token-file`),
    the mounted file a secret is read from, rather than a value."""
    return bool(re.search(r"(?:[_-][Ff][Ii][Ll][Ee]|[a-z0-9]File)$", name))


def is_url(name: str) -> bool:
    """Whether a setting of this name holds a URL (`url`, `api_url`, `webhookUrl`): secret only in
    part (a token in its path or query) unless the whole URL is (a Slack incoming webhook)."""
    found = words(name)
    return bool(found) and found[-1] == "url"


def may_hold_secret(name: str, section: str | None = None) -> bool:
    """Whether a setting or parameter of this name may hold a secret, in `section` (the key of
    the mapping or list it appears in, e.g. `victorops_configs`) if known. Without a section, no
    section's exception applies: the stricter answer."""
    if is_file_reference(name):
        return False
    found = words(name)
    if found and found[-1] in PUBLIC_WORDS:
        return False
    if section is not None and name in NOT_SECRET.get(section, ()):
        return False
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)
