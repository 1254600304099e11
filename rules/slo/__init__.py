"""SLOs as code: spec (models), validation, the burn-rate window table, rule generation,
detection-time maths and generated promtool scenarios, kept apart as in Sloth."""

from __future__ import annotations

from collections.abc import Sequence

from rules.catalog import Catalog
from rules.model import RuleFile
from rules.problems import Problem, Severity
from rules.slo.generate import rule_group
from rules.slo.scenarios import scenarios
from rules.slo.spec import SLO
from rules.slo.validate import validate


def slo_rule_files(slos: Sequence[SLO], runbook_base_url: str, catalog: Catalog
                   ) -> tuple[list[RuleFile], list[Problem]]:
    """A rule file per valid SLO (`slo-<name>`, its scenarios beside it), and the problems of
    the others, which get no rules: half-built SLO rules would only hide the error. One file
    each keeps every promtool scenario to its own SLO's rules."""
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
        files.append(RuleFile(name=f"slo-{slo.name}", groups=(rule_group(slo, runbook_base_url),),
                              tests=tuple(scenarios(slo, catalog))))
    return files, problems
