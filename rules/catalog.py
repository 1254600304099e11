"""The metric catalog: every series a rule or dashboard may read, with its type and labels.

A rule that names a metric or label the catalog does not declare is a build error, so a
typo cannot become an alert that silently never fires.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum

from rules.conventions import TARGET_LABELS


class MetricType(StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"
    SUMMARY = "summary"


@dataclass(frozen=True)
class Metric:
    """One metric family as its exporter exposes it.

    `labels` are the exporter's own labels; the scrape adds `job` and `instance` unless
    `target_labels` says otherwise (recorded series carry what their rule keeps).
    """

    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()
    target_labels: tuple[str, ...] = TARGET_LABELS
    # Synthetic series such as ALERTS carry the labels of whatever produced them.
    open_labels: bool = False

    def __post_init__(self) -> None:
        if self.type is MetricType.HISTOGRAM and not self.buckets:
            raise ValueError(f"histogram {self.name} needs its buckets")
        if self.buckets and tuple(sorted(self.buckets)) != self.buckets:
            raise ValueError(f"histogram {self.name}: buckets must be increasing")


# Series a histogram or summary family exposes, and whether each one is a counter.
_SUFFIXES = {
    MetricType.HISTOGRAM: {"_bucket": ("le",), "_sum": (), "_count": ()},
    MetricType.SUMMARY: {"": ("quantile",), "_sum": (), "_count": ()},
}


@dataclass(frozen=True)
class Series:
    """A concrete series name resolved against the catalog."""

    name: str
    metric: Metric
    labels: frozenset[str]
    is_counter: bool
    # True for a histogram's base name, which no exporter exposes.
    is_histogram_base: bool = False

    @property
    def open_labels(self) -> bool:
        return self.metric.open_labels


@dataclass
class Catalog:
    metrics: dict[str, Metric] = field(default_factory=dict)
    _series: dict[str, Series] = field(default_factory=dict, repr=False)
    # The stack's scrape job names; a selector on any other job matches nothing. Empty: unknown.
    jobs: frozenset[str] = frozenset()

    @classmethod
    def of(cls, *groups: Iterable[Metric]) -> Catalog:
        catalog = cls()
        for group in groups:
            for metric in group:
                catalog.add(metric)
        return catalog

    def add(self, metric: Metric) -> None:
        known = self.metrics.get(metric.name)
        if known is not None:
            # One metric from two exporters of the same code (cAdvisor alone on Docker, inside the
            # kubelet on Kubernetes, which adds pod labels): one family, the labels of both.
            if (known.type, known.buckets, known.target_labels) != (metric.type, metric.buckets, metric.target_labels):
                raise ValueError(f"metric {metric.name} is declared twice in the catalog, differently")
            metric = replace(known, labels=known.labels + tuple(x for x in metric.labels if x not in known.labels))
        self.metrics[metric.name] = metric
        base = frozenset(metric.labels) | frozenset(metric.target_labels)
        suffixes = _SUFFIXES.get(metric.type)
        if suffixes is None:
            self._series[metric.name] = Series(
                metric.name, metric, base, is_counter=metric.type is MetricType.COUNTER
            )
            return
        for suffix, extra in suffixes.items():
            name = metric.name + suffix
            self._series[name] = Series(name, metric, base | frozenset(extra), is_counter=suffix != "")
        if metric.type is MetricType.HISTOGRAM:
            self._series[metric.name] = Series(
                metric.name, metric, base, is_counter=False, is_histogram_base=True
            )

    def series(self, name: str) -> Series | None:
        return self._series.get(name)

    def with_metrics(self, extra: Iterable[Metric]) -> Catalog:
        """A copy that also knows `extra` (the series our recording rules produce)."""
        copy = Catalog(dict(self.metrics), dict(self._series), self.jobs)
        for metric in extra:
            copy.add(metric)
        return copy

    def with_jobs(self, jobs: Iterable[str]) -> Catalog:
        return Catalog(self.metrics, self._series, frozenset(jobs))

    def __len__(self) -> int:
        return len(self.metrics)
