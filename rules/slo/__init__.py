"""SLOs as code: spec (models), validation, the burn-rate window table, rule generation,
detection-time maths and generated promtool scenarios, kept apart as in Sloth."""

from __future__ import annotations

from collections.abc import Sequence

from rules.catalog import Catalog
from rules.model import RuleFile
from rules.problems import Problem, Severity
from rules.slo.generate import rule_groups
from rules.slo.scenarios import scenarios
from rules.slo.spec import SLO
from rules.slo.validate import validate


def slo_rule_files(slos: Sequence[SLO], runbook_base_url: str, catalog: Catalog, periods_on_store: bool = False
                   ) -> tuple[list[RuleFile], list[Problem]]:
    """A rule file per valid SLO (`slo-<name>`, its scenarios beside it), and the problems of
    the others, which get no rules: half-built SLO rules would only hide the error. One file
    each keeps every promtool scenario to its own SLO's rules. `periods_on_store`: the period
    rules are evaluated on the long-term store, where the period's history is."""
    problems: list[Problem] = []
    files: list[RuleFile] = []
    seen: set[str] = set()
    for slo in slos:
        found = validate(slo, catalog)
        if slo.name in seen:
            found.append(Problem(f"slo {slo.name}", "name", "slo", Severity.ERROR, "defined twice"))
        seen.add(slo.name)
        problems += found
        if any(p.severity >= Severity.ERROR for p in found):
            continue
        groups = rule_groups(slo, runbook_base_url)
        files.append(RuleFile(name=f"slo-{slo.name}", groups=groups, tests=tuple(scenarios(slo, catalog)),
                              long_term_groups=(groups[1].name,) if periods_on_store else ()))
    return files, problems
