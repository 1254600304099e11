"""The generated promtool tests can fail: a broken alert, threshold, severity, routing label or
summary turns them red, and a rule without its cases lowers coverage. (A test that cannot fail
proves nothing.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rules.model import AlertingRule, RecordingRule, RuleFile, RuleGroup
from rules.testing import AlertAt, Expected, ExprAt, Firing, RuleTest, Series, coverage, restricted, suites
from stack import tools
from stack.bundle import RULES_DIR, TESTS_DIR, build, unit_tests_path
from stack.config import StackConfig
from stack.output import write_tree


def _failed(rule_file_name: str, config: StackConfig, tmp_path: Path, mutate=None) -> set[str]:
    """Names of the failed tests of a rule file's suites; `mutate(text)` edits every rendered
    file holding its rules (the rule file and the copies its suites read), as a changed
    definition would."""
    bundle = build(config)
    files = dict(bundle.files)
    for path in files:
        if mutate and path.endswith(".yaml") and (path == f"{RULES_DIR}/{rule_file_name}.yaml"
                                                  or path.startswith(f"{TESTS_DIR}/{rule_file_name}/rules/")):
            files[path] = mutate(files[path])
    write_tree(files, tmp_path / "out")
    paths = [tmp_path / "out" / unit_tests_path(rule_file_name, s.name) for s in bundle.test_suites[rule_file_name]]
    runs = tools.promtool_test_many(paths)
    failed: set[str] = set()
    for run in runs:
        names = tools.failed_test_names(run.output)
        assert run.ok or names, run.output  # a failure names its test
        failed |= names
    return failed


def test_generated_tests_pass_unchanged(dev_config, tmp_path: Path) -> None:
    assert _failed("medianest", dev_config, tmp_path) == set()


@pytest.mark.parametrize("error_ratio", [0.001, 0.05, 0.07, 0.1, 0.3, 0.9])
def test_generated_tests_pass_for_any_error_ratio_threshold(dev_config, tmp_path: Path, error_ratio: float) -> None:
    # promtool compares expression results exactly: the generated cases must pick traffic whose
    # rates and ratios floating point holds exactly, whatever the threshold (0.07 once gave 0.13999999999999999).
    config = dev_config.model_copy(update={"thresholds": dev_config.thresholds.model_copy(
        update={"error_ratio": error_ratio})})
    assert _failed("medianest", config, tmp_path) == set()


def test_a_raised_threshold_fails_the_firing_case(dev_config, tmp_path: Path) -> None:
    def raise_threshold(text: str) -> str:
        return text.replace(f"> {dev_config.thresholds.error_ratio}", "> 0.5")

    assert _failed("medianest", dev_config, tmp_path, raise_threshold) == {
        "Twice the allowed share of 5xx for 5 minutes pages"}


def test_a_lowered_threshold_fails_the_healthy_case(dev_config, tmp_path: Path) -> None:
    def lower_threshold(text: str) -> str:
        return text.replace(
            f"medianest_queue_size{{job=\"medianest-backend\"}} > {dev_config.thresholds.queue_backlog_items}",
            "medianest_queue_size{job=\"medianest-backend\"} > 10")

    assert _failed("medianest", dev_config, tmp_path, lower_threshold) == {
        "A queue at its backlog limit raises nothing"}


FIRING_CASES = ["Twice the allowed share of 5xx for 5 minutes pages"]


@pytest.mark.parametrize(("what", "before", "after"), [
    ("a severity that would route it elsewhere", "severity: critical", "severity: warning"),
    ("a routing label", "service: medianest", "service: business"),
    ("a summary", "summary: MediaNest backend is failing requests", "summary: Something is wrong"),
])
def test_a_wrong_label_or_summary_in_the_rule_fails_its_firing_case(dev_config, tmp_path: Path, what, before,
                                                                    after) -> None:
    """The expectations are stated in the tests, not copied from the rule under test."""
    def break_high_error_rate(text: str) -> str:
        document = yaml.safe_load(text.split("\n", 1)[1])
        for group in document["groups"]:
            for rule in group["rules"]:
                if rule.get("alert") == "HighErrorRate":
                    broken = yaml.safe_dump(rule, sort_keys=True).replace(before, after)
                    assert broken != yaml.safe_dump(rule, sort_keys=True), what
                    rule.clear()
                    rule.update(yaml.safe_load(broken))
        return yaml.safe_dump(document, sort_keys=False)

    assert _failed("medianest", dev_config, tmp_path, break_high_error_rate) == set(FIRING_CASES)


def test_a_wrong_slo_tier_label_fails_the_slo_scenarios(dev_config, tmp_path: Path) -> None:
    def swap_severity(text: str) -> str:
        return text.replace("severity: critical", "severity: warning")

    failed = _failed("slo-api-availability", dev_config, tmp_path, swap_severity)
    assert any("carry their routing labels and annotations" in name for name in failed)
    assert any("a full outage pages" in name for name in failed)


def test_coverage_names_what_is_missing() -> None:
    rule = AlertingRule(alert="Lonely", expr="up == 0")
    group = RuleGroup(name="g", rules=(rule,))
    result = coverage([group], [RuleTest("only fires", (), alerts=(AlertAt("1m", "Lonely", (Firing(),)),))])
    assert result.ratio == 0
    assert result.missing == ("Lonely (no silent or annotated case)",)


def test_an_always_firing_alert_needs_no_silent_case() -> None:
    watchdog = AlertingRule(alert="Watchdog", expr="vector(1)")
    group = RuleGroup(name="g", rules=(watchdog,))
    assert coverage([group], [RuleTest("t", ())]).missing == ("Watchdog (no firing or annotated case)",)
    fires = RuleTest("t", (), alerts=(AlertAt("1m", "Watchdog", (Firing({}, "s", "d"),)),))
    assert coverage([group], [fires]).ratio == 1


def test_every_alert_fires_stays_silent_and_proves_its_annotations_somewhere(bundle) -> None:
    result = bundle.coverage()
    assert result.missing == ()
    rules = [r for f in bundle.rule_files for g in f.groups for r in g.rules]
    assert result.alerts_total == len({r.alert for r in rules if isinstance(r, AlertingRule)})
    assert result.records_total == len({r.record for r in rules if isinstance(r, RecordingRule)})


def test_every_rule_file_has_tests(bundle) -> None:
    assert all(isinstance(f, RuleFile) and f.tests for f in bundle.rule_files)


# --- suites: what a promtool run loads --------------------------------------------------------

RATIO = RecordingRule(record="job:errors:ratio", expr="sum(rate(errors[5m])) / sum(rate(requests[5m]))")
SLOW = RecordingRule(record="job:latency:p95", expr="histogram_quantile(0.95, sum by (le) (rate(latency_bucket[5m])))")
FAILING = AlertingRule(alert="Failing", expr="job:errors:ratio > 0.1", labels={"severity": "critical", "tier": "a"},
                       annotations={"summary": "s", "description": "d", "runbook_url": "https://r/Failing"})
FAILING_B = FAILING.model_copy(update={"labels": {"severity": "warning", "tier": "b"}})
SLOWED = AlertingRule(alert="Slow", expr="job:latency:p95 > 1", annotations={"summary": "s"})
GROUPS = (RuleGroup(name="records", rules=(RATIO, SLOW)), RuleGroup(name="alerts", rules=(FAILING, FAILING_B, SLOWED)))


def _names(groups: tuple[RuleGroup, ...]) -> list[str]:
    return [r.name for g in groups for r in g.rules]


def test_a_suite_loads_the_alerts_it_checks_and_the_records_they_read() -> None:
    test = RuleTest("t", (), alerts=(AlertAt("1m", "Failing"),))
    assert _names(restricted(GROUPS, [test], annotations=True)) == ["job:errors:ratio", "Failing", "Failing"]


def test_alerts_series_matchers_narrow_a_suite_to_one_tier() -> None:
    test = RuleTest("t", (), exprs=(ExprAt("1m", 'ALERTS{alertname="Failing",tier="b"}', ()),))
    kept = restricted(GROUPS, [test], annotations=False)
    assert [r.labels.get("tier") for g in kept for r in g.rules if isinstance(r, AlertingRule)] == ["b"]
    assert all(not r.annotations for g in kept for r in g.rules if isinstance(r, AlertingRule))


def test_a_suite_that_states_annotations_keeps_them_and_one_that_does_not_drops_them() -> None:
    expected = Expected("critical", "web", "s")
    annotated = RuleTest("a", (), alerts=(AlertAt("1m", "Failing", (expected.firing({}, "d"),)),))
    bare = RuleTest("b", (), alerts=(AlertAt("1m", "Failing", (Firing({"severity": "critical"}),)),), suite="bare")
    found = {s.name: s for s in suites(RuleFile(name="f", groups=GROUPS, tests=(annotated, bare)), "1m")}
    assert [r.annotations["summary"] for g in found["Failing"].groups for r in g.rules if hasattr(r, "alert")] == [
        "s", "s"]
    assert all(not r.annotations for g in found["bare"].groups for r in g.rules if hasattr(r, "alert"))
    assert not found["Failing"].whole and not found["bare"].whole


def test_a_suite_that_mixes_stated_and_unstated_annotations_is_refused() -> None:
    expected = Expected("critical", "web", "s")
    tests = (RuleTest("a", (), alerts=(AlertAt("1m", "Failing", (expected.firing({}, "d"),)),)),
             RuleTest("b", (), alerts=(AlertAt("1m", "Failing", (Firing({"severity": "critical"}),)),)))
    with pytest.raises(ValueError, match="either every expected alert states its annotations or none"):
        suites(RuleFile(name="f", groups=GROUPS, tests=tests), "1m")


def test_a_test_of_an_alert_no_rule_defines_is_refused_naming_both() -> None:
    test = RuleTest("typo", (Series("up", "1"),), alerts=(AlertAt("1m", "Faling"),))
    with pytest.raises(ValueError, match="test 'typo' of f expects Faling, which no rule of the file defines"):
        suites(RuleFile(name="f", groups=GROUPS, tests=(test,)), "1m")


def test_every_suite_reads_a_subset_of_its_shipped_rule_file(bundle) -> None:
    for rule_file in bundle.rule_files:
        shipped = {(r.name, r.expr, r.for_ if isinstance(r, AlertingRule) else None, tuple(sorted(r.labels.items())))
                   for g in rule_file.groups for r in g.rules}
        for suite in bundle.test_suites[rule_file.name]:
            for group in suite.groups:
                for rule in group.rules:
                    key = (rule.name, rule.expr, rule.for_ if isinstance(rule, AlertingRule) else None,
                           tuple(sorted(rule.labels.items())))
                    assert key in shipped, f"{suite.name} of {rule_file.name} reads {rule.name}, not as shipped"
