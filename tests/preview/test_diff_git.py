"""`python -m stack diff` end to end, in a temporary git repository holding a copy of this
project: one commit per kind of change a reviewer cares about, each compared with its parent
by the real command (base exported from a git worktree, head from the working tree)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rules.slos import slos
from stack.config import ROOT, load_stack

# The shipped values the commits change, read from the definitions: never pinned here.
ERROR_RATIO = load_stack("dev").thresholds.error_ratio
RAISED_RATIO = round(ERROR_RATIO + 0.02, 6)
OBJECTIVE = next(s.objective for s in slos(load_stack("dev")) if s.name == "api-availability")
LOWERED_OBJECTIVE = OBJECTIVE - 1 if OBJECTIVE > 90 else OBJECTIVE / 2

NEW_ALERT = '''        alert("RedisRejectingConnections", "increase(redis_rejected_connections_total[5m]) > 0",
              for_="5m", severity=WARNING, service="cache",
              summary="Redis rejects connections",
              description="Redis rejected {{ $value }} connections over 5 minutes (maxclients reached).",
              **common),
'''
REDIS_DOWN_END = '              description=down_description("Redis (or its exporter)", "1 minute"), **common),\n'
LOAD_PANEL = '''        timeseries("Load average", "1 minute load average per host.", Unit.SHORT,
                   prom(f"node_load1{{{node}}}", "{{instance}}")),
'''
TICKETS_ROUTE = '''            Route(receiver=TICKETS, matchers=(eq(TIER_LABEL, TICKET),),
                  repeat_interval=TICKET_REPEAT_INTERVAL),
'''
BUSINESS_ROUTE = '''            Route(receiver=BUSINESS_TEAM, matchers=(eq(SERVICE_LABEL, "business"),)),
'''
# (commit name, file, old text, new text): each commit makes exactly one change.
COMMITS = [
    ("raise a threshold", "Pulumi.dev.yaml", f"errorRatio: {ERROR_RATIO}", f"errorRatio: {RAISED_RATIO}"),
    ("add an alert", "stack/services/redis_exporter.py", REDIS_DOWN_END, REDIS_DOWN_END + NEW_ALERT),
    ("lower an SLO objective", "rules/slos.py", f'objective=Decimal("{OBJECTIVE}")',
     f'objective=Decimal("{LOWERED_OBJECTIVE}")'),
    ("remove a dashboard panel", "stack/services/node_exporter.py", LOAD_PANEL, ""),
    ("bump the Prometheus image", "Pulumi.dev.yaml", "tag: v3.16.0}", "tag: v3.17.0}"),
    ("reword a comment", "rules/platform.py", "from __future__ import annotations\n",
     "from __future__ import annotations\n\n# Only a comment changes here.\n"),
    # Last: it breaks the routing policy's intent, and every later commit would inherit the error.
    ("route business tickets to the business team", "rules/alerting_policy.py", TICKETS_ROUTE + BUSINESS_ROUTE,
     BUSINESS_ROUTE + TICKETS_ROUTE),
]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """This project's files (as git sees them, uncommitted ones included) in a new repository,
    then one commit per change; returns the repository and each commit's sha by name."""
    root = tmp_path_factory.mktemp("preview") / "project"
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            check=True, capture_output=True).stdout.decode().split("\0")
    for relative in filter(None, listed):
        source = ROOT / relative
        if source.is_file():
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / relative)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "ci@example.com")
    git(root, "config", "user.name", "CI")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    shas = {}
    for name, path, old, new in COMMITS:
        text = (root / path).read_text()
        assert text.count(old) == 1, f"{name}: {old!r} not found once in {path}"
        (root / path).write_text(text.replace(old, new))
        git(root, "commit", "-q", "-am", name)
        shas[name] = git(root, "rev-parse", "HEAD")
    return {"root": root, "shas": shas}


def run_diff(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stack", "diff", *args], cwd=root, capture_output=True, text=True,
                          check=False, timeout=300)


def diff_of(repo: dict[str, Any], name: str) -> tuple[dict[str, Any], int]:
    """The JSON report of commit `name` against its parent, and the exit code."""
    root = repo["root"]
    git(root, "checkout", "-q", repo["shas"][name])
    run = run_diff(root, "--base", "HEAD~1", "--stack", "dev", "--format", "json")
    assert run.returncode in (0, 1), run.stderr
    return json.loads(run.stdout), run.returncode


def changes(report: dict[str, Any], title: str) -> list[dict[str, Any]]:
    (section,) = [s for s in report["stacks"]["dev"] if s["title"] == title]
    return section["changes"]


def text_of(change: dict[str, Any]) -> str:
    details = [d if isinstance(d, str) else d["text"] for d in change["details"]]
    return "\n".join([change["subject"], *details])


def changed_sections(report: dict[str, Any]) -> set[str]:
    return {s["title"] for s in report["stacks"]["dev"] if s["changes"]}


def test_a_raised_threshold_is_reported_with_old_and_new_value(repo) -> None:
    report, code = diff_of(repo, "raise a threshold")
    alerts = {c["subject"]: c for c in changes(report, "Alerts and recording rules")}
    (subject,) = [s for s in alerts if "HighErrorRate" in s]
    assert alerts[subject]["kind"] == "changed"
    text = text_of(alerts[subject])
    assert f"{ERROR_RATIO} -> {RAISED_RATIO}" in text
    assert "critical-alerts" in text, "the receivers it reaches are stated"
    assert code == 0, "its unit tests pass and nothing is broken"


