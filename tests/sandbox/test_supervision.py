"""The supervisor watches what it started: a process that dies is reported (its name, how it
ended, its log's tail) and reaped, then recorded (the sandbox exits 1) or restarted with a
backoff; nothing it started outlives it, even a SIGKILL of it; and the temporary directory a
killed supervisor left is removed by the next one, never a directory that is not a sandbox's.

On trivial processes (sh, sleep) first, then on the real sandbox (`python -m stack sandbox`)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack.sandbox import processes
from stack.sandbox.processes import LOCK_FILE, WORKDIR_PREFIX, ProcessDied, RestartPolicy, Supervisor

ROOT = Path(__file__).resolve().parents[2]


# --- looking at processes through /proc -------------------------------------------------------

def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time) of a process, None when there is none (reaped)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[1]), int(fields[19])


def _alive(process: tuple[int, int]) -> bool:
    """(pid, start time) still running: not gone, not a zombie, not another process on that pid."""
    found = _stat(process[0])
    return found is not None and found[0] not in "ZX" and found[2] == process[1]


def _descendants(pid: int) -> set[tuple[int, int]]:
    """Every live descendant of `pid`, as (pid, start time), from the kernel's children lists."""
    found: set[tuple[int, int]] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for children in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                pids = [int(child) for child in children.read_text().split()]
            except OSError:
                continue
            for child in pids:
                if (stat := _stat(child)) and stat[0] not in "ZX" and (child, stat[2]) not in found:
                    found.add((child, stat[2]))
                    todo.append(child)
    return found


def _until(condition, timeout: float = 10, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.05)
    return value


