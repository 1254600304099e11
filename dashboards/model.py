"""Typed dashboard definitions and their rendering into Grafana dashboard JSON.

Definitions are small frozen pydantic models (what a panel shows); `render_dashboard` lays
them out on Grafana's 24-column grid, numbers the panels and builds the JSON through
grafana-foundation-sdk's typed schema (Grafana 12's dashboard kind, schemaVersion 42), so a
field Grafana does not know cannot be emitted.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

# The SDK prefers its v2 dashboard (Grafana's new resource API); file provisioning loads the classic
# JSON model, which is what we emit.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from grafana_foundation_sdk.builders import bargauge, gauge, logs, loki, prometheus, stat, table, text, timeseries
    from grafana_foundation_sdk.builders import common as common_builders
    from grafana_foundation_sdk.builders import dashboard as builders
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.cog.runtime import UnknownDataquery
    from grafana_foundation_sdk.models import common
    from grafana_foundation_sdk.models import dashboard as schema
    from grafana_foundation_sdk.models.prometheus import PromQueryFormat
    from grafana_foundation_sdk.models.text import TextMode
from pydantic import BaseModel, ConfigDict, Field

from dashboards.datasources import BY_UID, JAEGER, LOKI, PROMETHEUS

GRID_WIDTH = 24
UID = re.compile(r"^[a-zA-Z0-9_-]{1,40}$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PanelKind(StrEnum):
    TIMESERIES = "timeseries"
    STAT = "stat"
    GAUGE = "gauge"
    BAR_GAUGE = "bargauge"
    TABLE = "table"
    LOGS = "logs"
    TRACES = "traces"
    TEXT = "text"


# Panels that show numbers: they need a unit.
VALUE_PANELS = frozenset({PanelKind.TIMESERIES, PanelKind.STAT, PanelKind.GAUGE, PanelKind.BAR_GAUGE,
                          PanelKind.TABLE})


class Unit(StrEnum):
    """Grafana unit ids we use (grafana/packages/grafana-data valueFormats)."""

    REQUESTS_PER_SECOND = "reqps"
    OPS_PER_SECOND = "ops"
    SECONDS = "s"
    PERCENT_UNIT = "percentunit"  # 0..1
    BYTES = "bytes"
    BYTES_PER_SECOND = "Bps"
    SHORT = "short"
    NONE = "none"
    TIMES = "suffix:x"  # burn-rate factors
    DAYS = "d"
    DATE_FROM_NOW = "dateTimeFromNow"
    UP_DOWN = "bool_yes_no"


class Language(StrEnum):
    PROMQL = "promql"
    LOGQL = "logql"
    TRACES = "traces"


class Query(_Frozen):
    expr: str
    language: Language = Language.PROMQL
    legend: str = ""
    instant: bool = False
    # Show exemplars (sampled requests with their trace id: a click opens the trace in Jaeger).
    exemplar: bool = False
    # The datasource uid; None: the language's provisioned datasource.
    datasource: str | None = None

    @property
    def datasource_uid(self) -> str:
        if self.datasource is not None:
            return self.datasource
        return {Language.PROMQL: PROMETHEUS, Language.LOGQL: LOKI, Language.TRACES: JAEGER}[self.language].uid


def prom(expr: str, legend: str = "", instant: bool = False, exemplar: bool = False) -> Query:
    return Query(expr=expr, legend=legend, instant=instant, exemplar=exemplar)


def logql(expr: str) -> Query:
    return Query(expr=expr, language=Language.LOGQL)


def traces(service: str) -> Query:
    """A Jaeger trace search for one service."""
    return Query(expr=service, language=Language.TRACES)


class Threshold(_Frozen):
    value: float | None  # None: the base step
    color: str


def steps(base: str, *points: tuple[float, str]) -> tuple[Threshold, ...]:
    """`steps("green", (0.8, "orange"), (0.9, "red"))`: a base colour and where it changes."""
    return (Threshold(value=None, color=base), *(Threshold(value=v, color=c) for v, c in points))


class Link(_Frozen):
    title: str
    url: str


class Panel(_Frozen):
    kind: PanelKind
    title: Annotated[str, Field(min_length=1)]
    description: str
    unit: Unit | None = None
    queries: tuple[Query, ...] = ()
    thresholds: tuple[Threshold, ...] = ()
    min: float | None = None
    max: float | None = None
    # Alerts this panel watches: each gets a link to its runbook.
    alerts: tuple[str, ...] = ()
    links: tuple[Link, ...] = ()
    width: Annotated[int, Field(ge=1, le=GRID_WIDTH)] = 12
    height: Annotated[int, Field(ge=1)] = 8
    content: str = ""  # markdown, for text panels
    stacked: bool = False
    no_value: str | None = None


def panel(kind: PanelKind, title: str, description: str, *queries: Query, **fields: Any) -> Panel:
    return Panel(kind=kind, title=title, description=description, queries=queries, **fields)


class Row(_Frozen):
    title: str
    panels: tuple[Panel, ...]


class Variable(_Frozen):
    """A template variable: `query` (label_values(...) on Prometheus) or `custom` (fixed values)."""

    name: Annotated[str, Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")]
    label: str
    kind: Literal["query", "custom"] = "query"
    query: str
    include_all: bool = False
    description: str = ""


class DashboardSpec(_Frozen):
    uid: str
    title: str
    folder: str  # provisioning folder, one per area
    description: str
    tags: tuple[str, ...] = ()
    variables: tuple[Variable, ...] = ()
    rows: tuple[Row, ...]
    links: tuple[Link, ...] = ()
    refresh: str = "1m"
    time_from: str = "now-6h"


def _ref(uid: str) -> common.DataSourceRef:
    source = BY_UID.get(uid)
    return common.DataSourceRef(type_val=source.type if source else None, uid=uid)


def _target(query: Query, ref_id: str) -> Any:
    ref = _ref(query.datasource_uid)
    if query.language is Language.PROMQL:
        target = prometheus.Dataquery().expr(query.expr).ref_id(ref_id).datasource(ref)
        target = target.instant() if query.instant else target.range()
        if query.legend:
            target = target.legend_format(query.legend)
        if query.exemplar:
            target = target.exemplar(True)
        if query.instant:
            target = target.format(PromQueryFormat.TABLE)
        return target
    if query.language is Language.LOGQL:
        return loki.Dataquery().expr(query.expr).ref_id(ref_id).datasource(ref).query_type("range")
    # The SDK has no Jaeger query model: Grafana's jaeger datasource reads these fields.
    return UnknownDataquery({"refId": ref_id, "datasource": ref.to_json(), "queryType": "search",
                             "service": query.expr, "limit": 20})


def _build(panel_: Panel, runbook_base_url: str) -> Any:
    builder: Any = {
        PanelKind.TIMESERIES: timeseries.Panel, PanelKind.STAT: stat.Panel, PanelKind.GAUGE: gauge.Panel,
        PanelKind.BAR_GAUGE: bargauge.Panel, PanelKind.TABLE: table.Panel, PanelKind.LOGS: logs.Panel,
        PanelKind.TEXT: text.Panel,
    }.get(panel_.kind)
    if builder is None:  # traces: no builder in the SDK; the schema's generic panel
        return None
    b = builder().title(panel_.title).description(panel_.description)
    if panel_.queries:
        b = b.datasource(_ref(panel_.queries[0].datasource_uid))
        b = b.targets([_target(q, chr(ord("A") + i)) for i, q in enumerate(panel_.queries)])
    if panel_.unit is not None:
        b = b.unit(str(panel_.unit))
    if panel_.thresholds:
        b = b.thresholds(builders.ThresholdsConfig().mode(schema.ThresholdsMode.ABSOLUTE).steps(
            [schema.Threshold(value=t.value, color=t.color) for t in panel_.thresholds]))
    if panel_.min is not None:
        b = b.min(panel_.min)
    if panel_.max is not None:
        b = b.max(panel_.max)
    if panel_.no_value is not None:
        b = b.no_value(panel_.no_value)
    links = _links(panel_, runbook_base_url)
    if links:
        b = b.links(links)
    if panel_.kind is PanelKind.TIMESERIES:
        b = b.legend(common_builders.VizLegendOptions().show_legend(True)
                     .display_mode(common.LegendDisplayMode.LIST).placement(common.LegendPlacement.BOTTOM))
        b = b.fill_opacity(10).line_width(1)
        if panel_.stacked:
            b = b.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
        if panel_.thresholds:
            b = b.thresholds_style(common_builders.GraphThresholdsStyleConfig()
                                   .mode(common.GraphThresholdsStyleMode.LINE))
    elif panel_.kind in (PanelKind.STAT, PanelKind.GAUGE, PanelKind.BAR_GAUGE):
        b = b.reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    elif panel_.kind is PanelKind.LOGS:
        b = (b.show_time(True).enable_log_details(True).wrap_log_message(True)
             .sort_order(common.LogsSortOrder.DESCENDING))
    elif panel_.kind is PanelKind.TEXT:
        b = b.mode(TextMode.MARKDOWN).content(panel_.content)
    return b


def _links(panel_: Panel, runbook_base_url: str) -> list[Any]:
    links = [(f"Runbook: {name}", runbook_url(runbook_base_url, name)) for name in panel_.alerts]
    links += [(link.title, link.url) for link in panel_.links]
    return [builders.DashboardLink(title).url(url).target_blank(True) for title, url in links]


def runbook_url(base: str, alert: str) -> str:
    """The same URL as the alert's runbook_url annotation (rules.model.alert)."""
    return f"{base.rstrip('/')}/{alert}"


