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
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from stack.dump import dump_yaml
from stack.services.addresses import url_port
from stack.services.common import image, resources
from stack.services.component import ComponentModule, Job
from stack.services.spec import (
    ANYWHERE,
    ConfigFile,
    Flow,
    MetricsEndpoint,
    Port,
    ServiceSpec,
    StackPods,
    http_health,
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
CONFIG_FILE = "blackbox/blackbox.yml"
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


COMPONENT = ComponentModule(
    name=NAME, settings_key="blackbox_exporter", settings=BlackboxExporterService,
    service=lambda config, files, others: service(config),
    job=Job("blackbox", "blackbox"),
    sandbox_binary="blackbox_exporter",
)
