"""SLOs: the window table, exact objectives, validation naming the SLO and field, generated
rules, the detection maths, and promtool agreeing with it."""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path

import pytest

from rules.metrics import CATALOG
from rules.slo import slo_rule_files
from rules.slo.detection import Schedule, human, tier_detection, timeline
from rules.slo.generate import rule_group
from rules.slo.spec import SLO, GaugeSLI, LatencySLI, RatioSLI
from rules.slo.validate import validate
from rules.slo.windows import PeriodError, burn_windows, window_name
from rules.slos import slos
from rules.testing import suites
from stack import tools
from stack.bundle import rule_file_tree, unit_tests_path
from stack.cli import main
from stack.output import write_tree

HTTP = "medianest_http_requests_total"
GOOD = SLO(
    name="checkout", service="medianest", objective=Decimal("99.9"), description="of requests succeed",
    sli=RatioSLI(total=f'{HTTP}{{job="medianest-backend"}}',
                 errors=f'{HTTP}{{job="medianest-backend",status_code=~"5.."}}',
                 good_example={"status_code": "200"}, bad_example={"status_code": "500"}),
)


WINDOW_TABLES = [
    ("the SRE workbook's table for 30 days", "30d",
     [("page", "1h", "5m", "14.4"), ("page", "6h", "30m", "6"), ("ticket", "1d", "2h", "3"),
      ("ticket", "3d", "6h", "1")]),
    ("windows scale with a 28-day period", "28d",
     [("page", "56m", "5m", "14.4"), ("page", "336m", "28m", "6"), ("ticket", "1344m", "112m", "3"),
      ("ticket", "4032m", "336m", "1")]),
    ("a 7-day period keeps short windows of at least 5 minutes", "7d",
     [("page", "14m", "5m", "14.4"), ("page", "84m", "7m", "6"), ("ticket", "336m", "28m", "3"),
      ("ticket", "1008m", "84m", "1")]),
]


@pytest.mark.parametrize(("period", "expected"), [r[1:] for r in WINDOW_TABLES], ids=[r[0] for r in WINDOW_TABLES])
def test_burn_windows_derive_from_the_period(period, expected) -> None:
    got = [(w.tier, window_name(w.long), window_name(w.short), format(w.factor.normalize(), "f"))
           for w in burn_windows(period)]
    assert got == expected


def test_a_period_the_table_cannot_serve_is_refused() -> None:
    with pytest.raises(PeriodError, match="period 4d is too short.*at least 5d"):
        burn_windows("4d")


def test_objectives_stay_exact_in_the_rules() -> None:
    text = str(rule_group(GOOD, "https://r").to_dict())
    assert "vector(0.999)" in text and "vector(0.001)" in text and "> 14.4 " in text
    assert "0.9990000000000001" not in text and "0.0010000000000000009" not in text


def test_recording_rules_aggregate_away_series_labels_unless_grouped() -> None:
    plain = rule_group(GOOD, "https://r").rules[0].expr
    grouped = rule_group(GOOD.model_copy(update={"grouping": ("endpoint",)}), "https://r").rules[0].expr
    assert plain.startswith("(sum (rate(") and "sum by (endpoint) (rate(" in grouped


def _broken(**changes) -> SLO:
    return GOOD.model_copy(update=changes)


BAD_SLOS = [
    ("an objective of 100", {"objective": Decimal(100)}, "objective", "between 0 and 100"),
    ("an objective of 0", {"objective": Decimal(0)}, "objective", "between 0 and 100"),
    ("an objective given as a fraction", {"objective": Decimal("0.999")}, "objective",
     "looks like a fraction: objectives are percentages (write 99.9 for 0.999)"),
    ("a period the window table cannot serve", {"period": "2d"}, "period", "too short"),
    ("an unknown metric in the SLI", {"sli": GOOD.sli.model_copy(update={"total": "medianest_requests_total"})},
     "sli.total", "unknown metric medianest_requests_total"),
    ("a gauge where a counter is needed", {"sli": GOOD.sli.model_copy(update={"total": "medianest_queue_size"})},
     "sli.total", "not a counter"),
    ("a latency threshold that is not a bucket bound",
     {"sli": LatencySLI(histogram="medianest_http_request_duration_seconds", threshold_seconds=0.7)},
     "sli.threshold_seconds", "0.7 is not a bucket bound of medianest_http_request_duration_seconds"),
    ("a latency SLI on a counter",
     {"sli": LatencySLI(histogram=HTTP, threshold_seconds=1)}, "sli.histogram", "is not a histogram"),
    ("both errors and good", {"sli": GOOD.sli.model_copy(update={"good": GOOD.sli.total})}, "sli",
     "exactly one of `errors` and `good`"),
    ("a bad example that is not an error", {"sli": GOOD.sli.model_copy(update={"bad_example": {"status_code": "200"}})},
     "sli.bad_example", "does not match"),
    ("grouping by a label the SLI lacks", {"grouping": ("queue",)}, "grouping", "has no queue label"),
    ("a service routing does not know", {"service": "checkout"}, "service", "must be one of"),
]


