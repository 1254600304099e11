"""The one metric catalog: MediaNest's instrumentation, the stack's own, and every component
module's (`COMPONENT.metrics`: what its exporter exposes)."""

from rules.catalog import Catalog
from rules.metrics import exporters, medianest, prometheus_stack
from stack.services import components

CATALOG = Catalog.of(
    medianest.METRICS, exporters.METRICS, prometheus_stack.METRICS,
    *(component.metrics for component in components()),
)
