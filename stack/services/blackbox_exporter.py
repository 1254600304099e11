"""The blackbox exporter: probes MediaNest's health endpoints from outside (probe_success) and
reads their TLS certificates (probe_ssl_earliest_cert_expiry).

blackbox.yml is built from typed models whose field names are those of the exporter's
CONFIGURATION.md; every field used here is also known to Debian's 0.23, whose `--config.check`
judges the file (an unknown field fails it). The http prober sets probe_ssl_earliest_cert_expiry
whenever the final response came over TLS, so https targets need nothing more than a valid
certificate: one that fails verification fails the probe instead (BlackboxProbeFailed).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from dashboards.common import bar_gauge, table, timeseries
from dashboards.model import Row, Unit, prom, steps
from rules.alert_tests import fires as _fires_of
from rules.alert_tests import over, series, silent, under
from rules.catalog import Metric, MetricType
from rules.conventions import AlertSeverity, number
from rules.model import AlertingRule, alert
from rules.testing import AlertAt, Expected, RuleTest
from stack import layout, tools
from stack.dump import dump_yaml
from stack.images import Official
from stack.judges import Judge, common_version_flags, same_version
from stack.services.addresses import url_port
from stack.services.common import image, resources
from stack.services.component import ComponentModule, FileCheck, Job, SandboxWorld
from stack.services.spec import (
    ANYWHERE,
    ConfigFile,
    Flow,
    MetricsEndpoint,
    Port,
    ServiceSpec,
    StackPods,
    http_health,
    namespace_of,
    tcp,
)
from stack.settings import Component, ImageRef, Memory, _image, _probe_url

if TYPE_CHECKING:
    from stack.config import StackConfig


class BlackboxExporterService(Component):
    image: ImageRef = _image("prom/blackbox-exporter", "v0.28.0")
    memory: Memory = "64Mi"
    # MediaNest's health endpoints, probed for a 2xx (and their TLS certificates' expiry).
    targets: Annotated[tuple[Annotated[str, AfterValidator(_probe_url)], ...], Field(max_length=100)] = ()


NAME = "blackbox"
PORT = 9115
CONFIG_DIR = "/etc/blackbox_exporter"
CONFIG_FILE = layout.BLACKBOX_CONFIG
HTTP_2XX = "http_2xx"
HTTP_2XX_TLS = "http_2xx_tls"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HttpProbe(_Model):
    """`<http_probe>`."""

    # Empty: any 2xx.
    valid_status_codes: tuple[int, ...] = ()
    method: Literal["GET", "HEAD"] = "GET"
    # The exporter's default is ip6; Docker networks and most hosts here are IPv4.
    preferred_ip_protocol: Literal["ip4", "ip6"] = "ip4"
    follow_redirects: bool = True
    fail_if_not_ssl: bool = False


class Module(_Model):
    """`<module>`: only the http prober is used."""

    prober: Literal["http"] = "http"
    # Below Prometheus' scrape timeout (10s by default), so a slow target fails the probe, not the scrape.
    timeout: str = Field(default="5s", pattern=r"^[0-9]+(ms|[smhdwy])$")
    http: HttpProbe = HttpProbe()


class BlackboxConfig(_Model):
    modules: dict[str, Module]


def blackbox_config() -> BlackboxConfig:
    return BlackboxConfig(modules={
        HTTP_2XX: Module(http=HttpProbe(fail_if_not_ssl=False)),
        # An https URL redirected to plain http fails instead of silently losing its certificate check.
        HTTP_2XX_TLS: Module(http=HttpProbe(fail_if_not_ssl=True)),
    })


def render() -> str:
    return dump_yaml(blackbox_config().model_dump(mode="json", exclude_none=True, by_alias=True))


def probe_module(url: str) -> str:
    """The module Prometheus asks for when probing `url`."""
    return HTTP_2XX_TLS if url.lower().startswith("https://") else HTTP_2XX


def urls_by_module(urls: Iterable[str]) -> dict[str, list[str]]:
    """The URLs to probe grouped by their module, modules and URLs sorted."""
    grouped: dict[str, list[str]] = {}
    for url in urls:
        grouped.setdefault(probe_module(url), []).append(url)
    return {module: sorted(grouped[module]) for module in sorted(grouped)}


def flows(config: StackConfig) -> tuple[Flow, ...]:
    """What it probes: its targets, and the web ports (redirects)."""
    targets = config.services.blackbox_exporter.targets
    return (Flow(StackPods(NAME), ANYWHERE, tcp(80, 443, *(url_port(url) for url in targets))),)


def service(config: StackConfig) -> ServiceSpec:
    settings = config.services.blackbox_exporter
    generated = ConfigFile(CONFIG_FILE, f"{CONFIG_DIR}/blackbox.yml", render())
    return ServiceSpec(
        flows=flows(config),
        name=NAME,
        image=image(settings.image),
        user="65534:65534",
        resources=resources(settings),
        args=(f"--config.file={generated.path}", f"--web.listen-address=:{PORT}"),
        ports=(Port("http", PORT, host_port=settings.publish),),
        config_dir=CONFIG_DIR,
        files=(generated,),
        health=http_health(PORT, "/-/healthy"),
        metrics=MetricsEndpoint(job=config.jobs.blackbox, port=PORT, scraped=False),
    )


def scrape_jobs(config: StackConfig) -> tuple[dict[str, Any], ...]:
    """MediaNest's health endpoints through the blackbox exporter: each URL becomes the probe's
    `target` parameter and the series' `instance`; the module follows from the URL's scheme."""
    urls = config.services.blackbox_exporter.targets
    if not urls:
        return ()
    return ({
        "job_name": config.jobs.blackbox,
        "metrics_path": "/probe",
        "static_configs": [{"targets": group, "labels": {"module": module}}
                           for module, group in urls_by_module(urls).items()],
        "relabel_configs": [
            {"source_labels": ["module"], "target_label": "__param_module"},
            {"source_labels": ["__address__"], "target_label": "__param_target"},
            {"source_labels": ["__param_target"], "target_label": "instance"},
            {"target_label": "__address__", "replacement": config.addresses.get(NAME, (f"{NAME}:{PORT}",))[0]},
            {"action": "labeldrop", "regex": "module"},
        ],
    },)


# --- metrics, alerts and their tests, dashboard row --------------------------------------------

# Checked against the shipped version, built from its Go module (blackbox_exporter 0.28.0):
# tests/e2e/test_catalog_on_shipped_binaries.py runs it and reads what it exposes. First written
# from its sources and Debian's older build (0.23); nothing used here changed between the two.
# Each probe is its own scrape: `instance` is the probed URL (relabelled from __param_target).
C, G = MetricType.COUNTER, MetricType.GAUGE

METRICS = (
    Metric("probe_success", G, "Displays whether or not the probe was a success"),
    Metric("probe_duration_seconds", G, "Returns how long the probe took to complete in seconds"),
    Metric("probe_http_status_code", G, "Response HTTP status code"),
    Metric("probe_http_duration_seconds", G, "Duration of http request by phase, summed over all redirects",
           ("phase",)),
    Metric("probe_http_ssl", G, "Indicates if SSL was used for the final redirect"),
    Metric("probe_dns_lookup_time_seconds", G, "Returns the time taken for probe dns lookup in seconds"),
    Metric("probe_ssl_earliest_cert_expiry", G, "Returns earliest SSL cert expiry in unixtime"),
    Metric("probe_tls_version_info", G, "Contains the TLS version used", ("version",)),
)

CRITICAL, WARNING = AlertSeverity.CRITICAL, AlertSeverity.WARNING

# What each alert carries whatever the data, stated apart from the rules: a wrong severity,
# routing label or summary there fails the tests.
EXPECTED = {
    "BlackboxProbeFailed": Expected("critical", "probe", "A MediaNest endpoint fails its probe"),
    "TlsCertificateExpiringSoon": Expected("warning", "probe", "A TLS certificate expires soon"),
}

# A probed URL, as the tests' `instance`.
HEALTH_URL = "https://medianest.example.com/api/health"


def alerts(config: StackConfig) -> tuple[AlertingRule, ...]:
    jobs, t = config.jobs, config.thresholds
    common = {"runbook_base_url": config.runbook_base_url}
    probe = f'job="{jobs.blackbox}"'
    return (
        alert("BlackboxProbeFailed", f"probe_success{{{probe}}} == 0", for_="2m",
              severity=CRITICAL, service="probe",
              summary="A MediaNest endpoint fails its probe",
              description="{{ $labels.instance }} has failed its blackbox probe for more than "
                          "2 minutes.", **common),
        alert("TlsCertificateExpiringSoon",
              f"(probe_ssl_earliest_cert_expiry{{{probe}}} - time()) / 86400 "
              f"< {number(t.certificate_expiry_days)}",
              for_="15m", severity=WARNING, service="probe",
              summary="A TLS certificate expires soon",
              description='The TLS certificate of {{ $labels.instance }} expires in '
                          '{{ printf "%.1f" $value }} days.', **common),
    )


def _fires(at: str, alert_name: str, description: str, /, **labels: str) -> AlertAt:
    return _fires_of(EXPECTED, at, alert_name, description, **labels)


def alert_tests(config: StackConfig) -> tuple[RuleTest, ...]:
    jobs, t = config.jobs, config.thresholds
    probe = {"job": jobs.blackbox, "instance": HEALTH_URL}
    result = [
        RuleTest(
            "A failing health endpoint pages after 2 minutes, a one-probe blip does not",
            series=(series("probe_success", "1 1 0x8", **probe),
                    series("probe_success", "1 0 1x8", job=jobs.blackbox,
                           instance="https://medianest.example.com/")),
            alerts=(silent("3m", "BlackboxProbeFailed"),
                    _fires("5m", "BlackboxProbeFailed", f"{HEALTH_URL} has failed its blackbox probe "
                           "for more than 2 minutes.", **probe)),
        ),
    ]

    # promtool evaluates from the epoch: time() at 20m is 1200.
    def expiry(days_left_at_20m: float) -> str:
        return number(1200 + days_left_at_20m * 86400)

    soon = expiry(under(t.certificate_expiry_days))
    result += [
        RuleTest(
            "A certificate expiring just sooner than the threshold opens a ticket after 15 minutes",
            series=(series("probe_ssl_earliest_cert_expiry", f"{soon}x30", **probe),),
            alerts=(silent("10m", "TlsCertificateExpiringSoon"),
                    _fires("20m", "TlsCertificateExpiringSoon", f"The TLS certificate of {HEALTH_URL} "
                           f"expires in {(float(soon) - 1200) / 86400:.1f} days.", **probe)),
        ),
        RuleTest(
            "A certificate expiring just later than the threshold stays silent",
            series=(series("probe_ssl_earliest_cert_expiry",
                           f"{expiry(over(t.certificate_expiry_days))}x30", **probe),),
            alerts=(silent("20m", "TlsCertificateExpiringSoon"),),
        ),
    ]
    return tuple(result)


def dashboard_rows(config: StackConfig) -> tuple[Row, ...]:
    t = config.thresholds
    probe = f'job="{config.jobs.blackbox}"'
    return (Row(title="Blackbox probes", panels=(
        table("Probe results", "Last result of each probe: 1 success, 0 failure.", Unit.UP_DOWN,
              prom(f"probe_success{{{probe}}}", instant=True), alerts=("BlackboxProbeFailed",), width=8),
        timeseries("Probe duration", "How long each probe takes.", Unit.SECONDS,
                   prom(f"probe_duration_seconds{{{probe}}}", "{{instance}}"), width=8),
        bar_gauge("Certificate expiry", "Days until the earliest certificate of each probed URL expires.",
                  Unit.DAYS, prom(f"(probe_ssl_earliest_cert_expiry{{{probe}}} - time()) / 86400",
                                  "{{instance}}", instant=True),
                  thresholds=steps("red", (t.certificate_expiry_days, "green")),
                  alerts=("TlsCertificateExpiringSoon",), width=8),
    )),)


def operator_monitors(config: StackConfig, spec: ServiceSpec) -> tuple[tuple[str, str, dict[str, Any]], ...]:
    """MediaNest's health endpoints through this exporter, one Probe per module (a Probe has a
    single module); the operator makes each URL the probe's target and its `instance`."""
    from stack import services as registry  # the registry imports this module

    prober = f"{NAME}.{namespace_of(config, spec)}.svc:{PORT}"
    interval = registry.scraper_settings(config).scrape_interval
    # Object names are DNS subdomains: no underscore (http_2xx).
    return tuple(("Probe", f"{NAME}-{module.replace('_', '-')}", {
        "jobName": config.jobs.blackbox,
        "prober": {"url": prober, "path": "/probe"},
        "module": module,
        "interval": interval,
        "targets": {"staticConfig": {"static": sorted(set(group))}},
    }) for module, group in urls_by_module(config.services.blackbox_exporter.targets).items())


