"""The sandbox: the stack's generated configuration on real binaries, on loopback.

Prometheus, Alertmanager (one, or a gossip cluster), Jaeger, the node, postgres, redis and
blackbox exporters, a throwaway PostgreSQL and Redis, MediaNest's traffic simulator (its requests
traced to Jaeger over OTLP, their trace ids in its logs and as exemplars) and a webhook sink
recording every notification. Every component runs as its `ServiceSpec` ships it (the same
`build()` as the Docker and Kubernetes targets, with a `sandbox` configuration: components on
free loopback ports (`addresses`), notifications to the sink, shorter scrape and evaluation
intervals): the container's own arguments, environment, files and secrets, with only listen
addresses, data paths, host mounts and peers mapped to this machine (stack/sandbox/localize.py).
A flag the shipped version does not know fails the sandbox's start, naming it.

The binaries are the judges built from their Go modules at the versions the images ship
(stack/judges.py: Prometheus, Alertmanager, Jaeger, node and blackbox exporters); the postgres and redis
exporters are Debian's packages (0.11 and 1.45: their Go modules are not served), older than
their images. A component runs here when its module names its binary (`sandbox_binary`, and
`sandbox_settings` to point it at what runs here); the others are switched off (`UNAVAILABLE`).
"""

from __future__ import annotations

import json
import re
import shlex
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic.alias_generators import to_camel

from rules.problems import Severity
from stack import services as registry
from stack.bundle import Bundle, build
from stack.config import StackConfig, load_stack
from stack.output import write_tree
from stack.sandbox import datastores, localize, processes, sink
from stack.services import alertmanager, prometheus
from stack.services.component import SandboxWorld
from stack.services.spec import ServiceSpec, replica_address

LOOPBACK = "127.0.0.1"
SIMULATOR = "simulator"
SINK = "sink"
# Each component the sandbox runs (its module's `sandbox_binary`: its image's entrypoint, given the
# spec's args), in the order it starts them: the one that scrapes the others last. postgres and
# redis exporters are Debian's packages (0.11 and 1.45): their Go modules are not served
# (their modules' `unjudged`).
BINARIES = {component.name: component.sandbox_binary
            for component in sorted(registry.components(), key=lambda c: c.scrapes_others) if component.sandbox_binary}
# Not run here, so switched off with their alerts (settings keys): no binary of them here (Grafana
# and Loki are AGPL, never built here; Alloy's binary is not built here).
UNAVAILABLE = tuple(component.settings_key for component in registry.components() if not component.sandbox_binary)
# The alerting path (required components, never switched off) is what the sandbox exists to
# observe: its API names Prometheus (`prometheus_url`, `query`) and Alertmanager, which may run as
# a gossip cluster (`Sandbox(alertmanagers=3)`): its processes are numbered (`alertmanager-0`...),
# even when there is one.
REPLICATED = (alertmanager.NAME,)
T = TypeVar("T")


@dataclass(frozen=True)
class Ports:
    """The loopback ports chosen before the stack is built: each component's metrics endpoint,
    one per replica (where Prometheus scrapes it: `addresses`), the simulator's and the sink's.
    A component's other listeners (Alertmanager's gossip) get theirs once its spec is built."""

    metrics: Mapping[str, tuple[int, ...]]
    simulator: int
    sink: int

    @classmethod
    def free(cls, replicas: Mapping[str, int]) -> Ports:
        ports = iter(processes.free_ports(2 + sum(replicas.values())))
        return cls(metrics={name: tuple(next(ports) for _ in range(count)) for name, count in replicas.items()},
                   simulator=next(ports), sink=next(ports))

    @property
    def prometheus(self) -> int:
        return self.metrics[prometheus.NAME][0]

    @property
    def alertmanagers(self) -> tuple[int, ...]:
        return self.metrics[alertmanager.NAME]

    def taken(self) -> set[int]:
        return {p for ports in self.metrics.values() for p in ports} | {self.simulator, self.sink}


def _at(port: int) -> str:
    return f"{LOOPBACK}:{port}"


# Time compression (`Sandbox(compressed=True)`, `sandbox --compressed`): SLOs over the shortest period
# their burn-rate windows allow (a page resolves 5 minutes after recovery instead of 30), a
# group re-notified after 10 seconds instead of 5 minutes, alerts resent after 5 seconds.
COMPRESSION = {"sloPeriod": "5d", "groupInterval": "10s", "resendDelay": "5s"}


def sandbox_world(ports: Ports, postgres: datastores.Postgres, redis: datastores.Redis, scrape_interval: str,
                  evaluation_interval: str) -> SandboxWorld:
    return SandboxWorld(simulator=_at(ports.simulator), postgres=_at(postgres.port),
                        postgres_database=postgres.database, postgres_user=postgres.user,
                        postgres_password=postgres.password, redis=_at(redis.port),
                        scrape_interval=scrape_interval, evaluation_interval=evaluation_interval)


