"""The building blocks of the stack configuration: bounded types, validators that name what
is valid, and the base every component's settings extend (`Component`: image, memory, CPU,
publish, enabled). Component modules (stack/services) declare their own settings from these;
stack/config.py assembles them with the stack-wide sections into one `StackConfig`."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
)
from pydantic.alias_generators import to_camel

from rules.conventions import duration_seconds
from stack.secret_names import may_hold_secret

PROJECT = "medianest-observability"
# `medianest-observability:secrets`: an object of Pulumi secrets, one per secret file by name.
SECRETS_KEY = "secrets"
ROOT = Path(__file__).resolve().parent.parent

# Limits no real stack file comes near: a larger or deeper document is refused before it is read.
MAX_STACK_FILE_BYTES = 1024 * 1024
MAX_YAML_DEPTH = 32
MAX_VALUE_DEPTH = 16
MAX_VALUES = 20_000
MAX_TEXT = 4096
MAX_KEY = 256
# How much of a value an error message may echo (and only for a `SHOWN` field).
MAX_ECHO = 60
# Error lines per ConfigError; the rest are counted.
MAX_ERROR_LINES = 20

# A secret's name: the file it is mounted as, alone in its secrets directory.
SECRET_NAME = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
# C0/C1 controls (newlines and tabs included), line separators, bidirectional overrides, BOM.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")
# A key echoed as written only when it is made of these (any other is quoted and clipped).
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_.:/@#+\[\]-]{1,64}$")

KiB, MiB, GiB, TiB = 1024, 1024**2, 1024**3, 1024**4


class ConfigError(Exception):
    """Bad stack configuration; the message names the file and the key."""


class _Shown:
    """Marks a field whose value is safe to echo in an error: a duration, a size, an image tag.
    Numbers, booleans and enums (Literal) are shown without it; nothing else ever is."""

    def __repr__(self) -> str:
        return "SHOWN"


SHOWN = _Shown()


def secret_name_ok(name: object) -> bool:
    """A secret's file name: letters, digits, `.`, `_`, `-`; never `.` or `..`."""
    return isinstance(name, str) and bool(SECRET_NAME.fullmatch(name)) and name not in (".", "..")


# --- Durations, sizes and numbers: parsed, finite, bounded ---------------------------------


def _duration(value: str) -> str:
    try:
        seconds = duration_seconds(value)
    except ValueError:
        raise ValueError(f"invalid duration {_clip_repr(value)}: use Prometheus units such as 30s, 5m, 1h, "
                         "1d") from None
    if seconds <= 0:
        raise ValueError("must be longer than 0s")
    return value


def _duration_between(low: str, high: str) -> AfterValidator:
    def check(value: str) -> str:
        if not duration_seconds(low) <= duration_seconds(value) <= duration_seconds(high):
            raise ValueError(f"must be between {low} and {high}")
        return value
    return AfterValidator(check)


Duration = Annotated[str, AfterValidator(_duration), SHOWN]


def _one_minute(value: str) -> str:
    if duration_seconds(value) != 60:
        raise ValueError("must be 1m: the generated promtool tests and SLO scenarios evaluate once a minute")
    return value


def _at_least_a_day(value: str) -> str:
    if duration_seconds(value) < 86400:
        raise ValueError("must be at least 24h (Loki's minimum retention period)")
    return value


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a number, not true or false")
    return value


def Number(low: float, high: float, *, above: bool = False) -> Any:  # noqa: N802 - a type factory
    """A finite float in [low, high] ((low, high] when `above`); never a boolean."""
    bound = Field(gt=low, le=high, allow_inf_nan=False) if above else Field(ge=low, le=high, allow_inf_nan=False)
    return Annotated[float, BeforeValidator(_not_bool), bound]


def Count(low: int, high: int) -> Any:  # noqa: N802 - a type factory
    """An integer in [low, high]: strict, so neither `true` nor `2.5` nor "3" slips through."""
    return Annotated[int, Field(strict=True, ge=low, le=high)]


Ratio = Annotated[float, BeforeValidator(_not_bool), Field(gt=0, lt=1, allow_inf_nan=False)]
HostPort = Count(1, 65535)

_MEMORY_UNITS = {"Ki": KiB, "Mi": MiB, "Gi": GiB, "Ti": TiB}
MAX_MEMORY = TiB
MIN_MEMORY = 6 * MiB  # Docker's floor for a memory limit
MAX_VOLUME = 100 * TiB


