"""A `ServiceSpec` as the sandbox runs it: the container's own arguments, environment, files and
secrets, with only what names the container's world mapped to this machine.

Four kinds of values are mapped, wherever they appear (an argument's value, an environment
variable, a string or a host/port pair in a YAML config file):

- listen addresses: `:9090`, `0.0.0.0:9090`, `[::]:9090`, `127.0.0.1:9101`, `$(POD_IP):9094`
  whose port is one of the spec's (ports, health, metrics) become `127.0.0.1:<sandbox port>`;
- peers: a replica's `host:port` as the spec names it (Alertmanager's `--cluster.peer=`)
  becomes that replica's loopback address;
- paths under the spec's `config_dir`, its volumes and its host mounts become local directories
  (node exporter's /host/proc is the host's /proc);
- nothing else: every other byte stays the container's, so the sandbox proves the shipped command
  line (a flag the shipped binary does not know fails the sandbox's start).

Pure: `localize` says what to run and what to write; stack/sandbox/run.py writes and runs it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stack.dump import dump_yaml
from stack.services.spec import ServiceSpec

LOOPBACK = "127.0.0.1"
# The hosts a container listens on (every interface, its own IP, its loopback), as its command
# line and config files write them.
LISTEN_HOSTS = ("", "0.0.0.0", "[::]", "::", LOOPBACK, "localhost", "$(POD_IP)")
_LISTEN = re.compile(r"(?P<host>.*):(?P<port>[0-9]{1,5})")
YAML_SUFFIXES = (".yml", ".yaml")


@dataclass(frozen=True)
class Placement:
    """Where one process of a spec runs here."""

    # A port the container listens on -> the loopback port it gets here.
    ports: Mapping[int, int]
    # A path in the container (config dir, a volume, a host mount) -> the local path it is.
    paths: Mapping[str, str]
    # A peer's host:port as the spec names it -> its loopback host:port.
    peers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Localized:
    """What to run and write for one process of a spec."""

    args: tuple[str, ...]
    env: dict[str, str]
    # Local path -> content: the spec's files, then its secrets (to be written readable by the owner only).
    files: dict[str, str]
    secrets: dict[str, str]


def listen_ports(spec: ServiceSpec) -> list[int]:
    """Every port the spec listens on: its ports, its health check's and its metrics'."""
    ports = {p.container_port for p in spec.ports}
    ports |= {check.port for check in (spec.health, spec.metrics) if check is not None}
    return sorted(ports)


def placement(spec: ServiceSpec, ports: Mapping[int, int], config_dir: Path | str, data_dir: Path | str,
              peers: Mapping[str, str] | None = None) -> Placement:
    """The spec's files under `config_dir`, each volume in `data_dir/<volume name>`, each host
    mount at the host path it mounts."""
    missing = [p for p in listen_ports(spec) if p not in ports]
    if missing:
        raise ValueError(f"{spec.name}: no sandbox port for {', '.join(map(str, missing))}")
    paths = {spec.config_dir: str(config_dir)}
    paths |= {volume.path: str(Path(data_dir) / volume.name) for volume in spec.volumes}
    paths |= {mount.path: mount.host_path for mount in spec.host_mounts}
    return Placement(ports=dict(ports), paths=paths, peers=dict(peers or {}))


# --- values ------------------------------------------------------------------------------------


def listen_address(text: str, ports: Mapping[int, int]) -> str | None:
    """`127.0.0.1:<sandbox port>` when `text` is a listen address on one of `ports`, else None."""
    match = _LISTEN.fullmatch(text)
    if match is None or match["host"] not in LISTEN_HOSTS:
        return None
    port = ports.get(int(match["port"]))
    return None if port is None else f"{LOOPBACK}:{port}"


def local_path(text: str, paths: Mapping[str, str]) -> str | None:
    """`text` with its container directory (the longest of `paths` it is in) replaced, else None."""
    for directory in sorted(paths, key=len, reverse=True):
        prefix = directory.rstrip("/")
        if text == prefix or text.startswith(prefix + "/"):
            rest = text[len(prefix):]
            # A host mount of / (node exporter's /host/root): /host/root/x is /x.
            return (paths[directory].rstrip("/") + rest) or "/"
    return None


def value(text: str, where: Placement) -> str:
    """One value (an argument's, a variable's, a config string) as it is here."""
    for mapped in (listen_address(text, where.ports), where.peers.get(text), local_path(text, where.paths)):
        if mapped is not None:
            return mapped
    return text


def argument(arg: str, where: Placement) -> str:
    """`--flag=value` (or `-flag=value`) with its value mapped; any other argument (a positional
    one, or the value of a flag given apart) mapped as a whole."""
    if arg.startswith("-") and "=" in arg:
        flag, _, rest = arg.partition("=")
        return f"{flag}={value(rest, where)}"
    return value(arg, where)


def arguments(args: Iterable[str], where: Placement) -> tuple[str, ...]:
    return tuple(argument(arg, where) for arg in args)


def environment(env: Mapping[str, str], where: Placement) -> dict[str, str]:
    return {name: value(text, where) for name, text in env.items()}


# --- config files --------------------------------------------------------------------------------


def config_data(data: Any, where: Placement) -> Any:
    """Parsed YAML with every string mapped, and `host` + `port` pairs (Jaeger's telemetry
    readers: `host: 0.0.0.0`, `port: 8888`) moved to loopback."""
    if isinstance(data, str):
        return value(data, where)
    if isinstance(data, list):
        return [config_data(item, where) for item in data]
    if not isinstance(data, dict):
        return data
    mapped = {key: config_data(item, where) for key, item in data.items()}
    host, port = data.get("host"), data.get("port")
    if isinstance(host, str) and isinstance(port, int | str) and str(port).isdigit():
        address = listen_address(f"{host}:{port}", where.ports)
        if address is not None:
            new_host, new_port = address.rsplit(":", 1)
            mapped |= {"host": new_host, "port": int(new_port) if isinstance(port, int) else new_port}
    return mapped


def config_file(path: str, content: str, where: Placement) -> str:
    """A YAML config file with its values mapped; unchanged (byte for byte) when nothing maps,
    and any other file as it is."""
    if not path.endswith(YAML_SUFFIXES):
        return content
    data = yaml.safe_load(content)
    mapped = config_data(data, where)
    return content if mapped == data else dump_yaml(mapped)


# --- a whole spec ----------------------------------------------------------------------------------


def localize(spec: ServiceSpec, where: Placement, secret_values: Mapping[str, str]) -> Localized:
    """The spec's args, env, files and secrets as this process gets them; `secret_values` holds
    the value of each of its secrets, by name."""
    missing = sorted(s.name for s in spec.secrets if s.name not in secret_values)
    if missing:
        raise KeyError(f"{spec.name}: the sandbox has no value for the secret(s) {', '.join(missing)}")

    def local(file_path: str) -> str:
        mapped = local_path(file_path, where.paths)
        assert mapped is not None, f"{file_path} is outside {spec.config_dir}"  # ServiceSpec checks it
        return mapped

    return Localized(
        args=arguments(spec.args, where),
        env=environment(spec.env, where),
        files={local(f.path): config_file(f.path, f.content, where) for f in spec.files},
        secrets={local(s.path): s.file_content(secret_values[s.name]) for s in spec.secrets},
    )
