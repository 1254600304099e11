"""`python -m stack render | check | test | slo report | export | diff | sandbox`.

Exit status, the same for every command:
  0    fine
  1    problems found: a static check, a promtool or amtool test, an SLO figure promtool
       disagrees with, a diff whose head has errors
  2    bad input or usage: an option, a stack file or key, an output path; one line names it and
       says what is valid
  70   an unexpected error, i.e. a bug: one line `error: <type>: <message>`; `--debug` (before or
       after the command) prints the traceback
  130  interrupted (Ctrl-C)

`render` and `export` write a whole directory (default build/<stack> and build/export under the
project) and replace it only when it is empty or was written by an earlier render or export."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import traceback
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rules.metrics import CATALOG
from rules.model import RuleFile
from rules.problems import Severity, has_errors
from rules.slo import report as slo_report
from rules.slo.spec import SLO
from rules.slos import slos as slo_definitions
from rules.testing import RuleTest, Suite, suites
from stack import tools
from stack.bundle import Bundle, build, rule_file_tree
from stack.config import ROOT, ConfigError, load_stack
from stack.layout import ALERTMANAGER_CONFIG, unit_tests_path
from stack.output import OutputError, check_out, os_reason, shorten, write_tree
from stack.preview import facts
from stack.preview.worktree import PreviewError
from stack.progress import Progress
from stack.sandbox import console as sandbox_console
from stack.shipped_checks import check_shipped, shipped_count

STACKS = ("dev", "prod")
OK, PROBLEMS, BAD_INPUT, CRASH, INTERRUPTED = 0, 1, 2, 70, 130
BAD_INPUT_ERRORS = (ConfigError, tools.ToolMissing, PreviewError, OutputError)
MESSAGE_LIMIT = 200  # an unexpected error's message, on its one line


def parser() -> argparse.ArgumentParser:
    debug = argparse.ArgumentParser(add_help=False)  # --debug after the command too, without resetting it
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    main_parser = argparse.ArgumentParser(prog="python -m stack", description=__doc__,
                                          formatter_class=argparse.RawDescriptionHelpFormatter)
    main_parser.add_argument("--debug", action="store_true",
                             help="print the traceback of an unexpected error (also accepted after the command)")
    commands = main_parser.add_subparsers(dest="command", required=True)
    render = commands.add_parser("render", parents=[debug], help="check, then write every generated file")
    render.add_argument("--stack", choices=STACKS, default="dev")
    render.add_argument("--out", help="directory to (re)write (default: build/<stack> in the project); it must be "
                                      "empty, new, or written by an earlier render")
    check = commands.add_parser("check", parents=[debug], help="static checks and the tools' own validation")
    check.add_argument("--stack", choices=(*STACKS, "all"), default="all")
    test = commands.add_parser("test", parents=[debug],
                               help="run the generated promtool unit tests and amtool route tests")
    test.add_argument("--stack", choices=(*STACKS, "all"), default="all")
    test.add_argument("--junit", type=Path, help="write JUnit XML results here")
    test.add_argument("--no-cache", action="store_true",
                      help="run every promtool test, ignoring results cached from identical runs")
    slo = commands.add_parser("slo", parents=[debug], help="SLO tools")
    slo_commands = slo.add_subparsers(dest="slo_command", required=True)
    report = slo_commands.add_parser("report", parents=[debug], help="time to fire per SLO, tier and error ratio")
    report.add_argument("--stack", choices=STACKS, default="dev")
    report.add_argument("--no-confirm", action="store_true", help="skip the promtool simulations")
    report.add_argument("--no-cache", action="store_true",
                        help="run every promtool simulation, ignoring results cached from identical runs")
    export = commands.add_parser("export", parents=[debug],
                                 help="every generated file and the facts `diff` compares, even with problems "
                                      "(one directory per stack)")
    export.add_argument("--stack", choices=(*STACKS, "all"), default="all")
    export.add_argument("--out", help="directory to (re)write (default: build/export in the project); it must be "
                                      "empty, new, or written by an earlier export")
    preview = commands.add_parser("diff", parents=[debug],
                                  help="what a change to rules, routes, SLOs, dashboards or the stack really "
                                       "changes, against a git ref (a pull-request preview)")
    preview.add_argument("--base", required=True, help="the git ref to compare the working tree with")
    preview.add_argument("--stack", choices=(*STACKS, "all"), default="all")
    preview.add_argument("--format", choices=("markdown", "json"), default="markdown")
    preview.add_argument("--out", type=Path, help="write the report here instead of stdout")
    preview.add_argument("--json-out", type=Path, help="also write the JSON report here")
    preview.add_argument("--prometheus", metavar="URL", help="backtest changed alerts against this Prometheus")
    preview.add_argument("--days", type=float, default=7, help="how far back the backtest looks (default 7)")
    preview.add_argument("--allow-dirty", action="store_true", help="compare a working tree with uncommitted changes")
    preview.add_argument("--no-cache", action="store_true",
                         help="run every promtool test, ignoring results cached from identical runs")
    sandbox_console.add_parser(commands)
    commands.choices["sandbox"].add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                                             help=argparse.SUPPRESS)
    return main_parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)  # a usage error exits 2 here, with argparse's usage line
    commands: dict[str, Callable[[argparse.Namespace], int]] = {
        "render": cmd_render, "check": cmd_check, "test": cmd_test, "slo": cmd_slo_report, "export": cmd_export,
        "diff": cmd_diff, "sandbox": sandbox_console.run}
    try:
        with tools.caching(not getattr(args, "no_cache", False)):
            return commands[args.command](args)
    except BAD_INPUT_ERRORS as error:
        if args.debug:
            traceback.print_exc()
        print(f"error: {error}", file=sys.stderr)
        return BAD_INPUT
    except KeyboardInterrupt:
        if args.debug:
            traceback.print_exc()
        print("interrupted", file=sys.stderr)
        return INTERRUPTED
    except Exception as error:
        if args.debug:
            traceback.print_exc()
        hint = "" if args.debug else " (rerun with --debug for the traceback)"
        print(f"error: {_describe(error)}{hint}", file=sys.stderr)
        return CRASH


def _describe(error: BaseException) -> str:
    """`<type>: <message>` on one line, the message's first line, shortened."""
    kind = type(error)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    lines = [line for line in str(error).splitlines() if line.strip()]
    message = shorten(lines[0].strip(), MESSAGE_LIMIT) + (" ..." if len(lines) > 1 else "") if lines else ""
    return f"{name}: {message}" if message else name


