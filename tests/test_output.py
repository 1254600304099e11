"""`render --out` (and every tree `write_tree` writes) is safe by default: it replaces only an empty
directory or an earlier output, refuses anything else with exit 2 and one line naming the path,
and swaps the new tree in atomically, even when interrupted."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stack import output
from stack.cli import main
from stack.config import ROOT
from stack.output import ECHO_LIMIT, MARKER, MARKER_TEXT

EXPECTED = "prometheus/rules/medianest.yaml"  # one file every render of dev writes


def _snapshot(root: Path) -> dict[str, tuple[str, object]]:
    """Every entry under `root`: directories, files with their bytes, links with their target."""
    found: dict[str, tuple[str, object]] = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory) / name
            key = str(path.relative_to(root))
            if path.is_symlink():
                found[key] = ("link", os.readlink(path))
            elif path.is_dir():
                found[key] = ("dir", None)
            else:
                found[key] = ("file", path.read_bytes())
    return found


def _previous_render(path: Path, extra: str = "stale.yaml") -> None:
    """A directory as an earlier render left it (the marker), with a file this render does not write."""
    path.mkdir(parents=True)
    (path / MARKER).write_text(MARKER_TEXT)
    (path / extra).write_text("from an earlier render")


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git checkout to run in (the current directory), a home directory, and files to lose."""
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    (project / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (project / "README.md").write_text("the project\n")
    (project / "notes.txt").write_text("keep me\n")
    (project / "docs").mkdir()
    (project / "docs" / "guide.md").write_text("a guide\n")
    home = tmp_path / "home"
    home.mkdir()
    (home / ".profile").write_text("export A=1\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(project)
    return tmp_path


def _refused(capsys: pytest.CaptureFixture[str], argv: list[str], *named: str) -> str:
    """Run `argv`, which must be refused: exit 2, nothing on stdout, one line naming the path."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ") and "Traceback" not in captured.err
    for text in named:
        assert text in lines[0], (text, lines[0])
    return lines[0]


REFUSED = [
    # (what, --out relative to the world, the current directory within it, what the message says)
    ("the current directory", ".", "project", "is the current directory"),
    ("the checkout by its path, from inside it", "{world}/project", "project/docs", "contains the current directory"),
    ("the parent of the current directory", "..", "project", "contains the current directory"),
    ("a far ancestor of the current directory", "{world}", "project/docs", "contains the current directory"),
]


@pytest.mark.parametrize(("out", "cwd", "reason"), [case[1:] for case in REFUSED], ids=[c[0] for c in REFUSED])
def test_the_current_directory_and_its_ancestors_are_refused(world: Path, capsys, monkeypatch, out: str, cwd: str,
                                                             reason: str) -> None:
    monkeypatch.chdir(world / cwd)
    before = _snapshot(world)
    given = out.format(world=world)
    line = _refused(capsys, ["render", "--stack", "dev", "--out", given], f"'{given}'", reason)
    assert "build/dev" in line  # says what to give instead
    assert _snapshot(world) == before


def test_an_ancestor_of_the_current_directory_is_refused_even_when_marked(world: Path, capsys, monkeypatch) -> None:
    sub = world / "project" / "docs"
    (sub / MARKER).write_text(MARKER_TEXT)  # as if an earlier render had gone there
    (sub / "deeper").mkdir()
    monkeypatch.chdir(sub / "deeper")
    before = _snapshot(world)
    _refused(capsys, ["render", "--stack", "dev", "--out", str(sub)], str(sub), "contains the current directory")
    assert _snapshot(world) == before


def test_a_git_work_tree_root_is_refused_even_when_marked(world: Path, capsys, monkeypatch) -> None:
    (world / "project" / MARKER).write_text(MARKER_TEXT)
    monkeypatch.chdir(world / "home")
    before = _snapshot(world)
    _refused(capsys, ["render", "--stack", "dev", "--out", str(world / "project")], "root of a git work tree")
    assert _snapshot(world) == before


def test_the_project_is_refused_even_without_git(world: Path, capsys, monkeypatch) -> None:
    shutil.rmtree(world / "project" / ".git")
    (world / "project" / MARKER).write_text(MARKER_TEXT)
    monkeypatch.setattr(output, "PROJECT_ROOT", world / "project")
    monkeypatch.chdir(world / "home")
    before = _snapshot(world)
    _refused(capsys, ["render", "--stack", "dev", "--out", "../project"], "'../project'", "is the project")
    assert _snapshot(world) == before


def test_home_is_refused_even_when_marked(world: Path, capsys) -> None:
    home = world / "home"
    (home / MARKER).write_text(MARKER_TEXT)
    before = _snapshot(world)
    _refused(capsys, ["render", "--stack", "dev", "--out", str(home)], str(home), "is the home directory")
    _refused(capsys, ["render", "--stack", "dev", "--out", str(world)], "contains the current directory")
    assert _snapshot(world) == before


def test_the_root_directory_is_refused(world: Path, capsys) -> None:
    before = _snapshot(world)
    _refused(capsys, ["render", "--stack", "dev", "--out", "/"], "'/'", "root directory")
    _refused(capsys, ["render", "--stack", "dev", "--out", "/.."], "'/..'", "root directory")
    assert _snapshot(world) == before


@pytest.mark.parametrize("empty", ["", " "], ids=["empty", "blank"])
def test_an_empty_path_is_refused(world: Path, capsys, empty: str) -> None:
    before = _snapshot(world)
    _refused(capsys, ["render", "--stack", "dev", "--out", empty], f"'{empty}'", "empty path")
    assert _snapshot(world) == before


def test_a_regular_file_is_refused_and_left_as_it_was(world: Path, capsys) -> None:
    before = _snapshot(world)
    _refused(capsys, ["render", "--stack", "dev", "--out", "notes.txt"], "'notes.txt'", "is a file")
    assert (world / "project" / "notes.txt").read_text() == "keep me\n"
    assert _snapshot(world) == before


def test_a_symlink_is_refused_and_its_target_untouched(world: Path, capsys) -> None:
    target = world / "rendered"
    _previous_render(target)  # even a directory that could be replaced is not reached through a link
    (world / "project" / "out").symlink_to(target)
    before = _snapshot(world)
    for given in ("out", "out/"):
        _refused(capsys, ["render", "--stack", "dev", "--out", given], f"'{given}'", "symbolic link")
    assert _snapshot(world) == before


def test_a_foreign_non_empty_directory_is_refused_and_untouched(world: Path, capsys) -> None:
    before = _snapshot(world)
    line = _refused(capsys, ["render", "--stack", "dev", "--out", "docs"], "'docs'", MARKER)
    assert "remove it yourself, or choose another output directory" in line
    assert _snapshot(world) == before


def test_a_file_named_like_the_marker_but_a_link_does_not_count(world: Path, capsys) -> None:
    (world / "project" / "docs" / MARKER).symlink_to(world / "project" / "notes.txt")
    before = _snapshot(world)
    _refused(capsys, ["render", "--stack", "dev", "--out", "docs"], "'docs'", MARKER)
    assert _snapshot(world) == before


def test_an_earlier_render_is_replaced_whole(world: Path, capsys) -> None:
    out = world / "project" / "build" / "dev"
    _previous_render(out)
    before = _snapshot(world)
    assert main(["render", "--stack", "dev", "--out", "build/dev"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "to build/dev" in captured.out
    assert not (out / "stale.yaml").exists() and (out / EXPECTED).is_file()
    assert (out / MARKER).read_text() == MARKER_TEXT
    after = _snapshot(world)
    assert not [k for k in after if k.startswith("project/build/.dev.")], "staging directories left behind"
    outside = {k: v for k, v in before.items() if not k.startswith("project/build/dev/")}
    assert {k: v for k, v in after.items() if not k.startswith("project/build/dev/")} == outside


def test_an_empty_directory_is_accepted(world: Path, capsys) -> None:
    out = world / "project" / "empty"
    out.mkdir()
    assert main(["render", "--stack", "dev", "--out", "empty"]) == 0
    assert (out / EXPECTED).is_file() and (out / MARKER).is_file()
    (world / "plain").mkdir()
    assert out.stat().st_mode == (world / "plain").stat().st_mode  # as mkdir makes it, not mkdtemp's 0700
    assert not list((world / "project").glob(".empty.*"))


def test_render_writes_build_stack_in_the_project_by_default(world: Path, capsys, monkeypatch) -> None:
    project = world / "project"
    shutil.copy(ROOT / "Pulumi.dev.yaml", project / "Pulumi.dev.yaml")
    monkeypatch.setattr("stack.cli.ROOT", project)
    monkeypatch.chdir(project / "docs")  # from anywhere: the project's build/dev
    assert main(["render", "--stack", "dev"]) == 0
    assert (project / "build" / "dev" / EXPECTED).is_file()
    assert main(["export", "--stack", "dev"]) == 0
    assert (project / "build" / "export" / "dev" / EXPECTED).is_file()
    assert (project / "build" / "export" / MARKER).is_file()


def test_a_failed_exchange_leaves_the_old_tree_and_no_staging(world: Path, capsys, monkeypatch) -> None:
    out = world / "project" / "out"
    _previous_render(out)
    before = _snapshot(world)

    def failing(a: Path, b: Path) -> bool:
        raise OSError(errno.EIO, os.strerror(errno.EIO), str(b))

    monkeypatch.setattr(output, "_exchange", failing)
    _refused(capsys, ["render", "--stack", "dev", "--out", "out"], "'out'", os.strerror(errno.EIO))
    assert _snapshot(world) == before


def test_without_an_exchange_a_failed_second_rename_puts_the_old_tree_back(world: Path, capsys,
                                                                           monkeypatch) -> None:
    out = world / "project" / "out"
    _previous_render(out)
    before = _snapshot(world)
    monkeypatch.setattr(output, "_exchange", lambda a, b: False)  # a system without renameat2
    real = os.rename
    calls: list[tuple[str, str]] = []

    def rename(src, dst) -> None:
        calls.append((str(src), str(dst)))
        if len(calls) == 2:  # the new tree into place: the old one is already aside
            assert not out.exists()
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(dst))
        real(src, dst)

    monkeypatch.setattr(output.os, "rename", rename)
    _refused(capsys, ["render", "--stack", "dev", "--out", "out"], "'out'", os.strerror(errno.EIO))
    assert len(calls) == 3  # aside, into place (failed), back
    assert _snapshot(world) == before


def test_without_an_exchange_the_swap_still_replaces(world: Path, capsys, monkeypatch) -> None:
    out = world / "project" / "out"
    _previous_render(out)
    monkeypatch.setattr(output, "_exchange", lambda a, b: False)
    assert main(["render", "--stack", "dev", "--out", "out"]) == 0
    assert (out / EXPECTED).is_file() and not (out / "stale.yaml").exists()
    assert sorted(p.name for p in (world / "project").iterdir() if p.name.startswith(".out")) == []


def test_a_swap_killed_half_way_is_repaired_by_the_next_run(world: Path, capsys) -> None:
    """Killed between the two renames: the old tree hidden in .out.old-*, a partial new one in
    .out.new-*. The next run restores and then replaces the old tree, and removes both."""
    project = world / "project"
    _previous_render(project / ".out.old-dead0001", extra="previous.yaml")
    (project / ".out.new-dead0002").mkdir()
    (project / ".out.new-dead0002" / MARKER).write_text(MARKER_TEXT)
    (project / ".out.new-dead0002" / "half.yaml").write_text("partial")
    (project / ".out.new-dead0003").mkdir()  # created, killed before anything was written
    assert main(["render", "--stack", "dev", "--out", "out"]) == 0
    assert capsys.readouterr().err == ""
    assert (project / "out" / EXPECTED).is_file() and not (project / "out" / "previous.yaml").exists()
    assert not [p.name for p in project.iterdir() if p.name.startswith(".out.")]


def test_a_hidden_old_tree_is_restored_even_when_the_next_run_fails(world: Path, capsys, monkeypatch) -> None:
    project = world / "project"
    _previous_render(project / ".out.old-dead0001", extra="previous.yaml")
    monkeypatch.setattr(output, "_exchange", lambda a, b: False)
    monkeypatch.setattr(output, "_fresh_dir", _failing_after(output._fresh_dir, 1))  # no room for .old-
    _refused(capsys, ["render", "--stack", "dev", "--out", "out"], "'out'", os.strerror(errno.ENOSPC))
    assert (project / "out" / "previous.yaml").read_text() == "from an earlier render"
    assert not [p.name for p in project.iterdir() if p.name.startswith(".out.")]


def _failing_after(real, times: int):
    calls = []

    def fresh_dir(parent: Path, prefix: str) -> Path:
        calls.append(prefix)
        if len(calls) > times:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(parent / prefix))
        return real(parent, prefix)

    return fresh_dir


def test_a_leftover_that_is_not_ours_is_reported_and_left_alone(world: Path, capsys) -> None:
    project = world / "project"
    (project / ".out.old-mine").mkdir()
    (project / ".out.old-mine" / "precious.txt").write_text("not a render")
    (project / ".out.new-file").write_text("a file")
    assert main(["render", "--stack", "dev", "--out", "out"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith("warning: ") for line in err), err
    assert any(".out.old-mine" in line and "remove it yourself" in line for line in err)
    assert (project / ".out.old-mine" / "precious.txt").read_text() == "not a render"
    assert (project / ".out.new-file").read_text() == "a file"
    assert (project / "out" / EXPECTED).is_file()


@pytest.mark.parametrize("impossible", ["/proc/x", "notes.txt/out"], ids=["in /proc", "under a file"])
def test_an_impossible_path_is_one_line_and_exit_2(world: Path, capsys, impossible: str) -> None:
    before = _snapshot(world)
    _refused(capsys, ["render", "--stack", "dev", "--out", impossible], f"'{impossible}'", "cannot write here")
    assert _snapshot(world) == before


def test_a_long_path_is_shortened_in_the_message(world: Path, capsys) -> None:
    long = "docs/" + "/".join(["x" * 60] * 8)
    (world / "project" / long).parent.mkdir(parents=True)
    (world / "project" / long).write_text("a file with a long name")
    line = _refused(capsys, ["render", "--stack", "dev", "--out", long], "is a file")
    assert len(line) < ECHO_LIMIT + 120 and "..." in line


def test_export_refuses_like_render(world: Path, capsys) -> None:
    before = _snapshot(world)
    _refused(capsys, ["export", "--stack", "dev", "--out", "."], "'.'", "is the current directory")
    _refused(capsys, ["export", "--stack", "dev", "--out", "docs"], "'docs'", MARKER)
    assert _snapshot(world) == before


def test_the_real_command_refuses_the_checkout_without_a_traceback(tmp_path: Path) -> None:
    """What the issue reported, end to end: `render --out .` in a checkout."""
    checkout = tmp_path / "checkout"
    (checkout / ".git").mkdir(parents=True)
    (checkout / "file.txt").write_text("x")
    before = _snapshot(tmp_path)
    run = subprocess.run([sys.executable, "-m", "stack", "render", "--stack", "dev", "--out", "."], cwd=checkout,
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.splitlines() == [
        "error: '.': is the current directory; give a directory of its own such as build/dev"]
    assert _snapshot(tmp_path) == before


def test_write_tree_refuses_paths_outside_the_tree(tmp_path: Path) -> None:
    for bad in ("../escape.yaml", "/etc/passwd", MARKER):
        with pytest.raises(ValueError):
            output.write_tree({bad: "x"}, tmp_path / "out")
    assert not (tmp_path / "out").exists()