@pytest.mark.parametrize(("changes", "field", "message"), [r[1:] for r in BAD_SLOS], ids=[r[0] for r in BAD_SLOS])
def test_bad_slo_is_rejected_naming_the_slo_and_field(changes, field, message) -> None:
    problems = [p for p in validate(_broken(**changes), CATALOG) if p.subject == field]
    assert problems and all(p.source == "slo checkout" for p in problems)
    assert any(message in p.message for p in problems), [p.message for p in problems]


def test_an_invalid_slo_gets_no_rules_and_its_problems() -> None:
    files, problems = slo_rule_files([GOOD, _broken(name="broken", objective=Decimal(0))], "https://r", CATALOG)
    assert [f.name for f in files] == ["slo-checkout"]
    assert [p.source for p in problems] == ["slo broken"]


def test_the_good_fixture_is_valid() -> None:
    assert validate(GOOD, CATALOG) == []


def test_medianest_slos_are_valid_and_each_gets_its_rule_file(bundle) -> None:
    defined = slos(bundle.config)
    assert defined and all(validate(s, CATALOG) == [] for s in defined)
    assert sorted(f"slo-{s.name}" for s in defined) == sorted(f.name for f in bundle.rule_files
                                                              if f.name.startswith("slo-"))


DETECTION = [
    ("a full outage on 99.9% pages in about 52 seconds (FACTS)", "99.9", 1.0, "page", "52s"),
    ("10% errors on 99.9% page in 8.6 minutes", "99.9", 0.1, "page", "8.6m"),
    ("burning exactly the budget never pages", "99.9", 0.001, "page", "never"),
    ("a full outage on 95% pages in 43.2 minutes", "95", 1.0, "page", "43.2m"),
    ("10% errors on 95% open a ticket in a day and a half", "95", 0.1, "ticket", "36.0h"),
]


@pytest.mark.parametrize(("objective", "ratio", "tier", "expected"), [r[1:] for r in DETECTION],
                         ids=[r[0] for r in DETECTION])
def test_detection_time_from_the_burn_rate_maths(objective, ratio, tier, expected) -> None:
    budget = (Decimal(100) - Decimal(objective)) / 100
    assert human(tier_detection(burn_windows("30d"), tier, budget, ratio)) == expected


def test_the_minute_model_agrees_with_the_closed_form_after_a_clean_history() -> None:
    windows = burn_windows("30d")
    schedule = Schedule.of((0.0, 360), (0.1, 30))
    states = timeline(schedule, windows, Decimal("0.001"))
    first_page = next(m for m, s in enumerate(states) if "page" in s) - 360
    assert first_page == 9  # 8.6 minutes, at the next evaluation


def test_a_young_prometheus_detects_sooner_and_the_minute_model_agrees() -> None:
    """After only 30 minutes of clean traffic, the 1h and 6h windows average over 30 minutes."""
    windows, budget = burn_windows("30d"), Decimal("0.001")
    young = tier_detection(windows, "page", budget, 0.1, history_seconds=1800)
    # The 6h path's 6x over what history there is: 0.006 * 1800 / (0.1 - 0.006) seconds.
    assert young == pytest.approx(0.006 * 1800 / 0.094)
    assert young < tier_detection(windows, "page", budget, 0.1)
    assert tier_detection(windows, "page", budget, 0.1, history_seconds=6 * 3600) == tier_detection(
        windows, "page", budget, 0.1)
    states = timeline(Schedule.of((0.0, 30), (0.1, 10)), windows, budget)
    assert next(m for m, s in enumerate(states) if "page" in s) - 30 == math.ceil(young / 60)


