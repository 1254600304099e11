"""The rendered dev config on a real Alertmanager (Debian's 0.25, on loopback): inhibitions
mute what the policy says and nothing else, and notifications reach their receivers' webhooks.

Alerts go in through the API (/api/v2/alerts) as Prometheus sends them; an alert's status
there says whether, and by what, it is inhibited. Every wait is bounded and every process
started here is stopped.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from stack import tools
from stack.bundle import ALERTMANAGER_CONFIG, build
from stack.config import Alerting
from stack.output import write_tree

pytestmark = pytest.mark.e2e
WAIT_SECONDS = 15


def _labels(alertname: str, severity: str, service: str, **more: str) -> dict[str, str]:
    return {"alertname": alertname, "severity": severity, "service": service, **more}


def _slo(name: str, tier: str, service: str = "medianest") -> dict[str, str]:
    severity = "critical" if tier == "page" else "warning"
    return _labels("SLOErrorBudgetBurn", severity, service, slo=name, tier=tier)


BACKEND = {"job": "medianest-backend", "instance": "backend:3000"}
# Synthetic: no two alerts of the bundle share a name across severities; the rule exists for
# those that will (and for SLO alerts, which all share one name).
SYNTHETIC = "SyntheticDiskFull"

# (sentence, firing sources, alerts they must mute, alerts that must stay active)
SCENARIOS = [
    ("a critical alert mutes the warning of the same alert and service, and nothing else",
     [_labels(SYNTHETIC, "critical", "host")],
     [_labels(SYNTHETIC, "warning", "host")],
     [_labels(SYNTHETIC, "warning", "database"), _labels("SyntheticOtherAlert", "warning", "host"),
      _labels(SYNTHETIC, "info", "host")]),
    ("an SLO's page mutes its own ticket but not another SLO's ticket nor its no-data alert",
     [_slo("api-availability", "page")],
     [_slo("api-availability", "ticket")],
     [_slo("api-latency", "ticket"), _labels("SLONoData", "warning", "medianest", slo="api-availability")]),
    ("a business SLO's page mutes its own ticket only",
     [_slo("media-upload-success", "page", "business")],
     [_slo("media-upload-success", "ticket", "business")],
     [_slo("api-availability", "ticket")]),
    ("ApplicationDown mutes the backend's other alerts but not its dependencies'",
     [_labels("ApplicationDown", "critical", "medianest", **BACKEND)],
     [_labels("HighErrorRate", "critical", "medianest", job="medianest-backend"),
      _labels("HighResponseTime", "warning", "medianest", job="medianest-backend"),
      _labels("QueueBacklog", "warning", "business", **BACKEND), _slo("api-availability", "page"),
      _slo("media-upload-success", "ticket", "business")],
     [_labels("PostgresDown", "critical", "database", job="postgres-exporter"),
      _labels("TargetDown", "warning", "platform", job="grafana")]),
]
assert len(SCENARIOS) == 4


class _Sink:
    """A webhook receiver on loopback that records (path, payload) of every notification."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict]] = []
        self.changed = threading.Condition()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with sink.changed:
                    sink.received.append((self.path, body))
                    sink.changed.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, expected: dict[str, dict[str, str]]) -> dict[str, list[dict]]:
        """Wait until each path received a notification of its alert; the alerts each path got."""
        def got() -> dict[str, list[dict]]:
            alerts: dict[str, list[dict]] = {}
            for path, body in self.received:
                alerts.setdefault(path, []).extend(a["labels"] for a in body["alerts"])
            return alerts

        with self.changed:
            self.changed.wait_for(lambda: all(labels in got().get(path, []) for path, labels in expected.items()),
                                  timeout=WAIT_SECONDS)
            return got()


@pytest.fixture(scope="module")
def sink() -> Iterator[_Sink]:
    sink = _Sink()
    yield sink
    sink.server.shutdown()
    sink.server.server_close()


@pytest.fixture(scope="module")
def config_file(dev_config, sink: _Sink, tmp_path_factory) -> Path:
    """The dev stack's Alertmanager files, its local webhook pointed at the sink."""
    config = dev_config.model_copy(update={"alerting": Alerting(local_webhook_url=sink.url)})
    out = tmp_path_factory.mktemp("alertmanager") / "out"
    write_tree(build(config).files, out)
    return out / ALERTMANAGER_CONFIG


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(url: str, payload: object | None = None) -> object:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        body = response.read()
        is_json = response.headers.get_content_type() == "application/json"
    return json.loads(body) if body and is_json else body.decode()


def _until(condition: Callable[[], bool], what: str, log: Path) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {WAIT_SECONDS}s waiting for {what}; log:\n{log.read_text()[-3000:]}")


@pytest.fixture
def alertmanager(config_file: Path, tmp_path: Path) -> Iterator[str]:
    """A real Alertmanager on a free loopback port, without clustering; its URL."""
    binary = tools.require("alertmanager")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "alertmanager.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [binary, f"--config.file={config_file}", f"--storage.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
            stdout=output, stderr=subprocess.STDOUT)
    try:
        def ready() -> bool:
            assert process.poll() is None, f"alertmanager exited:\n{log.read_text()}"
            try:
                _request(f"{url}/-/ready")
                return True
            except OSError:
                return False

        _until(ready, "alertmanager to be ready", log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _post(url: str, *label_sets: dict[str, str]) -> None:
    _request(f"{url}/api/v2/alerts", [{"labels": labels, "annotations": {"summary": labels["alertname"]}}
                                      for labels in label_sets])


def _statuses(url: str) -> dict[tuple[tuple[str, str], ...], dict]:
    return {tuple(sorted(a["labels"].items())): a["status"] for a in _request(f"{url}/api/v2/alerts")}


def _key(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


@pytest.mark.parametrize(("sources", "muted", "kept"), [s[1:] for s in SCENARIOS], ids=[s[0] for s in SCENARIOS])
def test_inhibitions_on_a_real_alertmanager(alertmanager: str, tmp_path: Path, sources, muted, kept) -> None:
    _post(alertmanager, *sources, *muted, *kept)

    def all_muted() -> bool:
        statuses = _statuses(alertmanager)
        return all(statuses.get(_key(m), {}).get("inhibitedBy") for m in muted)

    _until(all_muted, f"inhibition of {muted}", tmp_path / "alertmanager.log")
    statuses = _statuses(alertmanager)
    assert len(statuses) == len(sources) + len(muted) + len(kept)
    for labels in [*sources, *kept]:
        assert statuses[_key(labels)]["state"] == "active", (labels, statuses[_key(labels)])
    for labels in muted:
        assert statuses[_key(labels)]["state"] == "suppressed", labels


def test_pages_and_the_heartbeat_reach_their_webhooks(alertmanager: str, sink: _Sink) -> None:
    page = _labels("ApplicationDown", "critical", "medianest", **BACKEND)
    heartbeat = _labels("Watchdog", "info", "platform")
    _post(alertmanager, page, heartbeat)
    received = sink.wait_for({"/critical-alerts": page, "/deadman": heartbeat})
    assert page in received.get("/critical-alerts", []), received
    assert received.get("/deadman") == [heartbeat], received
