"""A throwaway PostgreSQL and Redis for the sandbox, on free loopback ports, started by a
`Supervisor` (their processes are named `postgres` and `redis`: stop, kill or restart them by
those names to take a dependency down and bring it back)."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from stack.sandbox.processes import LOOPBACK, Supervisor, binary, free_port

POSTGRES = "postgres"
REDIS = "redis"
# PostgreSQL refuses to run as root; as anyone else it runs as that user.
POSTGRES_OS_USER = "postgres"
SUPERUSER = "postgres"


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    database: str
    user: str  # the exporter's role (pg_monitor)
    password: str
    superuser: str  # trusted on the unix socket only
    socket_dir: Path
    data_dir: Path
    process: str = POSTGRES

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}?sslmode=disable"


@dataclass(frozen=True)
class Redis:
    host: str
    port: int
    password: str | None
    process: str = REDIS

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}"


def start_postgres(supervisor: Supervisor, *, exporter_password: str | None = None, port: int | None = None,
                   database: str = "medianest", exporter_user: str = "postgres_exporter",
                   name: str = POSTGRES, host: str = LOOPBACK) -> Postgres:
    """initdb a cluster under `<workdir>/<name>` (owned by the postgres user), start it on
    `host`:<port> (127.0.0.1 by default) with its socket in the workdir, create `database` and a login role for the
    exporter granted pg_monitor. TCP connections need the password (scram-sha-256)."""
    os_user = POSTGRES_OS_USER if os.geteuid() == 0 else None
    home = supervisor.directory(name, owner=os_user)
    _check_reachable(home, os_user)
    data_dir, socket_dir = home / "data", supervisor.directory(f"{name}/sockets", owner=os_user)
    port = port or free_port()
    password = exporter_password or secrets.token_hex(16)
    if not (data_dir / "PG_VERSION").exists():
        supervisor.run(f"{name}-initdb", [
            binary("initdb"), f"--pgdata={data_dir}", f"--username={SUPERUSER}", "--encoding=UTF8",
            "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256",
            "--no-sync",  # throwaway: no need to wait for the disk
        ], cwd=home, user=os_user)
    hba = data_dir / "pg_hba.conf"
    remote = "host all all samenet scram-sha-256\n"
    if host != LOOPBACK and remote not in hba.read_text():
        # initdb allows loopback only; on a host address (a container network's gateway) the
        # clients are that network's containers, with the password.
        with hba.open("a") as file:
            file.write(remote)
    settings = {
        "listen_addresses": host,
        "port": str(port),
        "unix_socket_directories": str(socket_dir),
        # A throwaway cluster: durability only costs time.
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
    }
    argv = [binary("postgres"), "-D", str(data_dir)]
    for key, value in settings.items():
        argv += ["-c", f"{key}={value}"]

    def accepting() -> bool:
        command = [binary("pg_isready"), "-q", "-h", host, "-p", str(port), "-d", "postgres"]
        return subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0

    # SIGINT is PostgreSQL's fast shutdown; SIGTERM's smart shutdown waits for every client (an
    # exporter never leaves).
    supervisor.start(name, argv, cwd=home, user=os_user, ready=accepting, stop_signal=signal.SIGINT)
    # The password goes through stdin (a psql variable), never on a command line.
    supervisor.run(f"{name}-setup", [
        binary("psql"), "-h", str(socket_dir), "-p", str(port), "-U", SUPERUSER, "-d", "postgres",
        "-v", "ON_ERROR_STOP=1", "-v", f"role={exporter_user}", "-v", f"database={database}",
    ], input=_SETUP_SQL.replace("@PASSWORD@", password.replace("'", "''")), cwd=home)
    return Postgres(host=host, port=port, database=database, user=exporter_user, password=password,
                    superuser=SUPERUSER, socket_dir=socket_dir, data_dir=data_dir, process=name)


# Idempotent: a cluster kept from an earlier start (same workdir) already has both.
_SETUP_SQL = """
SELECT format('CREATE ROLE %I LOGIN', :'role')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \\gexec
ALTER ROLE :"role" PASSWORD '@PASSWORD@';
GRANT pg_monitor TO :"role";
SELECT format('CREATE DATABASE %I', :'database')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'database') \\gexec
"""


def stop_postgres(supervisor: Supervisor, postgres: Postgres | None = None, timeout: float = 10) -> int | None:
    """Take PostgreSQL down (PostgresDown); `supervisor.restart(postgres.process)` brings it back."""
    return supervisor.stop(postgres.process if postgres else POSTGRES, timeout=timeout)


def _check_reachable(directory: Path, user: str | None) -> None:
    if user is None:
        return
    result = subprocess.run(["test", "-w", str(directory)], user=user)
    if result.returncode != 0:
        raise PermissionError(f"PostgreSQL runs as {user}, who cannot reach {directory}: give the Supervisor a "
                              f"workdir every user can traverse (its own temporary one is)")


def start_redis(supervisor: Supervisor, *, password: str | None = None, port: int | None = None,
                name: str = REDIS, host: str = LOOPBACK) -> Redis:
    """redis-server on `host`:<port> (127.0.0.1 by default), nothing persisted; `password` sets requirepass. Its
    settings are a file in the workdir, so the password is on no command line."""
    home = supervisor.directory(name)
    port = port or free_port()
    lines = [
        f"bind {host}",
        f"port {port}",
        "daemonize no",
        'save ""',  # no RDB snapshots
        "appendonly no",
        f"dir {home}",
        'logfile ""',  # stdout: the supervisor's log
    ]
    if password:
        lines.append(f'requirepass "{password}"')
    elif host != LOOPBACK:
        # Without a password Redis answers loopback only ("protected mode"); a host address is
        # chosen on purpose (a private container network's gateway).
        lines.append("protected-mode no")
    config = home / "redis.conf"
    config.write_text("\n".join(lines) + "\n")
    config.chmod(0o600)
    supervisor.start(name, [binary("redis-server"), str(config)], cwd=home,
                     ready=lambda: redis_ping(host, port, password))
    return Redis(host=host, port=port, password=password, process=name)


def redis_ping(host: str, port: int, password: str | None = None, timeout: float = 2) -> bool:
    """True when Redis answers PING with PONG (after AUTH when a password is given)."""
    with socket.create_connection((host, port), timeout=timeout) as connection:
        stream = connection.makefile("rwb")
        if password:
            stream.write(_command("AUTH", password))
            stream.flush()
            if not stream.readline().startswith(b"+OK"):
                return False
        stream.write(_command("PING"))
        stream.flush()
        return stream.readline().strip() == b"+PONG"


def _command(*parts: str) -> bytes:
    """A command in RESP, Redis's protocol: an array of bulk strings."""
    encoded = [part.encode() for part in parts]
    return b"*%d\r\n" % len(encoded) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in encoded)