def _generic(panel_: Panel, runbook_base_url: str, panel_id: int, pos: schema.GridPos) -> schema.Panel:
    targets = [_target(q, chr(ord("A") + i)) for i, q in enumerate(panel_.queries)]
    return schema.Panel(
        type_val=str(panel_.kind), id_val=panel_id, title=panel_.title, description=panel_.description,
        datasource=_ref(panel_.queries[0].datasource_uid) if panel_.queries else None,
        targets=[t.build() if hasattr(t, "build") else t for t in targets], grid_pos=pos,
        links=[link.build() for link in _links(panel_, runbook_base_url)] or None,
        options={}, field_config=schema.FieldConfigSource(defaults=schema.FieldConfig(), overrides=[]),
    )


def layout(rows: tuple[Row, ...]) -> list[tuple[int, str, Row | Panel, schema.GridPos]]:
    """(id, kind, item, position) for every row and panel: rows span the grid, panels flow left to
    right and wrap; ids count up in reading order, so they are stable while the definition is."""
    placed: list[tuple[int, str, Row | Panel, schema.GridPos]] = []
    y, next_id = 0, 1
    for row in rows:
        placed.append((next_id, "row", row, schema.GridPos(h=1, w=GRID_WIDTH, x=0, y=y)))
        next_id += 1
        y += 1
        x, line_height = 0, 0
        for item in row.panels:
            if x + item.width > GRID_WIDTH:
                x, y, line_height = 0, y + line_height, 0
            placed.append((next_id, "panel", item, schema.GridPos(h=item.height, w=item.width, x=x, y=y)))
            next_id += 1
            x += item.width
            line_height = max(line_height, item.height)
        y += line_height
    return placed


