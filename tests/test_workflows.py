"""The GitHub workflows are safe by default: the pull request's code runs with no secret and no
write token unless a reviewer lets it (the environment `preview-prod`), every action is pinned by
commit, no expression is expanded inside a shell script, and zizmor finds nothing of medium
severity or above. The two scripts the workflows carry are run here too: the filter that decides
what of `pulumi preview` may be posted publicly, and the poster that edits only our own comment."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
SHA = "0123456789abcdef0123456789abcdef01234567"

# The minimum each job needs; a new job must be added here, which makes its permissions a review.
PERMISSIONS = {
    ("preview.yml", "check"): {"contents": "read"},
    ("preview.yml", "comment-diff"): {"pull-requests": "write"},
    ("preview.yml", "pulumi-preview"): {"contents": "read"},
    ("preview.yml", "comment-pulumi"): {"pull-requests": "write"},
    ("pr-comment.yml", "post"): {"pull-requests": "write"},
    ("slow.yml", "test-all"): {"contents": "read"},
}
ENVIRONMENT_JOB = ("preview.yml", "pulumi-preview")
SAME_REPOSITORY = "github.event.pull_request.head.repo.full_name == github.repository"


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def triggers(workflow: dict) -> dict:
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    return on if isinstance(on, dict) else {name: None for name in ([on] if isinstance(on, str) else on)}


def jobs() -> Iterator[tuple[str, str, dict]]:
    for path in FILES:
        for name, job in load(path)["jobs"].items():
            yield path.name, name, job


def steps() -> Iterator[tuple[str, str, int, dict]]:
    for file, name, job in jobs():
        for index, step in enumerate(job.get("steps", [])):
            yield file, name, index, step


def strings(node: object, path: tuple = ()) -> Iterator[tuple[tuple, str]]:
    """Every string of a parsed document (keys included), with where it sits."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield path, str(key)
            yield from strings(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from strings(value, (*path, index))
    elif isinstance(node, str):
        yield path, node


def step_named(file: str, job: str, name: str) -> dict:
    found = [step for f, j, _, step in steps() if (f, j) == (file, job) and step.get("name") == name]
    assert len(found) == 1, f"{file}: job {job} has no single step named {name!r}"
    return found[0]


def test_the_workflows_are_the_ones_reviewed_here():
    assert [path.name for path in FILES] == ["pr-comment.yml", "preview.yml", "slow.yml"]
    assert not list(WORKFLOWS.glob("*.yaml"))
    assert {(file, name) for file, name, _ in jobs()} == set(PERMISSIONS)


def test_no_trigger_runs_with_a_write_token_beside_untrusted_code():
    for path in FILES:
        on = triggers(load(path))
        assert not {"pull_request_target", "workflow_run"} & set(on), path.name
    assert set(triggers(load(WORKFLOWS / "pr-comment.yml"))) == {"workflow_call"}


def test_top_level_permissions_are_empty_or_read_only():
    for path in FILES:
        workflow = load(path)
        assert "permissions" in workflow, f"{path.name}: no top-level permissions (the default can write)"
        permissions = workflow["permissions"]
        assert permissions == {} or (isinstance(permissions, dict)
                                     and set(permissions.values()) <= {"read", "none"}), path.name


def test_each_job_has_the_minimum_permissions():
    for file, name, job in jobs():
        assert job.get("permissions") == PERMISSIONS[(file, name)], f"{file}: job {name}"


def test_every_action_is_pinned_by_commit_with_its_tag_in_a_comment():
    pins: dict[str, set[str]] = {}
    for path in FILES:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = re.match(r"\s*(?:-\s+)?uses:\s*(\S+)(.*)$", line)
            if not match:
                continue
            ref, rest = match.groups()
            where = f"{path.name}:{number}"
            if ref.startswith("./"):
                # A reusable workflow of this repository, at the same commit as its caller.
                assert re.fullmatch(r"\./\.github/workflows/[a-z-]+\.yml", ref), where
                assert (ROOT / ref).is_file(), where
                continue
            action = re.fullmatch(r"([A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+)@([0-9a-f]{40})", ref)
            assert action, f"{where}: {ref} is not pinned by a full commit SHA"
            tag = re.match(r"\s+#\s*(v\d+(?:\.\d+){1,2})\b", rest)
            assert tag, f"{where}: {ref} has no `# vX.Y.Z` tag comment"
            pins.setdefault(f"{action[1]} {tag[1]}", set()).add(action[2])
    assert pins
    for action, shas in pins.items():
        assert len(shas) == 1, f"{action} is pinned to different commits: {shas}"
    # The parsed view agrees: every step or job `uses` was seen above.
    used = [step["uses"] for _, _, _, step in steps() if "uses" in step]
    used += [job["uses"] for _, _, job in jobs() if "uses" in job]
    assert all(ref.startswith("./") or re.search(r"@[0-9a-f]{40}$", ref) for ref in used)


def test_no_expression_is_expanded_inside_a_script():
    for file, job, index, step in steps():
        assert "${{" not in step.get("run", ""), f"{file}: job {job}, step {index}: pass it through env:"
        assert "${{" not in str(step.get("with", {}).get("script", "")), f"{file}: job {job}, step {index}"


def test_scripts_run_in_bash_with_pipefail_or_in_python():
    for path in FILES:
        assert load(path).get("defaults", {}).get("run", {}).get("shell") == "bash", path.name
    for file, job, index, step in steps():
        if "run" in step:
            assert step.get("shell", "bash") in ("bash", "python", "python3 {0}"), f"{file}: job {job}, step {index}"
            assert "set +e" not in step["run"] and "set +o pipefail" not in step["run"], f"{file}: job {job}"


def test_checkout_keeps_no_token():
    checkouts = [(file, job, step) for file, job, _, step in steps()
                 if step.get("uses", "").startswith("actions/checkout@")]
    assert checkouts
    for file, job, step in checkouts:
        assert step.get("with", {}).get("persist-credentials") is False, f"{file}: job {job}"


def test_the_test_and_diff_job_holds_no_secret():
    check = load(WORKFLOWS / "preview.yml")["jobs"]["check"]
    assert "environment" not in check
    for where, text in strings(check):
        assert text != "secrets" and not re.search(r"secrets\s*[.\[]", text), f"check job, {where}: {text}"
    diff = step_named("preview.yml", "check", "Semantic diff against the base branch")
    assert diff["env"]["BASE_REF"] == "${{ github.base_ref }}"
    assert '--base "origin/$BASE_REF"' in diff["run"]
    assert {step.get("id") for step in check["steps"]} >= {"setup", "diff", "tests"}
    assert step_named("preview.yml", "check", "make test")["run"] == "make test"


def test_secrets_reach_only_step_env_of_the_environment_bound_job():
    seen = []
    for path in FILES:
        workflow = load(path)
        for where, text in strings(workflow):
            if text != "secrets" and not re.search(r"secrets\s*[.\[]", text):
                continue
            assert where[:1] == ("jobs",) and (path.name, where[1]) == ENVIRONMENT_JOB, f"{path.name}: {where}"
            assert len(where) == 6 and where[2] == "steps" and where[4] == "env", f"{path.name}: {where}"
            assert re.fullmatch(r"\$\{\{ secrets\.[A-Z_]+ \}\}", text), f"{path.name}: {where}: {text}"
            seen.append(text)
    assert "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}" in seen and "${{ secrets.KUBECONFIG_PREVIEW }}" in seen
    job = load(WORKFLOWS / ENVIRONMENT_JOB[0])["jobs"][ENVIRONMENT_JOB[1]]
    assert job["environment"] == "preview-prod"
    assert SAME_REPOSITORY in job["if"]
    assert job["needs"] == "check"
    # The secret-bearing steps run nothing but the preview; set-up ran before them, without secrets.
    with_secrets = [step for step in job["steps"] if "secrets." in json.dumps(step.get("env", {}))]
    assert [step["id"] for step in with_secrets] == ["dev", "prod"]
    for step in with_secrets:
        assert "pulumi preview --stack" in step["run"] and "make" not in step["run"]
        assert '> "$RUNNER_TEMP/pulumi-' in step["run"], "the raw output must not reach the public log"


def test_the_comment_jobs_skip_forks_and_report_failures():
    preview = load(WORKFLOWS / "preview.yml")["jobs"]
    for name, needs, artifact in (("comment-diff", "check", "monitoring-preview"),
                                  ("comment-pulumi", "pulumi-preview", "pulumi-preview")):
        job = preview[name]
        assert job["uses"] == "./.github/workflows/pr-comment.yml"
        assert job["needs"] == needs
        assert "!cancelled()" in job["if"] and SAME_REPOSITORY in job["if"], name
        assert job["with"]["outcome"] == f"${{{{ needs.{needs}.result }}}}"
        assert job["with"]["artifact"] == artifact
    assert preview["comment-diff"]["with"]["marker"] == "medianest-observability-diff"
    assert preview["comment-diff"]["with"]["outdated-marker"] == "medianest-observability-pulumi"
    post = step_named("pr-comment.yml", "post", "Post or update the comment")
    assert post["env"] == {
        "GH_TOKEN": "${{ github.token }}",
        "MARKER": "${{ inputs.marker }}",
        "TITLE": "${{ inputs.title }}",
        "OUTCOME": "${{ inputs.outcome }}",
        "OUTDATED_MARKER": "${{ inputs.outdated-marker }}",
        "PR_NUMBER": "${{ github.event.pull_request.number }}",
        "HEAD_SHA": "${{ github.event.pull_request.head.sha }}",
        "REPORT": "${{ runner.temp }}/pr-comment-report/comment.md",
    }
    download = step_named("pr-comment.yml", "post", "Download the report")
    assert download["with"]["path"] == "${{ runner.temp }}/pr-comment-report"
    assert download["continue-on-error"] is True
    assert not [step for _, job, _, step in steps() if job == "post" and "checkout" in step.get("uses", "")]


def test_the_pulumi_cli_is_pinned_and_checksum_verified():
    requirements = (ROOT / "requirements.txt").read_text()
    sdk = re.search(r"^pulumi==(\S+)$", requirements, re.M)
    job = load(WORKFLOWS / "preview.yml")["jobs"]["pulumi-preview"]
    assert sdk and job["env"]["PULUMI_VERSION"] == sdk[1], "the CLI should match the pulumi SDK pinned"
    install = step_named("preview.yml", "pulumi-preview", "Install the Pulumi CLI (pinned, SHA-256 verified)")
    script = install["run"]
    assert 'https://get.pulumi.com/releases/sdk/$tarball' in script
    assert 'tarball="pulumi-v${PULUMI_VERSION}-linux-x64.tar.gz"' in script
    assert "sha256sum --check --strict" in script
    assert script.index("sha256sum --check") < script.index("tar -xzf")
    for file, job, _, step in steps():
        assert not re.search(r"curl[^\n]*\|\s*(?:ba|z)?sh\b", step.get("run", "")), f"{file}: job {job}: curl | sh"
        assert not re.search(r"pulumi/actions@|setup-pulumi@", step.get("uses", "")), f"{file}: job {job}"


# The filter: what of `pulumi preview --json` reaches a public comment.

URN = "urn:pulumi:prod::medianest-observability::"
PROD_PREVIEW = {
    "config": {"kubernetes:context": "prod-admin-context", "medianest-observability:secrets": "[secret]"},
    "steps": [
        {"op": "same", "urn": URN + "kubernetes:core/v1:Namespace::monitoring"},
        {"op": "update", "urn": URN + "kubernetes:core/v1:Secret::alertmanager-secrets",
         "oldState": {"inputs": {"stringData": {"pagerduty-routing-key": "OLD-ROUTING-KEY-123"}}},
         "newState": {"inputs": {"stringData": {"pagerduty-routing-key": "NEW-ROUTING-KEY-456"}}},
         "diffReasons": ["stringData"], "detailedDiff": {"stringData.pagerduty-routing-key": {"kind": "update"}}},
        {"op": "replace", "urn": URN + "medianest:component$kubernetes:apps/v1:StatefulSet::prometheus",
         "replaceReasons": ["spec"], "diffReasons": ["spec", "password=hunter2"]},
        {"op": "create", "urn": URN + "kubernetes:core/v1:ConfigMap::leak-" + "QUtJQUlPU0ZPRE5ON0VYQU1QTEU" * 2},
        {"op": "create", "urn": URN + "kubernetes:core/v1:ConfigMap::name with | pipes"},
        {"op": "delete", "urn": "not-a-urn"},
    ],
    "diagnostics": [{"urn": URN + "kubernetes:core/v1:Secret::x", "severity": "error",
                     "message": "config value hunter2-in-a-message is invalid"}],
    "changeSummary": {"same": 1, "update": 1, "replace": 1, "create": 2, "delete": 1},
}
LEAKS = ("ROUTING-KEY", "hunter2", "prod-admin-context", "QUtJQUlPU0ZPRE5ON0VYQU1QTEU", "pipes")


def run_filter(tmp_path: Path, dev_exit: str, prod_exit: str, prod: object) -> str:
    script = tmp_path / "filter.py"
    script.write_text(step_named("preview.yml", "pulumi-preview", "Filter the previews for posting")["run"])
    if prod is not None:
        (tmp_path / "pulumi-prod.json").write_text(json.dumps(prod))
        (tmp_path / "pulumi-prod.err").write_text("error: password=hunter2\n")
    (tmp_path / "summary.md").unlink(missing_ok=True)
    env = {"PATH": os.environ["PATH"], "RUNNER_TEMP": str(tmp_path), "DEV_EXIT": dev_exit,
           "PROD_EXIT": prod_exit, "HEAD_SHA": SHA, "PREVIEW_REPORT": str(tmp_path / "out" / "comment.md"),
           "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}
    subprocess.run([sys.executable, str(script)], env=env, check=True, timeout=60)
    text = (tmp_path / "out" / "comment.md").read_text()
    assert (tmp_path / "summary.md").read_text() == text + "\n"
    assert not list(tmp_path.glob("pulumi-*")), "the raw output is deleted"
    return text


def test_the_filter_posts_changes_by_name_and_no_value(tmp_path):
    text = run_filter(tmp_path, "not-configured", "1", PROD_PREVIEW)
    for leak in LEAKS:
        assert leak not in text
    assert f"## pulumi preview of `{SHA[:12]}`" in text
    assert "### `pulumi preview --stack dev`\n\nNot configured" in text
    assert "**Failed** (exit 1)" in text and "Diagnostics (text withheld): 1 error" in text
    assert "| update | 1 |" in text and "| create | 2 |" in text and "| same | 1 |" in text
    assert "| update | `kubernetes:core/v1:Secret` | `alertmanager-secrets` | `stringData` |" in text
    assert "| replace | `kubernetes:apps/v1:StatefulSet` | `prometheus` | `spec`, `(withheld)` |" in text
    assert "| create | `kubernetes:core/v1:ConfigMap` | `(withheld)` |  |" in text
    assert "| delete | `(withheld)` | `(withheld)` |  |" in text
    assert "monitoring" not in text, "unchanged resources are not listed"


def test_the_filter_says_what_did_not_run_and_caps_its_size(tmp_path):
    many = {"steps": [{"op": "create", "urn": URN + f"kubernetes:core/v1:ConfigMap::cm-{n}"} for n in range(5000)],
            "changeSummary": {"create": 5000}}
    text = run_filter(tmp_path, "", "0", many)
    assert "### `pulumi preview --stack dev`\n\nDid not run" in text
    assert len(text) <= 20_100
    assert re.search(r"\| … \| \d+ more \| \| \|", text)
    assert run_filter(tmp_path, "0", "0", {"steps": [{"op": "same", "urn": URN + "a::b"}]}).count("No changes.") == 1
    assert "No JSON output." in run_filter(tmp_path, "0", "0", "not a digest")


# The poster: the pull-request comment, against a fake GitHub API.

BOT = {"login": "github-actions[bot]", "type": "Bot"}


class FakeGitHub(ThreadingHTTPServer):
    def __init__(self, comments: list[dict], writable: bool = True):
        super().__init__(("127.0.0.1", 0), Handler)
        self.comments, self.writable, self.requests = comments, writable, []


class Handler(BaseHTTPRequestHandler):
    server: FakeGitHub

    def log_message(self, *args):
        pass

    def reply(self, code: int, payload: object) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlsplit(self.path)
        assert self.headers["Authorization"] == "Bearer the-token"
        single = re.fullmatch(r"/repos/medianest/observability/issues/comments/(\d+)", url.path)
        if single:
            self.server.requests.append(("GET", self.path, None))
            [comment] = [c for c in self.server.comments if c["id"] == int(single[1])]
            return self.reply(200, comment)
        assert url.path == "/repos/medianest/observability/issues/7/comments", url.path
        page, per_page = int(parse_qs(url.query)["page"][0]), int(parse_qs(url.query)["per_page"][0])
        self.server.requests.append(("GET", self.path, None))
        self.reply(200, self.server.comments[(page - 1) * per_page:page * per_page])

    def write(self, method: str):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append((method, self.path, body["body"]))
        if not self.server.writable:
            return self.reply(403, {"message": "Resource not accessible by integration"})
        self.reply(200 if method == "PATCH" else 201, {"id": 999, "body": body["body"]})

    def do_PATCH(self):
        self.write("PATCH")

    def do_POST(self):
        self.write("POST")


def post(tmp_path: Path, comments: list[dict], *, outcome: str = "success", report: str | None = "the report\n",
         writable: bool = True, marker: str = "medianest-observability-diff", outdated: str = "",
         pr_number: str = "7") -> tuple[subprocess.CompletedProcess, list]:
    script = tmp_path / "post.py"
    script.write_text(step_named("pr-comment.yml", "post", "Post or update the comment")["run"])
    report_path = tmp_path / "report" / "comment.md"
    if report is not None:
        report_path.parent.mkdir(exist_ok=True)
        report_path.write_text(report)
    server = FakeGitHub(comments, writable)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = {"PATH": os.environ["PATH"], "GH_TOKEN": "the-token", "MARKER": marker, "TITLE": "tests and diff",
               "OUTCOME": outcome, "OUTDATED_MARKER": outdated, "PR_NUMBER": pr_number, "HEAD_SHA": SHA,
               "REPORT": str(report_path), "GITHUB_REPOSITORY": "medianest/observability",
               "GITHUB_API_URL": f"http://127.0.0.1:{server.server_address[1]}",
               "GITHUB_SERVER_URL": "https://github.com", "GITHUB_RUN_ID": "4242"}
        result = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    finally:
        server.shutdown()
        server.server_close()
    return result, server.requests


RUN_URL = "https://github.com/medianest/observability/actions/runs/4242"


def writes(requests: list) -> list:
    return [(method, path, body) for method, path, body in requests if method != "GET"]


def test_the_poster_edits_our_comment_never_one_that_copies_its_marker(tmp_path):
    comments = [
        {"id": 1, "user": {"login": "mallory", "type": "User"}, "body": "<!-- medianest-observability-diff -->\nhi"},
        {"id": 2, "user": {"login": "github-actions", "type": "User"}, "body": "<!-- medianest-observability-diff -->"},
        {"id": 3, "user": BOT, "body": "<!-- medianest-observability-diff -->\nold report"},
    ]
    result, requests = post(tmp_path, comments, report="<!-- medianest-observability-diff -->\n## Monitoring preview\n")
    assert result.returncode == 0, result.stderr
    [(method, path, body)] = writes(requests)
    assert (method, path) == ("PATCH", "/repos/medianest/observability/issues/comments/3")
    assert body.startswith(f"<!-- medianest-observability-diff -->\n<!-- head-sha: {SHA} -->\n")
    assert "## Monitoring preview" in body and RUN_URL in body and "❌" not in body
    assert body.count("<!-- medianest-observability-diff -->") == 1, "the report cannot carry our marker"


def test_the_poster_creates_the_comment_when_it_has_none(tmp_path):
    others = [{"id": n, "user": {"login": "someone", "type": "User"}, "body": f"comment {n}"} for n in range(150)]
    result, requests = post(tmp_path, others)
    assert result.returncode == 0, result.stderr
    assert [r[1] for r in requests if r[0] == "GET"][-1].endswith("page=2"), "every page is read"
    [(method, path, body)] = writes(requests)
    assert (method, path) == ("POST", "/repos/medianest/observability/issues/7/comments")
    assert "the report" in body


def test_a_failed_run_says_so_with_a_link_so_an_old_report_never_looks_current(tmp_path):
    old = [{"id": 3, "user": BOT, "body": "<!-- medianest-observability-diff -->\nall green, last week"}]
    result, requests = post(tmp_path, old, outcome="failure", report=None)
    assert result.returncode == 0, result.stderr
    [(method, _, body)] = writes(requests)
    assert method == "PATCH" and "all green" not in body
    assert f"**failure** for `{SHA[:12]}`" in body and RUN_URL in body and "wrote no report" in body
    result, requests = post(tmp_path, old, outcome="failure", report="| make test | failure |\n")
    [(_, _, body)] = writes(requests)
    assert body.index("❌") < body.index("| make test | failure |")


def test_the_pulumi_comment_is_marked_outdated_until_its_job_runs(tmp_path):
    pulumi = {"id": 5, "user": BOT,
              "body": f"<!-- medianest-observability-pulumi -->\n<!-- head-sha: {'f' * 40} -->\nold preview"}
    result, requests = post(tmp_path, [pulumi], outdated="medianest-observability-pulumi")
    assert result.returncode == 0, result.stderr
    marked = [body for method, path, body in writes(requests) if path.endswith("/comments/5")]
    assert len(marked) == 1 and "⏳ Outdated" in marked[0] and "old preview" in marked[0]
    assert marked[0].startswith("<!-- medianest-observability-pulumi -->\n")
    pulumi["body"] = marked[0]  # marked once, not twice
    _, requests = post(tmp_path, [pulumi], outdated="medianest-observability-pulumi")
    assert [body.count("⏳") for _, path, body in writes(requests) if path.endswith("/5")] == [1]
    pulumi["body"] = f"<!-- medianest-observability-pulumi -->\n<!-- head-sha: {SHA} -->\ncurrent"
    _, requests = post(tmp_path, [pulumi], outdated="medianest-observability-pulumi")
    assert not [path for _, path, _ in writes(requests) if path.endswith("/5")], "current: left alone"


def test_a_skipped_job_updates_an_old_comment_and_creates_none(tmp_path):
    result, requests = post(tmp_path, [], outcome="skipped", marker="medianest-observability-pulumi")
    assert result.returncode == 0 and writes(requests) == []
    old = [{"id": 5, "user": BOT, "body": "<!-- medianest-observability-pulumi -->\nold preview"}]
    _, requests = post(tmp_path, old, outcome="skipped", marker="medianest-observability-pulumi")
    [(_, _, body)] = writes(requests)
    assert "did not run" in body and "old preview" not in body


def test_a_token_that_cannot_write_is_a_warning_not_a_red_check(tmp_path):
    result, requests = post(tmp_path, [], writable=False)
    assert result.returncode == 0, result.stderr
    assert "::warning::cannot write the pull-request comment (HTTP 403)" in result.stdout
    assert [method for method, _, _ in writes(requests)] == ["POST"]


def test_the_poster_refuses_what_is_not_a_pull_request(tmp_path):
    for number in ("", "0", "7; rm -rf /", "../8"):
        result, requests = post(tmp_path, [], pr_number=number)
        assert result.returncode == 1 and requests == [], number
    result, requests = post(tmp_path, [], marker="x --> <script>")
    assert result.returncode == 1 and requests == []


def test_zizmor_finds_nothing_of_medium_severity_or_above():
    zizmor = Path(sys.executable).parent / "zizmor"
    assert zizmor.is_file(), f"zizmor is missing from {zizmor.parent}: pip install -r requirements.txt"
    # --strict-collection: a workflow zizmor cannot parse fails here instead of being skipped.
    result = subprocess.run([str(zizmor), "--offline", "--strict-collection", "--min-severity", "medium",
                             "--no-progress", "--color", "never", str(WORKFLOWS)],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr

