"""The backtest section: the `for` logic table-driven without Prometheus, then the whole section
against a real Prometheus whose TSDB was backfilled by promtool with two days of MediaNest
traffic holding error spikes of known lengths (a missing binary fails these tests: `make setup`
installs them)."""

from __future__ import annotations

import math
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from preview_helpers import trees

from stack.preview import backtest
from stack.preview.backtest import (
    BacktestError,
    Episode,
    Summary,
    chunks,
    describe,
    episodes,
    human,
    metric_names,
    section,
)
from stack.preview.model import Section, Trees
from stack.preview.trees import alerts
from stack.sandbox.processes import LOOPBACK, Supervisor, binary, free_port

M = 60.0  # one minute, the step of every case below


def _at(*minutes: float | range) -> list[float]:
    """Timestamps (s) from minutes and ranges of minutes."""
    return [m * M for part in minutes for m in (part if isinstance(part, range) else [part])]


# --- episodes, pure ---------------------------------------------------------------------------

# (case, {series: minutes returned}, for (s), keep_firing_for (s), since, until, expected (series, active,
# fired, ended, still firing) in minutes)
CASES: list[tuple[str, dict[str, list[float]], float, float, float | None, float | None,
                  list[tuple[str, float, float, float, bool]]]] = [
    ("never returned", {}, 300, 0, None, None, []),
    ("returned for less than `for`: pending only", {"a": _at(range(0, 5))}, 300, 0, None, None, []),
    ("returned for exactly `for`: fires for one step", {"a": _at(range(0, 6))}, 300, 0, None, None,
     [("a", 0, 5, 6, False)]),
    ("no `for`: fires at once", {"a": _at(7)}, 0, 0, None, None, [("a", 7, 7, 8, False)]),
    ("`for` not a multiple of the step: the next evaluation", {"a": _at(range(0, 4))}, 90, 0, None, None,
     [("a", 0, 2, 4, False)]),
    ("a gap ends the episode and the next one is pending again", {"a": _at(range(0, 10), range(11, 21))},
     300, 0, None, None, [("a", 0, 5, 10, False), ("a", 11, 16, 21, False)]),
    ("after a gap, too short to fire again", {"a": _at(range(0, 10), range(11, 15))}, 300, 0, None, None,
     [("a", 0, 5, 10, False)]),
    ("series are alerts of their own", {"a": _at(range(0, 6)), "b": _at(range(3, 13))}, 300, 0, None, None,
     [("a", 0, 5, 6, False), ("b", 3, 8, 13, False)]),
    ("unsorted, repeated and float noise", {"a": [180.0, 0.0, 60.0000001, 120.0, 60.0, 240.0, 300.0]},
     300, 0, None, None, [("a", 0, 5, 6, False)]),
    ("keep_firing_for bridges a gap shorter than it", {"a": _at(range(0, 6), range(8, 10))}, 300, 120, None, None,
     [("a", 0, 5, 12, False)]),
    ("keep_firing_for: a longer gap resolves it after keep_firing_for",
     {"a": _at(range(0, 6), range(9, 20))}, 300, 120, None, None, [("a", 0, 5, 8, False), ("a", 9, 14, 22, False)]),
    ("keep_firing_for does not keep a pending alert", {"a": _at(range(0, 3), range(4, 12))}, 300, 120, None, None,
     [("a", 4, 9, 14, False)]),
    ("since: fired before the window counts from its start", {"a": _at(range(-10, 3))}, 300, 0, 0, None,
     [("a", -10, 0, 3, False)]),
    ("since: over before the window is left out", {"a": _at(range(-10, 0), range(1, 8))}, 300, 0, 0, None,
     [("a", 1, 6, 8, False)]),
    ("until: still firing at the end of the window", {"a": _at(range(0, 11))}, 300, 0, None, 10 * M,
     [("a", 0, 5, 10, True)]),
    ("until: resolved at the end of the window is over", {"a": _at(range(0, 10))}, 300, 0, None, 10 * M,
     [("a", 0, 5, 10, False)]),
]


