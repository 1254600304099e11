"""Build + render + static checks: the full bundle, and synthetic rule sets of 100, 1,000
and 10,000 alerts. Prints a table and writes bench/results/rules.json.

Targets (issue 2): full bundle under 1 s on a 2-core machine (promtool excluded); 10,000
alerts under 10 s, growing linearly.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import timed, write_results  # noqa: E402
from rules.checks import check_groups  # noqa: E402
from rules.metrics import CATALOG  # noqa: E402
from rules.model import RuleGroup, alert  # noqa: E402
from stack.bundle import build, dump_yaml  # noqa: E402
from stack.config import load_stack  # noqa: E402

TEMPLATES = (
    'sum by (job) (rate(medianest_http_requests_total{{job="svc-{i}",status_code=~"5.."}}[5m])) '
    '/ sum by (job) (rate(medianest_http_requests_total{{job="svc-{i}"}}[5m])) > 0.0{d}',
    "histogram_quantile(0.95, sum by (job, le) "
    '(rate(medianest_http_request_duration_seconds_bucket{{job="svc-{i}"}}[5m]))) > {d}',
    'medianest_queue_size{{job="svc-{i}"}} > {d}0',
    'up{{job="svc-{i}"}} == 0 or absent(up{{job="svc-{i}"}})',
)


def synthetic_groups(count: int) -> list[RuleGroup]:
    rules = [
        alert(f"Synthetic{i}", TEMPLATES[i % len(TEMPLATES)].format(i=i, d=i % 9 + 1), for_="5m",
              severity="warning", service="medianest", summary="Synthetic alert",
              description="{{ $labels.job }} is at {{ $value }}",
              runbook_base_url="https://runbooks.example/alerts")
        for i in range(count)
    ]
    return [RuleGroup(name=f"synthetic.{n}", rules=tuple(rules[n:n + 50])) for n in range(0, count, 50)]


def full_bundle(stack: str) -> None:
    bundle = build(load_stack(stack))
    bundle.problems()


def synthetic(count: int) -> None:
    groups = synthetic_groups(count)
    dump_yaml({"groups": [g.to_dict() for g in groups]})
    problems = check_groups({"synthetic.yaml": groups}, CATALOG)
    assert not problems, problems[:3]


def main() -> None:
    results: dict[str, object] = {"machine": {"python": platform.python_version(),
                                              "cpus": __import__("os").cpu_count()}}
    print(f"{'case':<28}{'seconds':>10}{'ms/alert':>10}  target")
    for stack in ("dev", "prod"):
        seconds = timed(lambda s=stack: full_bundle(s), repeat=5)
        results[f"full_bundle_{stack}"] = {"seconds": seconds, "target_seconds": 1.0}
        print(f"{'full bundle ' + stack:<28}{seconds:>10.3f}{'':>10}  < 1 s")
    for count in (100, 1_000, 10_000):
        seconds = timed(lambda c=count: synthetic(c), repeat=3 if count < 10_000 else 1)
        results[f"synthetic_{count}"] = {"alerts": count, "seconds": seconds,
                                         "ms_per_alert": seconds / count * 1000}
        target = "< 10 s" if count == 10_000 else ""
        print(f"{f'synthetic {count} alerts':<28}{seconds:>10.3f}{seconds / count * 1000:>10.3f}  {target}")
    write_results("rules", results)


if __name__ == "__main__":
    main()
