"""A grouped SLO on the SLO dashboard: its burn-rate query joins each group's error ratio to the
SLO's one budget series (many-to-one, `group_left`), evaluated by promtool over a grouped series
set; the ungrouped `on (slo)` join it replaced is refused there. One variable per group label."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dashboards import slo as slo_dashboard
from rules.slos import slos
from stack import tools
from stack.config import load_stack

GROUPED = "critical-endpoint-availability"


def _burn_queries(name: str) -> list[str]:
    [slo] = [s for s in slos(load_stack("dev")) if s.name == name]
    [panel] = [p for p in slo_dashboard.slo_row(slo).panels if p.title == "Burn rate per window"]
    return [q.expr for q in panel.queries if "group_left" in q.expr]


def _evaluate(tmp_path: Path, expr: str, expected: list[tuple[str, float]]) -> tools.ToolRun:
    (tmp_path / "rules.yaml").write_text("groups: []\n")
    (tmp_path / "test.yaml").write_text(yaml.safe_dump({"rule_files": ["rules.yaml"], "tests": [{
        "interval": "1m",
        "input_series": [
            {"series": f'slo:sli_error:ratio_rate1h{{slo="{GROUPED}", endpoint="/api/v1/media/upload"}}',
             "values": "0.05x5"},
            {"series": f'slo:sli_error:ratio_rate1h{{slo="{GROUPED}", endpoint="/api/v1/auth/login"}}',
             "values": "0x5"},
            {"series": f'slo:error_budget:ratio{{slo="{GROUPED}"}}', "values": "0.005x5"},
        ],
        "promql_expr_test": [{"expr": expr, "eval_time": "5m", "exp_samples": [
            {"labels": labels, "value": value} for labels, value in expected]}],
    }]}))
    return tools.promtool_test_rules(tmp_path / "test.yaml")


def test_the_burn_rate_of_each_group_is_its_ratio_over_the_one_budget(tmp_path: Path) -> None:
    [query] = [q for q in _burn_queries(GROUPED) if "ratio_rate1h" in q]
    expr = query.replace('"$endpoint"', '".*"')  # the variable's "All"
    run = _evaluate(tmp_path, expr, [
        (f'{{slo="{GROUPED}", endpoint="/api/v1/media/upload"}}', 10),
        (f'{{slo="{GROUPED}", endpoint="/api/v1/auth/login"}}', 0)])
    assert run.ok, run.output


def test_the_ungrouped_join_fails_on_a_grouped_slo(tmp_path: Path) -> None:
    [query] = [q for q in _burn_queries(GROUPED) if "ratio_rate1h" in q]
    run = _evaluate(tmp_path, query.replace('"$endpoint"', '".*"').replace(" group_left", ""), [])
    assert not run.ok and "many-to-one matching must be explicit" in run.output, run.output


def test_ungrouped_slos_keep_one_series_per_window() -> None:
    [query, *_] = _burn_queries("api-availability")
    assert query == ('slo:sli_error:ratio_rate5m{slo="api-availability"} / on (slo) group_left '
                     'slo:error_budget:ratio{slo="api-availability"}')


def test_one_variable_per_group_label_lists_the_groups_recorded() -> None:
    spec = slo_dashboard.dashboard(load_stack("dev"))
    variables = {v.name: v for v in spec.variables}
    assert variables["endpoint"].query == (
        f'label_values(slo:sli_error:ratio_rate5m{{slo=~"{GROUPED}"}}, endpoint)')
    assert variables["endpoint"].include_all
    assert set(variables) == {"environment", "endpoint"}


@pytest.mark.parametrize("name", [GROUPED])
def test_every_panel_of_a_grouped_slo_filters_and_names_its_groups(name: str) -> None:
    [slo] = [s for s in slos(load_stack("dev")) if s.name == name]
    for panel in slo_dashboard.slo_row(slo).panels:
        for query in panel.queries:
            if "slo:objective" in query.expr:
                continue  # one per SLO
            assert 'endpoint=~"$endpoint"' in query.expr or "sum by (alertname, tier, alertstate, endpoint)" \
                in query.expr, (panel.title, query.expr)
            if not query.instant:
                assert "{{endpoint}}" in query.legend, (panel.title, query.legend)
