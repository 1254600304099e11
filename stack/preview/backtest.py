"""Backtest: how often each changed alert would have fired over the last days, old rule against
new rule, asked of a real Prometheus holding real history (`diff --prometheus URL`).

Each side's expression runs as a range query (`/api/v1/query_range`) at the rule evaluation
interval, and `for` is applied to the answer as Prometheus applies it to its evaluations: per
output series, an alert is pending from the first step the expression returns the series and
firing once the series was returned at every step for at least `for`; a step without it ends
the episode (unless `keep_firing_for` keeps a firing alert on). The episode logic is a pure
function (`episodes`); only `section` talks to Prometheus.

What a backtest cannot see, and says under the alert when it matters: recorded series are what
the *deployed* recording rules recorded, so a change to a recording rule is not reflected; and a
metric Prometheus has no data for makes an expression look quiet.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml

from rules.conventions import duration_seconds
from stack.layout import PROMETHEUS_CONFIG
from stack.preview.model import Change, Section, Trees
from stack.preview.trees import Rule, alerts, recording_rules
from stack.preview.worktree import PreviewError

TITLE = "Backtest"
# Prometheus refuses a range query of more than 11,000 points per series.
MAX_POINTS = 11_000
DEFAULT_EVALUATION_INTERVAL = "1m"
TIMEOUT = 60.0
# Two timestamps of a range query's answer are one step apart up to float noise.
EPSILON = 1e-6
Side = Literal["old", "new"]


class BacktestError(PreviewError):
    """Prometheus is unreachable, is not a Prometheus, or refused a query: the message names the
    URL (and the alert and side of a refused query)."""


# --- the evaluation, pure ---------------------------------------------------------------------


@dataclass(frozen=True)
class Episode:
    """One alert of one series, from pending to resolved, as Prometheus would have held it."""

    series: str
    active: float  # the first step the series was returned (pending from then)
    fired: float  # the first firing step
    ended: float  # the step it was resolved at (or the end of the window when still firing)
    still_firing: bool = False

    @property
    def seconds(self) -> float:
        return self.ended - self.fired


@dataclass(frozen=True)
class Summary:
    episodes: int
    firing_seconds: float
    longest_seconds: float
    series: int
    still_firing: bool

    @classmethod
    def of(cls, found: Iterable[Episode]) -> Summary:
        found = list(found)
        return cls(episodes=len(found), firing_seconds=sum(e.seconds for e in found),
                   longest_seconds=max((e.seconds for e in found), default=0.0),
                   series=len({e.series for e in found}), still_firing=any(e.still_firing for e in found))


def _runs(stamps: Iterable[float], step: float) -> list[tuple[float, float]]:
    """Consecutive steps as (first, last)."""
    runs: list[tuple[float, float]] = []
    for stamp in sorted(set(stamps)):
        if runs and stamp - runs[-1][1] <= step * (1 + EPSILON):
            runs[-1] = (runs[-1][0], stamp)
        else:
            runs.append((stamp, stamp))
    return runs


def _steps(seconds: float, step: float) -> int:
    """Evaluations it takes for `seconds` to pass, counting from 0 (Prometheus compares
    `now - active >= for` at each evaluation)."""
    return max(0, math.ceil(seconds / step - EPSILON))


def episodes(samples_by_series: Mapping[str, Iterable[float]], step: float, for_seconds: float,
             keep_firing_for: float = 0.0, since: float | None = None,
             until: float | None = None) -> list[Episode]:
    """The firing episodes of an alert whose expression returned each series at the given
    evaluation timestamps (one `step` apart on one grid), `for` honoured as Prometheus does.

    `keep_firing_for` keeps a firing alert on through that many seconds of absence. `since` and
    `until` bound the window: an episode still firing at `until` ends there (`still_firing`),
    one that fired before `since` counts from `since`, one over by `since` is left out (query
    from `since - for` so that a series pending before the window fires when it would have).
    """
    if step <= 0:
        raise ValueError(f"step must be positive, not {step}")
    to_fire = _steps(for_seconds, step)
    # Absent evaluations a firing alert survives: those less than keep_firing_for after the first.
    kept = _steps(keep_firing_for, step)
    found = [episode for series, stamps in samples_by_series.items()
             for episode in _series_episodes(series, stamps, step, to_fire, kept)]
    return sorted((_clip(e, since, until) for e in found if _inside(e, since, until)),
                  key=lambda e: (e.fired, e.series))


def _series_episodes(series: str, stamps: Iterable[float], step: float, to_fire: int, kept: int) -> list[Episode]:
    found = []
    current: list[float] | None = None  # [active, fired, last returned] of a firing alert
    for first, last in _runs(stamps, step):
        if current is not None and first - current[2] <= (kept + 1) * step * (1 + EPSILON):
            current[2] = last  # back before keep_firing_for ran out: the same alert goes on
            continue
        if current is not None:
            found.append(Episode(series, current[0], current[1], current[2] + (1 + kept) * step))
            current = None
        fired = first + to_fire * step
        if fired <= last + EPSILON:  # returned long enough to fire; otherwise pending only
            current = [first, fired, last]
    if current is not None:
        found.append(Episode(series, current[0], current[1], current[2] + (1 + kept) * step))
    return found


def _inside(episode: Episode, since: float | None, until: float | None) -> bool:
    return ((since is None or episode.ended > since + EPSILON)
            and (until is None or episode.fired <= until + EPSILON))


def _clip(episode: Episode, since: float | None, until: float | None) -> Episode:
    fired = episode.fired if since is None else max(episode.fired, since)
    if until is not None and episode.ended > until + EPSILON:
        return Episode(episode.series, episode.active, fired, until, still_firing=True)
    return Episode(episode.series, episode.active, fired, episode.ended)


def chunks(start: float, end: float, step: float, max_points: int = MAX_POINTS) -> list[tuple[float, float]]:
    """[start, end] on the grid `start + k * step` as (start, end) ranges of at most `max_points`
    evaluations each, none shared."""
    total = math.floor((end - start) / step + EPSILON) + 1
    return [(start + first * step, start + (min(first + max_points, total) - 1) * step)
            for first in range(0, total, max_points)]


# --- what an expression reads ----------------------------------------------------------------

_STRINGS = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", re.IGNORECASE)
_IDENTIFIER = re.compile(r"(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*\()")
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan", "by", "without", "on", "ignoring",
                       "group_left", "group_right", "atan2"})


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (those written as a name, not as
    `{__name__=...}`): identifiers that are neither functions, keywords nor label names."""
    text = _STRINGS.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", "{}", text)  # matchers (their strings are gone: no brace left inside)
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries
    text = _GROUPING.sub("", text)
    text = re.sub(r"\boffset\s+-?[0-9a-z]+", "", text, flags=re.IGNORECASE)
    text = re.sub(r"@\s*[0-9.]+", "", text)
    return {name for name in _IDENTIFIER.findall(text) if name.lower() not in _KEYWORDS}


