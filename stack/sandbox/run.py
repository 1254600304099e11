"""The sandbox: the stack's generated configuration on real binaries, on loopback.

Prometheus, Alertmanager (one, or a gossip cluster), the node, postgres, redis and blackbox
exporters (Debian's packages), a throwaway PostgreSQL and Redis, MediaNest's traffic simulator
and a webhook sink recording every notification. Every config file comes from the same
`build()` as the Docker and Kubernetes targets, with a `sandbox` configuration: components on
free loopback ports (`addresses`), notifications to the sink, shorter scrape and evaluation
intervals. The sandbox only chooses each binary's command line, since Debian's versions are
not the images'.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from rules.problems import Severity
from stack.bundle import Bundle, build
from stack.config import StackConfig, load_stack
from stack.output import write_tree
from stack.sandbox import datastores, processes, sink
from stack.services import (
    alertmanager,
    blackbox_exporter,
    node_exporter,
    postgres_exporter,
    prometheus,
    redis_exporter,
)
from stack.services.spec import ServiceSpec

LOOPBACK = "127.0.0.1"
SIMULATOR = "simulator"
# No binary of these runs here (no Debian package): the sandbox leaves them out, with their alerts.
UNAVAILABLE = ("grafana", "loki", "jaeger", "alloy")
SINK = "sink"
T = TypeVar("T")


@dataclass(frozen=True)
class Ports:
    """A free loopback port for every listener of the sandbox."""

    prometheus: int
    alertmanagers: tuple[int, ...]
    gossip: tuple[int, ...]
    node_exporter: int
    postgres_exporter: int
    redis_exporter: int
    blackbox: int
    simulator: int
    sink: int

    @classmethod
    def free(cls, alertmanagers: int) -> Ports:
        ports = iter(processes.free_ports(7 + 2 * alertmanagers))
        return cls(prometheus=next(ports), alertmanagers=tuple(next(ports) for _ in range(alertmanagers)),
                   gossip=tuple(next(ports) for _ in range(alertmanagers)), node_exporter=next(ports),
                   postgres_exporter=next(ports), redis_exporter=next(ports), blackbox=next(ports),
                   simulator=next(ports), sink=next(ports))


def _at(port: int) -> str:
    return f"{LOOPBACK}:{port}"


# Time compression (`Sandbox(compressed=True)`, `sandbox --compressed`): SLOs over the shortest period
# their burn-rate windows allow (a page resolves 5 minutes after recovery instead of 30), a
# group re-notified after 10 seconds instead of 5 minutes, alerts resent after 5 seconds.
COMPRESSION = {"sloPeriod": "5d", "groupInterval": "10s", "resendDelay": "5s"}


def sandbox_config(base: StackConfig, ports: Ports, postgres: datastores.Postgres, redis: datastores.Redis,
                   scrape_interval: str, evaluation_interval: str, compressed: bool = False) -> StackConfig:
    """`base` (the dev stack's config) with every component on loopback, notifications to the sink."""
    data = base.model_dump(by_alias=True)
    services = data["services"]
    services["prometheus"] |= {"scrapeInterval": scrape_interval, "evaluationInterval": evaluation_interval}
    services["blackboxExporter"] |= {"targets": [f"http://{_at(ports.simulator)}/api/health"]}
    services["postgresExporter"] |= {"dataSourceUri": f"{_at(postgres.port)}/{postgres.database}?sslmode=disable",
                                     "user": postgres.user, "password": True}
    services["redisExporter"] |= {"address": f"redis://{_at(redis.port)}", "password": False}
    for component in UNAVAILABLE:
        services[component]["enabled"] = False
    data |= {
        "environment": "sandbox",
        "compression": COMPRESSION if compressed else {},
        "backend": {**data["backend"], "targets": [_at(ports.simulator)], "scheme": "http"},
        "alerting": {"localWebhookUrl": f"http://{_at(ports.sink)}", "receivers": {}},
        "addresses": {
            prometheus.NAME: [_at(ports.prometheus)],
            alertmanager.NAME: [_at(p) for p in ports.alertmanagers],
            node_exporter.NAME: [_at(ports.node_exporter)],
            postgres_exporter.NAME: [_at(ports.postgres_exporter)],
            redis_exporter.NAME: [_at(ports.redis_exporter)],
            blackbox_exporter.NAME: [_at(ports.blackbox)],
        },
    }
    return StackConfig.model_validate(data)


def localize(spec: ServiceSpec, root: Path, secret_values: dict[str, str]) -> tuple[Path, dict[str, str]]:
    """Write a spec's files and secrets under `root/<name>` as they would be under its config
    directory; its environment with that directory replaced."""
    directory = root / spec.name

    def write(path: str, content: str) -> Path:
        local = directory / path.removeprefix(spec.config_dir + "/")
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(content)
        return local

    for file in spec.files:
        write(file.path, file.content)
    for secret in spec.secrets:
        value = secret_values[secret.name]
        write(secret.path, secret.file_content(value)).chmod(0o600)
    env = {k: v.replace(spec.config_dir, str(directory)) for k, v in spec.env.items()}
    return directory, env


@dataclass
class Sandbox:
    alertmanagers: int = 1
    scrape_interval: str = "2s"
    evaluation_interval: str = "2s"
    base: StackConfig | None = None
    workdir: Path | None = None
    rps: int = 20
    compressed: bool = False
    # A component that dies is reported (and `supervisor.death()` says so); with a policy, restarted.
    restart: processes.RestartPolicy | None = None
    config: StackConfig = field(init=False)
    bundle: Bundle = field(init=False)
    ports: Ports = field(init=False)
    supervisor: processes.Supervisor = field(init=False)
    started_seconds: float = field(init=False, default=0.0)
    started_at: float = field(init=False, default=0.0)  # when everything was up (time.time())

    # --- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> Sandbox:
        began = time.monotonic()
        self.supervisor = processes.Supervisor(self.workdir, restart=self.restart)
        self.supervisor.__enter__()
        try:
            self._start()
            self.supervisor.check()  # a component that died while the next ones started
        except BaseException:
            self.supervisor.__exit__(*sys.exc_info())
            raise
        self.started_seconds = time.monotonic() - began
        self.started_at = time.time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.supervisor.__exit__(*exc)

    @property
    def root(self) -> Path:
        return self.supervisor.workdir

    def _start(self) -> None:
        self.ports = Ports.free(self.alertmanagers)
        password = secrets.token_hex(16)
        postgres = datastores.start_postgres(self.supervisor, exporter_password=password)
        redis = datastores.start_redis(self.supervisor)
        self.config = sandbox_config(self.base or load_stack("dev"), self.ports, postgres, redis,
                                     self.scrape_interval, self.evaluation_interval, self.compressed)
        self.bundle = build(self.config)
        errors = [p.render() for p in self.bundle.problems() if p.severity >= Severity.ERROR]
        if errors:
            raise RuntimeError("the sandbox configuration has problems:\n" + "\n".join(errors))
        write_tree(self.bundle.files, self.root / "rendered")
        specs = {s.name: s for s in self.bundle.services}
        values = {postgres_exporter.PASSWORD.name: password}
        start = self.supervisor.start
        python = [sys.executable, "-m"]
        start(SINK, [*python, "stack.sandbox.sink", "--port", str(self.ports.sink), "--out", str(self.sink_file)],
              ready_url=f"http://{_at(self.ports.sink)}/notifications")
        start(SIMULATOR, [*python, "stack.sandbox.simulator", "--port", str(self.ports.simulator),
                          "--log-file", str(self.root / "medianest.log"), "--rps", str(self.rps)],
              ready_url=f"http://{_at(self.ports.simulator)}/metrics")
        start(node_exporter.NAME, [processes.binary("prometheus-node-exporter"),
                                   f"--web.listen-address={_at(self.ports.node_exporter)}"],
              ready_url=f"http://{_at(self.ports.node_exporter)}/metrics")
        _, env = localize(specs[postgres_exporter.NAME], self.root, values)
        start(postgres_exporter.NAME, [processes.binary("prometheus-postgres-exporter"),
                                       f"--web.listen-address={_at(self.ports.postgres_exporter)}"],
              env=env, ready_url=f"http://{_at(self.ports.postgres_exporter)}/metrics")
        _, env = localize(specs[redis_exporter.NAME], self.root, values)
        start(redis_exporter.NAME, [processes.binary("prometheus-redis-exporter"),
                                    f"--web.listen-address={_at(self.ports.redis_exporter)}"],
              env=env, ready_url=f"http://{_at(self.ports.redis_exporter)}/metrics")
        directory, _ = localize(specs[blackbox_exporter.NAME], self.root, values)
        start(blackbox_exporter.NAME, [processes.binary("prometheus-blackbox-exporter"),
                                       f"--config.file={directory / 'blackbox.yml'}",
                                       f"--web.listen-address={_at(self.ports.blackbox)}"],
              ready_url=f"http://{_at(self.ports.blackbox)}/-/healthy")
        directory, _ = localize(specs[alertmanager.NAME], self.root, values)
        for index in range(self.alertmanagers):
            start(self.alertmanager_name(index), self._alertmanager_argv(index, directory),
                  ready_url=f"http://{_at(self.ports.alertmanagers[index])}/-/ready")
        directory, _ = localize(specs[prometheus.NAME], self.root, values)
        settings = self.config.services.prometheus
        start(prometheus.NAME, [
            processes.binary("prometheus"), f"--config.file={directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.root / 'prometheus-data'}",
            f"--storage.tsdb.retention.time={settings.retention_time}",
            f"--storage.tsdb.retention.size={settings.retention_size}",
            f"--web.listen-address={_at(self.ports.prometheus)}",
            *([f"--rules.alert.resend-delay={self.config.compression.resend_delay}"]
              if self.config.compression.resend_delay else []),
        ], ready_url=f"{self.prometheus_url}/-/ready")

    def _alertmanager_argv(self, index: int, directory: Path) -> list[str]:
        gossip = self.ports.gossip
        cluster = ([f"--cluster.listen-address={_at(gossip[index])}",
                    f"--cluster.advertise-address={_at(gossip[index])}",
                    *(f"--cluster.peer={_at(port)}" for i, port in enumerate(gossip) if i != index)]
                   if self.alertmanagers > 1 else ["--cluster.listen-address="])
        return [processes.binary("prometheus-alertmanager"), f"--config.file={directory / 'alertmanager.yml'}",
                f"--storage.path={self.root / f'alertmanager-data-{index}'}",
                f"--web.listen-address={_at(self.ports.alertmanagers[index])}", *cluster]

    @staticmethod
    def alertmanager_name(index: int) -> str:
        return f"{alertmanager.NAME}-{index}"

    # --- where things are -----------------------------------------------------------------------

    @property
    def prometheus_url(self) -> str:
        return f"http://{_at(self.ports.prometheus)}"

    @property
    def simulator_url(self) -> str:
        return f"http://{_at(self.ports.simulator)}"

    @property
    def sink_file(self) -> Path:
        return self.root / "notifications.jsonl"

    def urls(self) -> dict[str, str]:
        urls = {"prometheus": self.prometheus_url, "simulator (faults: /faults)": self.simulator_url,
                "webhook sink": f"http://{_at(self.ports.sink)}/notifications"}
        for index, port in enumerate(self.ports.alertmanagers):
            urls[self.alertmanager_name(index)] = f"http://{_at(port)}"
        return urls

    # --- acting on it ---------------------------------------------------------------------------

    def inject(self, **faults: Any) -> dict[str, Any]:
        return _request(f"{self.simulator_url}/faults", "POST", faults)

    def reset(self) -> None:
        _request(f"{self.simulator_url}/faults", "DELETE")

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": expr} | ({"time": str(at)} if at is not None else {})
        answer = _request(f"{self.prometheus_url}/api/v1/query?{urllib.parse.urlencode(params)}")
        return answer["data"]["result"]

    def targets(self) -> list[dict[str, Any]]:
        return _request(f"{self.prometheus_url}/api/v1/targets")["data"]["activeTargets"]

    def notifications(self) -> list[dict[str, Any]]:
        return sink.read_notifications(self.sink_file)


def _request(url: str, method: str = "GET", body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read()
    return json.loads(text) if text else None


def wait_for(condition: Callable[[], T], timeout: float, interval: float = 1.0, what: str = "condition") -> T:
    """Poll until `condition()` is truthy; its value, or TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except OSError:  # a component restarting
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
