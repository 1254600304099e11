"""Series Prometheus makes for every target and rule, whatever it scrapes (scrape health, ALERTS).

Each component's own metrics are in its module (`COMPONENT.metrics`). Those of the binaries we
ship are checked against them by tests/e2e/test_catalog_on_shipped_binaries.py, which runs each one
and reads its /metrics.
"""

from rules.catalog import Metric, MetricType

G = MetricType.GAUGE

SCRAPE = (
    Metric("up", G, "1 if the target was scraped successfully, 0 otherwise"),
    Metric("scrape_duration_seconds", G, "Duration of the scrape"),
    Metric("scrape_samples_scraped", G, "Samples the target exposed"),
    Metric("scrape_series_added", G, "Approximate number of new series in this scrape"),
    Metric("scrape_samples_post_metric_relabeling", G, "Samples remaining after relabeling"),
)

RULES = (
    Metric("ALERTS", G, "Alerts pending or firing", ("alertname", "alertstate"),
           target_labels=(), open_labels=True),
    Metric("ALERTS_FOR_STATE", G, "Start time of pending alerts", ("alertname",),
           target_labels=(), open_labels=True),
)

METRICS = SCRAPE + RULES
