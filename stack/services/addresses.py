"""Ports of the addresses and URLs in a stack's config (for the flows components declare)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from stack.config import StackConfig


def service_address(config: StackConfig, name: str, port: int) -> str:
    """host:port where the stack reaches a component: the first of `addresses.<name>` (the
    sandbox), else its Service in the stack's namespace (Kubernetes) or its name (Docker)."""
    default = f"{name}.{config.kubernetes.namespace}.svc:{port}" if config.target == "kubernetes" else f"{name}:{port}"
    return config.addresses.get(name, (default,))[0]


def url_port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or {"http": 80, "https": 443}[parts.scheme]


def address_port(address: str) -> int:
    """The port of `host:port`."""
    return int(address.rsplit(":", 1)[1])
