"""What a long command is doing, as it goes: one status line on the terminal, rewritten in place
(`test: 12/96 promtool runs, 3.4s`), cleared when the work is done. Nothing when stderr is not a
terminal (CI logs, pipes), so output that is read by programs stays as it was."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


class Progress:
    def __init__(self, what: str, total: int = 0, unit: str = "done", stream: TextIO | None = None) -> None:
        self.what, self.total, self.unit = what, total, unit
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.done = 0
        self.note = ""
        self.started = time.monotonic()
        self._lock = threading.RLock()
        self._width = 0
        self._stopped = threading.Event()

    def stage(self, what: str, total: int = 0, unit: str = "done") -> None:
        """Move on to another piece of work; elapsed time keeps counting."""
        with self._lock:
            self.what, self.total, self.unit, self.done, self.note = what, total, unit, 0, ""
        self._show()

    def advance(self, count: int = 1, note: str = "") -> None:
        with self._lock:
            self.done += count
            self.note = note or self.note
        self._show()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def line(self) -> str:
        counted = f" {self.done}/{self.total} {self.unit}" if self.total else ""
        note = f" ({self.note})" if self.note else ""
        return f"{self.what}:{counted}{note}, {self.elapsed:.1f}s"

    def _show(self) -> None:
        if not self.enabled:
            return
        with self._lock:
            text = self.line()
            self.stream.write("\r" + text.ljust(self._width))
            self.stream.flush()
            self._width = len(text)

    def clear(self) -> None:
        with self._lock:
            if self.enabled and self._width:
                self.stream.write("\r" + " " * self._width + "\r")
                self.stream.flush()
                self._width = 0

    def echo(self, text: str, out: TextIO | None = None) -> None:
        """Print a line of output above the status line."""
        with self._lock:
            self.clear()
            print(text, file=out or sys.stdout, flush=True)
        self._show()

    def _tick(self) -> None:
        # The elapsed time moves even while one long step runs.
        while not self._stopped.wait(0.5):
            self._show()

    def __enter__(self) -> Progress:
        if self.enabled:
            threading.Thread(target=self._tick, daemon=True).start()
        self._show()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self.clear()
