"""What the end-to-end tests on the sandbox share: asking Prometheus and the webhook sink."""

from __future__ import annotations

from stack.sandbox.run import Sandbox
from stack.sandbox.sink import alerts_in


def firing_query(alertname: str) -> str:
    return f'ALERTS{{alertname="{alertname}",alertstate="firing"}}'


def notified(sandbox: Sandbox, alertname: str, status: str, receiver: str, **labels: str) -> list:
    """The notifications of this alert, in this status, at this receiver, with these labels."""
    return [a for a in alerts_in(sandbox.notifications(), alertname, status=status, receiver=receiver)
            if all(a["labels"].get(k) == v for k, v in labels.items())]
