"""Series Prometheus makes itself (scrape health, ALERTS) and the stack components' own."""

from rules.catalog import Metric, MetricType

C, G, H = MetricType.COUNTER, MetricType.GAUGE, MetricType.HISTOGRAM

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
