"""The sandbox runs each component as its spec ships it: only listen addresses, data paths, host
mounts and peers are mapped to this machine; every other argument, variable and file is the
container's, byte for byte. No process is started here."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml

from stack.bundle import Bundle, build
from stack.config import StackConfig
from stack.sandbox import localize
from stack.sandbox.datastores import Postgres, Redis
from stack.sandbox.localize import Placement
from stack.sandbox.run import (
    BINARIES,
    REPLICATED,
    Component,
    Ports,
    components,
    rejected_flag,
    sandbox_config,
    spec_flag,
)
from stack.services import alertmanager, jaeger, node_exporter, prometheus
from stack.services.spec import ServiceSpec

ROOT = Path("/work/sandbox")
WHERE = Placement(ports={9090: 41000, 9094: 41001, 9101: 41002, 8888: 41003},
                  paths={"/etc/prometheus": "/w/prometheus", "/prometheus": "/w/data", "/host/root": "/",
                         "/host/proc": "/proc"},
                  peers={"alertmanager-1.alertmanager-headless.monitoring.svc:9094": "127.0.0.1:42001"})


@pytest.mark.parametrize(("text", "expected"), [
    # Listen addresses on one of the spec's ports, however written, move to loopback.
    (":9090", "127.0.0.1:41000"),
    ("0.0.0.0:9090", "127.0.0.1:41000"),
    ("[::]:9090", "127.0.0.1:41000"),
    ("127.0.0.1:9101", "127.0.0.1:41002"),
    ("localhost:9090", "127.0.0.1:41000"),
    ("$(POD_IP):9094", "127.0.0.1:41001"),
    # ...not on another port, nor another host's address.
    (":9999", ":9999"),
    ("0.0.0.0:3000", "0.0.0.0:3000"),
    ("prometheus:9090", "prometheus:9090"),
    ("10.0.0.1:9090", "10.0.0.1:9090"),
    ("http://0.0.0.0:9090/", "http://0.0.0.0:9090/"),
    # Peers by the names the spec gives them.
    ("alertmanager-1.alertmanager-headless.monitoring.svc:9094", "127.0.0.1:42001"),
    ("alertmanager-2.alertmanager-headless:9094", "alertmanager-2.alertmanager-headless:9094"),
    # Paths under a mapped directory, at a path boundary only.
    ("/etc/prometheus/prometheus.yml", "/w/prometheus/prometheus.yml"),
    ("/etc/prometheus", "/w/prometheus"),
    ("/prometheus", "/w/data"),
    ("/prometheus-other", "/prometheus-other"),
    ("/etc/prometheus-rules/x.yaml", "/etc/prometheus-rules/x.yaml"),
    ("/host/proc", "/proc"),
    ("/host/root", "/"),
    ("/host/root/var/log", "/var/log"),
    ("rules/x.yaml", "rules/x.yaml"),  # relative: resolved from the config file's directory, mapped
    # Anything else is left alone.
    ("15d", "15d"),
    ("", ""),
    ("^/(dev|proc|sys)($|/)", "^/(dev|proc|sys)($|/)"),
])
def test_a_value_is_mapped_only_when_it_names_the_containers_world(text: str, expected: str) -> None:
    assert localize.value(text, WHERE) == expected


@pytest.mark.parametrize(("arg", "expected"), [
    ("--web.listen-address=:9090", "--web.listen-address=127.0.0.1:41000"),
    ("-config.file=/etc/prometheus/x.yml", "-config.file=/w/prometheus/x.yml"),  # Loki's single dash
    ("--cluster.listen-address=", "--cluster.listen-address="),
    ("--storage.tsdb.retention.time=15d", "--storage.tsdb.retention.time=15d"),
    ("/etc/prometheus/config.alloy", "/w/prometheus/config.alloy"),  # a positional argument
    ("run", "run"),
    ("--web.external-url=http://0.0.0.0:9090/x=y", "--web.external-url=http://0.0.0.0:9090/x=y"),
])
def test_an_argument_keeps_its_flag_and_maps_its_value(arg: str, expected: str) -> None:
    assert localize.argument(arg, WHERE) == expected


def test_yaml_config_files_map_strings_and_host_port_pairs_and_nothing_else() -> None:
    text = yaml.safe_dump({
        "telemetry": {"prometheus": {"host": "0.0.0.0", "port": 8888}, "other": {"host": "db", "port": 8888}},
        "receiver": {"endpoint": "0.0.0.0:9090", "name": ":9090 is not an address here"},
        "storage": {"directory": "/prometheus/badger", "ttl": "72h"},
        "list": ["/etc/prometheus/a", 9090, True],
    })
    assert yaml.safe_load(localize.config_file("config.yaml", text, WHERE)) == {
        "telemetry": {"prometheus": {"host": "127.0.0.1", "port": 41003}, "other": {"host": "db", "port": 8888}},
        "receiver": {"endpoint": "127.0.0.1:41000", "name": ":9090 is not an address here"},
        "storage": {"directory": "/w/data/badger", "ttl": "72h"},
        "list": ["/w/prometheus/a", 9090, True],
    }
    untouched = "# a comment kept\nroute:\n  receiver: x\n"
    assert localize.config_file("alertmanager.yml", untouched, WHERE) == untouched  # byte for byte
    assert localize.config_file("medianest.tmpl", "0.0.0.0:9090", WHERE) == "0.0.0.0:9090"  # not YAML


# --- every component of the sandbox -----------------------------------------------------------------


def _sandbox(dev_config: StackConfig, alertmanagers: int = 1,
             compressed: bool = False) -> tuple[Bundle, list[Component]]:
    """The sandbox's bundle and components on made-up ports, as `Sandbox` plans them."""
    numbers = itertools.count(30000)
    ports = Ports(metrics={name: tuple(next(numbers) for _ in range(alertmanagers if name in REPLICATED else 1))
                           for name in BINARIES}, simulator=next(numbers), sink=next(numbers))
    postgres = Postgres(host="127.0.0.1", port=5432, database="medianest", user="postgres_exporter", password="p",
                        superuser="postgres", socket_dir=Path("/tmp"), data_dir=Path("/tmp"))
    redis = Redis(host="127.0.0.1", port=6379, password=None)
    bundle = build(sandbox_config(dev_config, ports, postgres, redis, "2s", "2s", compressed=compressed))
    return bundle, components(bundle, ports, ROOT, lambda count: [next(numbers) for _ in range(count)])


