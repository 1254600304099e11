"""Grafana provisioning: datasources (with fixed uids and their correlations), one dashboard
provider per folder, and Grafana's own security settings. Pure data; stack/bundle.py dumps it."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from dashboards.datasources import Credentials, Datasource, Provided
from stack import services as registry

if TYPE_CHECKING:
    from stack.config import StackConfig

# Where the dashboard JSON is mounted in the Grafana container, one directory per folder.
DASHBOARDS_DIR = "/etc/grafana/dashboards"
PROVISIONING_DIR = "/etc/grafana/provisioning"
# Where Grafana's secret files are mounted.
SECRETS_DIR = "/etc/grafana/secrets/"
# Folder (directory and folder uid) -> title in Grafana.
FOLDERS = {
    "medianest": "MediaNest",
    "slo": "SLOs",
    "infrastructure": "Infrastructure",
    "stack": "Monitoring stack",
    "logs": "Logs and traces",
}
# The backend logs its trace id in the JSON line (`"traceId":"..."` or `trace_id=...`): never a label.
TRACE_ID_IN_LINE = r'(?:traceId|trace_id)"?[:=]\s*"?([0-9a-fA-F]{16,32})'


def escape(value: Any) -> Any:
    """`$` as `$$` in every string: Grafana expands environment variables in provisioning files."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {k: escape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [escape(v) for v in value]
    return value


UNESCAPED = re.compile(r"(?<!\$)\$(?!\$)")
# Grafana's own expansion of a secret file, the one `$` meant to be read by it.
FILE_REFERENCE = re.compile(r"\$__file\{" + re.escape(SECRETS_DIR) + r"[A-Za-z0-9._-]+\}")


def unescaped_dollars(text: str) -> list[str]:
    """Lines of a provisioning file with a lone `$` (Grafana would expand it as a variable)."""
    lines = []
    for line in text.splitlines():
        if UNESCAPED.search(FILE_REFERENCE.sub("", line).replace("$$", "")):
            lines.append(line.strip())
    return lines


def _source(source: Datasource, url: str, json_data: dict[str, Any], default: bool = False) -> dict[str, Any]:
    return {"name": source.name, "type": source.type, "uid": source.uid, "access": "proxy", "url": url,
            "isDefault": default, "editable": False, "jsonData": json_data}


def secret_path(secret: str) -> str:
    """Where Grafana reads a secret file (`secrets.<secret>`)."""
    return f"{SECRETS_DIR}{secret}"


def _authenticated(entry: dict[str, Any], credentials: Credentials | None) -> dict[str, Any]:
    """The datasource with Grafana's file reference to its secret (`$__file{}`, expanded by
    Grafana when it provisions: pkg/services/provisioning/values/values.go runs setting.ExpandVar
    on every value, between the `$$` it keeps literal): the only `$` of the file left unescaped."""
    if credentials is None:
        return entry
    reference = f"$__file{{{secret_path(credentials.secret)}}}"
    if credentials.user is None:
        return entry | {"jsonData": entry["jsonData"] | {"httpHeaderName1": "Authorization"},
                        "secureJsonData": {"httpHeaderValue1": f"Bearer {reference}"}}
    return entry | {"basicAuth": True, "basicAuthUser": escape(credentials.user),
                    "secureJsonData": {"basicAuthPassword": reference}}


def provided_by(config: StackConfig) -> tuple[tuple[str, Provided], ...]:
    """(component name, datasource) of every datasource the deployed components provide, in the
    registry's order."""
    return tuple((c.name, p) for c in registry.deployed(config) for p in c.datasources if p.wanted(config))


def provided(config: StackConfig) -> tuple[Provided, ...]:
    """Every datasource the deployed components provide, the default first."""
    return tuple(sorted((p for _, p in provided_by(config)), key=lambda p: not p.default))


def datasources(config: StackConfig) -> dict[str, Any]:
    sources = provided(config)
    uids = frozenset(p.source.uid for p in sources)
    return {"apiVersion": 1, "datasources": [
        _authenticated(escape(_source(p.source, *p.settings(config, uids), default=p.default)), p.credentials(config))
        for p in sources]}


def traces_to_metrics_queries(config: StackConfig) -> Iterable[dict[str, str]]:
    """Queries a span links to; `$__tags` becomes the span's tags mapped to labels (endpoint)."""
    job = f'job="{config.jobs.backend}"'
    yield {"name": "Request rate",
           "query": f"sum(rate(medianest_http_requests_total{{{job}, $__tags}}[$__rate_interval]))"}
    yield {"name": "Error rate",
           "query": f'sum(rate(medianest_http_requests_total{{{job}, status_code=~"5..", $__tags}}'
                    "[$__rate_interval]))"}
    yield {"name": "p95 latency",
           "query": "histogram_quantile(0.95, sum by (le) (rate(medianest_http_request_duration_seconds_bucket"
                    f"{{{job}, $__tags}}[$__rate_interval])))"}


def dashboard_providers(folders: Iterable[str]) -> dict[str, Any]:
    return escape({"apiVersion": 1, "providers": [
        {"name": folder, "orgId": 1, "folder": FOLDERS[folder], "folderUid": folder, "type": "file",
         "disableDeletion": True, "allowUiUpdates": False, "updateIntervalSeconds": 60,
         "options": {"path": f"{DASHBOARDS_DIR}/{folder}", "foldersFromFilesStructure": False}}
        for folder in sorted(set(folders))
    ]})
