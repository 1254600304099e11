"""The four exporters: each one's port, health check and metrics endpoint agree; host paths and
secrets are mounted the way the exporter reads them; blackbox.yml is judged by Debian's
blackbox exporter (0.23), and its modules behave as the alerts expect on real probes."""

from __future__ import annotations

import json
import re
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest
from pydantic import ValidationError
from service_helpers import with_settings

from stack import tools
from stack.config import StackConfig, memory_bytes
from stack.dump import HEADER
from stack.services import blackbox_exporter, node_exporter, postgres_exporter, redis_exporter
from stack.services.spec import HostMount, ServiceSpec

# module, name, settings attribute in config.services, job attribute in config.jobs
EXPORTERS = [
    (node_exporter, "node-exporter", "node_exporter", "node"),
    (postgres_exporter, "postgres-exporter", "postgres_exporter", "postgres"),
    (redis_exporter, "redis-exporter", "redis_exporter", "redis"),
    (blackbox_exporter, "blackbox", "blackbox_exporter", "blackbox"),
]
IDS = [name for _, name, _, _ in EXPORTERS]


@pytest.mark.parametrize(("module", "name", "component", "job"), EXPORTERS, ids=IDS)
def test_port_health_and_metrics_agree(dev_config: StackConfig, module: ModuleType, name: str,
                                       component: str, job: str) -> None:
    spec: ServiceSpec = module.service(dev_config)
    assert spec.name == name
    assert [p.container_port for p in spec.ports] == [module.PORT]
    assert f"--web.listen-address=:{module.PORT}" in spec.args
    assert spec.health is not None and spec.health.port == module.PORT
    assert spec.health.command[-1] == f"http://127.0.0.1:{module.PORT}{spec.health.path}"
    assert spec.metrics is not None
    assert (spec.metrics.port, spec.metrics.path, spec.metrics.job) == (module.PORT, "/metrics",
                                                                         getattr(dev_config.jobs, job))
    assert spec.user.split(":")[0] not in ("0", "root")


@pytest.mark.parametrize(("module", "name", "component", "job"), EXPORTERS, ids=IDS)
def test_image_resources_and_published_port_come_from_config(dev_config: StackConfig, module: ModuleType,
                                                             name: str, component: str, job: str) -> None:
    config = with_settings(dev_config, component, publish=19000, cpus=0.5, memory="96Mi")
    settings = getattr(config.services, component)
    spec: ServiceSpec = module.service(config)
    assert (spec.image.repository, spec.image.tag) == (settings.image.repository, settings.image.tag)
    assert (spec.resources.memory_limit_bytes, spec.resources.cpu_limit) == (memory_bytes("96Mi"), 0.5)
    assert spec.ports[0].host_port == 19000
    assert module.service(dev_config).ports[0].host_port == getattr(dev_config.services, component).publish


def test_node_exporter_reads_the_host_through_read_only_mounts(dev_config: StackConfig) -> None:
    spec = node_exporter.service(dev_config)
    mounts = {m.host_path: m for m in spec.host_mounts}
    assert set(mounts) == {"/proc", "/sys", "/"}
    assert all(isinstance(m, HostMount) for m in spec.host_mounts)  # HostMount: read-only by definition
    assert spec.host_pid
    for flag, host_path in (("procfs", "/proc"), ("sysfs", "/sys"), ("rootfs", "/")):
        assert f"--path.{flag}={mounts[host_path].path}" in spec.args
    assert not spec.files and not spec.secrets


EXCLUDED = ["/proc", "/sys/fs/cgroup", "/dev/shm", "/run/credentials/systemd-sysctl.service",
            "/var/lib/docker/overlay2/0123abcd/merged", "/var/lib/containers/storage/overlay/x",
            "/var/lib/kubelet/pods/uid/volumes/kubernetes.io~projected/token",
            "/run/containerd/io.containerd.runtime.v2.task/k8s.io/abc/rootfs"]
