"""Each static check rejects the bad expression it exists for, with a message that says what
to do, and accepts the corrected form. Table-driven: one row per sentence."""

from __future__ import annotations

import pytest

from rules.checks import check_expression, check_groups
from rules.metrics import CATALOG
from rules.model import AlertingRule, RecordingRule, RuleGroup, alert
from rules.problems import Severity

# The seeds' own expressions, kept as regression cases (../shared/FACTS.md).
SEED_HIGH_ERROR_RATE = (
    'rate(medianest_http_requests_total{status_code=~"5.."}[5m]) / '
    "rate(medianest_http_requests_total[5m]) > 0.05"
)
SEED_QUEUE_BUILDUP = (
    'rate(medianest_background_jobs_total{status="completed"}[5m]) < '
    'rate(medianest_background_jobs_total{status="queued"}[5m])'
)
SEED_RESPONSE_TIME = "histogram_quantile(0.95, rate(medianest_http_request_duration_seconds_bucket[5m])) > 2"
SEED_DB_PANEL = "rate(medianest_database_query_duration_seconds[5m])"

BAD = [
    ("the seeds' HighErrorRate divides each series by itself", SEED_HIGH_ERROR_RATE,
     "vector-matching", "trivially 1 or 0"),
    ("the seeds' BackgroundJobQueueBuildup compares sides that never match", SEED_QUEUE_BUILDUP,
     "vector-matching", 'left side selects status="completed"'),
    ("the seeds' HighResponseTime takes quantiles of unaggregated buckets", SEED_RESPONSE_TIME,
     "histogram-quantile", "sum the bucket rates by (le)"),
    ("the seeds' database panel rates a histogram's base name", SEED_DB_PANEL,
     "metrics", "select medianest_database_query_duration_seconds_bucket"),
    ("a misspelt metric is unknown, with a suggestion", "medianest_http_requests_totl > 0",
     "metrics", "did you mean medianest_http_requests_total?"),
    ("an unprefixed process metric is unknown", "process_resident_memory_bytes > 1e9",
     "metrics", "unknown metric process_resident_memory_bytes"),
    ("a matcher on a label the metric does not have", 'medianest_queue_size{queue="x"} > 1',
     "labels", "label queue is not on medianest_queue_size"),
    ("grouping by a label nobody has", "sum by (jbo) (medianest_queue_size) > 1",
     "labels", "sum by (jbo)"),
    ("joining on a label one side lacks",
     "medianest_queue_size / on (queue) medianest_database_connections_active",
     "labels", "on (queue)"),
    ("rate over a gauge", "rate(medianest_queue_size[5m]) > 1", "counters", "use deriv() or delta()"),
    ("deriv over a counter", "deriv(medianest_http_requests_total[5m]) > 1", "counters",
     "use rate() or increase()"),
    ("a raw counter value", "medianest_http_requests_total > 100", "counters", "read as a raw value"),
    ("histogram_quantile after dropping le",
     "histogram_quantile(0.95, sum by (job) (rate(medianest_http_request_duration_seconds_bucket[5m])))",
     "histogram-quantile", "without an `le` label"),
    ("a quantile above 1",
     "histogram_quantile(95, sum by (le) (rate(medianest_http_request_duration_seconds_bucket[5m])))",
     "histogram-quantile", "between 0 and 1"),
    ("sides with different labels never match",
     "medianest_queue_size / medianest_database_connections_active", "vector-matching",
     "only the left side has queue_name"),
    ('an le="1" selector matches nothing on Prometheus 3',
     'rate(medianest_http_request_duration_seconds_bucket{le="1"}[5m]) > 0', "le-selector",
     'write le="1.0"'),
    ("an le bound that is not a bucket",
     'rate(medianest_http_request_duration_seconds_bucket{le="0.7"}[5m]) > 0', "le-selector",
     "not a bucket of medianest_http_request_duration_seconds"),
    ("bad PromQL", "sum(rate(medianest_http_requests_total[5m]", "syntax", "invalid PromQL"),
]


@pytest.mark.parametrize(("expr", "check", "message"), [row[1:] for row in BAD], ids=[row[0] for row in BAD])
def test_bad_expression_is_rejected_with_its_message(expr: str, check: str, message: str) -> None:
    _, findings = check_expression(expr, CATALOG)
    matching = [f for name, f in findings if name == check]
    assert matching, f"{check} did not flag {expr!r}; got {findings}"
    assert any(message in f.message for f in matching), [f.message for f in matching]
    assert any(f.severity >= Severity.WARNING for f in matching)


GOOD = [
    ("the corrected error ratio", 'sum by (job) (rate(medianest_http_requests_total{status_code=~"5.."}[5m])) '
     "/ sum by (job) (rate(medianest_http_requests_total[5m])) > 0.05"),
    ("the corrected queue comparison",
     'sum by (job, queue) (rate(medianest_background_jobs_total{status="queued"}[15m])) > '
     'sum by (job, queue) (rate(medianest_background_jobs_total{status="completed"}[15m]))'),
    ("the corrected quantile",
     "histogram_quantile(0.95, sum by (le, job) (rate(medianest_http_request_duration_seconds_bucket[5m]))) > 2"),
    ("an le selector written as Prometheus 3 stores it",
     'rate(medianest_http_request_duration_seconds_bucket{le="1.0"}[5m]) > 0'),
    ("an le selector that also matched Prometheus 2",
     'rate(medianest_http_request_duration_seconds_bucket{le=~"1(\\\\.0)?"}[5m]) > 0'),
    ("a join that copies a label", "up * on (job, instance) group_left (version) medianest_nodejs_version_info"),
    ("absent of a pinned target", 'absent(up{job="medianest-backend"})'),
]


