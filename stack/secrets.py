"""Secret values for the Pulumi program: from `medianest-observability:secrets` (Pulumi secrets,
set with `pulumi config set --secret --path 'secrets.<name>' ...`), or generated with
pulumi-random where a spec allows it. Values only ever travel as Pulumi secrets."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

import pulumi
import pulumi_random as random
from pulumi.runtime import config as runtime_config

from stack.services.spec import SecretFile, ServiceSpec
from stack.settings import PROJECT, SECRETS_KEY, ConfigError, secret_name_ok


def configured(stack: str) -> dict[str, str]:
    """The `secrets` object of the running stack (names -> values); {} when not set."""
    raw = runtime_config.get_config(f"{PROJECT}:{SECRETS_KEY}")
    if raw is None:
        return {}
    try:
        values = json.loads(raw) if isinstance(raw, str) else raw
    except (ValueError, RecursionError):
        values = None
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        raise ConfigError(f"Pulumi.{stack}.yaml: {PROJECT}:{SECRETS_KEY}: must be an object of secret "
                          "names to string values (values hidden)")
    for name in values:
        # Each name becomes a file in its component's secrets directory: never a path.
        if not secret_name_ok(name):
            shown = name if isinstance(name, str) and len(name) <= 60 and name.isprintable() else "(name hidden)"
            raise ConfigError(f"Pulumi.{stack}.yaml: {PROJECT}:{SECRETS_KEY}.{shown!s}: not a secret file name: "
                              "letters, digits, '.', '_' and '-' only, never '.' or '..'")
    return values


def required(specs: Iterable[ServiceSpec]) -> dict[str, SecretFile]:
    return {secret.name: secret for spec in specs for secret in spec.secrets}


def resolve(stack: str, specs: Iterable[ServiceSpec], values: Mapping[str, str],
            opts: pulumi.ResourceOptions | None = None) -> dict[str, pulumi.Output[str]]:
    """Every secret the specs mount, as a Pulumi secret; ConfigError naming each missing or
    unknown key (and never a value). A secret the specs may generate and no value gives is a
    RandomPassword created with `opts`."""
    needed = required(specs)
    unknown = sorted(set(values) - set(needed))
    missing = sorted(n for n, s in needed.items() if n not in values and not s.generated)
    if unknown or missing:
        lines = [f"Pulumi.{stack}.yaml: invalid secrets"]
        lines += [f"  {PROJECT}:{SECRETS_KEY}.{n}: unknown secret; valid: {', '.join(sorted(needed))}"
                  for n in unknown]
        lines += [f"  {PROJECT}:{SECRETS_KEY}.{n}: missing; set it with "
                  f"`pulumi config set --secret --path '{SECRETS_KEY}.{n}' <value>` (mounted at {needed[n].path})"
                  for n in missing]
        raise ConfigError("\n".join(lines))
    resolved: dict[str, pulumi.Output[str]] = {}
    for name in sorted(needed):
        if name in values:
            resolved[name] = pulumi.Output.secret(values[name])
        else:
            password = random.RandomPassword(name, length=32, special=False, opts=opts)
            resolved[name] = pulumi.Output.secret(password.result)
    return resolved


def secret_content(secret: SecretFile, value: pulumi.Input[str]) -> pulumi.Output[str]:
    """The secret file's content, still a Pulumi secret."""
    return pulumi.Output.secret(value).apply(secret.file_content)