def sandbox_config(base: StackConfig, ports: Ports, postgres: datastores.Postgres, redis: datastores.Redis,
                   scrape_interval: str, evaluation_interval: str, compressed: bool = False) -> StackConfig:
    """`base` (the dev stack's config) with every component on loopback, notifications to the sink."""
    data = base.model_dump(by_alias=True)
    services = data["services"]
    world = sandbox_world(ports, postgres, redis, scrape_interval, evaluation_interval)
    for component in registry.components():
        services[to_camel(component.settings_key)] |= component.sandbox_settings(world)
    for key in UNAVAILABLE:
        services[to_camel(key)]["enabled"] = False
    data |= {
        "environment": "sandbox",
        "compression": COMPRESSION if compressed else {},
        "backend": {**data["backend"], "targets": [_at(ports.simulator)], "scheme": "http"},
        "alerting": {"localWebhookUrl": f"http://{_at(ports.sink)}", "receivers": {}},
        "addresses": {name: [_at(port) for port in ports.metrics[name]] for name in BINARIES},
    }
    return StackConfig.model_validate(data)


# --- components from their specs ---------------------------------------------------------------


@dataclass(frozen=True)
class Component:
    """One process the sandbox runs from a spec, and where."""

    process: str  # its name under the supervisor
    binary: str
    spec: ServiceSpec
    where: localize.Placement

    @property
    def ready_url(self) -> str | None:
        health = self.spec.health
        return None if health is None else f"http://{_at(self.where.ports[health.port])}{health.path}"


def alertmanager_cluster(bundle: Bundle, replicas: int) -> ServiceSpec:
    """Alertmanager as a gossip cluster of `replicas` ships it: the Kubernetes target's spec (a
    Docker stack runs one), built from the sandbox's config and files. The config is copied
    without validation: on Docker, validation refuses replicas above 1."""
    config = bundle.config
    settings = config.services.alertmanager.model_copy(update={"replicas": replicas})
    cluster = config.model_copy(update={"target": "kubernetes",
                                        "services": config.services.model_copy(update={"alertmanager": settings})})
    return alertmanager.service(cluster, bundle.files)


def components(bundle: Bundle, ports: Ports, root: Path, free: Callable[[int], list[int]]) -> list[Component]:
    """Every process the sandbox runs from a spec of `bundle`, in start order: each replica with
    its metrics port from `ports`, its other listeners on ports from `free(count)`, its files in
    `root/<process>`, its volumes in `root/volumes/<process>/`, its peers on loopback."""
    specs = {s.name: s for s in bundle.services}
    namespace = bundle.config.kubernetes.namespace
    planned = []
    for name, binary in BINARIES.items():
        replicas = len(ports.metrics[name])
        spec = alertmanager_cluster(bundle, replicas) if name == alertmanager.NAME and replicas > 1 else specs[name]
        assert spec.metrics is not None, f"{name}: Prometheus scrapes every component"
        others = [p for p in localize.listen_ports(spec) if p != spec.metrics.port]
        spare = iter(free(len(others) * replicas))
        listens = [{spec.metrics.port: ports.metrics[name][i]} | {p: next(spare) for p in others}
                   for i in range(replicas)]
        # Replicas name each other by their stable names (a StatefulSet's, through its headless Service).
        peers = {replica_address(name, i, namespace, port): _at(local)
                 for i, listen in enumerate(listens) for port, local in listen.items()} if replicas > 1 else {}
        for index, listen in enumerate(listens):
            process = f"{name}-{index}" if name in REPLICATED else name
            where = localize.placement(spec, listen, root / process, root / "volumes" / process, peers)
            planned.append(Component(process, binary, spec, where))
    return planned


def free_ports_except(taken: set[int]) -> Callable[[int], list[int]]:
    """`free_ports`, never one of `taken` (chosen earlier, not bound yet by what will listen there)."""
    def free(count: int) -> list[int]:
        while True:
            ports = processes.free_ports(count)
            if taken.isdisjoint(ports):
                taken.update(ports)
                return ports
    return free


# The shipped binary refusing an argument: kingpin's words (Prometheus, Alertmanager, the
# exporters built here, Debian's postgres_exporter), Go's flag package's (Debian's
# redis_exporter, which then prints its whole usage: the words are far above the log's tail) and
# cobra's (Jaeger).
_REJECTED = re.compile(r"unknown long flag '(?P<long>[^']+)'|unknown short flag '(?P<short>[^']+)'"
                       r"|flag provided but not defined: (?P<go>\S+)|unknown flag: (?P<cobra>--[^\s=]+)")


def rejected_flag(log: str) -> tuple[str, str] | None:
    """The flag a binary's log says it does not know, as it names it, and the words it says it
    with; None when it does not say so."""
    match = _REJECTED.search(log)
    return None if match is None else (next(g for g in match.groups() if g), match.group(0))


def spec_flag(args: Sequence[str], reported: str) -> str:
    """The argument's flag as the spec writes it: Go's flag package names `--x` as `-x`."""
    flags = (arg.split("=")[0] for arg in args if arg.startswith("-"))
    return next((flag for flag in flags if flag.lstrip("-") == reported.lstrip("-")), reported)


