"""What the end-to-end tests on the sandbox share: asking Prometheus, Alertmanager and the webhook sink."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from stack.sandbox.run import Sandbox
from stack.sandbox.sink import alerts_in

# Straight to loopback, whatever HTTP(S)_PROXY says.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def firing_query(alertname: str) -> str:
    return f'ALERTS{{alertname="{alertname}",alertstate="firing"}}'


def notified(sandbox: Sandbox, alertname: str, status: str, receiver: str, **labels: str) -> list:
    """The notifications of this alert, in this status, at this receiver, with these labels."""
    return [a for a in alerts_in(sandbox.notifications(), alertname, status=status, receiver=receiver)
            if all(a["labels"].get(k) == v for k, v in labels.items())]


def get_text(url: str) -> str:
    with _HTTP.open(url, timeout=10) as response:
        return response.read().decode()


def get_json(url: str) -> Any:
    return json.loads(get_text(url))