@pytest.mark.parametrize("expr", [row[1] for row in GOOD], ids=[row[0] for row in GOOD])
def test_correct_expression_passes_every_check(expr: str) -> None:
    _, findings = check_expression(expr, CATALOG)
    assert findings == []


def test_a_job_the_stack_does_not_scrape_is_rejected() -> None:
    # The seeds' ApplicationDown selected job="medianest-app"; the scrape job is medianest-backend.
    catalog = CATALOG.with_jobs(["medianest-backend", "node-exporter"])
    _, findings = check_expression('up{job="medianest-app"} == 0', catalog)
    assert [(n, f.message) for n, f in findings] == [("labels", 'job="medianest-app" is not a scrape job of '
        'this stack (jobs: medianest-backend, node-exporter), so up{job="medianest-app"} never matches')]
    assert check_expression('up{job="medianest-backend"} == 0', catalog)[1] == []


def test_bad_tables_keep_their_size() -> None:
    # A dropped row would silently stop testing a check (Pyrra's habit).
    assert (len(BAD), len(GOOD)) == (18, 7)


def _rule_problems(*rules, name: str = "g") -> list:
    return check_groups({"test.yaml": [RuleGroup(name=name, rules=tuple(rules))]}, CATALOG)


def _good_alert(**changes) -> AlertingRule:
    rule = alert("QueueTooLong", "medianest_queue_size > 10", for_="5m", severity="warning",
                 service="business", summary="Queue too long",
                 description="{{ $labels.queue_name }} holds {{ $value }}",
                 runbook_base_url="https://runbooks.example/alerts")
    return rule.model_copy(update=changes)


RULE_CASES = [
    ("an alert name that is not CamelCase", {"alert": "queue_too_long"}, "conventions", "not CamelCase"),
    ("an unknown severity", {"labels": {"severity": "page", "service": "business"}}, "conventions",
     "must be one of critical, warning, info"),
    ("a service label routing does not know", {"labels": {"severity": "warning", "service": "biz"}},
     "conventions", "must be one of medianest"),
    ("a missing summary", {"annotations": {"description": "x {{ $value }}", "runbook_url": "https://r/x"}},
     "conventions", "missing annotation summary"),
    ("a runbook that is not a URL", {"annotations": {"summary": "s", "description": "d {{ $value }}",
     "runbook_url": "see wiki"}}, "conventions", "not an http(s) URL"),
    ("a bad for duration", {"for_": "5 minutes"}, "durations", "invalid duration '5 minutes'"),
    ("an id label kept in the output", {"expr": 'label_replace(medianest_queue_size, "user_id", "$1", '
     '"queue_name", "(.*)") > 10'}, "cardinality", "label user_id is kept"),
    ("a static label that overwrites the data's", {"labels": {"severity": "warning", "service": "business",
     "queue_name": "x"}}, "label-clash", "overwrites the queue_name label"),
    ("a scalar expression", {"expr": "scalar(sum(medianest_queue_size))"}, "result-type", "returns a scalar"),
]


@pytest.mark.parametrize(("changes", "check", "message"), [r[1:] for r in RULE_CASES],
                         ids=[r[0] for r in RULE_CASES])
def test_bad_rule_is_reported_against_its_file_group_and_name(changes, check, message) -> None:
    rule = _good_alert(**changes)
    problems = [p for p in _rule_problems(rule) if p.check == check]
    assert problems, f"{check} found nothing"
    assert any(message in p.message for p in problems), [p.message for p in problems]
    assert all(p.source == "test.yaml group g" and p.subject == f"alert {rule.alert}" for p in problems)


def test_the_good_alert_fixture_has_no_problem() -> None:
    assert _rule_problems(_good_alert()) == []


def test_recording_rule_names_follow_level_metric_operations() -> None:
    problems = _rule_problems(RecordingRule(record="queue_total", expr="sum(medianest_queue_size)"))
    assert [p.check for p in problems] == ["conventions"]
    assert "level:metric:operations" in problems[0].message


def test_duplicates_are_reported() -> None:
    rule = _good_alert()
    group = RuleGroup(name="g", rules=(rule, rule))
    problems = check_groups({"a.yaml": [group, group]}, CATALOG)
    messages = [p.message for p in problems if p.check == "duplicates"]
    assert any("group name 'g' is used twice" in m for m in messages)
    assert any("already defined in a.yaml group g" in m for m in messages)


def test_recorded_series_join_the_catalog_with_the_labels_they_keep() -> None:
    record = RecordingRule(record="job:medianest_queue_size:sum", expr="sum by (job) (medianest_queue_size)")
    reader = _good_alert(expr='job:medianest_queue_size:sum{queue_name="x"} > 10')
    problems = _rule_problems(record, reader)
    assert [p.check for p in problems] == ["labels"], problems
    assert "label queue_name is not on job:medianest_queue_size:sum" in problems[0].message


def test_every_generated_rule_passes_the_static_checks(bundle) -> None:
    problems = bundle.problems()
    assert [p.render() for p in problems if p.severity >= Severity.WARNING] == []
