"""The catalog holds what the issue and the seeds name, typed, with histogram series derived."""

import pytest

from rules.catalog import Catalog, Metric, MetricType
from rules.metrics import CATALOG

REQUIRED = [
    "medianest_http_requests_total", "medianest_http_request_duration_seconds",
    "medianest_process_resident_memory_bytes", "medianest_nodejs_heap_size_used_bytes",
    "medianest_nodejs_eventloop_lag_seconds", "medianest_auth_attempts_total", "medianest_queue_size",
    "medianest_circuit_breaker_state", "medianest_background_jobs_total", "up",
    "node_cpu_seconds_total", "pg_up", "redis_up", "probe_success",
    "prometheus_config_last_reload_successful", "alertmanager_config_last_reload_successful",
]


@pytest.mark.parametrize("name", REQUIRED)
def test_required_metric_is_declared(name: str) -> None:
    assert name in CATALOG.metrics


def test_histogram_series_are_derived_and_the_base_name_is_marked() -> None:
    base = CATALOG.series("medianest_http_request_duration_seconds")
    bucket = CATALOG.series("medianest_http_request_duration_seconds_bucket")
    assert base.is_histogram_base and not base.is_counter
    assert bucket.is_counter and "le" in bucket.labels and {"job", "instance"} <= bucket.labels


def test_every_medianest_metric_is_prefixed() -> None:
    from rules.metrics import medianest
    assert all(m.name.startswith("medianest_") for m in medianest.METRICS)


def test_no_catalog_label_is_an_identifier() -> None:
    from rules.conventions import UNBOUNDED_LABEL
    assert [(m.name, lab) for m in CATALOG.metrics.values() for lab in m.labels if UNBOUNDED_LABEL.search(lab)] == []


def test_a_metric_declared_twice_differently_is_refused() -> None:
    with pytest.raises(ValueError, match="declared twice in the catalog, differently"):
        Catalog.of([Metric("x_total", MetricType.COUNTER, "x")], [Metric("x_total", MetricType.GAUGE, "x")])


def test_a_metric_two_exporters_expose_has_the_labels_of_both() -> None:
    # cAdvisor alone (Docker) and inside the kubelet (Kubernetes, with pod labels).
    catalog = Catalog.of([Metric("c_total", MetricType.COUNTER, "c", ("name",))],
                         [Metric("c_total", MetricType.COUNTER, "c", ("namespace", "name"))])
    assert catalog.metrics["c_total"].labels == ("name", "namespace")
    assert catalog.series("c_total").labels == {"name", "namespace", "job", "instance"}


def test_a_histogram_needs_increasing_buckets() -> None:
    with pytest.raises(ValueError, match="buckets must be increasing"):
        Metric("x_seconds", MetricType.HISTOGRAM, "x", buckets=(1, 0.5))