def _mapped(original: str, local: str, where: Placement) -> bool:
    """`local` is `original` with its value mapped: a listen address, a peer or a path."""
    flag, _, value = original.partition("=") if original.startswith("-") else ("", "", original)
    new = local.removeprefix(f"{flag}=") if flag else local
    if flag and not local.startswith(f"{flag}="):
        return False
    return (localize.listen_address(value, where.ports) == new or where.peers.get(value) == new
            or localize.local_path(value, where.paths) == new)


def _same_but_mapped(original: object, local: object, where: Placement) -> bool:
    """Two parsed YAML documents alike but for listen addresses (`endpoint: 0.0.0.0:P`, or a
    `host: 0.0.0.0` beside `port: P`) and paths, mapped."""
    if isinstance(original, dict) and isinstance(local, dict):
        if original.keys() != local.keys():
            return False
        if original.get("host") == "0.0.0.0" and original.get("port") in where.ports:
            return (local["host"], local["port"]) == ("127.0.0.1", where.ports[original["port"]])
        return all(_same_but_mapped(original[k], local[k], where) for k in original)
    if isinstance(original, list) and isinstance(local, list):
        return len(original) == len(local) and all(
            _same_but_mapped(a, b, where) for a, b in zip(original, local, strict=True))
    if isinstance(original, str) and isinstance(local, str) and original != local:
        return _mapped(original, local, where)
    return original == local