def _variable(variable: Variable) -> Any:
    if variable.kind == "custom":
        v = builders.CustomVariable(variable.name).values(variable.query)
        if variable.include_all:
            v = v.include_all(True).multi(True).all_value(".*").current(
                schema.VariableOption(selected=True, text="All", value="$__all"))
        else:
            first = variable.query.split(",")[0]
            v = v.current(schema.VariableOption(selected=True, text=first, value=first))
    else:
        v = (builders.QueryVariable(variable.name).query(variable.query).datasource(_ref(PROMETHEUS.uid))
             .refresh(schema.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(schema.VariableSort.ALPHABETICAL_ASC))
        if variable.include_all:
            v = v.include_all(True).multi(True).all_value(".*").current(
                schema.VariableOption(selected=True, text="All", value="$__all"))
    v = v.label(variable.label)
    if variable.description:
        v = v.description(variable.description)
    return v


def render_dashboard(spec: DashboardSpec, runbook_base_url: str) -> dict[str, Any]:
    """The dashboard's JSON model, as Grafana 12 and 13 load it."""
    b = (builders.Dashboard(spec.title).uid(spec.uid).description(spec.description).tags(list(spec.tags))
         .refresh(spec.refresh).time(spec.time_from, "now").timezone("browser").readonly()
         .tooltip(schema.DashboardCursorSync.CROSSHAIR))
    if spec.variables:
        b = b.variables([_variable(v) for v in spec.variables])
    if spec.links:
        b = b.links([builders.DashboardLink(link.title).type(schema.DashboardLinkType.LINK).url(link.url)
                     .target_blank(True) for link in spec.links])
    built = b.build()
    built.panels = []
    for panel_id, kind, item, pos in layout(spec.rows):
        if kind == "row":
            built.panels.append(schema.RowPanel(title=item.title, id_val=panel_id, grid_pos=pos, collapsed=False,
                                                panels=[]))
            continue
        assert isinstance(item, Panel)
        builder = _build(item, runbook_base_url)
        if builder is None:
            built.panels.append(_generic(item, runbook_base_url, panel_id, pos))
        else:
            built.panels.append(builder.id(panel_id).grid_pos(pos).build())
    return encode(built)


def encode(model: Any) -> dict[str, Any]:
    return json.loads(json.dumps(model, cls=JSONEncoder))


def parse_dashboard(data: dict[str, Any]) -> schema.Dashboard:
    """The JSON read back into the SDK's typed schema (the round-trip test's other half)."""
    return schema.Dashboard.from_json(data)


@dataclass(frozen=True)
class GeneratedDashboard:
    """A rendered dashboard and the provisioning folder it goes in."""

    folder: str
    data: dict[str, Any]

    @property
    def uid(self) -> str:
        return str(self.data.get("uid", ""))

    @property
    def title(self) -> str:
        return str(self.data.get("title", ""))


def generate(spec: DashboardSpec, runbook_base_url: str) -> GeneratedDashboard:
    return GeneratedDashboard(spec.folder, render_dashboard(spec, runbook_base_url))
