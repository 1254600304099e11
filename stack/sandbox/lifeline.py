"""The sandbox's lifeline: a small process that outlives its supervisor to kill what it left.

The `Supervisor` starts it with a pipe on its stdin and writes there the pid of every process it
starts. Each of those runs in a session of its own. While the pipe is open, the lifeline notes,
every `SNAPSHOT_SECONDS`, every descendant of those processes (pid and start time: PostgreSQL's
backends call setsid, a shell's background job may too). When the pipe closes (the supervisor
ended, however it ended: a SIGKILL included, since the kernel closes its descriptors), the
lifeline SIGKILLs every process it was told about, every member of their sessions and every
descendant it saw, each only if it is still the same process (same start time), then exits.

Standard library only, run as a script (`python -I -S lifeline.py`): it must not depend on the
repository being importable, nor take long to start.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import time

SNAPSHOT_SECONDS = 0.5
SWEEPS = 5  # at the end, kill, look again (a process forking as it dies), up to this many times


def stat(pid: int) -> tuple[int, int, int] | None:
    """(parent pid, session id, start time) of a live process, None when gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            text = file.read().decode(errors="replace")
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # after "pid (command)": state, ppid, pgrp, session, ...
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[1]), int(fields[3]), int(fields[19])


def processes() -> dict[int, tuple[int, int, int]]:
    """Every live process: pid -> (parent pid, session id, start time)."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (found := stat(int(entry))):
            table[int(entry)] = found
    return table


def children(pid: int) -> list[int]:
    """The children of `pid`, from the kernel's list of each of its threads."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", "rb") as file:
                found += map(int, file.read().split())
        except OSError:
            pass
    return found


# Without CONFIG_PROC_CHILDREN, every snapshot reads the whole process table.
CHILDREN_LISTS = os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children")


class Lifeline:
    def __init__(self) -> None:
        self.watched: dict[int, int] = {}  # pid -> start time of each process the supervisor started
        self.seen: dict[int, int] = {}  # pid -> start time of every descendant seen since
        # session id -> its leader's start time: each watched process leads a session of its own,
        # which can outlive it (a background job of a shell, orphaned).
        self.sessions: dict[int, int] = {}

    def watch(self, pid: int) -> None:
        found = stat(pid)
        if found:
            self.watched[pid] = self.sessions[pid] = found[2]

    def snapshot(self) -> None:
        """Forget what is gone (or a reused pid); note every descendant of what is watched."""
        if CHILDREN_LISTS:
            def kids(pid: int) -> list[int]:
                return children(pid)
        else:
            table = processes()
            tree: dict[int, list[int]] = {}
            for pid, (parent, _, _) in table.items():
                tree.setdefault(parent, []).append(pid)

            def kids(pid: int) -> list[int]:
                return tree.get(pid, [])

        self.watched = _same(self.watched)
        self.seen = _same(self.seen)
        for session, start in list(self.sessions.items()):
            if (found := stat(session)) and found[2] != start:
                del self.sessions[session]  # its pid is another process's now
        todo = list(self.watched)
        while todo:
            for child in kids(todo.pop()):
                if child not in self.seen and (found := stat(child)):
                    self.seen[child] = found[2]
                    todo.append(child)

    def targets(self) -> list[int]:
        """What to kill: every process watched or seen, still the same, and every member of
        their sessions started after its leader."""
        self.snapshot()
        found = set(self.watched) | set(self.seen)
        if self.sessions:
            found |= {pid for pid, (_, session, start) in processes().items()
                      if session in self.sessions and start >= self.sessions[session]}
        return sorted(found - {os.getpid()})

    def sweep(self) -> None:
        for _ in range(SWEEPS):
            targets = self.targets()
            if not targets:
                return
            for pid in targets:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)


def _same(known: dict[int, int]) -> dict[int, int]:
    """The processes of `known` (pid -> start time) still alive with that start time."""
    return {pid: start for pid, start in known.items() if (found := stat(pid)) and found[2] == start}


def main() -> None:
    # Its own session already (the terminal's Ctrl-C never reaches it); a hangup must not end it early.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    lifeline = Lifeline()
    stdin = sys.stdin.fileno()
    pending = b""
    while True:
        ready, _, _ = select.select([stdin], [], [], SNAPSHOT_SECONDS)
        if ready:
            data = os.read(stdin, 4096)
            if not data:
                break  # the supervisor is gone, or closed the pipe on its way out
            pending += data
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.strip().isdigit():
                    lifeline.watch(int(line))
        lifeline.snapshot()
    lifeline.sweep()


if __name__ == "__main__":
    main()