def test_a_gauge_sli_generates_valid_rules() -> None:
    probe = SLO(name="health-probe", service="probe", objective=Decimal("99.5"), description="of probes succeed",
                sli=GaugeSLI(selector='probe_success{job="blackbox"}', example={"instance": "https://x"}))
    files, problems = slo_rule_files([probe], "https://r", CATALOG)
    assert problems == [] and "avg_over_time(probe_success" in files[0].groups[0].rules[0].expr


def test_a_wrong_page_factor_fails_the_outage_scenario(tmp_path: Path) -> None:
    def factor_144(text: str) -> str:
        return text.replace("/ 0.001 > 14.4", "/ 0.001 > 144")

    failed = _scenario_failures(GOOD, tmp_path, factor_144)
    assert failed and all(name.startswith("SLO checkout: a full outage pages") for name in failed), failed


def test_detection_report_is_confirmed_by_promtool(capsys) -> None:
    assert main(["slo", "report", "--stack", "dev"]) == 0
    out = capsys.readouterr().out
    assert "| api-availability | page | 52s ✓ | 8.6m ✓ | 43.2m ✓ | never ✓ |" in out
    assert "✗" not in out


def _scenario_failures(slo: SLO, tmp_path: Path, mutate=None) -> set[str]:
    """Render one SLO's rules and scenario suites, `mutate` the rule files' text, run promtool on
    every suite: the names of the failed tests."""
    files, problems = slo_rule_files([slo], "https://r", CATALOG)
    assert problems == []
    rule_file = files[0]
    test_suites = suites(rule_file, "1m")
    tree = rule_file_tree(rule_file, test_suites, "https://r")
    if mutate:
        tree = {p: mutate(t) if "/tests/" not in p or "/rules/" in p else t for p, t in tree.items()}
    write_tree(tree, tmp_path / "out")
    runs = tools.promtool_test_many([tmp_path / "out" / unit_tests_path(rule_file.name, s.name) for s in test_suites])
    failed: set[str] = set()
    for run in runs:
        assert run.ok or tools.failed_test_names(run.output), run.output
        failed |= tools.failed_test_names(run.output)
    return failed


def test_a_gauge_slo_passes_its_generated_scenarios(tmp_path: Path) -> None:
    probe = SLO(name="health-probe", service="probe", objective=Decimal("99"), description="of probes succeed",
                period="7d", sli=GaugeSLI(selector='probe_success{job="blackbox"}', example={"instance": "https://x"}))
    assert _scenario_failures(probe, tmp_path) == set()


# The generator's machinery (`for`, guards) is proven on a one-week period: the same code, a
# shorter history to simulate.
WEEK = GOOD.model_copy(update={"period": "7d"})


def test_a_for_delays_the_page_and_the_scenarios_know_it(tmp_path: Path) -> None:
    slo = WEEK.model_copy(update={"for_": "5m"})
    assert {r.for_ for r in rule_group(slo, "https://r").rules if hasattr(r, "alert")} == {"5m", "15m"}
    assert _scenario_failures(slo, tmp_path) == set()
    # Without its `for`, the page fires sooner than the scenarios expect.
    failed = _scenario_failures(slo, tmp_path / "no-for", lambda text: text.replace("    for: 5m\n", ""))
    assert any(name.startswith("SLO checkout: a full outage pages") for name in failed), failed


def test_the_traffic_guard_keeps_a_quiet_service_from_paging(tmp_path: Path) -> None:
    # The scenarios send 10 events/s; a guard of 20/s must stop the outage from paging.
    guarded = WEEK.model_copy(update={"min_events_per_second": 20.0})
    page = next(r for r in rule_group(guarded, "https://r").rules if getattr(r, "labels", {}).get("tier") == "page")
    assert "and on () sum (rate(medianest_http_requests_total" in page.expr and "[5m])) > 20" in page.expr
    assert any("a full outage pages" in name for name in _scenario_failures(guarded, tmp_path))
    assert _scenario_failures(WEEK.model_copy(update={"min_events_per_second": 5.0}), tmp_path / "low") == set()


def test_a_disabled_tier_gets_no_alert_and_no_scenario() -> None:
    files, _ = slo_rule_files([GOOD.model_copy(update={"page": False})], "https://r", CATALOG)
    tiers = {r.labels.get("tier") for r in files[0].groups[0].rules if hasattr(r, "alert")}
    assert tiers == {"ticket", None}  # None: SLONoData
    assert not any("full outage" in t.name for t in files[0].tests)
