"""The one metric catalog: MediaNest's instrumentation, the stack's own, and every component
module's (`COMPONENT.metrics`: what its exporter exposes, the exporters' included)."""

from rules.catalog import Catalog
from rules.metrics import medianest, prometheus_stack
from stack.services import components

CATALOG = Catalog.of(
    medianest.METRICS, prometheus_stack.METRICS,
    *(component.metrics for component in components()),
)
