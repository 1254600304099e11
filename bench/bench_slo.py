"""Generate and statically check 1,000 SLOs (target under 5 s, growing linearly), and count
the recorded series MediaNest's SLOs add to each Prometheus (their cardinality cost).
Prints a table and writes bench/results/slo.json."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import timed, write_results  # noqa: E402
from rules.checks import check_groups  # noqa: E402
from rules.metrics import CATALOG  # noqa: E402
from rules.model import RecordingRule  # noqa: E402
from rules.slo.generate import rule_group  # noqa: E402
from rules.slo.spec import SLO, LatencySLI, RatioSLI  # noqa: E402
from rules.slo.validate import validate  # noqa: E402
from rules.slos import slos  # noqa: E402
from stack.config import load_stack  # noqa: E402

HTTP = "medianest_http_requests_total"


def synthetic(count: int) -> list[SLO]:
    out = []
    for i in range(count):
        job = f'job="svc-{i}"'
        if i % 2:
            sli = RatioSLI(total=f"{HTTP}{{{job}}}", errors=f'{HTTP}{{{job},status_code=~"5.."}}',
                           good_example={"status_code": "200"}, bad_example={"status_code": "500"})
        else:
            sli = LatencySLI(histogram="medianest_http_request_duration_seconds", matchers=job, threshold_seconds=1)
        out.append(SLO(name=f"slo-{i}", service="medianest", objective=Decimal("99.5") + Decimal(i % 5) / 10,
                       description="synthetic", sli=sli))
    return out


def generate_and_check(items: list[SLO]) -> int:
    groups = []
    for slo in items:
        assert not validate(slo, CATALOG)
        groups.append(rule_group(slo, "https://runbooks.example/alerts"))
    problems = check_groups({"slo.yaml": groups}, CATALOG)
    assert not problems, problems[:3]
    return sum(len(g.rules) for g in groups)


def main() -> None:
    results: dict[str, object] = {}
    print(f"{'case':<22}{'seconds':>9}{'rules':>8}{'ms/SLO':>9}  target")
    for count in (10, 100, 1_000):
        items = synthetic(count)
        rules = generate_and_check(items)
        seconds = timed(lambda i=items: generate_and_check(i), repeat=3 if count < 1000 else 2)
        results[f"slos_{count}"] = {"slos": count, "seconds": seconds, "rules": rules,
                                    "ms_per_slo": seconds / count * 1000}
        target = "< 5 s" if count == 1000 else ""
        print(f"{f'{count} SLOs':<22}{seconds:>9.3f}{rules:>8}{seconds / count * 1000:>9.2f}  {target}")
    medianest = slos(load_stack("dev"))
    series = {}
    for slo in medianest:
        group = rule_group(slo, "https://runbooks.example/alerts")
        # One series per recording rule: no MediaNest SLO declares grouping (with grouping,
        # multiply by the number of label values).
        series[slo.name] = sum(1 for r in group.rules if isinstance(r, RecordingRule))
    results["medianest_recorded_series"] = {"per_slo": series, "total": sum(series.values())}
    print(f"MediaNest SLOs: {sum(series.values())} recorded series per Prometheus ({series})")
    write_results("slo", results)


if __name__ == "__main__":
    main()