def _kill_leftovers(processes: set[tuple[int, int]]) -> None:
    """SIGKILL what is still there (a test that failed leaves nothing on the machine)."""
    for pid, start in processes:
        if _alive((pid, start)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _reaped_or_gone(pid: int, parent: int) -> bool:
    """Not a zombie child of `parent`: `parent` reaped it (or it is gone altogether)."""
    found = _stat(pid)
    return found is None or found[1] != parent or found[0] not in "ZX"


# --- a death, reported and reaped ------------------------------------------------------------

# Thirty numbered lines in its log, then it waits to be killed.
NUMBERED = "for i in $(seq 1 30); do echo line $i; done; exec sleep 300"


def _numbered(supervisor: Supervisor, name: str) -> int:
    log = supervisor.log_path(name)

    def ready() -> bool:  # this start's thirty lines are there (the log has those of earlier starts)
        text = log.read_text()
        return text.count("line 30\n") == text.count(" starting: ")

    return supervisor.start(name, ["sh", "-c", NUMBERED], ready=ready).pid


def test_a_child_that_dies_is_reported_with_its_log_tail_reaped_and_recorded(tmp_path: Path) -> None:
    reports: list[str] = []
    with Supervisor(tmp_path, report=reports.append, poll_interval=0.05) as supervisor:
        pid = _numbered(supervisor, "worker")
        supervisor.start("bystander", ["sleep", "300"])
        assert supervisor.death() is None
        supervisor.check()

        os.kill(pid, signal.SIGKILL)
        assert supervisor.death(timeout=5) == "worker died (killed by SIGKILL)"
        assert _reaped_or_gone(pid, os.getpid()), "the dead child is left a zombie"
        with pytest.raises(ProcessDied, match=r"^worker died \(killed by SIGKILL\)$"):
            supervisor.check()
        [report] = reports
        lines = report.splitlines()
        assert lines[0] == "sandbox: worker died (killed by SIGKILL)"
        assert lines[1] == f"--- last 20 lines of {supervisor.log_path('worker')} ---"
        assert lines[2:] == [f"line {i}" for i in range(11, 31)]
        assert supervisor.running("bystander") and not supervisor.running("worker")


def test_an_exit_code_is_reported_too(tmp_path: Path) -> None:
    reports: list[str] = []
    with Supervisor(tmp_path, report=reports.append, poll_interval=0.05) as supervisor:
        go = tmp_path / "go"
        supervisor.start("quitter", ["sh", "-c", f"echo about to quit; while [ ! -e {go} ]; do sleep 0.05; done; "
                                                 "echo 'fatal: lost my config' >&2; exit 3"])
        go.touch()
        assert supervisor.death(timeout=5) == "quitter died (exit code 3)"
        assert reports[0].splitlines()[0] == "sandbox: quitter died (exit code 3)"
        assert reports[0].splitlines()[-2:] == ["about to quit", "fatal: lost my config"]


def test_a_child_stopped_or_killed_on_purpose_is_neither_reported_nor_restarted(tmp_path: Path) -> None:
    reports: list[str] = []
    with Supervisor(tmp_path, report=reports.append, poll_interval=0.05,
                    restart=RestartPolicy(first_delay=0.05)) as supervisor:
        supervisor.start("stopped", ["sleep", "300"])
        supervisor.start("killed", ["sleep", "300"])
        assert supervisor.stop("stopped") == -signal.SIGTERM
        assert supervisor.kill("killed") == -signal.SIGKILL
        time.sleep(0.5)
        assert reports == [] and supervisor.death() is None
        assert not supervisor.running("stopped") and not supervisor.running("killed")
        supervisor.restart("killed")  # and watched again
        os.kill(supervisor.pid("killed"), signal.SIGKILL)
        _until(lambda: any("killed restarted" in r for r in reports), what="the restart")


# --- restarts ---------------------------------------------------------------------------------

def test_with_restart_a_killed_child_comes_back_after_a_growing_backoff_until_it_dies_too_often(
        tmp_path: Path) -> None:
    reports: list[str] = []
    policy = RestartPolicy(first_delay=0.3, max_delay=0.6, max_failures=4, window=60)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [0.3, 0.6, 0.6, 0.6]  # doubling, capped
    with Supervisor(tmp_path, report=reports.append, poll_interval=0.05, restart=policy) as supervisor:
        pids = [_numbered(supervisor, "worker")]
        for failure, delay in ((1, 0.3), (2, 0.6), (3, 0.6)):
            killed = time.monotonic()
            os.kill(pids[-1], signal.SIGKILL)
            pids.append(_until(lambda: supervisor.running("worker") and supervisor.pid("worker") != pids[-1]
                               and supervisor.pid("worker"), what="the worker back"))
            assert time.monotonic() - killed >= delay, "restarted before its backoff"
            assert _reaped_or_gone(pids[-2], os.getpid())
            died = [r for r in reports if "worker died" in r][-1].splitlines()
            assert died[0] == (f"sandbox: worker died (killed by SIGKILL); restarting it in {delay:g} s "
                               f"(failure {failure} of 4 within 60 s)")
            assert died[-1] == "line 30"  # its log's tail
            _until(lambda: f"sandbox: worker restarted (pid {pids[-1]})" in reports, what="the restart's report")
        assert supervisor.death() is None
        # The fourth death within the window is final.
        os.kill(pids[-1], signal.SIGKILL)
        assert supervisor.death(timeout=5) == "worker died (killed by SIGKILL): 4 failures within 60 s, not restarted"
        time.sleep(1)
        assert not supervisor.running("worker") and supervisor.pid("worker") == pids[-1]


def test_a_restart_that_fails_counts_as_a_failure(tmp_path: Path) -> None:
    reports: list[str] = []
    marker, token = tmp_path / "started-once", tmp_path / "ready"
    # Up the first time; every later start exits at once, before it is ready.
    script = (f"if [ -e {marker} ]; then echo 'cannot start again' >&2; exit 7; fi; touch {marker} {token}; "
              "exec sleep 300")

    def ready() -> bool:  # once per start that says so
        if token.exists():
            token.unlink()
            return True
        return False

    with Supervisor(tmp_path / "work", report=reports.append, poll_interval=0.05,
                    restart=RestartPolicy(first_delay=0.05, max_failures=3)) as supervisor:
        pid = supervisor.start("flaky", ["sh", "-c", script], ready=ready).pid
        os.kill(pid, signal.SIGKILL)
        assert supervisor.death(timeout=10) == (
            "flaky failed to restart: flaky exited (exit code 7) before it was ready: 3 failures within 300 s, "
            "not restarted")
        assert [r.splitlines()[0] for r in reports] == [
            "sandbox: flaky died (killed by SIGKILL); restarting it in 0.05 s (failure 1 of 3 within 300 s)",
            "sandbox: flaky failed to restart: flaky exited (exit code 7) before it was ready; restarting it in "
            "0.1 s (failure 2 of 3 within 300 s)",
            "sandbox: flaky failed to restart: flaky exited (exit code 7) before it was ready: 3 failures within "
            "300 s, not restarted"]
        assert reports[-1].splitlines()[-1] == "cannot start again"


# --- nothing outlives the supervisor ----------------------------------------------------------

# A shell with a background job in its session and another in a session of its own (as
# PostgreSQL's backends are), which writes their pids.
FAMILY = "sleep 300 & echo $! >> pids; setsid sleep 301 & echo $! >> pids; wait"

SUPERVISOR = """
import os, pathlib, sys, threading, time
sys.path.insert(0, {root!r})
from stack.sandbox import processes
from stack.sandbox.processes import RestartPolicy, Supervisor
if {mechanism!r} == "lifeline":
    processes._parent_death_signal = lambda: None
elif {mechanism!r} == "parent-death signal":
    processes.LIFELINE = pathlib.Path("/dev/null")  # a lifeline that exits at once
here = pathlib.Path({cwd!r})
supervisor = Supervisor(restart=RestartPolicy(first_delay=0.05), poll_interval=0.05).__enter__()
pids = here / "pids"
supervisor.start("family", ["sh", "-c", {family!r}], cwd=here,
                 ready=lambda: pids.exists() and len(pids.read_text().split()) == 2)
restarted = supervisor.start("restarted", ["sleep", "302"]).pid
os.kill(restarted, 9)  # started again by the watcher thread
while supervisor.pid("restarted") == restarted or not supervisor.running("restarted"):
    time.sleep(0.05)
# Started from a thread that ends at once: it must outlive that thread, not the supervisor.
thread = threading.Thread(target=supervisor.start, args=("from-a-thread", ["sleep", "303"]))
thread.start()
thread.join()
time.sleep(1.5)  # the lifeline has seen every descendant
print(supervisor.workdir, flush=True)
time.sleep(120)
"""


@pytest.mark.parametrize("mechanism", ["both", "lifeline", "parent-death signal"])
def test_a_sigkill_of_the_supervisor_leaves_no_process_behind(tmp_path: Path, mechanism: str) -> None:
    """Both mechanisms at once; then each alone: the lifeline alone kills everything, the
    parent-death signal alone every child (not what a child left in another session)."""
    script = SUPERVISOR.format(root=str(ROOT), mechanism=mechanism, family=FAMILY, cwd=str(tmp_path))
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              env=os.environ | {"TMPDIR": str(tmp_path)})
    everything: set[tuple[int, int]] = set()
    try:
        assert parent.stdout is not None
        workdir = Path(parent.stdout.readline().strip())
        assert workdir.parent == tmp_path and workdir.name.startswith(WORKDIR_PREFIX)
        children = {c for c in _descendants(parent.pid) if _stat(c[0])[1] == parent.pid}
        everything = _descendants(parent.pid)
        family = {(int(pid), _stat(int(pid))[2]) for pid in (tmp_path / "pids").read_text().split()}
        assert family <= everything and len(children) >= 3 and all(_alive(p) for p in everything)
        names = {Path(f"/proc/{pid}/cmdline").read_text().split("\0")[-2] for pid, _ in everything}
        assert {"300", "301", "302", "303"} <= names, names
        parent.kill()
        parent.wait(timeout=5)
        # The parent-death signal alone leaves what the children forked (killed below).
        doomed = everything if mechanism != "parent-death signal" else children
        _until(lambda: not any(_alive(p) for p in doomed), timeout=5,
               what=f"{sorted(p for p in doomed if _alive(p))} to die")
        assert (workdir / LOCK_FILE).exists(), "a killed supervisor cannot clean up its directory"
    finally:
        parent.kill()
        _kill_leftovers(everything)


