"""What the end-to-end tests on the sandbox share: asking Prometheus, Alertmanager and the webhook sink."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any, Protocol

from stack.sandbox.sink import alerts_in

# Straight to loopback, whatever HTTP(S)_PROXY says.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def firing_query(alertname: str) -> str:
    return f'ALERTS{{alertname="{alertname}",alertstate="firing"}}'


class Notified(Protocol):
    """What recorded notifications in a webhook sink: a sandbox, the Docker test stack."""

    def notifications(self) -> list[dict[str, Any]]: ...


def notified(sandbox: Notified, alertname: str, status: str, receiver: str, **labels: str) -> list:
    """The notifications of this alert, in this status, at this receiver, with these labels."""
    return [a for a in alerts_in(sandbox.notifications(), alertname, status=status, receiver=receiver)
            if all(a["labels"].get(k) == v for k, v in labels.items())]


def get_text(url: str) -> str:
    with HTTP.open(url, timeout=10) as response:
        return response.read().decode()


def get_json(url: str) -> Any:
    return json.loads(get_text(url))


def get(url: str, headers: Mapping[str, str] | None = None, timeout: float = 5) -> tuple[int, bytes]:
    """Status and body of a GET; an HTTP error's too, and (0, b"") when nothing answers."""
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with HTTP.open(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:
        return 0, b""


def post_json(url: str, body: object) -> None:
    """POST `body` as JSON; it must be answered 200."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with HTTP.open(request, timeout=5) as response:
        assert response.status == 200, response.read()[:300]
