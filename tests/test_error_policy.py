"""One error policy for every command of `python -m stack`: bad input exits 2 with one line, an
unexpected exception exits 70 with one line (`error: <type>: <message> (rerun with --debug ...)`)
and no traceback, and `--debug`, before or after the command, shows the traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from stack import cli
from stack.config import ROOT, ConfigError
from stack.sandbox import console as sandbox_console

# Every command, as a user types it, and the function it runs.
COMMANDS = [
    (["render", "--stack", "dev", "--out", "out"], cli, "cmd_render"),
    (["check"], cli, "cmd_check"),
    (["test"], cli, "cmd_test"),
    (["slo", "report"], cli, "cmd_slo_report"),
    (["export", "--out", "out"], cli, "cmd_export"),
    (["diff", "--base", "main"], cli, "cmd_diff"),
    (["sandbox"], sandbox_console, "run"),
]
IDS = [" ".join(argv[:2]) if argv[0] == "slo" else argv[0] for argv, _, _ in COMMANDS]
HINT = "(rerun with --debug for the traceback)"


def test_every_command_is_covered() -> None:
    parser = cli.parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    assert {argv[0] for argv, _, _ in COMMANDS} == set(commands.choices)


def _raising(error: BaseException):
    def command(args) -> int:
        raise error

    return command


@pytest.mark.parametrize(("argv", "module", "name"), COMMANDS, ids=IDS)
def test_an_unexpected_exception_is_one_line_without_a_traceback(argv, module, name, monkeypatch, capsys) -> None:
    monkeypatch.setattr(module, name, _raising(RuntimeError("the disk caught fire")))
    assert cli.main(argv) == cli.CRASH == 70
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"error: RuntimeError: the disk caught fire {HINT}"]
    assert "Traceback" not in captured.out + captured.err


@pytest.mark.parametrize(("argv", "module", "name"), COMMANDS, ids=IDS)
def test_debug_after_the_command_shows_the_traceback(argv, module, name, monkeypatch, capsys) -> None:
    monkeypatch.setattr(module, name, _raising(RuntimeError("the disk caught fire")))
    assert cli.main([*argv, "--debug"]) == cli.CRASH
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and "in command" in err
    assert err.splitlines()[-1] == "error: RuntimeError: the disk caught fire"


def test_debug_before_the_command_shows_the_traceback(monkeypatch, capsys) -> None:
    monkeypatch.setattr(cli, "cmd_check", _raising(RuntimeError("boom")))
    assert cli.main(["--debug", "check", "--stack", "dev"]) == cli.CRASH
    err = capsys.readouterr().err
    assert "Traceback (most recent call last):" in err and 'raise error' in err


def test_an_assertion_reaching_the_user_has_no_traceback(monkeypatch, capsys) -> None:
    """An SLO objective of 1.2 once ended in a bare AssertionError deep in the SLO maths."""
    def load_stack(stack, root):
        raise AssertionError("objective_ratio out of range")

    monkeypatch.setattr(cli, "load_stack", load_stack)
    assert cli.main(["slo", "report", "--no-confirm"]) == cli.CRASH
    err = capsys.readouterr().err
    assert err.splitlines() == [f"error: AssertionError: objective_ratio out of range {HINT}"]


def test_a_bare_assertion_names_its_type(monkeypatch, capsys) -> None:
    monkeypatch.setattr(cli, "cmd_check", _raising(AssertionError()))
    assert cli.main(["check"]) == cli.CRASH
    assert capsys.readouterr().err.splitlines() == [f"error: AssertionError {HINT}"]


def test_a_long_or_multi_line_message_stays_one_short_line(monkeypatch, capsys) -> None:
    monkeypatch.setattr(cli, "cmd_check", _raising(ValueError("x" * 5000 + "\nsecond line\nthird")))
    assert cli.main(["check"]) == cli.CRASH
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and len(lines[0]) < 300 and "second line" not in lines[0]
    assert lines[0].startswith("error: ValueError: xxx") and lines[0].endswith(HINT)


def test_a_library_exception_names_its_module(monkeypatch, capsys) -> None:
    import json

    monkeypatch.setattr(cli, "cmd_check", _raising(json.JSONDecodeError("Expecting value", "doc", 0)))
    assert cli.main(["check"]) == cli.CRASH
    assert capsys.readouterr().err.startswith("error: json.decoder.JSONDecodeError: Expecting value")


def test_bad_input_is_exit_2_and_one_line(monkeypatch, capsys) -> None:
    monkeypatch.setattr(cli, "cmd_check", _raising(ConfigError("Pulumi.dev.yaml: medianest-observability:x: "
                                                               "unknown key; valid keys here: a, b")))
    assert cli.main(["check"]) == cli.BAD_INPUT == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == ["error: Pulumi.dev.yaml: medianest-observability:x: unknown key; "
                                         "valid keys here: a, b"]


def test_bad_input_with_debug_shows_the_traceback_and_still_exits_2(monkeypatch, capsys) -> None:
    monkeypatch.setattr(cli, "cmd_check", _raising(ConfigError("Pulumi.dev.yaml: bad")))
    assert cli.main(["check", "--debug"]) == cli.BAD_INPUT
    err = capsys.readouterr().err
    assert "Traceback" in err and err.splitlines()[-1] == "error: Pulumi.dev.yaml: bad"


def test_an_interrupt_is_one_line_and_130(monkeypatch, capsys) -> None:
    monkeypatch.setattr(cli, "cmd_check", _raising(KeyboardInterrupt()))
    assert cli.main(["check"]) == cli.INTERRUPTED == 130
    assert capsys.readouterr().err.splitlines() == ["interrupted"]


def test_usage_errors_still_exit_2_with_argparse_usage(capsys) -> None:
    with pytest.raises(SystemExit) as error:
        cli.main(["render", "--stack", "staging"])
    assert error.value.code == 2
    assert "invalid choice: 'staging'" in capsys.readouterr().err


def test_debug_is_off_by_default_and_on_in_either_place() -> None:
    parser = cli.parser()
    assert parser.parse_args(["check"]).debug is False
    assert parser.parse_args(["--debug", "check"]).debug is True
    assert parser.parse_args(["check", "--debug"]).debug is True
    assert parser.parse_args(["slo", "--debug", "report"]).debug is True
    assert parser.parse_args(["slo", "report", "--debug"]).debug is True
    assert parser.parse_args(["sandbox", "--debug"]).debug is True


def test_a_report_file_that_cannot_be_written_is_bad_input(tmp_path, capsys) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(cli.OutputError) as error:
        cli._write_file(tmp_path / "file" / "junit.xml", "<x/>")
    assert str(error.value).startswith(f"'{tmp_path / 'file' / 'junit.xml'}': cannot write this file: ")
    assert f"File exists ('{tmp_path / 'file'}')" in str(error.value)


def test_the_real_process_prints_one_line_and_exits_2_on_a_bad_out(tmp_path) -> None:
    run = subprocess.run([sys.executable, "-m", "stack", "--debug", "render", "--out", ""], cwd=tmp_path,
                         capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
                         check=False)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.splitlines()[-1] == "error: '': an empty path is not a directory; give one such as build/dev"