def _shown(path: str | os.PathLike[str]) -> str:
    """`path` as a user would type it: relative to the current directory when under it."""
    absolute = Path(os.path.abspath(path))
    try:
        return shorten(absolute.relative_to(Path.cwd()))
    except ValueError:
        return shorten(path)


def _warn(notes: list[str]) -> None:
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)


def _write_file(path: Path, text: str) -> None:
    """Write one output file (a report, JUnit XML), or an OutputError naming it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError as error:
        raise OutputError(path, f"cannot write this file: {os_reason(error, path)}") from error


def _stacks(name: str) -> list[str]:
    return list(STACKS) if name == "all" else [name]


def _report(stack: str, bundle: Bundle) -> bool:
    """Print the bundle's static check problems; True when none is an error."""
    problems = bundle.problems()
    for problem in problems:
        if problem.severity >= Severity.WARNING:
            print(f"[{stack}] {problem.render()}")
    return not has_errors(problems)


def cmd_render(args: argparse.Namespace) -> int:
    out = ROOT / "build" / args.stack if args.out is None else args.out
    check_out(out)  # a refused --out fails before the work, not after it
    bundle = build(load_stack(args.stack, ROOT))
    if not _report(args.stack, bundle):
        print(f"render: {args.stack} has errors; nothing written", file=sys.stderr)
        return PROBLEMS
    _warn(write_tree(bundle.files, out))
    print(f"render: wrote {len(bundle.files)} files for {args.stack} to {_shown(out)}")
    return OK


def cmd_export(args: argparse.Namespace) -> int:
    """What `diff` compares: rendered files plus `.preview/` facts, written whatever the problems
    (the problems are among the facts)."""
    out = ROOT / "build" / "export" if args.out is None else args.out
    check_out(out)
    files: dict[str, str] = {}
    for stack in _stacks(args.stack):
        bundle = build(load_stack(stack, ROOT))
        files.update({f"{stack}/{path}": content for path, content in {**bundle.files, **facts.files(bundle)}.items()})
    _warn(write_tree(files, out))
    print(f"export: wrote {len(files)} files for {', '.join(_stacks(args.stack))} to {_shown(out)}")
    return OK


