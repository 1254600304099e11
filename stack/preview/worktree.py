"""The two trees a diff compares, exported by the same command with each tree's own code: the
base from a temporary git worktree of the ref, the head from the working tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from stack import judges


class PreviewError(Exception):
    """Bad input to `diff` (no repository, unknown ref, a dirty tree): the message says what to do."""


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("git") is None:
        raise PreviewError("git is not installed: `diff` renders the base from a git worktree")
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)


def repository(path: Path) -> Path:
    """The root of the git repository holding `path`."""
    run = _git(path, "rev-parse", "--show-toplevel")
    if run.returncode != 0:
        raise PreviewError(f"{path} is not in a git repository: `diff` compares a git ref with the working tree "
                           f"({run.stderr.strip()})")
    return Path(run.stdout.strip())


def commit(repo: Path, ref: str) -> str:
    """The commit `ref` names, or a PreviewError naming it."""
    run = _git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
    if run.returncode != 0 or not run.stdout.strip():
        raise PreviewError(f"--base {ref!r} is not a commit of {repo}: give a branch, tag or commit "
                           "(e.g. origin/main; `git fetch` it first in a shallow clone)")
    return run.stdout.strip()


def uncommitted(repo: Path) -> list[str]:
    """Files changed, staged or untracked (not ignored) in the working tree."""
    run = _git(repo, "status", "--porcelain", "--untracked-files=all")
    if run.returncode != 0:
        raise PreviewError(f"git status failed in {repo}: {run.stderr.strip()}")
    return [line[3:] for line in run.stdout.splitlines() if line.strip()]


@contextmanager
def worktree(repo: Path, sha: str) -> Iterator[Path]:
    """A detached checkout of `sha` in a temporary directory, removed afterwards."""
    parent = Path(tempfile.mkdtemp(prefix="stack-diff-base-"))
    tree = parent / "tree"
    run = _git(repo, "worktree", "add", "--detach", "--quiet", str(tree), sha)
    if run.returncode != 0:
        shutil.rmtree(parent, ignore_errors=True)
        raise PreviewError(f"cannot check out {sha[:12]} into a worktree: {run.stderr.strip()}")
    try:
        yield tree
    finally:
        _git(repo, "worktree", "remove", "--force", str(tree))
        shutil.rmtree(parent, ignore_errors=True)
        _git(repo, "worktree", "prune")


def export(tree: Path, stack: str, out: Path, side: str) -> None:
    """`python -m stack export` with the tree's own code, into `out/<stack>` (`stack` may be all)."""
    run = subprocess.run([sys.executable, "-m", "stack", "export", "--stack", stack, "--out", str(out)],
                         cwd=tree, env=_judged_by_ours(), capture_output=True, text=True, check=False)
    if run.returncode != 0:
        tail = "\n".join((run.stdout + run.stderr).strip().splitlines()[-15:])
        raise PreviewError(f"exporting the {side} ({tree}) failed (exit {run.returncode}); a base older than "
                           f"`python -m stack export` cannot be compared:\n{tail}")


def _judged_by_ours() -> dict[str, str]:
    """The environment of an export: a checked-out tree has no judges of its own (.tools/ is not
    in git), so both sides use this project's, found by path (MEDIANEST_TOOLS_DIR) or, by code
    older than stack/judges.py, by name on PATH."""
    return {**os.environ, "MEDIANEST_TOOLS_DIR": str(judges.STATE),
            "PATH": f"{judges.BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def export_both(base: Path, head: Path, stack: str, out: Path) -> tuple[Path, Path]:
    """Export base and head side by side; returns the two export directories."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        jobs = [pool.submit(export, base, stack, out / "base", "base"),
                pool.submit(export, head, stack, out / "head", "head")]
        for job in jobs:
            job.result()
    return out / "base", out / "head"
