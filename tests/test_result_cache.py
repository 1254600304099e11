"""promtool results are identified by what decides them: the same run is done once per call and
read back from the cache afterwards, said so in the output; another promtool, a changed file or
a broken cache entry runs it again."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from stack import judges, tools
from stack.cli import main

TEST_FILE = """rule_files: [rules.yaml]
evaluation_interval: 1m
tests:
- name: fires
  interval: 1m
  input_series:
  - series: up{job="x"}
    values: 0x10
  alert_rule_test:
  - eval_time: 5m
    alertname: Down
    exp_alerts: [{exp_labels: {job: x}}]
"""
RULES = """groups:
- name: g
  rules:
  - alert: Down
    expr: up == 0
"""


def _tree(root: Path, threshold: str = "0") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "rules.yaml").write_text(RULES.replace("== 0", f"== {threshold}"))
    (root / "test.yaml").write_text(TEST_FILE)
    return root / "test.yaml"


@pytest.fixture
def cache(tmp_path: Path) -> tools.ResultCache:
    return tools.ResultCache(tmp_path / "cache")


def test_a_rerun_comes_from_the_cache_with_the_same_result(tmp_path: Path, cache: tools.ResultCache) -> None:
    path = _tree(tmp_path / "t")
    first = tools.promtool_test_many([path], cache)[0]
    second = tools.promtool_test_many([path], cache)[0]
    assert (first.origin, second.origin) == ("ran", "cached")
    assert first.ok and (second.returncode, second.output) == (first.returncode, first.output)


def test_identical_files_in_one_call_run_once(tmp_path: Path, cache: tools.ResultCache) -> None:
    dev, prod = _tree(tmp_path / "dev"), _tree(tmp_path / "prod")
    assert [r.origin for r in tools.promtool_test_many([dev, prod], cache)] == ["ran", "shared"]


def test_a_changed_rule_file_is_run_again_and_its_failure_kept(tmp_path: Path, cache: tools.ResultCache) -> None:
    path = _tree(tmp_path / "t")
    assert tools.promtool_test_many([path], cache)[0].ok
    _tree(tmp_path / "t", threshold="1")  # the alert can no longer fire
    failed = tools.promtool_test_many([path], cache)[0]
    assert failed.origin == "ran" and not failed.ok and tools.failed_test_names(failed.output) == {"fires"}
    again = tools.promtool_test_many([path], cache)[0]
    assert again.origin == "cached" and not again.ok


def test_another_promtool_never_reuses_a_result(tmp_path: Path, cache: tools.ResultCache,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = _tree(tmp_path / "t")
    assert tools.promtool_test_many([path], cache)[0].origin == "ran"
    # The same binary under another version: a wrapper in the judges' directory that says so.
    wrapper = tmp_path / "bin" / "promtool"
    wrapper.parent.mkdir()
    real = tools.require("promtool")
    wrapper.write_text(f'#!/bin/sh\n[ "$1" = --version ] && {{ echo "promtool, version 99.0.0"; exit 0; }}\n'
                       f'exec {real} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(judges, "BIN", wrapper.parent)
    tools.tool_identity.cache_clear()
    try:
        assert tools.promtool_test_many([path], cache)[0].origin == "ran"
    finally:
        tools.tool_identity.cache_clear()


def test_a_broken_or_deleted_cache_is_a_miss_never_an_error(tmp_path: Path, cache: tools.ResultCache) -> None:
    path = _tree(tmp_path / "t")
    tools.promtool_test_many([path], cache)
    for entry in cache.directory.rglob("*.json"):
        entry.write_text("{not json")
    assert tools.promtool_test_many([path], cache)[0].origin == "ran"
    assert tools.promtool_test_many([path], cache)[0].origin == "cached"
    shutil.rmtree(cache.directory.parent)
    assert tools.promtool_test_many([path], cache)[0].origin == "ran"
    assert not list(cache.directory.rglob(".*.tmp")), "temporary files left behind"


def test_stack_test_passes_with_full_coverage_writes_junit_and_says_what_came_from_the_cache(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("MEDIANEST_CACHE_DIR", str(tmp_path / "cache"))
    junit = tmp_path / "junit.xml"
    assert main(["test", "--stack", "all", "--junit", str(junit)]) == 0
    first = capsys.readouterr().out
    assert "(100%)" in first and " cached" not in first
    # prod's SLO scenarios are dev's: run once.
    assert "test: prod: slo-api-availability:" in first and "shared)" in first
    text = junit.read_text()
    assert '<testsuite name="dev.medianest"' in text and "<failure" not in text
    assert main(["test", "--stack", "all"]) == 0
    second = capsys.readouterr().out
    lines = [line for line in second.splitlines() if "passed (" in line]
    assert lines and all(line.endswith(("cached)", "shared)")) and " ran" not in line for line in lines), second


def test_no_cache_runs_every_tool(monkeypatch: pytest.MonkeyPatch) -> None:
    """--no-cache hands the runners no cache (what they then do is the tests above)."""
    given = []
    monkeypatch.setattr(tools, "promtool_test_many", lambda paths, cache=None, done=None: given.append(cache)
                        or [tools.ToolRun([], 0, "") for _ in paths])
    monkeypatch.setattr(tools, "amtool_test_routes", lambda config, cases, cache=None, done=None: given.append(cache)
                        or [tools.ToolRun([], 0, "") for _ in cases])
    main(["test", "--stack", "dev", "--no-cache"])
    assert given == [None, None]
    given.clear()
    main(["test", "--stack", "dev"])
    assert all(isinstance(c, tools.ResultCache) for c in given) and len(given) == 2


def test_the_cache_lives_under_the_users_cache_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MEDIANEST_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert tools.cache_directory() == tmp_path / "medianest-observability"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert tools.cache_directory() == Path.home() / ".cache" / "medianest-observability"
    monkeypatch.setenv("MEDIANEST_NO_CACHE", "1")
    assert tools.result_cache() is None