def cmd_diff(args: argparse.Namespace) -> int:
    """Exit 1 when the head has errors or failing rule tests, else 0 (whatever it changes)."""
    from stack.preview import diff, report

    with Progress("diff") as progress:
        result = diff.diff(ROOT, args.base, args.stack, args.prometheus, args.days, args.allow_dirty, progress)
    text = report.as_json(result) if args.format == "json" else report.markdown(result)
    if args.out:
        _write_file(args.out, text)
    else:
        sys.stdout.write(text)
    if args.json_out:
        _write_file(args.json_out, report.as_json(result))
    return PROBLEMS if result.failed else OK


def cmd_check(args: argparse.Namespace) -> int:
    ok = True
    with Progress("check") as progress:
        for stack in _stacks(args.stack):
            progress.stage(f"check: {stack}: building and static checks")
            bundle = build(load_stack(stack, ROOT))
            problems = [p for p in bundle.problems() if p.severity >= Severity.WARNING]
            for problem in problems:
                progress.echo(f"[{stack}] {problem.render()}")
            if has_errors(problems):
                ok = False
                continue
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "out"
                write_tree(bundle.files, out)
                progress.stage(f"check: {stack}: judging", 1 + shipped_count(bundle), "files or sets")
                run = tools.promtool_check_rules([out / p for p in bundle.rule_paths])
                progress.advance()
                verdict = "pass" if run.ok else "fail"
                progress.echo(f"check: {stack}: {len(bundle.rule_paths)} rule files {verdict} promtool check rules")
                if not run.ok:
                    progress.echo(run.output)
                    ok = False
                for verdict in check_shipped(bundle, out):
                    progress.advance()
                    progress.echo(f"check: {stack}: {verdict.path} {'passes' if verdict.ok else 'fails'} "
                                  f"{verdict.judge}")
                    if not verdict.ok:
                        progress.echo(verdict.output)
                        ok = False
            progress.echo(f"check: {stack}: {len(bundle.dashboards)} dashboards and Grafana provisioning pass the "
                          "static checks")
    return OK if ok else PROBLEMS


@dataclass
class _Suite:
    name: str
    cases: list[tuple[str, str | None]] = field(default_factory=list)  # (test, failure)
    tool: str = "promtool"


@dataclass(frozen=True, eq=False)
class _Planned:
    """One promtool run of `stack test`: a suite of a rule file of a stack, rendered at `path`."""

    stack: str
    rule_file: RuleFile
    suite: Suite
    path: Path


def cmd_test(args: argparse.Namespace) -> int:
    ok = True
    suites: list[_Suite] = []
    cache = tools.result_cache()
    with tempfile.TemporaryDirectory() as tmp, Progress("test: building") as progress:
        bundles = {stack: build(load_stack(stack, ROOT)) for stack in _stacks(args.stack)}
        planned = []
        for stack, bundle in bundles.items():
            write_tree(bundle.files, Path(tmp) / stack)
            planned += [_Planned(stack, f, suite, Path(tmp) / stack / unit_tests_path(f.name, suite.name))
                        for f in bundle.rule_files for suite in bundle.test_suites[f.name]]
        progress.stage("test: promtool", len(planned), "runs")
        arrived: list[tools.ToolRun] = []

        def arrive(run: tools.ToolRun) -> None:
            arrived.append(run)
            progress.advance(note=_origins(arrived))

        runs = dict(zip(planned, tools.promtool_test_many([p.path for p in planned], cache, done=arrive),
                        strict=True))
        for stack, bundle in bundles.items():
            for rule_file in bundle.rule_files:
                mine = [p for p in planned if p.stack == stack and p.rule_file is rule_file]
                suite = _Suite(f"{stack}.{rule_file.name}")
                for plan in mine:
                    run = runs[plan]
                    failed = tools.failed_test_names(run.output) if not run.ok else set()
                    if not run.ok and not failed:  # the file itself was rejected
                        failed = {t.name for t in plan.suite.tests}
                    suite.cases += [(t.name, run.output if t.name in failed else None) for t in plan.suite.tests]
                    if not run.ok:
                        progress.echo(f"test: {stack}: {rule_file.name}/{plan.suite.name} failed:\n{run.output}")
                        ok = False
                suites.append(suite)
                passed = sum(1 for _, failure in suite.cases if not failure)
                progress.echo(f"test: {stack}: {rule_file.name}: {passed}/{len(suite.cases)} passed "
                              f"({len(mine)} promtool runs: {_origins(runs[p] for p in mine)})")
        for stack, bundle in bundles.items():
            progress.stage(f"test: {stack}: amtool", len(bundle.route_cases), "routes")
            suites.append(_route_tests(stack, bundle, Path(tmp) / stack, progress, tools.result_cache("amtool")))
            ok = ok and not any(failure for _, failure in suites[-1].cases)
            cov = bundle.coverage()
            progress.echo(f"test: {stack}: {cov.render()}")
            if cov.ratio < 1.0:
                ok = False
    if args.junit:
        _write_junit(args.junit, suites)
    return OK if ok else PROBLEMS