def changed_recordings(base: Path, head: Path) -> set[str]:
    """Recorded names whose series differ between base and head: their rules changed (or are
    new), or they are computed from such a name."""
    def by_name(tree: Path) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for (name, _), rule in sorted(recording_rules(tree).items()):
            found.setdefault(name, []).append(json.dumps(rule.body, sort_keys=True))
        return found

    old, new = by_name(base), by_name(head)
    reads = {name: set().union(*(metric_names(json.loads(body)["expr"]) for body in bodies))
             for name, bodies in new.items()}
    changed = {name for name, bodies in new.items() if old.get(name) != bodies}
    while grown := {name for name, names in reads.items() if name not in changed and names & changed}:
        changed |= grown
    return changed


# --- talking to Prometheus -------------------------------------------------------------------


@dataclass(frozen=True)
class Prometheus:
    url: str
    timeout: float = TIMEOUT

    def _opener(self) -> urllib.request.OpenerDirector:
        host = urllib.parse.urlsplit(self.url).hostname or ""
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        # A proxy of the environment cannot reach this machine's loopback.
        return urllib.request.build_opener(urllib.request.ProxyHandler({})) if loopback \
            else urllib.request.build_opener()

    def call(self, path: str, params: Mapping[str, str], what: str, method: str = "POST") -> Any:
        """The API's `data` for a form POSTed (or a GET with `params`), or BacktestError naming the
        URL and `what` was asked."""
        url = self.url.rstrip("/") + path
        form = urllib.parse.urlencode(params)
        request = (urllib.request.Request(url, data=form.encode(), method="POST",
                                          headers={"Content-Type": "application/x-www-form-urlencoded"})
                   if method == "POST" else urllib.request.Request(f"{url}?{form}"))
        try:
            with self._opener().open(request, timeout=self.timeout) as response:
                status, text = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read()
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            if isinstance(reason, TimeoutError):
                raise BacktestError(f"Prometheus at {self.url} did not answer within {self.timeout:g} s "
                                    f"({what})") from None
            raise BacktestError(f"Prometheus at {self.url} is unreachable ({reason}): check the --prometheus URL") \
                from None
        try:
            answer = json.loads(text)
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or "status" not in answer:
            raise BacktestError(f"{url} answered HTTP {status}, not with Prometheus' API ({what}): is "
                                f"{self.url} a Prometheus server?")
        if answer["status"] != "success":
            kind = answer.get("errorType", f"HTTP {status}")
            raise BacktestError(f"Prometheus at {self.url} refused {what}: {kind}: {answer.get('error', '')}")
        return answer.get("data")

    def range_query(self, expr: str, start: float, end: float, step: float, what: str) -> dict[str, list[float]]:
        """The timestamps at which `expr` returned each series (by its labels, `__name__` dropped
        as alert labels drop it), over [start, end] in as many queries as the point limit takes."""
        found: dict[str, list[float]] = {}
        for first, last in chunks(start, end, step):
            data = self.call("/api/v1/query_range", {"query": expr, "start": f"{first:.3f}", "end": f"{last:.3f}",
                                                     "step": f"{step:g}"}, what)
            if not isinstance(data, dict) or data.get("resultType") != "matrix":
                kind = data.get("resultType") if isinstance(data, dict) else type(data).__name__
                raise BacktestError(f"Prometheus at {self.url} answered {what} with a {kind}, not a range vector")
            for series in data["result"]:
                labels = {k: v for k, v in series["metric"].items() if k != "__name__"}
                stamps = found.setdefault(series_name(labels), [])
                stamps += [float(t) for t, _ in series.get("values", [])]
        return found

    def names_with_data(self, start: float, end: float) -> set[str]:
        """Every metric name with a sample between `start` and `end`."""
        data = self.call("/api/v1/label/__name__/values", {"start": f"{start:.3f}", "end": f"{end:.3f}"},
                         "the list of metric names", method="GET")
        return set(data or ())