KEPT = ["/", "/home", "/boot/efi", "/var/lib/docker", "/srv/media", "/devices", "/system"]


@pytest.mark.parametrize("mountpoint", EXCLUDED + KEPT)
def test_node_exporter_skips_pseudo_and_container_filesystems(dev_config: StackConfig, mountpoint: str) -> None:
    flag = "--collector.filesystem.mount-points-exclude="
    [regex] = [a.removeprefix(flag) for a in node_exporter.service(dev_config).args if a.startswith(flag)]
    # Go's RE2 and Python agree on this syntax (groups, alternation, anchors).
    assert bool(re.search(regex, mountpoint)) == (mountpoint in EXCLUDED)


def test_postgres_password_is_a_mounted_file(dev_config: StackConfig) -> None:
    spec = postgres_exporter.service(with_settings(dev_config, "postgres_exporter", password=True))
    [secret] = spec.secrets
    settings = dev_config.services.postgres_exporter
    assert spec.env == {"DATA_SOURCE_URI": settings.data_source_uri, "DATA_SOURCE_USER": settings.user,
                        "DATA_SOURCE_PASS_FILE": secret.path}
    assert secret.name == "postgres-password" and secret.path.startswith(spec.config_dir + "/")
    assert not secret.generated  # PostgreSQL's password is set by whoever runs PostgreSQL


def test_postgres_without_password_mounts_nothing(dev_config: StackConfig) -> None:
    spec = postgres_exporter.service(with_settings(dev_config, "postgres_exporter", password=False))
    assert spec.secrets == ()
    assert set(spec.env) == {"DATA_SOURCE_URI", "DATA_SOURCE_USER"}


def test_redis_password_is_a_mounted_file(dev_config: StackConfig) -> None:
    spec = redis_exporter.service(with_settings(dev_config, "redis_exporter", password=True))
    [secret] = spec.secrets
    assert spec.env == {"REDIS_ADDR": dev_config.services.redis_exporter.address, "REDIS_PASSWORD_FILE": secret.path}
    assert secret.name == "redis-password" and secret.path.startswith(spec.config_dir + "/")


def test_redis_without_password_mounts_nothing(dev_config: StackConfig) -> None:
    spec = redis_exporter.service(with_settings(dev_config, "redis_exporter", password=False))
    assert spec.secrets == ()
    assert spec.env == {"REDIS_ADDR": dev_config.services.redis_exporter.address}


def test_redis_password_file_maps_the_address_to_the_password() -> None:
    content = redis_exporter.password_file("redis://cache:6379", 'p"w\\d')
    assert json.loads(content) == {"redis://cache:6379": 'p"w\\d'}


@pytest.mark.parametrize(("url", "module"), [
    ("https://medianest.example.com/api/health", "http_2xx_tls"),
    ("HTTPS://medianest.example.com/", "http_2xx_tls"),
    ("http://host.docker.internal:3001/api/health", "http_2xx"),
])
def test_probe_module_follows_the_scheme(url: str, module: str) -> None:
    assert blackbox_exporter.probe_module(url) == module


def test_blackbox_ships_its_generated_config(dev_config: StackConfig) -> None:
    spec = blackbox_exporter.service(dev_config)
    [file] = spec.files
    assert (file.source, file.path) == ("blackbox/blackbox.yml", "/etc/blackbox_exporter/blackbox.yml")
    assert f"--config.file={file.path}" in spec.args
    assert file.content == blackbox_exporter.render() and file.content.startswith(HEADER)
    modules = blackbox_exporter.blackbox_config().modules
    assert {name: m.http.fail_if_not_ssl for name, m in modules.items()} == {"http_2xx": False,
                                                                            "http_2xx_tls": True}


def test_blackbox_models_refuse_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="folow_redirects"):
        blackbox_exporter.HttpProbe(folow_redirects=True)  # type: ignore[call-arg]


def _write(tmp_path: Path, content: str) -> Path:
    path = tmp_path / "blackbox.yml"
    path.write_text(content)
    return path