def quantity_bytes(value: str) -> int:
    """`512Mi`, `1Gi`, `2Ti` (Kubernetes quantities, binary units) as bytes."""
    match = re.fullmatch(r"([0-9]+)(Ki|Mi|Gi|Ti)", value) if isinstance(value, str) else None
    if not match or int(match[1][:30]) == 0:
        raise ValueError("must be a size like 256Mi or 2Gi (units Ki, Mi, Gi, Ti)")
    # Thirty digits are past any bound below: a longer number is never converted.
    return int(match[1][-30:] if len(match[1]) <= 30 else "9" * 30) * _MEMORY_UNITS[match[2]]


def memory_bytes(value: str) -> int:
    """A memory limit (`512Mi`, `1Gi`) as bytes: at least 6Mi, at most 1Ti."""
    size = quantity_bytes(value)
    if not MIN_MEMORY <= size <= MAX_MEMORY:
        raise ValueError("must be between 6Mi and 1Ti")
    return size


def _memory(value: str) -> str:
    memory_bytes(value)
    return value


def _volume(value: str) -> str:
    if not MiB <= quantity_bytes(value) <= MAX_VOLUME:
        raise ValueError("must be between 1Mi and 100Ti")
    return value


_PROMETHEUS_UNITS = {"B": 1, "KB": KiB, "MB": MiB, "GB": GiB, "TB": TiB, "PB": 1024 * TiB}


def _retention_size(value: str) -> str:
    match = re.fullmatch(r"([0-9]+)(B|KB|MB|GB|TB|PB)", value)
    if not match:
        raise ValueError("must be a size like 10GB (units B, KB, MB, GB, TB, PB)")
    number = int(match[1]) if len(match[1]) <= 30 else 10**30
    if not MiB <= number * _PROMETHEUS_UNITS[match[2]] <= MAX_VOLUME:
        raise ValueError("must be between 1MB and 100TB")
    return value


Memory = Annotated[str, AfterValidator(_memory), SHOWN]
VolumeSize = Annotated[str, AfterValidator(_volume), SHOWN]
RetentionSize = Annotated[str, AfterValidator(_retention_size), SHOWN]


# --- URLs and addresses: never a credential --------------------------------------------------

MAX_URL = 2048


def _plain_text(value: str, what: str) -> None:
    if _UNPRINTABLE.search(value) or any(c.isspace() for c in value):
        raise ValueError(f"{what} must not contain whitespace or control characters")


def _split(value: str) -> tuple[Any, int | None]:
    """urlsplit and its port, with errors that never quote the value."""
    try:
        parts = urlsplit(value)
        return parts, parts.port
    except ValueError:
        raise ValueError("must be a URL with a valid host and a port between 1 and 65535") from None


def _url(value: str, *, query: bool = True) -> str:
    """An http(s) URL naming a host, without `user:password@` (nor a query, unless `query`; even
    then no parameter named like a credential)."""
    if len(value) > MAX_URL:
        raise ValueError(f"must be a URL of at most {MAX_URL} characters")
    _plain_text(value, "a URL")
    if not value.startswith(("https://", "http://")):
        raise ValueError("must be an http(s) URL")
    parts, port = _split(value)
    if "@" in parts.netloc:
        raise ValueError("must not carry credentials (user:password@): a secret is a mounted file, never "
                         "part of a URL")
    if not parts.hostname:
        raise ValueError("must be an http(s) URL naming a host")
    if port is not None and not 1 <= port <= 65535:
        raise ValueError("must be a URL with a valid host and a port between 1 and 65535")
    if parts.query and not query:
        raise ValueError("must not carry a query string")
    # A query parameter named like a credential carries one, whatever the URL.
    if any(may_hold_secret(name) for name, _ in parse_qsl(parts.query, keep_blank_values=True)):
        raise ValueError("must not carry credentials in its query string (a token, key or password "
                         "parameter): a secret is a mounted file, never part of a URL")
    return value


def _https(value: str) -> str:
    """A URL of the stack's own (endpoints, runbooks, Grafana's root): no credentials, no query."""
    return _url(value, query=False)


def _probe_url(value: str) -> str:
    """A probed health endpoint: a query is allowed, credentials are not."""
    return _url(value, query=True)


def _webhook_url(value: str) -> str:
    _url(value, query=True)
    if _split(value)[0].query:
        raise ValueError("must not carry credentials (user:password@ or a query string): "
                         "put the token in a file named by credentialsFile, or the whole URL in urlFile")
    return value


def _host_port(value: str) -> str:
    """`host:port`, the port between 1 and 65535 (the pattern has checked the shape)."""
    if not 1 <= int(value.rsplit(":", 1)[1]) <= 65535:
        raise ValueError("the port must be between 1 and 65535")
    return value