def series_name(labels: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in sorted(labels.items())) + "}"


# --- the section -----------------------------------------------------------------------------


def _interval(tree: Path, rule: Rule | None) -> float:
    """The evaluation interval of a rule's group: its own `interval`, else the tree's global one."""
    if rule is not None:
        document = yaml.safe_load((tree / rule.file).read_text()) or {}
        for group in document.get("groups", []):
            if group.get("name") == rule.group and group.get("interval"):
                return duration_seconds(str(group["interval"]))
    config_path = tree / PROMETHEUS_CONFIG
    config = (yaml.safe_load(config_path.read_text()) or {}) if config_path.exists() else {}
    return duration_seconds(str((config.get("global") or {}).get("evaluation_interval",
                                                                  DEFAULT_EVALUATION_INTERVAL)))


def _seconds(rule: Rule | None, key: str) -> float:
    value = rule.body.get(key) if rule else None
    return duration_seconds(str(value)) if value else 0.0


def _differs(old: Rule | None, new: Rule | None) -> bool:
    keys = ("expr", "for", "keep_firing_for")
    if old is None or new is None:
        return old is not new
    return any(str(old.body.get(k, "")).strip() != str(new.body.get(k, "")).strip() for k in keys)


def human(seconds: float) -> str:
    """42 min, 2.1 h, 3.5 d."""
    if seconds < 60:
        return f"{seconds:g} s"
    if seconds < 120 * 60:
        return f"{round(seconds / 60, 1):g} min"
    if seconds < 72 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def describe(side: Side, summary: Summary | None) -> str:
    if summary is None:
        return f"{side}: none (the alert is {'new' if side == 'old' else 'removed'})"
    if not summary.episodes:
        return f"{side}: never fired"
    times = {1: "once", 2: "twice"}.get(summary.episodes, f"{summary.episodes} times")
    series = f" in {summary.series} series" if summary.series > 1 else ""
    text = (f"{side}: fired {times}{series}, {human(summary.firing_seconds)} in total "
            f"(longest {human(summary.longest_seconds)})")
    return text + (", still firing" if summary.still_firing else "")


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")


