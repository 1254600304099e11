"""The sandbox's machinery on real processes: the supervisor (readiness, failures, kill and
restart, nothing left behind), a throwaway PostgreSQL and Redis from Debian's packages, and the
webhook sink. A missing binary fails these tests: `make tools` installs them."""

from __future__ import annotations

import json
import os
import pwd
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from stack.sandbox import datastores, processes, sink
from stack.sandbox.processes import ProcessFailed, Supervisor

ROOT = Path(__file__).resolve().parents[2]
# Straight to loopback, whatever HTTP(S)_PROXY says.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get(url: str) -> str:
    with HTTP.open(url, timeout=5) as response:
        return response.read().decode()


def _post(url: str, body: object) -> int:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with HTTP.open(request, timeout=5) as response:
        return response.status


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for a parent that does not reap."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX"
    except FileNotFoundError:
        return False


def _until(condition, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _http_server(port: int) -> list[str]:
    return [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]


# --- ports and binaries ------------------------------------------------------------------------

def test_free_ports_are_distinct_and_bindable() -> None:
    ports = processes.free_ports(20)
    assert len(set(ports)) == 20
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", processes.free_port()))


def test_free_ports_are_never_ones_an_outgoing_connection_may_take(monkeypatch: pytest.MonkeyPatch) -> None:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert all(port < low for port in processes.free_ports(50))
    # A port already bound is skipped; too few left is an error, not a reused port.
    taken = processes.free_port()
    monkeypatch.setattr(processes, "LISTEN_PORTS", range(taken, taken + 3))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", taken))
        assert sorted(processes.free_ports(2)) == [taken + 1, taken + 2]
        with pytest.raises(OSError, match="only 2 of 3 free ports"):
            processes.free_ports(3)


def test_every_binary_the_sandbox_runs_is_installed() -> None:
    for name in ("prometheus", "promtool", "alertmanager", "amtool", "node_exporter", "prometheus-postgres-exporter",
                 "prometheus-redis-exporter", "blackbox_exporter", "redis-server", "initdb", "postgres",
                 "psql", "pg_isready"):
        assert os.access(processes.binary(name), os.X_OK), name
    assert re.fullmatch(r"/usr/lib/postgresql/\d+/bin/postgres", processes.binary("postgres"))


def test_a_missing_binary_names_its_debian_package() -> None:
    processes.PACKAGES["no-such-binary-here"] = "some-debian-package"
    try:
        with pytest.raises(processes.BinaryMissing, match="apt-get install some-debian-package"):
            processes.binary("no-such-binary-here")
    finally:
        del processes.PACKAGES["no-such-binary-here"]


# --- the supervisor ----------------------------------------------------------------------------

def test_start_waits_until_ready_and_logs_to_the_workdir() -> None:
    port = processes.free_port()
    with Supervisor() as supervisor:
        supervisor.start("web", _http_server(port), ready_url=f"http://127.0.0.1:{port}/")
        assert supervisor.running("web")
        assert "Directory listing" in _get(f"http://127.0.0.1:{port}/")
        assert supervisor.log_path("web") == supervisor.workdir / "logs" / "web.log"
        _until(lambda: "GET /" in supervisor.log_path("web").read_text())  # stdout and stderr go there
        assert supervisor.stop("web") is not None
        assert not supervisor.running("web")
        workdir = supervisor.workdir
    assert not workdir.exists(), "a temporary workdir is removed after a clean exit"


def test_a_process_dying_before_it_is_ready_is_reported_with_its_log_tail(tmp_path: Path) -> None:
    script = "for i in $(seq 1 100); do echo line $i; done; echo 'fatal: bad flag' >&2; exit 3"
    with Supervisor(tmp_path) as supervisor:
        with pytest.raises(ProcessFailed) as failure:
            supervisor.start("broken", ["sh", "-c", script], ready_url=f"http://127.0.0.1:{processes.free_port()}/")
        message = str(failure.value)
        assert "broken exited (exit code 3) before it was ready" in message
        assert "fatal: bad flag" in message and "line 100" in message
        assert "line 60\n" not in message, "only the last 40 lines"
        assert not supervisor.running("broken")


def test_a_process_never_ready_is_stopped_after_its_timeout(tmp_path: Path) -> None:
    with Supervisor(tmp_path) as supervisor:
        with pytest.raises(ProcessFailed, match=r"slow was not ready after 1 s"):
            supervisor.start("slow", ["sleep", "300"], ready=lambda: False, ready_timeout=1)
        assert not supervisor.running("slow")


def test_kill_then_restart() -> None:
    port = processes.free_port()
    url = f"http://127.0.0.1:{port}/"
    with Supervisor() as supervisor:
        first = supervisor.start("web", _http_server(port), ready_url=url)
        assert supervisor.kill("web") == -signal.SIGKILL
        assert not supervisor.running("web")
        second = supervisor.restart("web")
        assert supervisor.running("web") and second.pid != first.pid
        assert "Directory listing" in _get(url)
        # Restarting a running process stops it first.
        third = supervisor.restart("web")
        assert third.pid != second.pid and not _alive(second.pid)


def test_stop_escalates_to_sigkill(tmp_path: Path) -> None:
    with Supervisor(tmp_path) as supervisor:
        trapped = tmp_path / "trapped"
        supervisor.start("stubborn", ["sh", "-c", f"trap '' TERM; touch {trapped}; while :; do sleep 0.1; done"],
                         ready=trapped.exists)
        began = time.monotonic()
        assert supervisor.stop("stubborn", timeout=0.5) == -signal.SIGKILL
        assert time.monotonic() - began < 5


# The shell forks one child in its process group and one in a session of its own (as PostgreSQL's
# children do), and says who they are.
FAMILY = "sleep 300 & echo $! >> pids; setsid sleep 301 & echo $! >> pids; wait"


def _family_pids(directory: Path, leader: int) -> list[int]:
    _until(lambda: (directory / "pids").exists() and len((directory / "pids").read_text().split()) == 2)
    return [leader, *map(int, (directory / "pids").read_text().split())]


def test_exit_stops_every_process_and_what_it_forked(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), Supervisor() as supervisor:
        leader = supervisor.start("family", ["sh", "-c", FAMILY], cwd=tmp_path).pid
        pids = _family_pids(tmp_path, leader)
        assert all(_alive(pid) for pid in pids)
        raise RuntimeError("boom")
    _until(lambda: not any(_alive(pid) for pid in pids), timeout=5)
    assert supervisor.workdir.exists(), "an error keeps the logs for a post-mortem"
    processes.shutil.rmtree(supervisor.workdir)


PARENT = """
import pathlib, sys, time
sys.path.insert(0, {root!r})
from stack.sandbox.processes import Supervisor
supervisor = Supervisor()
if {use_with!r}:
    supervisor.__enter__()
pids = pathlib.Path({cwd!r}) / "pids"
pid = supervisor.start("family", ["sh", "-c", {family!r}], cwd={cwd!r},
                       ready=lambda: pids.exists() and len(pids.read_text().split()) == 2).pid
print(pid, supervisor.workdir, flush=True)
if {use_with!r}:
    time.sleep(120)
"""


@pytest.mark.parametrize("ending", ["SIGTERM", "SIGINT", "SIGHUP", "atexit"])
def test_the_parent_ending_stops_everything(tmp_path: Path, ending: str) -> None:
    """A signal to the parent ends its `with` block; a parent that just exits has atexit."""
    script = PARENT.format(root=str(ROOT), use_with=ending != "atexit", family=FAMILY, cwd=str(tmp_path))
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        leader, workdir = parent.stdout.readline().split()
        pids = _family_pids(tmp_path, int(leader))
        if ending != "atexit":
            parent.send_signal(signal.Signals[ending])
        # Generous: the parent's cleanup signals, waits and joins (up to ~25 s on a loaded machine).
        parent.wait(timeout=60)
    finally:
        parent.kill()
    _until(lambda: not any(_alive(pid) for pid in pids), timeout=5)
    assert not Path(workdir).exists()


# --- PostgreSQL and Redis ----------------------------------------------------------------------

def test_postgres_runs_as_postgres_and_the_exporter_role_is_scraped() -> None:
    with Supervisor() as supervisor:
        # Debian's postgres_exporter 0.11 rejects a password with a space or a quote ("malformed dsn").
        postgres = datastores.start_postgres(supervisor, exporter_password="s3cret,for-the-exporter")
        assert (postgres.host, postgres.database, postgres.user) == ("127.0.0.1", "medianest", "postgres_exporter")
        # PostgreSQL refuses root: it runs as postgres, in a directory of its own.
        postgres_uid = pwd.getpwnam("postgres").pw_uid
        assert os.stat(f"/proc/{supervisor.pid('postgres')}").st_uid == postgres_uid
        assert postgres.data_dir.stat().st_uid == postgres_uid
        assert postgres.data_dir.is_relative_to(supervisor.workdir)
        assert (postgres.socket_dir / f".s.PGSQL.{postgres.port}").is_socket()

        # The exporter's role logs in over TCP with its password and is a pg_monitor member.
        query = [processes.binary("psql"), "-h", postgres.host, "-p", str(postgres.port), "-U", postgres.user,
                 "-d", postgres.database, "-tAc", "SELECT pg_has_role(current_user, 'pg_monitor', 'member')"]
        result = subprocess.run(query, env=os.environ | {"PGPASSWORD": postgres.password}, capture_output=True,
                                text=True, timeout=30)
        assert (result.returncode, result.stdout.strip()) == (0, "t"), result.stderr
        wrong = subprocess.run(query, env=os.environ | {"PGPASSWORD": "wrong"}, capture_output=True, text=True,
                               timeout=30)
        assert "password authentication failed" in wrong.stderr

        # The way the sandbox runs it: Debian's postgres_exporter, configured by environment.
        port = processes.free_port()
        metrics = f"http://127.0.0.1:{port}/metrics"
        supervisor.start("postgres-exporter", [processes.binary("prometheus-postgres-exporter"),
                                               f"--web.listen-address=127.0.0.1:{port}"],
                         env={"DATA_SOURCE_URI": f"{postgres.host}:{postgres.port}/{postgres.database}?sslmode=disable",
                              "DATA_SOURCE_USER": postgres.user, "DATA_SOURCE_PASS": postgres.password},
                         ready_url=metrics)
        _until(lambda: re.search(r"^pg_up 1$", _get(metrics), re.M))

        # Down (PostgresDown), then back on the same data.
        assert datastores.stop_postgres(supervisor, postgres) == 0
        _until(lambda: re.search(r"^pg_up 0$", _get(metrics), re.M))
        supervisor.restart(postgres.process)
        _until(lambda: re.search(r"^pg_up 1$", _get(metrics), re.M))


def test_redis_answers_ping_and_wants_its_password() -> None:
    with Supervisor() as supervisor:
        redis = datastores.start_redis(supervisor, password="s3cret")
        assert redis.host == "127.0.0.1"
        assert datastores.redis_ping(redis.host, redis.port, "s3cret")
        assert not datastores.redis_ping(redis.host, redis.port)  # NOAUTH
        assert "s3cret" not in " ".join(Path(f"/proc/{supervisor.pid('redis')}/cmdline").read_text().split("\0"))
        supervisor.kill("redis")
        with pytest.raises(ConnectionRefusedError):
            datastores.redis_ping(redis.host, redis.port)
        supervisor.restart("redis")
        assert datastores.redis_ping(redis.host, redis.port, "s3cret")
        open_redis = datastores.start_redis(supervisor, name="redis-open")
        assert datastores.redis_ping(open_redis.host, open_redis.port)


# --- the webhook sink --------------------------------------------------------------------------

def _webhook(alertname: str, status: str, receiver: str) -> dict:
    """An Alertmanager webhook payload (version 4), trimmed."""
    return {"version": "4", "status": status, "receiver": receiver, "groupLabels": {"alertname": alertname},
            "alerts": [{"status": status, "labels": {"alertname": alertname, "severity": "critical"},
                        "annotations": {}, "startsAt": "2026-01-01T00:00:00Z"}]}


def test_the_sink_records_every_post_across_a_kill_and_a_restart(tmp_path: Path) -> None:
    port = processes.free_port()
    base = f"http://127.0.0.1:{port}"
    out = tmp_path / "notifications.jsonl"
    with Supervisor(tmp_path / "work") as supervisor:
        supervisor.start("sink", [sys.executable, "-m", "stack.sandbox.sink", "--port", str(port), "--out", str(out)],
                         cwd=ROOT, ready_url=f"{base}/notifications")
        before = time.time()
        assert _post(f"{base}/critical-alerts", _webhook("PostgresDown", "firing", "critical-alerts")) == 200
        assert len(sink.read_notifications(out)) == 1  # on disk before the answer

        supervisor.kill("sink")
        with out.open("a") as file:
            file.write('{"receiver": "cut sh')  # a line a kill cut short
        supervisor.restart("sink")  # same port, same file
        assert _post(f"{base}/default", _webhook("PostgresDown", "resolved", "default")) == 200
        assert _post(f"{base}/critical-alerts?x=1", _webhook("RedisDown", "firing", "critical-alerts")) == 200

        notifications = json.loads(_get(f"{base}/notifications"))
        assert notifications == sink.read_notifications(out)
        assert [n["receiver"] for n in notifications] == ["critical-alerts", "default", "critical-alerts"]
        assert all(before <= n["received_at"] <= time.time() for n in notifications)
        assert notifications[0]["payload"] == _webhook("PostgresDown", "firing", "critical-alerts")

    records = sink.alerts_in(notifications, "PostgresDown")
    assert [(r["receiver"], r["alertname"], r["status"]) for r in records] == [
        ("critical-alerts", "PostgresDown", "firing"), ("default", "PostgresDown", "resolved")]
    assert records[0]["labels"] == {"alertname": "PostgresDown", "severity": "critical"}
    assert records[0]["received_at"] == notifications[0]["received_at"]
    assert len(sink.alerts_in(notifications, "PostgresDown", status="firing")) == 1
    assert len(sink.alerts_in(notifications, None, receiver="critical-alerts")) == 2
    assert sink.alerts_in(notifications, "Watchdog") == []
    assert sink.read_notifications(tmp_path / "missing.jsonl") == []
