"""The "Alerts and recording rules" section: rules added, removed and changed (what changed, the
receivers before and after, the unit tests of the head). Config overrides make real changes;
what no config key changes (`for`, severity, labels, annotations, routes, a broken rule) is made
by editing the head's rendered YAML."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from preview_helpers import trees

from stack.preview import rules
from stack.preview import trees as exported
from stack.preview.model import Block, Change, Section, Trees
from stack.preview.rules import TITLE, section

ERROR_RATIO_EXPR = 'job:medianest_http_request_errors:ratio_rate5m{job="medianest-backend"} > '
ERROR_RATIO_TEST = "Twice the allowed share of 5xx for 5 minutes pages"
SLO_PAGE = 'alert SLOErrorBudgetBurn{slo="api-availability", tier="page"}'


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Trees:
    return trees(tmp_path_factory.mktemp("rules"), "dev")


@pytest.fixture(scope="module")
def error_ratio(tmp_path_factory: pytest.TempPathFactory) -> tuple[Trees, Section]:
    raised = trees(tmp_path_factory.mktemp("error-ratio"), "dev", head={"thresholds": {"errorRatio": 0.07}})
    return raised, section(raised)


@pytest.fixture(scope="module")
def without_loki(tmp_path_factory: pytest.TempPathFactory) -> Trees:
    return trees(tmp_path_factory.mktemp("loki"), "dev", head={"services": {"loki": {"enabled": False}}})


@pytest.fixture
def edited(dev: Trees, tmp_path: Path) -> Trees:
    """dev on both sides, copied: a test edits the head."""
    return Trees(dev.stack, Path(shutil.copytree(dev.base, tmp_path / "base")),
                 Path(shutil.copytree(dev.head, tmp_path / "head")))


def edit_alert(tree: Path, name: str, edit: Callable[[dict[str, Any]], None], slo: str | None = None,
               tier: str | None = None) -> None:
    """Edit an alert of the tree's rendered rule files in place (the first of that name, or the
    one with that slo and tier label), as a change to its definition would: in its rule file and
    in the copies its test suites read (prometheus/tests/<rule file>/rules/)."""
    for path in sorted((tree / exported.RULES_DIR).glob("*.yaml")):
        if _edit_in(path, name, edit, slo, tier):
            for copy in sorted((tree / exported.TESTS_DIR / path.stem / "rules").glob("*.yaml")):
                _edit_in(copy, name, edit, slo, tier)
            return
    raise AssertionError(f"no alert {name} in {tree}")


def _edit_in(path: Path, name: str, edit: Callable[[dict[str, Any]], None], slo: str | None,
             tier: str | None) -> bool:
    document = yaml.safe_load(path.read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            labels = rule.get("labels") or {}
            if rule.get("alert") == name and (slo, tier) in ((None, None), (labels.get("slo"), labels.get("tier"))):
                edit(rule)
                path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
                return True
    return False


def change(found: Section, subject: str) -> Change:
    return next(c for c in found.changes if c.subject == subject)


def lines(found: Change) -> list[str]:
    return [d for d in found.details if isinstance(d, str)]


def blocks(found: Change, lang: str) -> list[str]:
    return [d.text for d in found.details if isinstance(d, Block) and d.lang == lang]


def leftovers(tree: Path) -> list[Path]:
    return list((tree / exported.TESTS_DIR).glob(".preview-*"))


def test_identical_trees_change_nothing(dev: Trees) -> None:
    assert section(dev) == Section(TITLE)


def test_a_raised_threshold_is_a_changed_expression_with_its_threshold(error_ratio: tuple[Trees, Section]) -> None:
    raised, found = error_ratio
    # errorRatio is used by HighErrorRate alone (its tests and a dashboard follow it too).
    assert [(c.kind, c.subject) for c in found.changes] == [("changed", "alert HighErrorRate")]
    high = found.changes[0]
    assert lines(high)[:2] == ["expression changed", "threshold 0.05 -> 0.07"]
    assert blocks(high, "diff") == ["\n".join(["--- base", "+++ head", "@@ -1 +1 @@",
                                               f"-{ERROR_RATIO_EXPR}0.05", f"+{ERROR_RATIO_EXPR}0.07"])]
    assert "reaches critical-alerts (unchanged)" in lines(high)
    assert high.data["changes"] == {
        "expr": {"old": f"{ERROR_RATIO_EXPR}0.05", "new": f"{ERROR_RATIO_EXPR}0.07"},
        "numbers": [{"what": "threshold", "old": "0.05", "new": "0.07"}],
    }
    assert high.data["receivers"] == {"before": ["critical-alerts"], "after": ["critical-alerts"]}
    assert not leftovers(raised.head)


def test_the_raised_thresholds_tests_run_on_the_head_and_pass(error_ratio: tuple[Trees, Section]) -> None:
    """The 4 tests naming HighErrorRate run on the head; they follow the threshold (at 0.07 they
    once expected 0.14 where PromQL computes 0.13999999999999999: rules/medianest_tests.py now
    picks traffic floating point holds exactly)."""
    _, found = error_ratio
    high = change(found, "alert HighErrorRate")
    assert lines(high)[-1] == "unit tests: 4 passed"
    assert high.data["unit_tests"] == {"passed": 4, "failed": [], "errors": []}
    assert not found.failed and found.notes == ()


def test_removed_alerts_say_which_receivers_they_reached(without_loki: Trees) -> None:
    found = section(without_loki)
    assert [(c.kind, c.subject) for c in found.changes] == [("removed", "alert LokiDown"),
                                                            ("removed", "alert LokiRequestErrors")]
    down = change(found, "alert LokiDown")
    assert lines(down) == ["in prometheus/rules/platform.yaml, group platform.meta, for 2m, severity critical, "
                           'service platform, summary "Loki is down"', "reached critical-alerts (after: —)"]
    assert blocks(down, "promql") == ['up{job="loki"} == 0 or absent(up{job="loki"})']
    assert down.data["receivers"] == {"before": ["critical-alerts"], "after": []}
    # A removed alert has no tests to run on the head.
    assert "unit_tests" not in down.data
    assert lines(change(found, "alert LokiRequestErrors"))[-1] == "reached default (after: —)"
    assert not found.failed


def test_added_alerts_say_which_receivers_they_reach_and_run_their_tests(without_loki: Trees) -> None:
    found = section(Trees("dev", without_loki.head, without_loki.base))
    assert [(c.kind, c.subject) for c in found.changes] == [("added", "alert LokiDown"),
                                                            ("added", "alert LokiRequestErrors")]
    down, errors = change(found, "alert LokiDown"), change(found, "alert LokiRequestErrors")
    assert lines(down)[1:] == ["reaches critical-alerts (before: —)", "unit tests: 1 passed"]
    assert lines(errors)[1:] == ["reaches default (before: —)", "unit tests: 2 passed"]
    assert down.data["receivers"] == {"before": [], "after": ["critical-alerts"]}
    assert down.data["unit_tests"] == {"passed": 1, "failed": [], "errors": []}
    assert not found.failed and not found.notes
    assert not leftovers(without_loki.base)


def test_a_changed_for_and_severity_reroute_the_alert_and_break_its_tests(edited: Trees) -> None:
    def slower_and_critical(rule: dict[str, Any]) -> None:
        rule["for"] = "15m"
        rule["labels"]["severity"] = "critical"

    edit_alert(edited.head, "HighResponseTime", slower_and_critical)
    found = section(edited)
    slow = change(found, "alert HighResponseTime")
    assert lines(slow)[:3] == ["for 10m -> 15m", "severity warning -> critical",
                               "now reaches critical-alerts instead of default"]
    assert slow.data["changes"] == {"for": {"old": "10m", "new": "15m"},
                                    "labels": {"severity": {"old": "warning", "new": "critical"}}}
    # Its test expects a warning after 15 minutes: it gets neither (the alert is still pending).
    assert lines(slow)[3].startswith("unit tests: 1 of 2 failed: ")
    assert found.failed


def test_labels_and_annotations_say_what_changed(edited: Trees) -> None:
    def relabelled(rule: dict[str, Any]) -> None:
        rule["labels"] |= {"team": "backend", "service": "api"}
        rule["annotations"]["summary"] = "MediaNest database is slow"
        rule["annotations"]["description"] += " Check the slow query log."
        del rule["annotations"]["runbook_url"]

    edit_alert(edited.head, "SlowDatabaseQueries", relabelled)
    slow = change(section(edited), "alert SlowDatabaseQueries")
    assert lines(slow)[:5] == [
        "label service medianest -> api",
        "label team added: backend",
        'summary "MediaNest database queries are slow" -> "MediaNest database is slow"',
        "description changed",
        "annotation runbook_url removed",
    ]
    assert slow.data["changes"]["labels"] == {"service": {"old": "medianest", "new": "api"},
                                              "team": {"old": None, "new": "backend"}}
    assert set(slow.data["changes"]["annotations"]) == {"summary", "description", "runbook_url"}


def test_a_new_route_is_said_of_a_changed_alert(edited: Trees) -> None:
    config = edited.head / exported.ALERTMANAGER_CONFIG
    document = yaml.safe_load(config.read_text())
    document["route"]["routes"].insert(0, {"receiver": "tickets", "matchers": ['alertname="HighErrorRate"']})
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    # Routing alone changes no rule: the routing section reports rerouted alerts.
    assert section(edited) == Section(TITLE)
    edit_alert(edited.head, "HighErrorRate", lambda rule: rule["annotations"].update(summary="Backend 5xx"))
    high = change(section(edited), "alert HighErrorRate")
    assert "now reaches tickets instead of critical-alerts" in lines(high)
    assert high.data["receivers"] == {"before": ["critical-alerts"], "after": ["tickets"]}


def test_a_failing_unit_test_fails_the_section(edited: Trees) -> None:
    edit_alert(edited.head, "HighErrorRate", lambda rule: rule.update(expr=f"{ERROR_RATIO_EXPR}0.5"))
    found = section(edited)
    high = change(found, "alert HighErrorRate")
    assert "threshold 0.05 -> 0.5" in lines(high)
    assert lines(high)[-1] == f"unit tests: 1 of 4 failed: {ERROR_RATIO_TEST}"
    assert found.failed
    assert found.notes == (f"1 unit test of added or changed alerts failed on the head: {ERROR_RATIO_TEST}",)
    assert not leftovers(edited.head)


def test_an_alert_without_tests_says_so(edited: Trees) -> None:
    edit_alert(edited.head, "HighErrorRate", lambda rule: rule.update({"for": "10m"}))
    (edited.head / exported.TESTS_DIR / "medianest" / "HighErrorRate.yaml").unlink()
    high = change(section(edited), "alert HighErrorRate")
    assert lines(high) == ["for 5m -> 10m", "reaches critical-alerts (unchanged)", "no unit test"]
    assert high.data["unit_tests"] is None


def test_same_named_slo_alerts_are_told_apart_by_slo_and_tier(edited: Trees) -> None:
    # This test is about which alert changed, not its tests.
    shutil.rmtree(edited.head / exported.TESTS_DIR / "slo-api-availability")
    edit_alert(edited.head, "SLOErrorBudgetBurn", lambda rule: rule["labels"].update(severity="warning"),
               slo="api-availability", tier="page")
    found = section(edited)
    assert [(c.kind, c.subject) for c in found.changes] == [("changed", SLO_PAGE)]
    assert lines(found.changes[0]) == ["severity critical -> warning", "now reaches default instead of critical-alerts",
                                       "no unit test"]


def test_recording_rules_are_keyed_by_record_and_labels(edited: Trees) -> None:
    path = edited.head / exported.RULES_DIR / "slo-api-availability.yaml"
    document = yaml.safe_load(path.read_text())
    recorded = document["groups"][0]["rules"]
    recorded[0]["expr"] = recorded[0]["expr"].replace("[5m]", "[10m]")
    moved = recorded.pop(1)
    document["groups"].append({"name": "slo.moved", "rules": [moved]})
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    found = section(edited)
    subjects = {c.subject: c for c in found.changes}
    assert set(subjects) == {'recording rule slo:sli_error:ratio_rate5m{slo="api-availability"}',
                             'recording rule slo:sli_error:ratio_rate30m{slo="api-availability"}'}
    window = subjects['recording rule slo:sli_error:ratio_rate5m{slo="api-availability"}']
    assert lines(window) == ["expression changed", "duration 5m -> 10m"]
    assert lines(subjects['recording rule slo:sli_error:ratio_rate30m{slo="api-availability"}']) == [
        "group slo.api-availability -> slo.moved"]
    assert not found.failed


def test_tests_of_an_slo_alert_are_those_loading_its_rule_file(dev: Trees) -> None:
    files = rules.unit_test_files(dev.head)
    burns = [r for r in exported.rules(dev.head) if r.name == "SLOErrorBudgetBurn"]
    assert len({r.file for r in burns}) == 4  # one rule file per SLO, each with its own tests
    for burn in burns:
        found = rules.tests_of(dev.head, burn, files)
        # Its suites: each loads the rules of this SLO's file that it reads.
        assert {t.file.parent.name for t in found} == {Path(burn.file).stem}
        assert {t.file.stem for t in found} == {"alerts", "outage", "ticket", "healthy"}


@pytest.mark.parametrize(("before", "after", "found"), [
    ("x > 0.05", "x > 0.07", [("threshold", "0.05", "0.07")]),
    ("x > bool 1", "x > bool 2", [("threshold", "1", "2")]),
    ("rate(x[5m]) > 1", "rate(x[1h30m]) > 1", [("duration", "5m", "1h30m")]),
    ("x / 0.001 > 14.4 and y / 0.001 > 14.4", "x / 0.002 > 14.4 and y / 0.002 > 14.4", [("number", "0.001", "0.002")]),
    ('x{a="1"} > 1', 'x{a="2"} > 1', []),
    ("x > 1", "y > 2", []),
    ("x > 1", "x > 1 + 1", []),
])
def test_number_changes(before: str, after: str, found: list[tuple[str, str, str]]) -> None:
    assert rules.number_changes(before, after) == found