@pytest.mark.parametrize("alertmanagers", [1, 3])
def test_every_component_runs_its_specs_arguments_with_only_addresses_and_paths_mapped(
        dev_config: StackConfig, alertmanagers: int) -> None:
    bundle, planned = _sandbox(dev_config, alertmanagers)
    assert [c.spec.name for c in planned] == [name for name in BINARIES
                                              for _ in range(alertmanagers if name in REPLICATED else 1)]
    for component in planned:
        spec = component.spec
        local = localize.localize(spec, component.where, {s.name: "s3cret" for s in spec.secrets})
        assert len(local.args) == len(spec.args), component.process
        for original, mapped in zip(spec.args, local.args, strict=True):
            assert mapped == original or _mapped(original, mapped, component.where), (component.process, original)
        assert local.env.keys() == spec.env.keys()
        for name, original in spec.env.items():
            assert local.env[name] == original or _mapped(original, local.env[name], component.where), name
        # Every file where the spec's args and env say it is; the content as generated, but for
        # the listen addresses and paths of a YAML file (Jaeger's).
        for file in spec.files:
            content = local.files[localize.local_path(file.path, component.where.paths)]
            assert content == file.content or _same_but_mapped(
                yaml.safe_load(file.content), yaml.safe_load(content), component.where), file.path
        assert all(Path(p).is_relative_to(ROOT / component.process) for p in (*local.files, *local.secrets))
        # Nothing listens beyond loopback, nothing is read or written in the container's paths.
        for arg in local.args:
            assert not arg.split("=", 1)[-1].startswith((":", "0.0.0.0", "[::]", "$(POD_IP)")), arg
            assert not arg.split("=", 1)[-1].startswith((spec.config_dir, "/host/")), arg
        assert component.ready_url and component.ready_url.startswith("http://127.0.0.1:")


def test_the_sandbox_argv_of_each_component_is_the_shipped_one(dev_config: StackConfig) -> None:
    """Written out, for reading: the exact command lines."""
    _, planned = _sandbox(dev_config)
    by_name = {c.process: c for c in planned}
    prometheus_ = by_name[prometheus.NAME]
    port = prometheus_.where.ports[prometheus.PORT]
    assert localize.arguments(prometheus_.spec.args, prometheus_.where) == (
        f"--config.file={ROOT}/prometheus/prometheus.yml",
        f"--storage.tsdb.path={ROOT}/volumes/prometheus/prometheus-data",
        f"--web.listen-address=127.0.0.1:{port}",
        "--enable-feature=exemplar-storage",
    )
    node = by_name[node_exporter.NAME]
    assert localize.arguments(node.spec.args, node.where)[:3] == (
        "--path.procfs=/proc", "--path.sysfs=/sys", "--path.rootfs=/")
    assert localize.arguments(node.spec.args, node.where)[3] == node.spec.args[3]  # the exclusion regex


def test_a_cluster_is_the_shipped_cluster_on_loopback(dev_config: StackConfig) -> None:
    """Three Alertmanagers from the spec a three-replica cluster ships with: each listens and
    advertises its own gossip port, and peers with every replica (itself included, as on
    Kubernetes) by loopback address instead of by stable name."""
    _, planned = _sandbox(dev_config, alertmanagers=3)
    replicas = [c for c in planned if c.spec.name == alertmanager.NAME]
    assert [c.process for c in replicas] == ["alertmanager-0", "alertmanager-1", "alertmanager-2"]
    gossip = [f"127.0.0.1:{c.where.ports[alertmanager.CLUSTER_PORT]}" for c in replicas]
    assert len(set(gossip)) == 3
    for index, component in enumerate(replicas):
        args = localize.arguments(component.spec.args, component.where)
        assert f"--cluster.listen-address={gossip[index]}" in args
        assert f"--cluster.advertise-address={gossip[index]}" in args
        assert [a for a in args if a.startswith("--cluster.peer=")] == [f"--cluster.peer={g}" for g in gossip]
        assert f"--storage.path={ROOT}/volumes/alertmanager-{index}/alertmanager-data" in args
        # The shipped flags: Kubernetes' replica names and the pod's IP.
        assert "--cluster.advertise-address=$(POD_IP):9094" in component.spec.args


