"""Ports of the addresses and URLs in a stack's config (for the flows components declare)."""

from __future__ import annotations

from urllib.parse import urlsplit


def url_port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or {"http": 80, "https": 443}[parts.scheme]


def address_port(address: str) -> int:
    """The port of `host:port`."""
    return int(address.rsplit(":", 1)[1])
