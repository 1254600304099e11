from rules.catalog import Metric, MetricType
METRICS: tuple[Metric, ...] = ()