def start_component(supervisor: processes.Supervisor, component: Component,
                    secret_values: Mapping[str, str]) -> None:
    """Write a component's files and secrets, start its binary with its spec's (mapped) args and
    env, and wait until its health check answers. ProcessFailed when it does not start; its first
    line names the component and the flag when the binary refused one."""
    local = localize.localize(component.spec, component.where, secret_values)
    for path, content in local.files.items():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(content)
    for path, content in local.secrets.items():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(content)
        Path(path).chmod(0o600)
    for volume in component.spec.volumes:  # as a fresh volume is: empty, there
        Path(component.where.paths[volume.path]).mkdir(parents=True, exist_ok=True)
    binary = processes.binary(component.binary)
    try:
        supervisor.start(component.process, [binary, *local.args], env=local.env, ready_url=component.ready_url)
    except processes.ProcessFailed as error:
        log = supervisor.log_path(component.process).read_text(errors="replace")
        rejected = rejected_flag(log[log.rfind(processes.START_MARKER):])  # this start's words only
        if rejected is None:
            raise
        flag, words = rejected
        raise processes.ProcessFailed(
            f"{component.process}: {component.binary} does not know {spec_flag(local.args, flag)}, an argument of "
            f"its spec ({words})\n{error}") from None


@dataclass(frozen=True)
class Endpoint:
    """What the sandbox's printout says of one thing it runs."""

    name: str
    url: str
    serves: str
    # A command line asking it, with the tools built at the shipped version.
    command: str | None = None


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
    # Every process run from a spec, by its name under the supervisor.
    components: dict[str, Component] = field(init=False, default_factory=dict)
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
        self.ports = Ports.free({name: self.alertmanagers if name in REPLICATED else 1 for name in BINARIES})
        postgres = datastores.start_postgres(self.supervisor)
        redis = datastores.start_redis(self.supervisor)
        self.config = sandbox_config(self.base or load_stack("dev"), self.ports, postgres, redis,
                                     self.scrape_interval, self.evaluation_interval, self.compressed)
        self.bundle = build(self.config)
        errors = [p.render() for p in self.bundle.problems() if p.severity >= Severity.ERROR]
        if errors:
            raise RuntimeError("the sandbox configuration has problems:\n" + "\n".join(errors))
        write_tree(self.bundle.files, self.root / "rendered")
        world = sandbox_world(self.ports, postgres, redis, self.scrape_interval, self.evaluation_interval)
        values = {name: value for component in registry.deployed(self.config)
                  for name, value in component.sandbox_secrets(world).items()}
        start = self.supervisor.start
        python = [sys.executable, "-m"]
        start(SINK, [*python, "stack.sandbox.sink", "--port", str(self.ports.sink), "--out", str(self.sink_file)],
              ready_url=f"http://{_at(self.ports.sink)}/notifications")
        planned = components(self.bundle, self.ports, self.root, free_ports_except(self.ports.taken()))
        self.components = {component.process: component for component in planned}
        # Started first, on the port chosen for it, as every process is; its trace exporter
        # retries until the component receiving traces (Jaeger, started next) answers.
        tracing = [["--otlp-endpoint", self.url_of(c.name, c.receives_traces)]
                   for c in registry.deployed(self.config) if c.receives_traces and c.name in self.components]
        start(SIMULATOR, [*python, "stack.sandbox.simulator", "--port", str(self.ports.simulator),
                          "--log-file", str(self.root / "medianest.log"), "--rps", str(self.rps),
                          *(tracing[0] if tracing else [])],
              ready_url=f"http://{_at(self.ports.simulator)}/metrics")
        for component in planned:
            start_component(self.supervisor, component, values)

    @staticmethod
    def alertmanager_name(index: int) -> str:
        return f"{alertmanager.NAME}-{index}"

    # --- where things are -----------------------------------------------------------------------

    @property
    def prometheus_url(self) -> str:
        return f"http://{_at(self.ports.prometheus)}"

    def url_of(self, process: str, port: int | None = None) -> str:
        """Where a component's listener on `port` of its spec is (by default, the one its
        `sandbox_endpoint` names)."""
        component = self.components[process]
        if port is None:
            endpoint = registry.by_name()[component.spec.name].sandbox_endpoint
            assert endpoint is not None, f"{process}: no endpoint of its own"
            port = endpoint.port
        return f"http://{_at(component.where.ports[port])}"

    @property
    def simulator_url(self) -> str:
        return f"http://{_at(self.ports.simulator)}"

    @property
    def sink_file(self) -> Path:
        return self.root / "notifications.jsonl"

    def endpoints(self) -> list[Endpoint]:
        """Where everything is, what it serves, and a command that asks it."""
        found = []
        for process, component in self.components.items():
            endpoint = registry.by_name()[component.spec.name].sandbox_endpoint
            if endpoint is not None:
                url = self.url_of(process)
                command = shlex.join(endpoint.command(url)) if endpoint.command else None
                found.append(Endpoint(process, url, endpoint.serves, command))
        found += [Endpoint("simulator", self.simulator_url, "MediaNest's /metrics; faults: POST /faults"),
                  Endpoint("webhook sink", f"http://{_at(self.ports.sink)}/notifications",
                           "every notification received")]
        return found

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
