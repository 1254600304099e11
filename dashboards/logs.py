"""Backend logs from Loki filtered by level, with trace ids linked to Jaeger (a derived field of the
Loki datasource) and recent traces of the backend."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dashboards.common import environment, timeseries
from dashboards.model import DashboardSpec, PanelKind, Row, Unit, Variable, logql, panel, traces

if TYPE_CHECKING:
    from stack.config import StackConfig

FOLDER = "logs"
LEVELS = ("error", "warn", "info", "debug")


def dashboard(config: StackConfig) -> DashboardSpec:
    stream = f'job="{config.jobs.backend}", environment="$environment"'
    return DashboardSpec(
        uid="medianest-logs-traces", title="MediaNest / Logs and traces", folder=FOLDER,
        description="Backend logs by level; a trace id in a line links to the trace in Jaeger, and a span "
                    "links back to its logs and metrics.",
        tags=("logs", "traces", "generated"),
        variables=(environment(config),
                   Variable(name="level", label="Level", kind="custom", query=",".join(LEVELS), include_all=True,
                            description="Log levels to show.")),
        rows=(
            Row(title="Logs", panels=(
                timeseries("Log lines by level", "Backend log lines per level over time.", Unit.SHORT,
                           logql(f'sum by (level) (count_over_time({{{stream}, level=~"$level"}}[$__auto]))'),
                           stacked=True, width=24, height=6),
                panel(PanelKind.LOGS, "Backend logs", "Backend log lines at the selected levels; open a line "
                      "and follow its TraceID to Jaeger.", logql(f'{{{stream}, level=~"$level"}}'),
                      width=24, height=14),
                panel(PanelKind.LOGS, "Errors", "Error lines only.", logql(f'{{{stream}, level="error"}}'),
                      width=24, height=8),
            )),
            Row(title="Traces", panels=(
                panel(PanelKind.TRACES, "Recent backend traces", "The latest traces of the backend in Jaeger; "
                      "a span links to its logs (Loki) and request metrics (Prometheus).",
                      traces(config.jobs.backend), width=16, height=10),
                panel(PanelKind.TEXT, "How the signals link", "What links to what.", width=8, height=10,
                      content="- **Logs to traces**: the Loki datasource turns `traceId` in a line into a link "
                              "to Jaeger.\n- **Traces to logs**: a span opens the backend's Loki stream filtered "
                              "by its trace id.\n- **Traces to metrics**: a span opens the request rate, error "
                              "rate and p95 latency of its endpoint.\n- **Metrics to traces**: exemplars on "
                              "Prometheus panels open their trace.\n"),
            )),
        ),
    )