def test_the_compressed_sandboxs_resend_delay_comes_from_the_spec(dev_config: StackConfig) -> None:
    bundle, planned = _sandbox(dev_config, compressed=True)
    spec = next(c.spec for c in planned if c.process == prometheus.NAME)
    assert spec.args[-1] == "--rules.alert.resend-delay=5s"
    assert spec == next(s for s in bundle.services if s.name == prometheus.NAME)
    _, shipped = _sandbox(dev_config)
    assert not any("resend-delay" in a for c in shipped for a in c.spec.args)


def test_jaegers_config_file_is_mapped_to_loopback_when_it_joins(dev_config: StackConfig) -> None:
    """Jaeger is not in the sandbox yet; its config.yaml already maps: every listener on loopback."""
    spec: ServiceSpec = next(s for s in build(dev_config).services if s.name == jaeger.NAME)
    ports = {port: 50000 + i for i, port in enumerate(localize.listen_ports(spec))}
    where = localize.placement(spec, ports, "/w/jaeger", "/w/volumes/jaeger")
    local = localize.localize(spec, where, {})
    assert local.args == ("--config=/w/jaeger/config.yaml",)
    config = yaml.safe_load(local.files["/w/jaeger/config.yaml"])
    endpoints = [config["receivers"]["otlp"]["protocols"][p]["endpoint"] for p in ("grpc", "http")]
    endpoints += [config["extensions"][e]["http"]["endpoint"] for e in ("jaeger_query", "healthcheckv2")]
    assert endpoints == [f"127.0.0.1:{ports[p]}" for p in (jaeger.OTLP_GRPC_PORT, jaeger.OTLP_HTTP_PORT,
                                                             jaeger.UI_PORT, jaeger.HEALTH_PORT)]
    reader = config["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]
    assert reader == {"host": "127.0.0.1", "port": ports[jaeger.METRICS_PORT]}
    original = yaml.safe_load(next(f.content for f in spec.files))
    assert config["extensions"]["jaeger_storage"] == original["extensions"]["jaeger_storage"]


def test_a_secret_the_sandbox_has_no_value_for_is_named() -> None:
    from stack.services import postgres_exporter
    from stack.services.spec import Image, Resources
    spec = ServiceSpec(name="x", image=Image("x", "1"), user="1:1", resources=Resources(1),
                       config_dir=postgres_exporter.CONFIG_DIR, secrets=(postgres_exporter.PASSWORD,))
    where = localize.placement(spec, {}, "/w/x", "/w/volumes/x")
    with pytest.raises(KeyError, match="postgres-password"):
        localize.localize(spec, where, {})
    assert localize.localize(spec, where, {"postgres-password": "p"}).secrets == {
        "/w/x/secrets/postgres-password": "p"}


@pytest.mark.parametrize(("log", "flag"), [
    ("prometheus: error: unknown long flag '--storage.tsdb.no-such-flag', try --help", "--storage.tsdb.no-such-flag"),
    ("alertmanager: error: unknown short flag '-x', try --help", "-x"),
    ("flag provided but not defined: -web.nope\nUsage of redis_exporter:", "-web.nope"),
    ("level=error msg=\"opening storage failed\"", None),
])
def test_the_flag_a_binary_refuses_is_read_from_its_log(log: str, flag: str | None) -> None:
    rejected = rejected_flag(log)
    assert (rejected and rejected[0]) == flag
    assert rejected is None or rejected[1] in log


def test_the_refused_flag_is_named_as_the_spec_writes_it() -> None:
    args = ("--web.nope=1", "--web.listen-address=127.0.0.1:1")
    assert spec_flag(args, "-web.nope") == "--web.nope"
    assert spec_flag(args, "--web.nope") == "--web.nope"
    assert spec_flag(args, "-x") == "-x"
