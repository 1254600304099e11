"""`python -m stack diff`: export the base and the head, compare them section by section."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from stack.preview import backtest, dashboards, problems, routing, rules, services, slos
from stack.preview.model import Section, Trees
from stack.preview.report import Report
from stack.preview.worktree import PreviewError, commit, export_both, repository, uncommitted, worktree
from stack.progress import Progress

# In the order a reviewer reads them: what fires, who is woken, how fast, what they see, what runs.
SECTIONS: tuple[Callable[[Trees], Section], ...] = (
    rules.section, routing.section, slos.section, dashboards.section, services.section, problems.section,
)
STACKS = ("dev", "prod")


def compare(base: Path, head: Path, stacks: list[str], prometheus: str | None = None,
            days: float = 7, progress: Progress | None = None
            ) -> tuple[tuple[tuple[str, tuple[Section, ...]], ...], dict[str, float]]:
    """Every section for each stack of two exported directories; with the time each took."""
    timings: dict[str, float] = {}
    found = []
    for stack in stacks:
        trees = Trees(stack, base / stack, head / stack)
        sections = []
        if progress:
            progress.stage(f"diff: {stack}: comparing", len(SECTIONS) + (1 if prometheus else 0), "sections")
        for make in SECTIONS:
            if progress:
                progress.advance(0, make.__module__.rsplit(".", 1)[-1])
            start = time.perf_counter()
            section = make(trees)
            timings[section.title] = timings.get(section.title, 0.0) + time.perf_counter() - start
            sections.append(section)
            if progress:
                progress.advance()
        if prometheus:
            start = time.perf_counter()
            sections.append(backtest.section(trees, prometheus, days))
            timings["Backtest"] = timings.get("Backtest", 0.0) + time.perf_counter() - start
            if progress:
                progress.advance()
        found.append((stack, tuple(sections)))
    return tuple(found), timings


def diff(root: Path, base_ref: str, stack: str = "all", prometheus: str | None = None, days: float = 7,
         allow_dirty: bool = False, progress: Progress | None = None) -> Report:
    """Compare `base_ref` with the working tree of the repository at `root`."""
    repo = repository(root)
    sha = commit(repo, base_ref)
    changed = uncommitted(repo)
    if changed and not allow_dirty:
        listed = ", ".join(changed[:10]) + (f" and {len(changed) - 10} more" if len(changed) > 10 else "")
        raise PreviewError(f"the working tree has uncommitted changes ({listed}): commit or stash them, "
                           "or pass --allow-dirty to compare the working tree as it is")
    stacks = list(STACKS) if stack == "all" else [stack]
    with tempfile.TemporaryDirectory(prefix="stack-diff-") as tmp, worktree(repo, sha) as base_tree:
        start = time.perf_counter()
        if progress:
            progress.stage("diff: exporting the base and the head")
        # The project may live in a subdirectory of its repository.
        base_project = base_tree / root.resolve().relative_to(repo.resolve())
        base, head = export_both(base_project, root, stack, Path(tmp))
        exported = time.perf_counter() - start
        found, timings = compare(base, head, stacks, prometheus, days, progress)
    head_name = "the working tree" + (" (uncommitted changes)" if changed else "")
    return Report(base=f"{base_ref} ({sha[:12]})", head=head_name, stacks=found,
                  timings={"export": exported, **timings})


__all__ = ["PreviewError", "compare", "diff"]