def _origins(runs: Iterable[tools.ToolRun]) -> str:
    """How many runs were run, read from the cache or shared with an identical one."""
    counts = Counter(run.origin for run in runs)
    return ", ".join(f"{counts[o]} {o}" for o in ("ran", "cached", "shared") if counts[o])


def _route_tests(stack: str, bundle: Bundle, out: Path, progress: Progress, cache: tools.ResultCache | None
                 ) -> _Suite:
    """amtool on the rendered Alertmanager config: every alert reaches its receivers."""
    suite = _Suite(f"{stack}.alertmanager-routes", tool="amtool")
    runs = tools.amtool_test_routes(out / ALERTMANAGER_CONFIG, [(c.labels, c.receivers) for c in bundle.route_cases],
                                    cache, done=lambda run: progress.advance())
    for case, run in zip(bundle.route_cases, runs, strict=True):
        failure = None if run.ok else f"reached {run.output}"
        suite.cases.append((case.name, failure))
        if failure:
            progress.echo(f"test: {stack}: FAILED {case.name}: {failure}")
    passed = sum(1 for _, failure in suite.cases if not failure)
    progress.echo(f"test: {stack}: alertmanager routes: {passed}/{len(suite.cases)} passed ({_origins(runs)})")
    return suite


def cmd_slo_report(args: argparse.Namespace) -> int:
    """Print the detection-time table; unless --no-confirm, confirm each figure with promtool."""
    config = load_stack(args.stack, ROOT)
    bundle = build(config)
    built = {f.name for f in bundle.rule_files}
    slos = [s for s in slo_definitions(config) if f"slo-{s.name}" in built]
    cells = slo_report.table(slos)
    if args.no_confirm:
        print(slo_report.render(cells))
        return OK
    confirmed: dict[tuple[str, float], bool] = {}
    with tempfile.TemporaryDirectory() as tmp, Progress("slo report: building") as progress:
        out = Path(tmp) / "out"
        files = dict(bundle.files)
        planned: dict[str, tuple[SLO, list[RuleTest]]] = {}
        for slo in slos:
            tests = slo_report.confirmation_tests(slo, CATALOG)
            rule_file = next(f for f in bundle.rule_files if f.name == f"slo-{slo.name}")
            detection = RuleFile(name=rule_file.name, groups=rule_file.groups, tests=tuple(tests))
            detection_suites = suites(detection, config.evaluation_interval)
            files.update(rule_file_tree(detection, detection_suites, config.runbook_base_url))
            for suite in detection_suites:
                planned[unit_tests_path(rule_file.name, suite.name)] = (slo, list(suite.tests))
        write_tree(files, out)
        progress.stage("slo report: promtool", len(planned), "runs")
        runs = tools.promtool_test_many([out / p for p in planned], tools.result_cache(),
                                        done=lambda run: progress.advance())
        for (slo, tests), run in zip(planned.values(), runs, strict=True):
            failed = tools.failed_test_names(run.output) if not run.ok else set()
            if not run.ok and not failed:
                progress.echo(run.output)
                failed = {t.name for t in tests}
            for name in sorted(failed):
                progress.echo(f"slo report: promtool disagrees: {name}")
            confirmed.update(slo_report.confirmed_cells(slo, tests, failed))
    print(slo_report.render(cells, confirmed))
    return OK if all(confirmed.values()) else PROBLEMS


def _write_junit(path: Path, suites: list[_Suite]) -> None:
    root = ET.Element("testsuites")
    for suite in suites:
        failures = sum(1 for _, f in suite.cases if f)
        node = ET.SubElement(root, "testsuite", name=suite.name, tests=str(len(suite.cases)),
                             failures=str(failures))
        for name, failure in suite.cases:
            case = ET.SubElement(node, "testcase", classname=suite.name, name=name)
            if failure:
                ET.SubElement(case, "failure", message=f"{suite.tool} test failed").text = failure
    _write_file(path, ET.tostring(root, encoding="unicode", xml_declaration=True))


if __name__ == "__main__":
    sys.exit(main())