@pytest.mark.parametrize(("samples", "for_seconds", "keep", "since", "until", "expected"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_episodes(samples: dict[str, list[float]], for_seconds: float, keep: float, since: float | None,
                  until: float | None, expected: list[tuple[str, float, float, float, bool]]) -> None:
    found = episodes(samples, M, for_seconds, keep, since=since, until=until)
    assert [(e.series, e.active / M, e.fired / M, e.ended / M, e.still_firing) for e in found] == expected


def test_episodes_refuses_a_step_of_zero() -> None:
    with pytest.raises(ValueError, match="step"):
        episodes({"a": [0.0]}, 0, 0)


def test_summary_and_its_words() -> None:
    found = [Episode("a", 0, 300, 2100), Episode("b", 0, 600, 1200), Episode("a", 5000, 5300, 5600, True)]
    summary = Summary.of(found)
    assert summary == Summary(episodes=3, firing_seconds=2700, longest_seconds=1800, series=2, still_firing=True)
    assert describe("new", summary) == "new: fired 3 times in 2 series, 45 min in total (longest 30 min), still firing"
    assert describe("old", Summary.of(found[:1])) == "old: fired once, 30 min in total (longest 30 min)"
    assert describe("old", Summary.of([])) == "old: never fired"
    assert describe("old", None) == "old: none (the alert is new)"
    assert describe("new", None) == "new: none (the alert is removed)"
    assert [human(s) for s in (30, 90, 42 * M, 7500, 3 * 86400 + 43200)] == ["30 s", "1.5 min", "42 min", "2.1 h",
                                                                              "3.5 d"]


@pytest.mark.parametrize(("start", "end", "step", "limit", "expected"), [
    (0, 600, 60, 11_000, [(0, 600)]),
    (0, 600, 60, 11, [(0, 600)]),  # 11 points: exactly the limit
    (0, 600, 60, 5, [(0, 240), (300, 540), (600, 600)]),
    (0, 7 * 86400, 30, 11_000, [(0, 329_970), (330_000, 604_800)]),  # 20,161 points
])
def test_chunks_never_exceed_the_point_limit(start: float, end: float, step: float, limit: int,
                                             expected: list[tuple[float, float]]) -> None:
    found = chunks(start, end, step, limit)
    assert found == expected
    assert all((last - first) / step + 1 <= limit for first, last in found)


@pytest.mark.parametrize(("expr", "names"), [
    ('job:medianest_http_request_errors:ratio_rate5m{job="medianest-backend"} > 0.05',
     {"job:medianest_http_request_errors:ratio_rate5m"}),
    ('sum by (job, queue) (rate(medianest_background_jobs_total{status=~"completed|failed"}[15m])) > 1e-3',
     {"medianest_background_jobs_total"}),
    ('max by (job) (label_replace(medianest_circuit_breaker_state{job="x"} == 1, "svc", "$1", "service", "(.*)"))',
     {"medianest_circuit_breaker_state"}),
    ('up{job="a"} == 0 or absent(up{job="a"}) unless on (instance) group_left (x) foo offset 5m',
     {"up", "foo"}),
    ("vector(1)", set()),
    ("(probe_ssl_earliest_cert_expiry - time()) / 86400 < 14 and bool inf", {"probe_ssl_earliest_cert_expiry"}),
    ("max_over_time(rate(x_total[5m])[1h:1m]) @ 1609746000 > 0x1f", {"x_total"}),
])
def test_metric_names(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


# --- hand-written exported trees ------------------------------------------------------------------------

RATIO = "job:medianest_http_request_errors:ratio_rate5m"
RATIO_RULE = {"record": RATIO, "expr": "job:medianest_http_request_errors:rate5m / job:medianest_http_requests:rate5m"}


def _tree(root: Path, rules: list[dict[str, Any]], records: list[dict[str, Any]] | None = None,
          evaluation_interval: str = "1m") -> Path:
    """What `export` writes that the backtest reads: prometheus.yml and one rule file."""
    (root / "prometheus" / "rules").mkdir(parents=True)
    (root / "prometheus" / "prometheus.yml").write_text(
        yaml.safe_dump({"global": {"evaluation_interval": evaluation_interval}}))
    groups = [{"name": "records", "rules": records or []}, {"name": "alerts", "rules": rules}]
    (root / "prometheus" / "rules" / "medianest.yaml").write_text(yaml.safe_dump({"groups": groups}))
    return root


def _alert(name: str, expr: str, for_: str | None = "5m") -> dict[str, Any]:
    return {"alert": name, "expr": expr, **({"for": for_} if for_ else {}), "labels": {"severity": "critical"}}


def test_nothing_changed_asks_nothing(tmp_path: Path) -> None:
    """No alert's expr or for changed (only an annotation): no query, not even to an unreachable URL."""
    same = _alert("A", "up == 0")
    annotated = same | {"annotations": {"summary": "new words"}}
    pair = Trees("dev", _tree(tmp_path / "base", [same]), _tree(tmp_path / "head", [annotated]))
    assert section(pair, f"http://{LOOPBACK}:{free_port()}") == Section("Backtest")


def test_changed_recordings(tmp_path: Path) -> None:
    """A changed recording rule taints every recorded name computed from it."""
    records = [{"record": "job:a:rate5m", "expr": "sum by (job) (rate(a_total[5m]))"},
               {"record": "job:b:rate5m", "expr": "sum by (job) (rate(b_total[5m]))"},
               {"record": "job:a:ratio", "expr": "job:a:rate5m / job:b:rate5m"},
               {"record": "job:b:double", "expr": "job:b:rate5m * 2"}]
    changed = [records[0] | {"expr": "sum by (job) (rate(a_total[10m]))"}, *records[1:],
               {"record": "job:c:new", "expr": "vector(1)"}]
    found = backtest.changed_recordings(_tree(tmp_path / "base", [], records), _tree(tmp_path / "head", [], changed))
    assert found == {"job:a:rate5m", "job:a:ratio", "job:c:new"}


def test_the_step_is_the_evaluation_interval(tmp_path: Path) -> None:
    """A group's own `interval`, else the global `evaluation_interval`, else Prometheus' 1m."""
    tree = _tree(tmp_path / "tree", [_alert("A", "up == 0")], evaluation_interval="30s")
    rule = alerts(tree)["A"]
    assert backtest._interval(tree, rule) == 30
    document = yaml.safe_load((tree / rule.file).read_text())
    document["groups"][1]["interval"] = "2m"
    (tree / rule.file).write_text(yaml.safe_dump(document))
    assert backtest._interval(tree, alerts(tree)["A"]) == 120
    (tree / "prometheus" / "prometheus.yml").write_text("global: {}\n")
    assert backtest._interval(tree, None) == 60


def test_a_silent_prometheus_times_out(tmp_path: Path) -> None:
    """A listener that never answers: the timeout, named with the URL and what was asked."""
    pair = Trees("dev", _tree(tmp_path / "base", []), _tree(tmp_path / "head", [_alert("A", "up == 0")]))
    with socket.socket() as listener:
        listener.bind((LOOPBACK, 0))
        listener.listen()
        url = f"http://{LOOPBACK}:{listener.getsockname()[1]}"
        with pytest.raises(BacktestError, match=rf"Prometheus at {url} did not answer within 0.5 s "
                                                r"\(the new expression of alert A \(up == 0\)\)"):
            section(pair, url, timeout=0.5)


def test_bad_days(tmp_path: Path) -> None:
    pair = Trees("dev", _tree(tmp_path / "base", []), _tree(tmp_path / "head", [_alert("A", "up == 0")]))
    with pytest.raises(BacktestError, match="positive number of days"):
        section(pair, "http://127.0.0.1:9", days=0)


# --- against a real Prometheus ----------------------------------------------------------------------

# The end of the backfilled data, on a minute: every evaluation of the backtest lands on a sample.
NOW = math.floor(time.time() / 60) * 60 - 60
DAYS_OF_DATA = 2
REQUESTS_PER_MINUTE = 1000
NORMAL_500_PER_MINUTE = 10  # an error ratio of 1 %: below both thresholds
# (name, minutes before NOW it starts, minutes it lasts, status code, errors per minute). Starts are
# in the past so that every event is over by NOW.
EVENTS = [
    ("spike", 2400, 90, "500", 100),  # 10 %: over 5 % and 2 %
    ("burst", 540, 30, "503", 80),  # 9 % (with the 1 % of 500s): over both; crosses a chunk boundary below
    ("bump", 1200, 20, "500", 30),  # 3 %: over 2 % only
    ("blip", 300, 3, "500", 30),  # 3 % for 3 minutes: pending, never firing (for: 5m)
]


def _errors(minute_ago: int) -> dict[str, int]:
    """Errors per status code in the minute ending `minute_ago` minutes before NOW."""
    errors = {"500": NORMAL_500_PER_MINUTE, "503": 0}
    for _, start, length, status, per_minute in EVENTS:
        if start - length < minute_ago <= start:
            errors[status] = per_minute
    return errors


def openmetrics() -> str:
    """Two days of MediaNest's request counters by status code at one sample a minute, and the
    recorded error ratio HighErrorRate reads (sharp: that minute's ratio, so the expected
    durations are exact), as `promtool tsdb create-blocks-from openmetrics` reads them."""
    minutes = range(DAYS_OF_DATA * 24 * 60, -1, -1)  # minutes before NOW, oldest first
    totals = {"200": 1_000_000, "500": 10_000, "503": 5_000}
    counters: dict[str, list[str]] = {status: [] for status in totals}
    ratios = []
    for minute_ago in minutes:
        errors = _errors(minute_ago)
        increments = {"200": REQUESTS_PER_MINUTE - sum(errors.values()), **errors}
        stamp = NOW - minute_ago * 60
        for status, increment in increments.items():
            totals[status] += increment
            counters[status].append(f'medianest_http_requests_total{{job="medianest-backend",'
                                    f'status_code="{status}"}} {totals[status]} {stamp}')
        ratios.append(f'{RATIO}{{job="medianest-backend"}} {sum(errors.values()) / REQUESTS_PER_MINUTE!r} {stamp}')
    lines = ["# HELP medianest_http_requests Requests served.", "# TYPE medianest_http_requests counter",
             *(line for status in totals for line in counters[status]),
             f"# TYPE {RATIO} gauge", *ratios, "# EOF"]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus on loopback serving the backfilled blocks; its URL."""
    workdir = tmp_path_factory.mktemp("backtest-prometheus")
    with Supervisor(workdir) as supervisor:
        data = supervisor.directory("data")
        source = workdir / "medianest.om"
        source.write_text(openmetrics())
        supervisor.run("promtool", [binary("promtool"), "tsdb", "create-blocks-from", "openmetrics",
                                    str(source), str(data)])
        config = workdir / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 1m\n  evaluation_interval: 1m\n")  # no scrape jobs
        port = free_port()
        url = f"http://{LOOPBACK}:{port}"
        supervisor.start("prometheus", [
            binary("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={data}",
            # The blocks are in the past: well within a long retention, never deleted at startup.
            "--storage.tsdb.retention.time=10y", f"--web.listen-address={LOOPBACK}:{port}",
        ], ready_url=f"{url}/-/ready")
        yield url


def _minutes(seconds: float) -> float:
    return seconds / 60


def test_stricter_threshold_fires_more(prometheus: str, tmp_path: Path) -> None:
    """The exported dev stack, HighErrorRate at 5 % (base) and 2 % (head), on the backfilled data."""
    pair = trees(tmp_path, "dev", {"thresholds": {"errorRatio": 0.05}}, {"thresholds": {"errorRatio": 0.02}})
    exprs = {side: alerts(tree)["HighErrorRate"].body for side, tree in (("base", pair.base), ("head", pair.head))}
    # What the data was made for: the recorded ratio of the backend's job, for 5 minutes.
    assert exprs["base"]["expr"] == f'{RATIO}{{job="medianest-backend"}} > 0.05'
    assert exprs["head"]["expr"] == f'{RATIO}{{job="medianest-backend"}} > 0.02'
    assert exprs["base"]["for"] == exprs["head"]["for"] == "5m"

    found = section(pair, prometheus, days=7, now=NOW)

    assert found.title == "Backtest"
    assert [(c.kind, c.subject) for c in found.changes] == [("changed", "alert HighErrorRate")]
    change = found.changes[0]
    old, new = change.data["old"], change.data["new"]
    assert change.data["step_seconds"] == 60
    # Each event is returned for its whole length, firing after 5 of those minutes (exact: sharp edges).
    assert (old["episodes"], old["series"], old["still_firing"]) == (2, 1, False)  # spike, burst
    assert _minutes(old["firing_seconds"]) == pytest.approx(85 + 25, abs=1)
    assert _minutes(old["longest_seconds"]) == pytest.approx(85, abs=1)
    assert (new["episodes"], new["series"], new["still_firing"]) == (3, 1, False)  # and the bump; the blip is too short
    assert _minutes(new["firing_seconds"]) == pytest.approx(85 + 25 + 15, abs=1)
    assert _minutes(new["longest_seconds"]) == pytest.approx(85, abs=1)
    assert new["episodes"] > old["episodes"] and new["firing_seconds"] > old["firing_seconds"]
    assert change.details == ("old: fired twice, 110 min in total (longest 85 min); "
                              "new: fired 3 times, 2.1 h in total (longest 85 min)",)
    assert prometheus in found.notes[0] and "every 1 min" in found.notes[0]


def test_added_for_changed_and_chunked(prometheus: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hand-written trees over 8 days (more than 11,000 minutes: two queries per expression): an alert
    whose `for` grows (one query serves both sides), an added alert on the raw counters firing for two
    series, an added alert on a metric Prometheus does not have, and a recording rule the head changes."""
    calls: list[dict[str, str]] = []
    call = backtest.Prometheus.call

    def spy(self: backtest.Prometheus, path: str, params: Any, what: str, method: str = "POST") -> Any:
        if path.endswith("query_range"):
            calls.append(dict(params))
        return call(self, path, params, what, method)

    monkeypatch.setattr(backtest.Prometheus, "call", spy)
    ratio = _alert("ErrorRatio", f'{RATIO}{{job="medianest-backend"}} > 0.05')
    burst = _alert("ErrorBurst", 'sum by (job, status_code) (rate(medianest_http_requests_total'
                                 '{job="medianest-backend",status_code=~"5.."}[5m])) > 1')
    ghost = _alert("Ghost", "medianest_ghost_total > 0", for_=None)
    pair = Trees("dev", _tree(tmp_path / "base", [ratio], [RATIO_RULE]),
                 _tree(tmp_path / "head", [ratio | {"for": "10m"}, burst, ghost],
                       [RATIO_RULE | {"expr": RATIO_RULE["expr"] + " * 1"}]))

    found = section(pair, prometheus, days=8, now=NOW)

    changes = {c.subject: c for c in found.changes}
    assert [(c.kind, c.subject) for c in found.changes] == [
        ("added", "alert ErrorBurst"), ("changed", "alert ErrorRatio"), ("added", "alert Ghost")]

    # `for` 5m -> 10m on the same data: each episode fires 5 minutes later.
    ratio_change = changes["alert ErrorRatio"]
    old, new = ratio_change.data["old"], ratio_change.data["new"]
    assert (old["episodes"], new["episodes"]) == (2, 2)
    assert _minutes(old["firing_seconds"]) == pytest.approx(85 + 25, abs=1)
    assert _minutes(new["firing_seconds"]) == pytest.approx(80 + 20, abs=1)
    assert any("reads job:medianest_http_request_errors:ratio_rate5m, which this change also changes" in d
               for d in ratio_change.details)
    ratio_queries = [c for c in calls if c["query"] == ratio["expr"]]
    assert len(ratio_queries) == 2  # one expression, asked once, in two chunks
    boundary = float(ratio_queries[0]["end"])
    burst_start, burst_length = EVENTS[1][1], EVENTS[1][2]
    assert NOW - burst_start * 60 < boundary < NOW - (burst_start - burst_length) * 60  # the burst spans it

    # Counters through rate() over 5 minutes: 3 of 5 minutes of the spike's 500s (2 of 4 of the burst's
    # 503s) reach 1 error/s, then 5 more minutes of `for`; within a step of what was designed.
    added = changes["alert ErrorBurst"]
    assert added.data["old"] is None
    assert (added.data["new"]["episodes"], added.data["new"]["series"]) == (2, 2)
    assert _minutes(added.data["new"]["longest_seconds"]) == pytest.approx(85, abs=1)
    assert _minutes(added.data["new"]["firing_seconds"]) == pytest.approx(85 + 23, abs=2)
    assert added.details[0].startswith("old: none (the alert is new); new: fired twice in 2 series, ")

    ghost_change = changes["alert Ghost"]
    assert ghost_change.details[0] == "old: none (the alert is new); new: never fired"
    assert "Prometheus has no data for medianest_ghost_total" in ghost_change.details[1]


def test_errors_name_the_url_and_the_query(prometheus: str, tmp_path: Path) -> None:
    broken = _alert("Broken", "sum(rate(medianest_http_requests_total[5m])")
    pair = Trees("dev", _tree(tmp_path / "base", [broken | {"expr": "vector(1)"}]), _tree(tmp_path / "head", [broken]))
    with pytest.raises(BacktestError, match=rf"Prometheus at {prometheus} refused the new expression of alert "
                                            r"Broken \(sum\(rate.*\): bad_data: .*"):
        section(pair, prometheus, now=NOW)

    nobody = f"http://{LOOPBACK}:{free_port()}"
    with pytest.raises(BacktestError, match=rf"Prometheus at {nobody} is unreachable \(.*refused.*\)"):
        section(pair, nobody, now=NOW)

    with pytest.raises(BacktestError, match=rf"answered HTTP 404, not with Prometheus' API .*is {prometheus}/nothing "
                                            "a Prometheus server"):
        section(pair, f"{prometheus}/nothing", now=NOW)