def section(trees: Trees, prometheus_url: str, days: float = 7, now: float | None = None, *,
            timeout: float = TIMEOUT) -> Section:
    """Old against new firing history of every alert whose `expr`, `for` or `keep_firing_for`
    changed, was added or was removed, over the last `days` of `prometheus_url`'s data."""
    if not days > 0:
        raise BacktestError(f"the backtest needs a positive number of days, not {days:g}")
    old_alerts, new_alerts = alerts(trees.base), alerts(trees.head)
    names = sorted(n for n in old_alerts.keys() | new_alerts.keys()
                   if _differs(old_alerts.get(n), new_alerts.get(n)))
    if not names:
        return Section(TITLE)
    prometheus = Prometheus(prometheus_url, timeout)
    now = time.time() if now is None else now
    head_interval = _interval(trees.head, None)
    known: set[str] | None = None
    recorded = changed_recordings(trees.base, trees.head)
    changes = []
    for name in names:
        old, new = old_alerts.get(name), new_alerts.get(name)
        step = _interval(trees.head, new) if new else _interval(trees.base, old)
        end = math.floor(now / step) * step
        start = end - math.floor(days * 86400 / step) * step
        sides: dict[Side, Rule | None] = {"old": old, "new": new}
        warm_up = max(_steps(_seconds(r, "for") + _seconds(r, "keep_firing_for"), step) for r in (old, new) if r)
        answers: dict[str, dict[str, list[float]]] = {}
        summaries: dict[Side, Summary | None] = {}
        caveats: list[str] = []
        for side, rule in sides.items():
            if rule is None:
                summaries[side] = None
                continue
            expr = str(rule.body["expr"])
            if expr not in answers:
                answers[expr] = prometheus.range_query(expr, start - warm_up * step, end, step,
                                                       f"the {side} expression of alert {name} ({expr})")
            found = episodes(answers[expr], step, _seconds(rule, "for"), _seconds(rule, "keep_firing_for"),
                             since=start, until=end)
            summaries[side] = Summary.of(found)
            if side == "new" and (reads := sorted(metric_names(expr) & recorded)):
                caveats.append(f"the new expression reads {', '.join(reads)}, which this change also "
                             "changes; Prometheus only has what the deployed rules recorded, so the new side "
                             "is backtested on the old recording")
            if not any(answers[expr].values()):
                if known is None:
                    known = prometheus.names_with_data(start, end)
                missing = sorted(metric_names(expr) - known)
                if missing:
                    caveats.append(f"Prometheus has no data for {', '.join(missing)} (read by the {side} "
                                   "expression) in the window: that side's silence says nothing")
        kind = "added" if old is None else "removed" if new is None else "changed"
        data: dict[str, Any] = {"alert": name, "step_seconds": step, "start": start, "end": end}
        for side, rule in sides.items():
            summary = summaries[side]
            data[side] = None if rule is None or summary is None else {
                "expr": rule.body["expr"], "for_seconds": _seconds(rule, "for"),
                "keep_firing_for_seconds": _seconds(rule, "keep_firing_for"), **asdict(summary)}
        line = "; ".join(describe(side, summaries[side]) for side in sides)
        changes.append(Change(kind, f"alert {name}", (line, *caveats), data | {"caveats": caveats}))
    end = math.floor(now / head_interval) * head_interval
    start = end - days * 86400
    header = (f"As evaluated every {human(head_interval)} on the data of {prometheus_url} over the last {days:g} "
              f"days ({_when(start)} to {_when(end)}), `for` honoured as Prometheus does.")
    return Section(TITLE, tuple(changes), (header,))
