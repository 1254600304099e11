"""The one metric catalog: MediaNest's instrumentation, the exporters' and the stack's own."""

from rules.catalog import Catalog
from rules.metrics import exporters, medianest, prometheus_stack

CATALOG = Catalog.of(
    medianest.METRICS, exporters.METRICS, prometheus_stack.METRICS,
)