def test_generated_blackbox_config_passes_the_exporters_check(dev_config: StackConfig, tmp_path: Path) -> None:
    [file] = blackbox_exporter.service(dev_config).files
    ok, output = blackbox_exporter.check_config(dev_config, _write(tmp_path, file.content))
    assert ok, output


# 0.23's check does not validate the prober's name (an unknown one fails only when probing), but
# it refuses unknown fields (a misspelling, or a field newer than 0.23) and bad values.
@pytest.mark.parametrize(("old", "new"), [
    ("follow_redirects:", "folow_redirects:"),
    ("timeout: 5s", "timeout: 5 seconds"),
    ("valid_status_codes: []", "valid_status_codes: [ok]"),
])
def test_a_broken_blackbox_config_fails_the_check(dev_config: StackConfig, tmp_path: Path, old: str,
                                                  new: str) -> None:
    content = blackbox_exporter.render()
    assert old in content
    ok, output = blackbox_exporter.check_config(dev_config, _write(tmp_path, content.replace(old, new, 1)))
    assert not ok
    assert "Error loading config" in output


# Real probes: Debian's blackbox exporter, with the generated config, against loopback servers.
WAIT_SECONDS = 15


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


def _serve(server: ThreadingHTTPServer) -> Iterator[str]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost, valid 30 days."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


@pytest.fixture(scope="module")
def http_site() -> Iterator[str]:
    yield from _serve(ThreadingHTTPServer(("127.0.0.1", 0), _Ok))


@pytest.fixture(scope="module")
def https_site(certificate: tuple[Path, Path]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    yield from _serve(server)


@pytest.fixture(scope="module")
def blackbox(tmp_path_factory: pytest.TempPathFactory, certificate: tuple[Path, Path]) -> Iterator[str]:
    """The exporter on loopback, trusting the test certificate (Go reads SSL_CERT_FILE)."""
    config = _write(tmp_path_factory.mktemp("blackbox"), blackbox_exporter.render())
    address = f"127.0.0.1:{_free_port()}"
    command = [tools.require("blackbox_exporter"), f"--config.file={config}",
               f"--web.listen-address={address}"]
    process = subprocess.Popen(command, env={"SSL_CERT_FILE": str(certificate[0])},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            try:
                urllib.request.urlopen(f"http://{address}/-/healthy", timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"blackbox exporter did not start: {process.stderr.read()!r}") from None
                time.sleep(0.1)
        yield address
    finally:
        process.terminate()
        process.wait(timeout=WAIT_SECONDS)


def _probe(blackbox: str, target: str, module: str | None = None) -> dict[str, float]:
    query = urllib.parse.urlencode({"target": target, "module": module or blackbox_exporter.probe_module(target)})
    with urllib.request.urlopen(f"http://{blackbox}/probe?{query}", timeout=WAIT_SECONDS) as response:
        text = response.read().decode()
    return {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
            if line and not line.startswith("#") and "{" not in line.split()[0]}


def test_an_https_probe_reports_the_certificate_expiry(blackbox: str, https_site: str) -> None:
    metrics = _probe(blackbox, f"https://{https_site}/api/health")
    assert metrics["probe_success"] == 1
    days_left = (metrics["probe_ssl_earliest_cert_expiry"] - time.time()) / 86400
    assert 29 < days_left <= 30


def test_an_http_probe_succeeds_without_tls(blackbox: str, http_site: str) -> None:
    metrics = _probe(blackbox, f"http://{http_site}/api/health")
    assert metrics["probe_success"] == 1
    assert "probe_ssl_earliest_cert_expiry" not in metrics


def test_the_tls_module_fails_a_plain_http_answer(blackbox: str, http_site: str) -> None:
    metrics = _probe(blackbox, f"http://{http_site}/api/health", module=blackbox_exporter.HTTP_2XX_TLS)
    assert metrics["probe_success"] == 0
