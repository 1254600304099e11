"""Remote write to the long-term store, on the sandbox (the dev stack's `longTermStorage:
deploy`: the shipped Prometheus writing to the shipped VictoriaMetrics, both built from their Go
modules): samples per second written and taken, the CPU each spends on it, and the time of the
SLO's period-long query answered by the store and by Prometheus.

Prints a table and writes bench/results/remote_write.json. The sandbox holds minutes of history,
not 30 days: the query times are those of a `[30d]` range over what there is (a lower bound), at
the sandbox's 2-second scrape interval (15 times the dev stack's sample rate).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import write_results  # noqa: E402
from rules.conventions import SLO_ERROR_RATIO  # noqa: E402
from stack.sandbox.run import Sandbox, _request, wait_for  # noqa: E402
from stack.services import victoria_metrics  # noqa: E402

# The period-long ratio as the SLO dashboard's budget reads it, over the shipped 30-day period.
PERIOD_QUERY = f'avg_over_time({SLO_ERROR_RATIO.format(window="5m")}{{slo="api-availability"}}[30d])'


SERIES_QUERY = urllib.parse.urlencode({"query": 'count({__name__=~".+"})'})


def _value(result: list[dict]) -> float:
    return sum(float(r["value"][1]) for r in result)


def _timed_query(url: str, expr: str, repeat: int) -> float:
    """Median seconds of an instant query of `expr` at `url`'s Prometheus API."""
    runs = []
    for _ in range(repeat):
        began = time.perf_counter()
        answer = _request(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}")
        runs.append(time.perf_counter() - began)
        assert answer["data"]["result"], f"{expr} answered nothing at {url}"
    return statistics.median(runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm-up", type=float, default=60, help="seconds of traffic before measuring (60)")
    parser.add_argument("--seconds", type=int, default=60, help="the measured window (60)")
    parser.add_argument("--repeat", type=int, default=20, help="runs of each query (20)")
    args = parser.parse_args(argv)

    with Sandbox() as sandbox:
        store = sandbox.url_of(victoria_metrics.NAME)
        jobs = sandbox.config.jobs
        wait_for(lambda: sandbox.query(PERIOD_QUERY), timeout=120, what="the SLO series in Prometheus")
        time.sleep(args.warm_up)
        window = f"[{args.seconds}s]"
        figures = {
            "samples_written_per_second": _value(sandbox.query(
                f"sum(rate(prometheus_remote_storage_samples_total{window}))")),
            "samples_failed_per_second": _value(sandbox.query(
                f"sum(rate(prometheus_remote_storage_samples_failed_total{window}))")),
            "store_rows_per_second": _value(sandbox.query(
                f'sum(rate(vm_rows_inserted_total{{type="promremotewrite"}}{window}))')),
            "store_cpu_cores": _value(sandbox.query(
                f'sum(rate(process_cpu_seconds_total{{job="{jobs.victoria_metrics}"}}{window}))')),
            "prometheus_cpu_cores": _value(sandbox.query(
                f'sum(rate(process_cpu_seconds_total{{job="{jobs.prometheus}"}}{window}))')),
            "prometheus_shards": _value(sandbox.query("max(prometheus_remote_storage_shards)")),
            "series_in_store": _value(_request(f"{store}/api/v1/query?{SERIES_QUERY}")["data"]["result"]),
            "period_query_store_seconds": _timed_query(store, PERIOD_QUERY, args.repeat),
            "period_query_prometheus_seconds": _timed_query(sandbox.prometheus_url, PERIOD_QUERY, args.repeat),
            "history_seconds": time.time() - sandbox.started_at,
        }
    print(f"{'figure':<36}{'value':>14}")
    for name, value in figures.items():
        print(f"{name:<36}{value:>14.4f}")
    write_results("remote_write", {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "scrape_interval": sandbox.scrape_interval, "measured_seconds": args.seconds,
        "period_query": PERIOD_QUERY, **figures,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