def sandbox_settings(world: SandboxWorld) -> dict[str, Any]:
    return {"targets": [f"http://{world.simulator}/api/health"]}


JUDGE = Judge("blackbox_exporter", "github.com/prometheus/blackbox_exporter", ("blackbox_exporter",),
              "prom/blackbox-exporter", same_version, common_version_flags)
# blackbox_exporter@v0.28.0/Dockerfile: EXPOSE 9115, no USER (the spec runs it as nobody).
LOCAL_IMAGE = Official({"/bin/blackbox_exporter": "blackbox_exporter"}, ("/bin/blackbox_exporter",),
                       ("9115/tcp",), directories={"/etc/blackbox_exporter": (0, 0, 0o755)})


def check_config(config: StackConfig, path: Path) -> tuple[bool, str]:
    """The blackbox exporter's own validation of its config file (exit 1 on an unknown field)."""
    return tools.run(["blackbox_exporter", "--config.check", f"--config.file={path}"]).verdict


COMPONENT = ComponentModule(
    file_checks=(FileCheck(CONFIG_FILE, "blackbox_exporter --config.check", check_config),),
    judge=JUDGE, local_image=LOCAL_IMAGE,
    sandbox_settings=sandbox_settings,
    operator_monitors=operator_monitors,
    name=NAME, settings_key="blackbox_exporter", settings=BlackboxExporterService,
    service=lambda config, files, others: service(config),
    job=Job("blackbox", "blackbox"),
    scrape_jobs=scrape_jobs,
    metrics=METRICS, alerts=alerts, alert_tests=alert_tests, expected=EXPECTED,
    dashboard_rows=dashboard_rows,
    sandbox_binary="blackbox_exporter",
)