HostAndPort = Annotated[str, Field(pattern=r"^[A-Za-z0-9.-]{1,253}:[0-9]{1,5}$"), AfterValidator(_host_port)]


def _no_password(value: str) -> str:
    if ":" in value:
        raise ValueError("must be a user name alone (no user:password): the password is a mounted secret file")
    return value


UserName = Annotated[str, Field(pattern=r"^\S{1,128}$"), AfterValidator(_no_password)]


# --- Secret files: one plain name in the component's secrets directory ----------------------


def _secret_file(value: str) -> str:
    if not value.startswith("/") or value.endswith("/"):
        raise ValueError("must be the absolute path of a mounted secret file, e.g. "
                         "/etc/alertmanager/secrets/<name> (the secret itself never goes in config)")
    return value


def _in_secrets_dir(directory: str, whose: str) -> AfterValidator:
    def check(value: str) -> str:
        name = value.removeprefix(directory)
        if not value.startswith(directory) or not secret_name_ok(name):
            raise ValueError(f"must live under {directory} (where the stack mounts {whose} secrets), as a plain "
                             "file name: letters, digits, '.', '_' and '-', no '/', never '.' or '..'")
        return value
    return AfterValidator(check)


ALERTMANAGER_SECRETS_DIR = "/etc/alertmanager/secrets/"
SecretFile = Annotated[str, AfterValidator(_secret_file),
                       _in_secrets_dir(ALERTMANAGER_SECRETS_DIR, "Alertmanager's")]
WebhookUrl = Annotated[str, AfterValidator(_webhook_url)]
Url = Annotated[str, AfterValidator(_https)]


# --- Kubernetes names ------------------------------------------------------------------------

_DNS_LABEL = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
_DNS_SUBDOMAIN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
_LABEL_KEY = (r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*/)?"
              r"[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")
_LABEL_VALUE = r"^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$"
DnsSubdomain = Annotated[str, Field(pattern=_DNS_SUBDOMAIN, max_length=253)]
LabelKey = Annotated[str, Field(pattern=_LABEL_KEY, max_length=317)]
Labels = Annotated[dict[LabelKey, Annotated[str, Field(pattern=_LABEL_VALUE)]], Field(max_length=32)]


def _cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError("must be a CIDR such as 10.0.0.0/8") from None
    return value


def _absolute_path(value: str) -> str:
    if not re.fullmatch(r"/[A-Za-z0-9._/-]{0,1023}", value) or ".." in value.split("/"):
        raise ValueError("must be an absolute path of letters, digits, '.', '_', '-' and '/', without '..'")
    return value


AbsolutePath = Annotated[str, AfterValidator(_absolute_path)]


class _Section(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, str_max_length=MAX_TEXT,
    )


# A scrape job name: a label value every alert selects on (job="..."), so plain characters only.
JobName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$"), SHOWN]


def _tag(value: str) -> str:
    if value in ("latest", "main", "master") or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", value):
        raise ValueError("must be an exact version tag such as v3.16.0 (never latest)")
    return value


class ImageRef(_Section):
    """An image pinned by exact tag; a digest only when read from a registry."""

    repository: Annotated[str, Field(pattern=r"^[a-z0-9]+([._/-][a-z0-9]+)*$", max_length=255), SHOWN]
    tag: Annotated[str, AfterValidator(_tag), SHOWN]
    digest: Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$"), SHOWN] | None = None


def _image(repository: str, tag: str) -> Any:
    return Field(default_factory=lambda: ImageRef(repository=repository, tag=tag))


class Component(_Section):
    """What every component has: its image, a memory limit, an optional CPU limit, and an
    opt-in port published on the host's loopback (Docker)."""

    memory: Memory = "256Mi"
    cpus: Number(0.01, 256) | None = None
    publish: HostPort | None = None
    # False: not deployed, not scraped, and alerts about it left out (the sandbox runs no Loki,
    # Jaeger, Grafana or Alloy: they have no binary there).
    enabled: bool = True


# How often Prometheus scrapes or evaluates: the sandbox goes down to 2s, nobody past an hour.
Interval = Annotated[Duration, _duration_between("1s", "1h")]
# How long data is kept.
Retention = Annotated[Duration, _duration_between("1h", "10y")]


def _clip_repr(value: Any) -> str:
    """A value as an error may quote it: repr (control characters escaped), at most ~MAX_ECHO."""
    if isinstance(value, str):
        return repr(value) if len(value) <= MAX_ECHO else repr(value[:MAX_ECHO]) + "..."
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return "a number of more than 38 digits"
    text = repr(value)
    return text if len(text) <= MAX_ECHO else text[:MAX_ECHO] + "..."
