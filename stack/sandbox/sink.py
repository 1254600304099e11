"""A webhook sink recording every notification Alertmanager sends.

`python -m stack.sandbox.sink --port P --out FILE` serves on 127.0.0.1:P. A POST to /<receiver>
appends one JSON line {"receiver", "received_at", "payload"} to FILE, written to disk before the
200 goes back (a notification acknowledged is a notification recorded, even if the sink is killed
next); GET /notifications answers every line as a JSON list. Killed and started again on the same
FILE, it appends after what is there.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import threading
import time
from collections.abc import Iterable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"


def read_notifications(file: Path | str) -> list[dict[str, Any]]:
    """Every notification recorded in `file`, oldest first; none if it does not exist yet. A line
    cut short by a kill is skipped."""
    try:
        text = Path(file).read_text()
    except FileNotFoundError:
        return []
    notifications = []
    for line in text.splitlines():
        try:
            notifications.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return notifications


def alerts_in(notifications: Iterable[dict[str, Any]], alertname: str | None, status: str | None = None,
              receiver: str | None = None) -> list[dict[str, Any]]:
    """The alerts of Alertmanager webhook notifications, one record each: {"receiver", "alertname",
    "status" (the alert's own: firing or resolved), "labels", "received_at"}; only those named
    `alertname` (None: any), with `status` and at `receiver` when given."""
    records = []
    for note in notifications:
        for alert in note.get("payload", {}).get("alerts", []):
            labels = alert.get("labels", {})
            record = {"receiver": note.get("receiver"), "alertname": labels.get("alertname"),
                      "status": alert.get("status"), "labels": labels, "received_at": note.get("received_at")}
            if ((alertname is None or record["alertname"] == alertname)
                    and (status is None or record["status"] == status)
                    and (receiver is None or record["receiver"] == receiver)):
                records.append(record)
    return records


class _Sink(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, out: Path, host: str = LOOPBACK) -> None:
        self.out = out
        self.lock = threading.Lock()  # one line at a time
        out.parent.mkdir(parents=True, exist_ok=True)
        # A sink killed mid-write may have left half a line: end it, so the next one stands alone.
        if out.exists() and out.stat().st_size and not out.read_bytes().endswith(b"\n"):
            with open(out, "ab") as file:
                file.write(b"\n")
        super().__init__((host, port), _Handler)

    def record(self, receiver: str, payload: Any) -> None:
        line = json.dumps({"receiver": receiver, "received_at": time.time(), "payload": payload}) + "\n"
        with self.lock, open(self.out, "a") as file:
            file.write(line)
            file.flush()
            os.fsync(file.fileno())


class _Handler(BaseHTTPRequestHandler):
    server: _Sink

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            payload = json.loads(body)
        except json.JSONDecodeError as error:
            self._answer(400, {"error": f"not JSON: {error}"})
            return
        self.server.record(self.path.split("?", 1)[0].strip("/"), payload)
        self._answer(200, {"status": "recorded"})

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0].rstrip("/") == "/notifications":
            self._answer(200, read_notifications(self.server.out))
        else:
            self._answer(404, {"error": "GET /notifications; POST /<receiver>"})

    def _answer(self, code: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack.sandbox.sink", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default=LOOPBACK,
                        help=f"the address to listen on (default {LOOPBACK}; a Docker network's gateway to be "
                             "reached from its containers as host.docker.internal)")
    parser.add_argument("--out", type=Path, required=True, help="the JSON-lines file notifications go to")
    args = parser.parse_args(argv)
    with _Sink(args.port, args.out, args.host) as server:
        print(f"sink: listening on http://{args.host}:{args.port}, recording to {args.out}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
