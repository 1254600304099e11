"""Real binaries on loopback, owned and cleaned up: free ports, finding Debian's binaries, and a
`Supervisor` that starts processes, waits until they are ready, watches them and stops every one
of them.

Each process runs in its own process group (its own session), so stopping it reaches whatever it
forked too; the same isolation means a Ctrl-C at the terminal no longer reaches the children, so
the supervisor turns SIGINT/SIGTERM/SIGHUP of the parent into a normal exit that stops them.

A process that dies on its own is noticed within `poll_interval`, reaped, and reported (one line
naming it and its exit code or signal, then the tail of its log); then either the supervisor
records the death (`death()`, `check()`: the sandbox's CLI exits 1), or, with a `RestartPolicy`,
it is started again after an exponential backoff, until it has died too often within a window.

Nothing outlives the supervisor, even a SIGKILL of it: every child gets the parent-death signal
(SIGKILL, `prctl(PR_SET_PDEATHSIG)`), and a lifeline process (stack/sandbox/lifeline.py), told
each child's pid through a pipe, kills what is left of their sessions and descendants once the
pipe closes. A temporary workdir (`medianest-sandbox-*`) holds a lock file, locked for the
supervisor's lifetime: the next supervisor removes a workdir whose lock nobody holds any more.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import ctypes
import fcntl
import glob
import os
import pwd
import queue
import random
import re
import shutil
import signal
import socket
import stat
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

from stack import judges

LOOPBACK = "127.0.0.1"
LOG_TAIL_LINES = 40  # of a process that failed to start
DEATH_TAIL_LINES = 20  # of a process that died once running
WORKDIR_PREFIX = "medianest-sandbox-"
LOCK_FILE = "sandbox.lock"
# In a process's log, the line opening each start: `--- <time> starting: <argv>`.
START_MARKER = " starting: "
LIFELINE = Path(__file__).with_name("lifeline.py")

# --- ports -----------------------------------------------------------------------------------


def free_port() -> int:
    """A port free on 127.0.0.1 right now (the kernel's choice)."""
    return free_ports(1)[0]


# Listening ports are chosen below the kernel's ephemeral range: a port from that range, free
# when chosen, may be taken as the local port of an outgoing connection (a scrape, a remote
# write) before its component binds it ("address already in use", seen once on a loaded run).
LISTEN_PORTS = range(20000, 32768)


def _below_ephemeral() -> range:
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return LISTEN_PORTS
    return range(LISTEN_PORTS.start, min(LISTEN_PORTS.stop, low)) if low > LISTEN_PORTS.start + 1000 else LISTEN_PORTS


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports below the ephemeral range, in random order (parallel sandboxes
    rarely meet): every socket stays bound until all are chosen, so none is chosen twice."""
    candidates = list(_below_ephemeral())
    random.shuffle(candidates)
    sockets: list[socket.socket] = []
    try:
        for port in candidates:
            if len(sockets) == count:
                break
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                sock.close()
                continue
            sockets.append(sock)
        if len(sockets) < count:
            raise OSError(f"only {len(sockets)} of {count} free ports below the ephemeral range")
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


# --- binaries --------------------------------------------------------------------------------


class BinaryMissing(RuntimeError):
    pass


# The Debian package shipping a binary the sandbox runs that is not a judge built at the shipped
# version (stack/judges.py), where its name is not the binary's (a component's `sandbox_binary`,
# prometheus-postgres-exporter, is its package's name).
PACKAGES = {
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
    """The absolute path of a judge built at the shipped version, or of a binary from Debian's
    packages; BinaryMissing saying how to get it."""
    if name in judges.by_binary():
        try:
            return judges.path(name)
        except judges.JudgeMissing as error:
            raise BinaryMissing(str(error)) from None
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


class ProcessDied(ProcessFailed):
    """A process died once running, and is not (or no longer) restarted."""


@dataclass(frozen=True)
class RestartPolicy:
    """Restart a process that died after `first_delay` seconds, doubling at each failure up to
    `max_delay`; the `max_failures`-th death within `window` seconds is final."""

    first_delay: float = 1.0
    max_delay: float = 30.0
    max_failures: int = 5
    window: float = 300.0

    def delay(self, failures: int) -> float:
        return min(self.max_delay, self.first_delay * 2 ** max(0, failures - 1))


# A process's state, as far as the watcher is concerned: only a RUNNING one is watched.
STARTING, RUNNING, STOPPED, WAITING, DEAD = "starting", "running", "stopped", "waiting to restart", "dead"


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
    state: str = STARTING
    failures: list[float] = field(default_factory=list)  # when it died (time.monotonic()), within the window
    restart_at: float = 0.0


# Every supervisor not yet closed, for the atexit fallback.
_LIVE: set[Supervisor] = set()
# Readiness checks go to loopback directly, never through an HTTP(S)_PROXY of the environment.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@atexit.register
def _close_all() -> None:
    for supervisor in list(_LIVE):
        supervisor.close()


def _print_report(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Supervisor:
    """Owns every process it starts; `with Supervisor() as s:` stops them all on the way out.

    `workdir` (created if missing) holds `logs/<name>.log` for each process and whatever the
    caller puts there. Without one, a temporary directory (`medianest-sandbox-*`) is created and
    removed on exit, unless `keep` is true or an error ended the `with` block (it keeps the logs
    for a post-mortem); creating one first removes those of supervisors that were killed.

    A started process that dies is reported through `report` (by default: to stderr), then
    restarted if `restart` (a `RestartPolicy`) says so, else recorded: `death()` and `check()`.
    """

    def __init__(self, workdir: Path | str | None = None, *, keep: bool = False,
                 restart: RestartPolicy | None = None, report: Callable[[str], None] | None = None,
                 poll_interval: float = 0.2) -> None:
        self.temporary = workdir is None
        self._lock_fd: int | None = None
        if workdir is None:
            remove_stale_workdirs(report=report or _print_report)
            workdir = tempfile.mkdtemp(prefix=WORKDIR_PREFIX)
            # mkdtemp's 0700 would keep processes run as another user out of their directories.
            os.chmod(workdir, 0o711)
            self._lock_fd = _lock_workdir(Path(workdir))
        self.workdir = Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "logs").mkdir(exist_ok=True)
        self.keep = keep
        self.restart_policy = restart
        self.report = report or _print_report
        self.poll_interval = poll_interval
        self._processes: dict[str, _Process] = {}
        self._previous_handlers: dict[int, object] = {}
        self._lock = threading.RLock()
        self._closing = threading.Event()
        self._died = threading.Event()
        self._deaths: list[str] = []
        self._watcher: threading.Thread | None = None
        self._spawner: threading.Thread | None = None
        self._spawns: queue.SimpleQueue[tuple[concurrent.futures.Future, list[str], dict] | None] = (
            queue.SimpleQueue())
        self._lifeline: subprocess.Popen[bytes] | None = None
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
        self._closing.set()  # no more restarts, no more reports
        with self._lock:
            everything = list(reversed(self._processes.values()))
            for process in everything:
                process.state = STOPPED
        _terminate([p for p in everything if self._alive(p)], timeout)
        watcher = self._watcher
        if watcher is not None and watcher is not threading.current_thread():
            watcher.join(timeout=timeout)
        # Whatever the watcher started while this closed (it stops it itself; to be sure).
        _terminate([p for p in everything if self._alive(p)], timeout=2, signum=signal.SIGKILL)
        self._spawns.put(None)  # the spawner ends: anything it started that is still there gets SIGKILL
        self._close_lifeline()
        _LIVE.discard(self)
        keep = self.keep if keep is None else keep
        if self.temporary and not keep:
            shutil.rmtree(self.workdir, ignore_errors=True)
        elif self.temporary:
            # Kept on purpose: without its lock file, no later supervisor takes it for a stale one.
            with contextlib.suppress(FileNotFoundError):
                (self.workdir / LOCK_FILE).unlink()
            print(f"sandbox: files kept in {self.workdir}", file=sys.stderr)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

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
            with self._spawn(list(argv), stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                             stdout=log, stderr=subprocess.STDOUT, **_launch_options(env, cwd, user)) as command:
                try:
                    command.communicate(None if input is None else input.encode(), timeout=timeout)
                except BaseException:
                    command.kill()
                    raise
        if command.returncode != 0:
            raise ProcessFailed(self._failure(name, f"{name} failed with exit code {command.returncode}"))

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
        with self._lock:
            self._processes[name] = process
        return self._launch(process)

    def _launch(self, process: _Process) -> subprocess.Popen[bytes]:
        with self._lock:
            process.state = STARTING
        self._start_watching()
        with open(self.log_path(process.name), "ab") as log:
            log.write(f"--- {time.strftime('%H:%M:%S')}{START_MARKER}{' '.join(process.argv)}\n".encode())
            log.flush()
            # The child keeps its own copy of the log's descriptor.
            process.popen = self._spawn(process.argv, stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True,
                                        **_launch_options(process.env, process.cwd, process.user))
        try:
            self._wait_ready(process)
        except BaseException:
            with self._lock:
                process.state = STOPPED
            raise
        with self._lock:
            if process.state == STARTING:
                process.state = RUNNING
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
            if self._closing.is_set():
                _terminate([process], timeout=5)
                raise ProcessFailed(f"{process.name}: not started, the supervisor is closing")
            if time.monotonic() > deadline:
                _terminate([process], timeout=5)
                waited = process.ready_url or "its readiness check"
                raise ProcessFailed(self._failure(
                    process.name, f"{process.name} was not ready after {process.ready_timeout:g} s ({waited})"))
            time.sleep(0.1)

    def _failure(self, name: str, headline: str, lines: int = LOG_TAIL_LINES) -> str:
        return (f"{headline}\n--- last {lines} lines of {self.log_path(name)} ---\n"
                f"{self.log_tail(name, lines)}")

    def stop(self, name: str, timeout: float = 10) -> int | None:
        """Stop signal (SIGTERM unless told) to the process group, SIGKILL after `timeout`
        seconds; its exit code (None if it was never started). A stopped process is not
        restarted, nor reported as dead."""
        process = self._stopping(name)
        _terminate([process], timeout)
        return process.popen.returncode if process.popen else None

    def kill(self, name: str) -> int | None:
        """SIGKILL to the process group and everything it forked, as a crash would end it (but
        on purpose: neither reported nor restarted)."""
        process = self._stopping(name)
        _terminate([process], timeout=5, signum=signal.SIGKILL)
        return process.popen.returncode if process.popen else None

    def restart(self, name: str) -> subprocess.Popen[bytes]:
        """Stop it if it runs, then start the same command again and wait until it is ready."""
        process = self._stopping(name)
        _terminate([process], timeout=10)
        return self._launch(process)

    def _stopping(self, name: str) -> _Process:
        with self._lock:
            process = self._get(name)
            process.state = STOPPED
        return process

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

    # --- deaths --------------------------------------------------------------------------------

    def death(self, timeout: float = 0) -> str | None:
        """What died for good (its report's first line), waiting up to `timeout` seconds for
        it; None while every process started runs (or was stopped on purpose)."""
        self._died.wait(timeout)
        with self._lock:
            return self._deaths[0] if self._deaths else None

    def check(self) -> None:
        """ProcessDied if a process died for good."""
        if (headline := self.death()) is not None:
            raise ProcessDied(headline)

    def _start_watching(self) -> None:
        with self._lock:
            if self._watcher is None and not self._closing.is_set():
                self._watcher = threading.Thread(target=self._watch, name="sandbox-watcher", daemon=True)
                self._watcher.start()

    def _watch(self) -> None:
        """The watcher thread: reaps and reports what died, restarts what is due."""
        while not self._closing.wait(self.poll_interval):
            try:
                self._reap()
                self._restart_due()
            except Exception as error:  # never let the watching stop silently
                self.report(f"sandbox: the supervisor's watcher failed: {error!r}")

    def _reap(self) -> None:
        with self._lock:
            dead = [p for p in self._processes.values()
                    if p.state == RUNNING and p.popen is not None and p.popen.poll() is not None]
            for process in dead:
                process.state = DEAD
        for process in dead:
            assert process.popen is not None
            _signal_group(process, signal.SIGKILL)  # what it forked in its group goes with it
            self._died_once(process, f"{process.name} died ({_describe(process.popen.returncode)})")

    def _died_once(self, process: _Process, headline: str) -> None:
        """Report a death (or a failed restart), then restart it later or give up."""
        policy = self.restart_policy
        if self._closing.is_set():
            return
        if policy is None:
            self._give_up(process, headline)
            return
        now = time.monotonic()
        process.failures = [t for t in process.failures if now - t < policy.window] + [now]
        failures = len(process.failures)
        if failures >= policy.max_failures:
            self._give_up(process, f"{headline}: {failures} failures within {policy.window:g} s, not restarted")
            return
        delay = policy.delay(failures)
        with self._lock:
            if process.state in (STOPPED, RUNNING):  # stopped, or started again, meanwhile
                return
            process.state, process.restart_at = WAITING, now + delay
        self.report(self._failure(process.name, f"sandbox: {headline}; restarting it in {delay:g} s "
                                                f"(failure {failures} of {policy.max_failures} within "
                                                f"{policy.window:g} s)", DEATH_TAIL_LINES))

    def _give_up(self, process: _Process, headline: str) -> None:
        with self._lock:
            if process.state == STOPPED:
                return
            process.state = DEAD
            self._deaths.append(headline)
        self.report(self._failure(process.name, f"sandbox: {headline}", DEATH_TAIL_LINES))
        self._died.set()

    def _restart_due(self) -> None:
        for process in list(self._processes.values()):
            with self._lock:
                if process.state != WAITING or time.monotonic() < process.restart_at or self._closing.is_set():
                    continue
            try:
                popen = self._launch(process)
            except Exception as error:  # not ready, or not even started (its binary gone...)
                if self._closing.is_set():
                    return
                with self._lock:
                    process.state = DEAD
                reason = (str(error).splitlines() or [repr(error)])[0]
                self._died_once(process, f"{process.name} failed to restart: {reason}")
            else:
                self.report(f"sandbox: {process.name} restarted (pid {popen.pid})")

    # --- starting processes ---------------------------------------------------------------------

    def _spawn(self, argv: list[str], **options: object) -> subprocess.Popen[bytes]:
        """`subprocess.Popen(argv, **options)` from the spawner thread, with the parent-death
        signal; the lifeline told its pid.

        The kernel sends the parent-death signal when the *thread* that started the child ends:
        one thread starts every process, whichever thread asks (the main one, the watcher, a
        caller's), and it ends only once `close` has stopped them all."""
        future: concurrent.futures.Future[subprocess.Popen[bytes]] = concurrent.futures.Future()
        with self._lock:
            if self._spawner is None and not self._closing.is_set():
                self._spawner = threading.Thread(target=self._spawn_forever, name="sandbox-spawner", daemon=True)
                self._spawner.start()
            spawner = None if self._closing.is_set() else self._spawner
        if spawner is None:  # closing or closed: started here, with the lifeline alone
            popen = subprocess.Popen(argv, **options)  # type: ignore[call-overload]
        else:
            self._spawns.put((future, argv, options))
            try:
                popen = future.result()
            except BaseException:  # interrupted while waiting: what it started must not stay
                future.add_done_callback(lambda done: done.exception() or done.result().kill())
                raise
        self._tell_lifeline(popen.pid)
        return popen

    def _spawn_forever(self) -> None:
        preexec = _parent_death_signal()
        while (request := self._spawns.get()) is not None:
            future, argv, options = request
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(subprocess.Popen(argv, preexec_fn=preexec, **options))
                except BaseException as error:
                    future.set_exception(error)

    # --- the lifeline --------------------------------------------------------------------------

    def _tell_lifeline(self, pid: int) -> None:
        """Tell the lifeline about a child (starting the lifeline first if need be)."""
        with self._lock:
            if self._lifeline is None or self._lifeline.poll() is not None:
                # Started here, not by the spawner: without the parent-death signal, since it
                # must outlive this process to do its job; in a session of its own, out of reach
                # of the terminal's signals.
                self._lifeline = subprocess.Popen([sys.executable, "-I", "-S", str(LIFELINE)],
                                                  stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                                  start_new_session=True)
            assert self._lifeline.stdin is not None
            try:
                self._lifeline.stdin.write(f"{pid}\n".encode())
                self._lifeline.stdin.flush()
            except OSError:
                pass  # gone: the parent-death signal remains

    def _close_lifeline(self) -> None:
        lifeline, self._lifeline = self._lifeline, None
        if lifeline is None:
            return
        with contextlib.suppress(OSError):
            lifeline.stdin.close()  # type: ignore[union-attr]
        try:
            lifeline.wait(timeout=5)
        except subprocess.TimeoutExpired:
            lifeline.kill()
            lifeline.wait()


# --- temporary workdirs -----------------------------------------------------------------------


def _lock_workdir(workdir: Path) -> int:
    """Create `<workdir>/sandbox.lock` already locked (locked under another name, then renamed:
    no other supervisor ever sees it unlocked), with this process's pid; its descriptor, to hold
    for the supervisor's lifetime. The lock goes when the process does, however it ends."""
    partial = workdir / f".{LOCK_FILE}.{os.getpid()}"
    fd = os.open(partial, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.rename(partial, workdir / LOCK_FILE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def remove_stale_workdirs(parent: Path | str | None = None,
                          report: Callable[[str], None] | None = None) -> list[Path]:
    """Remove the temporary workdirs of supervisors that were killed, in `parent` (by default:
    the temporary directory); the paths removed.

    Only a directory named `medianest-sandbox-*`, not a symbolic link, owned by this user, with a
    `sandbox.lock` file of this user's that nobody holds locked; never a directory without that
    file (another program's, a supervisor's creating its lock, or a workdir kept on purpose)."""
    parent = Path(parent or tempfile.gettempdir())
    removed = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(WORKDIR_PREFIX):
            continue
        try:
            if not entry.is_dir(follow_symlinks=False) or entry.stat(follow_symlinks=False).st_uid != os.geteuid():
                continue
            fd = os.open(os.path.join(entry.path, LOCK_FILE), os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # its supervisor runs
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
            (report or _print_report)(f"sandbox: removed {entry.path}, left behind by a sandbox that was killed")
        finally:
            os.close(fd)
    return removed


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


PR_SET_PDEATHSIG = 1


def _parent_death_signal() -> Callable[[], None] | None:
    """For `preexec_fn`: SIGKILL the child when the thread that started it ends (with its
    process, even by a SIGKILL). subprocess runs it after switching to `user` (a change of user
    would clear it)."""
    if sys.platform != "linux":
        return None
    prctl, parent = ctypes.CDLL(None, use_errno=True).prctl, os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent ended before that: nobody would send it
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


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
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"
