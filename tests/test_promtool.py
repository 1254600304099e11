"""The generated promtool tests can fail: a broken alert or threshold turns them red, and a
rule without its cases lowers coverage. (A test that cannot fail proves nothing.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from rules.model import AlertingRule, RuleFile, RuleGroup
from rules.testing import AlertAt, Firing, RuleTest, coverage
from stack import tools
from stack.bundle import build, unit_tests_path
from stack.config import StackConfig
from stack.output import write_tree


def _run_tests(rule_file_name: str, config: StackConfig, tmp_path: Path, mutate=None) -> tools.ToolRun:
    bundle = build(config)
    files = dict(bundle.files)
    if mutate:
        files = mutate(bundle, files)
    write_tree(files, tmp_path / "out")
    return tools.promtool_test_rules(tmp_path / "out" / unit_tests_path(rule_file_name))


def test_generated_tests_pass_unchanged(dev_config, tmp_path: Path) -> None:
    run = _run_tests("medianest", dev_config, tmp_path)
    assert run.ok, run.output


@pytest.mark.parametrize("error_ratio", [0.001, 0.05, 0.07, 0.1, 0.3, 0.9])
def test_generated_tests_pass_for_any_error_ratio_threshold(dev_config, tmp_path: Path, error_ratio: float) -> None:
    # promtool 2.x compares expression results exactly: the generated cases must pick traffic whose
    # rates and ratios floating point holds exactly, whatever the threshold (0.07 once gave 0.13999999999999999).
    config = dev_config.model_copy(update={"thresholds": dev_config.thresholds.model_copy(
        update={"error_ratio": error_ratio})})
    run = _run_tests("medianest", config, tmp_path)
    assert run.ok, run.output


def test_a_raised_threshold_fails_the_firing_case(dev_config, tmp_path: Path) -> None:
    def raise_threshold(bundle, files):
        path = "prometheus/rules/medianest.yaml"
        files[path] = files[path].replace(f"> {dev_config.thresholds.error_ratio}", "> 0.5")
        return files

    run = _run_tests("medianest", dev_config, tmp_path, raise_threshold)
    assert not run.ok
    assert tools.failed_test_names(run.output) == {"Twice the allowed share of 5xx for 5 minutes pages"}


def test_a_lowered_threshold_fails_the_healthy_case(dev_config, tmp_path: Path) -> None:
    def lower_threshold(bundle, files):
        path = "prometheus/rules/medianest.yaml"
        files[path] = files[path].replace(
            f"medianest_queue_size{{job=\"medianest-backend\"}} > {dev_config.thresholds.queue_backlog_items}",
            "medianest_queue_size{job=\"medianest-backend\"} > 10")
        return files

    run = _run_tests("medianest", dev_config, tmp_path, lower_threshold)
    assert tools.failed_test_names(run.output) == {"A queue at its backlog limit raises nothing"}


def test_coverage_names_what_is_missing() -> None:
    rule = AlertingRule(alert="Lonely", expr="up == 0")
    group = RuleGroup(name="g", rules=(rule,))
    result = coverage([group], [RuleTest("only fires", (), alerts=(AlertAt("1m", "Lonely", (Firing(),)),))])
    assert result.ratio == 0
    assert result.missing == ("Lonely (no silent case)",)


def test_an_always_firing_alert_needs_no_silent_case() -> None:
    watchdog = AlertingRule(alert="Watchdog", expr="vector(1)")
    group = RuleGroup(name="g", rules=(watchdog,))
    assert coverage([group], [RuleTest("t", ())]).missing == ("Watchdog (no firing case)",)
    fires = RuleTest("t", (), alerts=(AlertAt("1m", "Watchdog", (Firing(),)),))
    assert coverage([group], [fires]).ratio == 1


def test_every_alert_fires_and_stays_silent_somewhere(bundle) -> None:
    result = bundle.coverage()
    assert result.missing == ()
    assert result.alerts_total >= 30 and result.records_total >= 14


def test_every_rule_file_has_tests(bundle) -> None:
    assert all(isinstance(f, RuleFile) and f.tests for f in bundle.rule_files)