def test_an_added_alert_is_reported_with_its_receiver_and_tests(repo) -> None:
    report, _ = diff_of(repo, "add an alert")
    (added,) = [c for c in changes(report, "Alerts and recording rules") if "RedisRejectingConnections" in c["subject"]]
    assert added["kind"] == "added"
    text = text_of(added)
    assert "default" in text, "a cache warning reaches the default receiver"
    assert "no unit test" in text, "its rule has no test yet: the preview says so"


def test_a_route_change_names_the_alerts_that_now_reach_another_receiver(repo) -> None:
    report, code = diff_of(repo, "route business tickets to the business team")
    routing = "\n".join(text_of(c) for c in changes(report, "Routing"))
    assert "business-team" in routing and "tickets" in routing
    # media-upload-success is the business SLO: its ticket now goes to the business team...
    assert 'slo="media-upload-success"' in routing
    # ...which the routing policy does not intend: a static check error the change introduces.
    problems = "\n".join(text_of(c) for c in changes(report, "Static checks"))
    assert "routing-intent" in problems and "media-upload-success" in problems
    assert code == 1


def test_a_lower_slo_objective_shows_the_detection_table_before_and_after(repo) -> None:
    report, _ = diff_of(repo, "lower an SLO objective")
    (slo,) = [c for c in changes(report, "SLOs") if "api-availability" in c["subject"]]
    text = text_of(slo)
    assert str(OBJECTIVE) in text and str(LOWERED_OBJECTIVE) in text
    assert "|" in text, "the detection-time table"
    assert "Alerts and recording rules" in changed_sections(report), "the SLO's rules change too"


def test_a_removed_panel_is_reported_by_its_title(repo) -> None:
    report, _ = diff_of(repo, "remove a dashboard panel")
    (panel,) = [c for c in changes(report, "Dashboards") if "Load average" in text_of(c)]
    assert panel["kind"] == "removed"
    assert changed_sections(report) == {"Dashboards", "Stack"}
    # What the deployment does: Grafana gets a new config (its dashboard file changed), nothing else.
    (grafana,) = changes(report, "Stack")
    assert "grafana" in grafana["subject"] and "infrastructure" in text_of(grafana), text_of(grafana)


def test_an_image_bump_is_reported_per_environment(repo) -> None:
    report, _ = diff_of(repo, "bump the Prometheus image")
    stack = "\n".join(text_of(c) for c in changes(report, "Stack"))
    assert "v3.16.0" in stack and "v3.17.0" in stack
    assert changed_sections(report) == {"Stack"}


def test_a_comment_only_change_reports_no_changes(repo) -> None:
    report, code = diff_of(repo, "reword a comment")
    assert report["empty"] is True and code == 0
    git(repo["root"], "checkout", "-q", repo["shas"]["reword a comment"])
    markdown = run_diff(repo["root"], "--base", "HEAD~1", "--stack", "dev").stdout
    assert "touches nothing the stack generates" in markdown


def test_markdown_has_a_summary_table_and_folded_sections(repo) -> None:
    root = repo["root"]
    git(root, "checkout", "-q", repo["shas"]["remove a dashboard panel"])
    run = run_diff(root, "--base", "HEAD~2", "--stack", "dev")
    assert run.returncode in (0, 1), run.stderr
    assert run.stdout.startswith("<!-- medianest-observability-diff -->")
    assert "| stack | what | added | removed | changed |" in run.stdout
    assert "<details><summary>dev: Dashboards" in run.stdout and "<details><summary>dev: SLOs" in run.stdout


def test_a_bad_ref_is_refused_clearly(repo) -> None:
    run = run_diff(repo["root"], "--base", "no-such-branch")
    assert run.returncode == 2
    assert "--base 'no-such-branch' is not a commit" in run.stderr


def test_a_dirty_tree_is_refused_unless_allowed(repo) -> None:
    root = repo["root"]
    git(root, "checkout", "-q", repo["shas"]["reword a comment"])
    path = root / "Pulumi.dev.yaml"
    original = path.read_text()
    path.write_text(original.replace(f"errorRatio: {RAISED_RATIO}", f"errorRatio: {RAISED_RATIO + 0.01}"))
    try:
        run = run_diff(root, "--base", "HEAD~1", "--stack", "dev")
        assert run.returncode == 2 and "uncommitted changes (Pulumi.dev.yaml)" in run.stderr
        allowed = run_diff(root, "--base", "HEAD", "--stack", "dev", "--allow-dirty", "--format", "json")
        report = json.loads(allowed.stdout)
        assert "uncommitted" in report["head"]
        assert any("HighErrorRate" in c["subject"] for c in changes(report, "Alerts and recording rules"))
    finally:
        path.write_text(original)


def test_outside_a_git_repository_is_refused_clearly(repo, tmp_path: Path) -> None:
    copy = tmp_path / "no-git"
    shutil.copytree(repo["root"], copy, ignore=shutil.ignore_patterns(".git"))
    run = run_diff(copy, "--base", "main")
    assert run.returncode == 2
    assert "is not in a git repository" in run.stderr
