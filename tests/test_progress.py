"""Long commands say what they are doing on a terminal, and nothing extra anywhere else."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from stack.progress import Progress

ROOT = Path(__file__).resolve().parent.parent


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_one_status_line_rewritten_in_place_and_cleared() -> None:
    stream = _Terminal()
    with Progress("test: promtool", 3, "runs", stream=stream) as progress:
        progress.advance(note="1 ran")
        progress.advance(note="2 ran")
    text = stream.getvalue()
    assert "\rtest: promtool: 1/3 runs (1 ran), " in text and "\rtest: promtool: 2/3 runs (2 ran), " in text
    assert "\n" not in text and text.endswith("\r"), "the status line is rewritten, then cleared"


def test_a_pipe_gets_nothing() -> None:
    stream = io.StringIO()
    with Progress("check", 2, stream=stream) as progress:
        progress.advance()
    assert stream.getvalue() == ""


def _run(command: list[str], tty: bool) -> str:
    """stderr of a command run under a pseudo-terminal (util-linux `script`) or a pipe."""
    env = {**os.environ, "MEDIANEST_NO_CACHE": "1"}
    if tty:
        shell = " ".join(command) + " 2>&1 >/dev/null"
        result = subprocess.run(["script", "-qec", shell, "/dev/null"], cwd=ROOT, env=env, capture_output=True,
                                text=True, check=True)
        return result.stdout
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=True).stderr


def test_check_shows_its_progress_on_a_terminal_only() -> None:
    command = [sys.executable, "-m", "stack", "check", "--stack", "dev"]
    assert "check: dev: judging: " in _run(command, tty=True)
    assert _run(command, tty=False) == ""
