"""Real binaries on loopback, owned and cleaned up: free ports, finding Debian's binaries, and a
`Supervisor` that starts processes, waits until they are ready and stops every one of them.

Each process runs in its own process group (its own session), so stopping it reaches whatever it
forked too; the same isolation means a Ctrl-C at the terminal no longer reaches the children, so
the supervisor turns SIGINT/SIGTERM/SIGHUP of the parent into a normal exit that stops them.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType

LOOPBACK = "127.0.0.1"
LOG_TAIL_LINES = 40

# --- ports -----------------------------------------------------------------------------------


def free_port() -> int:
    """A port free on 127.0.0.1 right now (the kernel's choice)."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports: every socket stays bound until all are chosen, so the kernel
    cannot hand out the same port twice."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((LOOPBACK, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


# --- binaries --------------------------------------------------------------------------------


class BinaryMissing(RuntimeError):
    pass


# The Debian package shipping each binary the sandbox runs.
PACKAGES = {
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "amtool": "prometheus-alertmanager",
    "prometheus-node-exporter": "prometheus-node-exporter",
    "prometheus-postgres-exporter": "prometheus-postgres-exporter",
    "prometheus-redis-exporter": "prometheus-redis-exporter",
    "prometheus-blackbox-exporter": "prometheus-blackbox-exporter",
    "redis-server": "redis-server",
    "redis-cli": "redis-tools",
    "initdb": "postgresql",
    "postgres": "postgresql",
    "pg_ctl": "postgresql",
    "psql": "postgresql-client",
    "pg_isready": "postgresql-client",
}
# Debian keeps the server's binaries off PATH, one directory per major version.
POSTGRES_BIN_DIRS = "/usr/lib/postgresql/*/bin"


def _postgres_bin_dirs() -> list[str]:
    """Newest major version first."""
    def version(path: str) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", Path(path).parent.name))

    return sorted(glob.glob(POSTGRES_BIN_DIRS), key=version, reverse=True)


def binary(name: str) -> str:
    """The absolute path of a binary from Debian's packages, or BinaryMissing naming the package."""
    candidates = []
    if PACKAGES.get(name, "").startswith("postgresql"):
        # /usr/bin/psql etc. are Debian's version-picking wrappers: prefer the real binaries.
        candidates = [os.path.join(directory, name) for directory in _postgres_bin_dirs()]
    for candidate in candidates:
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found:
        return found
    package = PACKAGES.get(name, name)
    raise BinaryMissing(f"{name} is not installed: `make tools` installs it (Debian: apt-get install {package})")


# --- processes -------------------------------------------------------------------------------


class ProcessFailed(RuntimeError):
    pass


@dataclass
class _Process:
    name: str
    argv: list[str]
    env: dict[str, str] | None
    cwd: Path | None
    user: str | None
    ready_url: str | None
    ready_timeout: float
    ready: Callable[[], bool] | None
    stop_signal: signal.Signals
    popen: subprocess.Popen[bytes] | None = field(default=None)


# Every supervisor not yet closed, for the atexit fallback.
_LIVE: set[Supervisor] = set()
# Readiness checks go to loopback directly, never through an HTTP(S)_PROXY of the environment.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@atexit.register
def _close_all() -> None:
    for supervisor in list(_LIVE):
        supervisor.close()


class Supervisor:
    """Owns every process it starts; `with Supervisor() as s:` stops them all on the way out.

    `workdir` (created if missing) holds `logs/<name>.log` for each process and whatever the
    caller puts there. Without one, a temporary directory is created and removed on exit, unless
    `keep` is true or an error ended the `with` block (it keeps the logs for a post-mortem).
    """

    def __init__(self, workdir: Path | str | None = None, *, keep: bool = False) -> None:
        self.temporary = workdir is None
        if workdir is None:
            workdir = tempfile.mkdtemp(prefix="medianest-sandbox-")
            # mkdtemp's 0700 would keep processes run as another user out of their directories.
            os.chmod(workdir, 0o711)
        self.workdir = Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "logs").mkdir(exist_ok=True)
        self.keep = keep
        self._processes: dict[str, _Process] = {}
        self._previous_handlers: dict[int, object] = {}
        _LIVE.add(self)

    # --- context manager -------------------------------------------------------------------

    def __enter__(self) -> Supervisor:
        self._handle_signals()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        try:
            self.close(keep=self.keep or isinstance(error, Exception))
        finally:
            self._restore_signals()

    def _handle_signals(self) -> None:
        """SIGTERM and SIGHUP would end the parent without cleanup: make them raise SystemExit,
        so the `with` block exits and stops every child. A handler someone installed stays; SIGINT
        already raises KeyboardInterrupt."""
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may set handlers; atexit remains

        def terminate(signum: int, frame: FrameType | None) -> None:
            raise SystemExit(128 + signum)

        for signum in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(signum) is signal.SIG_DFL:
                self._previous_handlers[signum] = signal.signal(signum, terminate)

    def _restore_signals(self) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._previous_handlers.clear()

    def close(self, keep: bool | None = None, timeout: float = 10) -> None:
        """Stop every process (latest first, all signalled at once), then remove a temporary
        workdir unless `keep` (by default: as told to the constructor)."""
        _terminate([p for p in reversed(self._processes.values()) if self._alive(p)], timeout)
        _LIVE.discard(self)
        keep = self.keep if keep is None else keep
        if self.temporary and not keep:
            shutil.rmtree(self.workdir, ignore_errors=True)
        elif self.temporary:
            print(f"sandbox: files kept in {self.workdir}", file=sys.stderr)

    # --- directories -------------------------------------------------------------------------

    def directory(self, name: str, owner: str | None = None, mode: int = 0o700) -> Path:
        """`<workdir>/<name>`, created and owned by `owner` (a process run as that user writes there)."""
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(mode)
        if owner is not None:
            account = pwd.getpwnam(owner)
            os.chown(path, account.pw_uid, account.pw_gid)
        return path

    def log_path(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"

    def log_tail(self, name: str, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path(name).read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # --- one-shot commands -------------------------------------------------------------------

    def run(self, name: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
            cwd: Path | str | None = None, user: str | None = None, input: str | None = None,
            timeout: float = 120) -> None:
        """Run a command to completion (initdb, psql), its output appended to `logs/<name>.log`;
        ProcessFailed with the log's tail when it fails."""
        with open(self.log_path(name), "ab") as log:
            log.write(f"--- {' '.join(argv)}\n".encode())
            log.flush()
            result = subprocess.run(list(argv), stdout=log, stderr=subprocess.STDOUT, timeout=timeout,
                                    input=None if input is None else input.encode(),
                                    **_launch_options(env, cwd, user))
        if result.returncode != 0:
            raise ProcessFailed(self._failure(name, f"{name} failed with exit code {result.returncode}"))

    # --- long-running processes --------------------------------------------------------------

    def start(self, name: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
              cwd: Path | str | None = None, user: str | None = None, ready_url: str | None = None,
              ready_timeout: float = 60, ready: Callable[[], bool] | None = None,
              stop_signal: signal.Signals = signal.SIGTERM) -> subprocess.Popen[bytes]:
        """Start `argv` as `name` and wait until `ready_url` answers 200 and `ready()` is true.

        `env` is added to the parent's environment. `user` runs it as that user (the files it
        writes must be theirs: see `directory`). `stop_signal` is what `stop` sends first.
        """
        if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
            raise ValueError(f"process name {name!r}: letters, digits, '.', '_' and '-' only")
        if name in self._processes and self.running(name):
            raise ValueError(f"{name} is already running")
        process = _Process(name, list(argv), None if env is None else dict(env),
                           None if cwd is None else Path(cwd), user, ready_url, ready_timeout, ready,
                           stop_signal)
        self._processes[name] = process
        return self._launch(process)

    def _launch(self, process: _Process) -> subprocess.Popen[bytes]:
        with open(self.log_path(process.name), "ab") as log:
            log.write(f"--- {time.strftime('%H:%M:%S')} starting: {' '.join(process.argv)}\n".encode())
            log.flush()
            # The child keeps its own copy of the log's descriptor.
            process.popen = subprocess.Popen(process.argv, stdin=subprocess.DEVNULL, stdout=log,
                                             stderr=subprocess.STDOUT, start_new_session=True,
                                             **_launch_options(process.env, process.cwd, process.user))
        self._wait_ready(process)
        return process.popen

    def _wait_ready(self, process: _Process) -> None:
        deadline = time.monotonic() + process.ready_timeout
        assert process.popen is not None
        while True:
            code = process.popen.poll()
            if code is not None:
                _signal_group(process, signal.SIGKILL)  # whatever it forked goes with it
                raise ProcessFailed(self._failure(process.name,
                                                  f"{process.name} exited ({_describe(code)}) before it was ready"))
            if _answers(process.ready_url) and _true(process.ready):
                return
            if time.monotonic() > deadline:
                _terminate([process], timeout=5)
                waited = process.ready_url or "its readiness check"
                raise ProcessFailed(self._failure(
                    process.name, f"{process.name} was not ready after {process.ready_timeout:g} s ({waited})"))
            time.sleep(0.1)

    def _failure(self, name: str, headline: str) -> str:
        return (f"{headline}\n--- last {LOG_TAIL_LINES} lines of {self.log_path(name)} ---\n"
                f"{self.log_tail(name)}")

    def stop(self, name: str, timeout: float = 10) -> int | None:
        """Stop signal (SIGTERM unless told) to the process group, SIGKILL after `timeout`
        seconds; its exit code (None if it was never started)."""
        process = self._get(name)
        _terminate([process], timeout)
        return process.popen.returncode if process.popen else None

    def kill(self, name: str) -> int | None:
        """SIGKILL to the process group and everything it forked, as a crash would end it."""
        process = self._get(name)
        _terminate([process], timeout=5, signum=signal.SIGKILL)
        return process.popen.returncode if process.popen else None

    def restart(self, name: str) -> subprocess.Popen[bytes]:
        """Stop it if it runs, then start the same command again and wait until it is ready."""
        process = self._get(name)
        _terminate([process], timeout=10)
        return self._launch(process)

    def running(self, name: str) -> bool:
        return self._alive(self._get(name))

    def pid(self, name: str) -> int | None:
        process = self._get(name)
        return process.popen.pid if process.popen else None

    def names(self) -> list[str]:
        return list(self._processes)

    def _get(self, name: str) -> _Process:
        try:
            return self._processes[name]
        except KeyError:
            raise KeyError(f"no process named {name!r} was started (known: {sorted(self._processes)})") from None

    @staticmethod
    def _alive(process: _Process) -> bool:
        return process.popen is not None and process.popen.poll() is None


def _terminate(processes: list[_Process], timeout: float, signum: int | None = None) -> None:
    """Each process's stop signal (or `signum`) to its group, SIGKILL to the groups still there
    after `timeout`; then SIGKILL to whatever each forked that left its group (PostgreSQL's
    children call setsid), so nothing outlives it."""
    running = [p for p in processes if p.popen is not None and p.popen.poll() is None]
    trees = [_descendants(p.popen.pid) for p in running if p.popen]
    for process in running:
        _signal_group(process, process.stop_signal if signum is None else signum)
    deadline = time.monotonic() + timeout
    for process, tree in zip(running, trees, strict=True):
        assert process.popen is not None
        try:
            process.popen.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.popen.wait()
        _signal_group(process, signal.SIGKILL)
        for pid, started in tree:
            if _stat(pid)[1:] == (started,):  # still the same process, not a reused pid
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def _stat(pid: int) -> tuple[int, int] | tuple[()]:
    """(parent pid, start time) of a live process from /proc, () when gone or a zombie."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ()
    fields = text.rsplit(")", 1)[1].split()  # after "pid (command)": state, ppid, ..., starttime (22nd)
    return () if fields[0] in "ZX" else (int(fields[1]), int(fields[19]))


def _descendants(root: int) -> set[tuple[int, int]]:
    """Every live descendant of `root` as (pid, start time)."""
    parents: dict[int, list[tuple[int, int]]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))):
            parents.setdefault(stat[0], []).append((int(entry), stat[1]))
    found: set[tuple[int, int]] = set()
    todo = [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.add(child)
            todo.append(child[0])
    return found


def _launch_options(env: Mapping[str, str] | None, cwd: Path | str | None, user: str | None) -> dict:
    """subprocess options: `env` over the parent's environment; `user` with that user's own
    groups (subprocess's `user=` alone would keep root's group) and home."""
    environment = dict(os.environ)
    options: dict = {"cwd": cwd}
    if user is not None and user != pwd.getpwuid(os.geteuid()).pw_name:
        account = pwd.getpwnam(user)
        options |= {"user": account.pw_uid, "group": account.pw_gid,
                    "extra_groups": os.getgrouplist(user, account.pw_gid)}
        environment |= {"HOME": account.pw_dir, "USER": user, "LOGNAME": user}
    options["env"] = environment | dict(env or {})
    return options


def _signal_group(process: _Process, signum: int) -> None:
    # The group outlives a leader that exited but was not yet reaped; a reaped group may be gone.
    if process.popen is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.popen.pid, signum)


def _answers(url: str | None) -> bool:
    if url is None:
        return True
    try:
        with _NO_PROXY.open(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _true(check: Callable[[], bool] | None) -> bool:
    if check is None:
        return True
    try:
        return bool(check())
    except OSError:  # e.g. connection refused while it starts
        return False


def _describe(code: int) -> str:
    if code < 0:
        return f"exit code {code}, killed by {signal.Signals(-code).name}"
    return f"exit code {code}"
