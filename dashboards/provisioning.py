"""Grafana provisioning: datasources (with fixed uids and their correlations), one dashboard
provider per folder, and Grafana's own security settings. Pure data; stack/bundle.py dumps it."""

from __future__ import annotations

import configparser
import io
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from dashboards.datasources import ALERTMANAGER, JAEGER, LOKI, PROMETHEUS, Datasource

if TYPE_CHECKING:
    from stack.config import StackConfig

# Where the dashboard JSON is mounted in the Grafana container, one directory per folder.
DASHBOARDS_DIR = "/etc/grafana/dashboards"
PROVISIONING_DIR = "/etc/grafana/provisioning"
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


def unescaped_dollars(text: str) -> list[str]:
    """Lines of a provisioning file with a lone `$` (Grafana would expand it as a variable)."""
    lines = []
    for line in text.splitlines():
        if UNESCAPED.search(line.replace("$$", "")):
            lines.append(line.strip())
    return lines


def _source(source: Datasource, url: str, json_data: dict[str, Any], default: bool = False) -> dict[str, Any]:
    return {"name": source.name, "type": source.type, "uid": source.uid, "access": "proxy", "url": url,
            "isDefault": default, "editable": False, "jsonData": json_data}


def datasources(config: StackConfig) -> dict[str, Any]:
    urls = config.grafana.endpoints
    return escape({"apiVersion": 1, "datasources": [
        _source(PROMETHEUS, urls.prometheus, {
            "httpMethod": "POST",
            "prometheusType": "Prometheus",
            # Exemplars carry the trace id of a sampled request: a click opens the trace.
            "exemplarTraceIdDestinations": [{"name": "trace_id", "datasourceUid": JAEGER.uid}],
        }, default=True),
        _source(LOKI, urls.loki, {
            "maxLines": 1000,
            "derivedFields": [{
                "name": "TraceID", "matcherType": "regex", "matcherRegex": TRACE_ID_IN_LINE,
                "datasourceUid": JAEGER.uid, "url": "${__value.raw}", "urlDisplayLabel": "Open trace in Jaeger",
            }],
        }),
        _source(JAEGER, urls.jaeger, {
            "tracesToLogsV2": {
                "datasourceUid": LOKI.uid, "spanStartTimeShift": "-5m", "spanEndTimeShift": "5m",
                "filterByTraceID": True, "filterBySpanID": False,
                "tags": [{"key": "service.name", "value": "service"}],
            },
            "tracesToMetrics": {
                "datasourceUid": PROMETHEUS.uid, "spanStartTimeShift": "-5m", "spanEndTimeShift": "5m",
                "tags": [{"key": "http.route", "value": "endpoint"}],
                "queries": list(traces_to_metrics_queries(config)),
            },
            "nodeGraph": {"enabled": True},
        }),
        _source(ALERTMANAGER, urls.alertmanager, {"implementation": "prometheus",
                                                   "handleGrafanaManagedAlerts": False}),
    ]})


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


def settings(config: StackConfig) -> dict[str, dict[str, str]]:
    """grafana.ini: no sign-up, no anonymous access, no admin password (it comes from a file)."""
    secure = config.grafana.cookie_secure
    return {
        "analytics": {"check_for_updates": "false", "reporting_enabled": "false"},
        "auth.anonymous": {"enabled": "false"},
        "paths": {"provisioning": PROVISIONING_DIR},
        "security": {
            "admin_user": "admin",
            "allow_embedding": "false",
            "cookie_samesite": "strict" if secure else "lax",
            "cookie_secure": str(secure).lower(),
            "disable_gravatar": "true",
            "strict_transport_security": str(secure).lower(),
        },
        "server": {"root_url": config.grafana.root_url},
        "snapshots": {"external_enabled": "false"},
        "users": {"allow_org_create": "false", "allow_sign_up": "false"},
    }


def render_ini(sections: dict[str, dict[str, str]]) -> str:
    parser = configparser.ConfigParser(interpolation=None)
    for section in sorted(sections):
        parser[section] = dict(sorted(sections[section].items()))
    out = io.StringIO()
    parser.write(out)
    return out.getvalue().rstrip("\n") + "\n"


def environment(config: StackConfig) -> dict[str, str]:
    """The container's environment: the admin password is read from a mounted secret file; with an
    external database (services.grafana.database), where it is, its password read from a file too."""
    env = {
        "GF_PATHS_PROVISIONING": PROVISIONING_DIR,
        # Logs to stdout only: the root filesystem is read-only.
        "GF_LOG_MODE": "console",
        "GF_SECURITY_ADMIN_PASSWORD__FILE": config.grafana.admin_password_file,
    }
    database = config.services.grafana.database
    if database is not None:
        env |= {
            "GF_DATABASE_TYPE": database.type,
            "GF_DATABASE_HOST": database.host,
            "GF_DATABASE_NAME": database.name,
            "GF_DATABASE_USER": database.user,
            "GF_DATABASE_SSL_MODE": database.ssl_mode,
            # The image's entrypoint sets GF_DATABASE_PASSWORD from this file's content.
            "GF_DATABASE_PASSWORD__FILE": database.password_file,
            # No data volume then (the state is in the database): Grafana's scratch files (caches,
            # search index, renders) go to the writable /tmp, not the image's read-only /var/lib/grafana.
            "GF_PATHS_DATA": "/tmp",
        }
    return env