# --- temporary directories --------------------------------------------------------------------

KILLED = """
import os, sys
sys.path.insert(0, {root!r})
from stack.sandbox.processes import Supervisor
supervisor = Supervisor()
supervisor.start("child", ["sleep", "300"])
(supervisor.workdir / "password").write_text("s3cret")
print(supervisor.workdir, flush=True)
os.kill(os.getpid(), 9)
"""


@pytest.fixture
def tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's own temporary directory, for this process and its children."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    return tmp_path


def test_the_next_supervisor_removes_what_a_killed_one_left_and_nothing_else(tempdir: Path) -> None:
    # What is not a sandbox's, or a sandbox's still in use or kept on purpose, stays.
    foreign = tempdir / f"{WORKDIR_PREFIX}foreign"  # a similar name, no lock file
    (foreign / "data").mkdir(parents=True)
    elsewhere = tempdir / "elsewhere"  # a link to a directory with an unlocked lock file
    elsewhere.mkdir()
    (elsewhere / LOCK_FILE).touch()
    (tempdir / f"{WORKDIR_PREFIX}link").symlink_to(elsewhere)
    linked_lock = tempdir / f"{WORKDIR_PREFIX}linked-lock"  # its lock file a link
    linked_lock.mkdir()
    (linked_lock / LOCK_FILE).symlink_to(elsewhere / LOCK_FILE)
    unprefixed = tempdir / "sandbox-lookalike"  # a lock file, but not our name
    unprefixed.mkdir()
    (unprefixed / LOCK_FILE).touch()
    kept = Supervisor(keep=True)
    kept.close()
    running = Supervisor()  # alive: its lock is held
    held = tempdir / f"{WORKDIR_PREFIX}held"  # locked by another process alive (here, another descriptor)
    held.mkdir()
    (held / LOCK_FILE).touch()
    holder = os.open(held / LOCK_FILE, os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        killed = subprocess.run([sys.executable, "-c", KILLED.format(root=str(ROOT))], capture_output=True,
                                text=True, timeout=30)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        stale = Path(killed.stdout.strip())
        assert (stale / "password").exists() and (stale / LOCK_FILE).exists()

        reports: list[str] = []
        with Supervisor(report=reports.append) as supervisor:
            assert not stale.exists(), "the killed supervisor's directory (and its password file) is still there"
            assert reports == [f"sandbox: removed {stale}, left behind by a sandbox that was killed"]
            mine = supervisor.workdir
            assert mine.parent == tempdir and re.fullmatch(re.escape(WORKDIR_PREFIX) + r"\w+", mine.name)
            assert processes.remove_stale_workdirs(tempdir) == [], "its own directory is locked"
        assert not mine.exists()
        for path in (foreign / "data", elsewhere / LOCK_FILE, linked_lock / LOCK_FILE, unprefixed / LOCK_FILE,
                     kept.workdir / "logs", running.workdir / LOCK_FILE, held / LOCK_FILE):
            assert path.exists() or path.is_symlink(), f"{path} was removed"
        assert (tempdir / f"{WORKDIR_PREFIX}link").is_symlink()
        assert not (kept.workdir / LOCK_FILE).exists(), "a directory kept on purpose is no stale one"
    finally:
        os.close(holder)
        running.close()
        shutil.rmtree(kept.workdir)
    # Once its holder is gone, a lock file of ours makes a directory a stale one.
    assert processes.remove_stale_workdirs(tempdir, report=lambda text: None) == [held]


# --- the real sandbox -------------------------------------------------------------------------

class Sandbox:
    """`python -m stack sandbox ARGS` in a subprocess, its output (stdout and stderr) collected."""

    def __init__(self, tempdir: Path, *args: str) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "stack", "sandbox", *args], cwd=ROOT,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        env=os.environ | {"TMPDIR": str(tempdir)})
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float = 60) -> None:
        _until(lambda: text in self.output or self.process.poll() is not None, timeout=timeout, what=text)
        assert text in self.output, self.output

    def component(self, executable: str) -> int:
        """The pid of the sandbox's child running `executable`."""
        [pid] = [pid for pid, _ in _descendants(self.process.pid)
                 if _stat(pid)[1] == self.process.pid
                 # Redis rewrites its title: "/usr/bin/redis-server 127.0.0.1:<port>".
                 and Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ").split()[0].endswith(executable)]
        return pid

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture
def sandbox_tempdir() -> Iterator[Path]:
    """A temporary directory of this test's, which PostgreSQL's user can traverse (pytest's is
    private to root)."""
    path = Path(tempfile.mkdtemp(prefix="medianest-supervision-test-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.e2e  # the real sandbox's binaries
def test_the_sandbox_reports_a_dead_component_and_exits_1(sandbox_tempdir: Path) -> None:
    sandbox = Sandbox(sandbox_tempdir, "--duration", "5m")
    everything: set[tuple[int, int]] = set()
    try:
        sandbox.wait_for("notifications as they arrive")
        everything = _descendants(sandbox.process.pid)
        os.kill(sandbox.component("/alertmanager"), signal.SIGKILL)
        assert sandbox.process.wait(timeout=30) == 1, sandbox.output
        sandbox.reader.join(timeout=5)
        lines = sandbox.lines
        start = lines.index("sandbox: alertmanager-0 died (killed by SIGKILL)")
        assert re.fullmatch(r"--- last 20 lines of .*/logs/alertmanager-0\.log ---", lines[start + 1])
        assert any("Starting Alertmanager" in line for line in lines[start + 2:]), sandbox.output
        assert lines[-1] == "sandbox: stopped: alertmanager-0 died (killed by SIGKILL)"
        _until(lambda: not any(_alive(p) for p in everything), timeout=5, what="every process of the sandbox to end")
        assert list(sandbox_tempdir.iterdir()) == [], "a sandbox that stopped left its directory"
    finally:
        sandbox.close()
        _kill_leftovers(everything)


@pytest.mark.e2e  # the real sandbox's binaries
def test_a_killed_sandbox_leaves_no_process_and_the_next_start_removes_its_files(
        sandbox_tempdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox = Sandbox(sandbox_tempdir, "--restart")
    everything: set[tuple[int, int]] = set()
    try:
        sandbox.wait_for("notifications as they arrive")
        # --restart: a component killed comes back, reaped.
        redis = sandbox.component("redis-server")
        os.kill(redis, signal.SIGKILL)
        sandbox.wait_for("sandbox: redis restarted", timeout=30)
        assert "sandbox: redis died (killed by SIGKILL); restarting it in 1 s (failure 1 of 5 within 300 s)" in (
            sandbox.lines)
        assert sandbox.component("redis-server") != redis and _reaped_or_gone(redis, sandbox.process.pid)

        everything = _descendants(sandbox.process.pid)
        postgres = sandbox.component("postgres")
        backends = {p for p in everything if _stat(p[0])[1] == postgres}
        assert len(backends) >= 4, "PostgreSQL's processes (checkpointer, a backend of the exporter...)"
        [workdir] = sandbox_tempdir.iterdir()
        sandbox.process.kill()  # SIGKILL: no chance to clean up
        sandbox.process.wait(timeout=5)
        _until(lambda: not any(_alive(p) for p in everything), timeout=5,
               what=f"{sorted(p for p in everything if _alive(p))} to die")
    finally:
        sandbox.close()
        _kill_leftovers(everything)
    password = workdir / "postgres-exporter" / "secrets" / "postgres-password"
    assert password.exists(), "a killed sandbox cannot remove its files"

    monkeypatch.setattr(tempfile, "tempdir", str(sandbox_tempdir))
    reports: list[str] = []
    with Supervisor(report=reports.append) as supervisor:  # as the next sandbox starts
        assert not workdir.exists(), "the killed sandbox's directory (its password file) is still there"
        assert reports == [f"sandbox: removed {workdir}, left behind by a sandbox that was killed"]
        assert supervisor.workdir.parent == sandbox_tempdir
