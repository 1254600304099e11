"""Alloy: the typed Alloy-syntax writer, the log pipeline (bounded labels, ids in structured
metadata, every reference resolved) and the service spec, with its bash readiness probe run for real."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from service_helpers import with_settings

from rules.conventions import LOKI_STREAM_LABELS
from stack.config import StackConfig, from_mapping, memory_bytes
from stack.services import alloy
from stack.services.alloy_syntax import (
    Block,
    Expr,
    block,
    call,
    concat,
    defined_components,
    references,
    string,
    value,
)


def docker(config: StackConfig) -> StackConfig:
    return with_settings(config, "alloy", log_source="docker", docker_socket_group=998)


def kubernetes(**settings: object) -> StackConfig:
    """A Kubernetes stack whose Alloy tails pods through the API, validated as Pulumi config is."""
    keys: dict[str, object] = {"environment": "prod", "runbookBaseUrl": "https://runbooks.example.com/alerts",
                               "target": "kubernetes", "services": {"alloy": {"logSource": "kubernetes"}}, **settings}
    # Required with target kubernetes: where the API server is.
    keys["kubernetes"] = {"apiServerCidrs": ["10.96.0.1/32"], **dict(keys.get("kubernetes") or {})}
    return from_mapping({f"medianest-observability:{k}": v for k, v in keys.items()}, "test")


def components(model: alloy.AlloyConfig, kind: type[alloy.Component]) -> list[alloy.Component]:
    return [c for c in model.components if isinstance(c, kind)]


def processor(model: alloy.AlloyConfig) -> alloy.LokiProcess:
    (process,) = components(model, alloy.LokiProcess)
    assert isinstance(process, alloy.LokiProcess)
    return process


def stage(model: alloy.AlloyConfig, kind: type[alloy.Stage]) -> alloy.Stage:
    (found,) = [s for s in processor(model).stages if type(s) is kind]
    return found


# --- The Alloy syntax writer -------------------------------------------------------------------

@pytest.mark.parametrize(("text", "written"), [
    ('say "hi"', r'"say \"hi\""'),
    ("C:\\logs\\app", r'"C:\\logs\\app"'),
    ("two\nlines\r\n\tindented", r'"two\nlines\r\n\tindented"'),
    ("bell\x07 and del\x7f", r'"bell\u0007 and del\u007f"'),
    ("naïve ✓", '"naïve ✓"'),
    ("", '""'),
], ids=["quotes", "backslashes", "newlines and tabs", "control characters", "unicode as is", "empty"])
def test_strings_are_escaped(text: str, written: str) -> None:
    assert string(text) == written


def test_every_character_reads_back_as_written() -> None:
    # The escapes we write (\\ \" \n \r \t \uNNNN) mean the same in JSON as in Alloy syntax.
    text = "".join(map(chr, range(0x80))) + "é✓😀 // /* ${x} `raw`"
    assert json.loads(string(text)) == text


def test_values_of_every_type() -> None:
    assert value(True) == "true" and value(False) == "false"
    assert value(3) == "3" and value(0.25) == "0.25"
    assert value(Expr("loki.write.default.receiver")) == "loki.write.default.receiver"
    assert value([]) == "[]" and value({}) == "{}"
    assert value(["a", Expr("x.y.z.w")]) == '["a", x.y.z.w]'
    assert value([{"b": "2", "a": 1}]) == '[\n  {\n    "a" = 1,\n    "b" = "2",\n  },\n]'


@pytest.mark.parametrize("bad", [
    lambda: value(float("inf")),
    lambda: value(object()),  # type: ignore[arg-type]
    lambda: Block("loki.write", "not an identifier"),
    lambda: Block("loki write"),
    lambda: Block("logging", attributes=(("not-an-identifier", 1),)),
    lambda: Expr(""),
], ids=["infinity", "unknown type", "label not an identifier", "block name with a space",
        "attribute not an identifier", "empty expression"])
def test_what_alloy_cannot_read_is_refused(bad: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        bad()  # type: ignore[operator]


def test_blocks_nest_and_keep_their_order() -> None:
    node = Block("loki.process", "x", (("forward_to", [Expr("loki.write.y.receiver")]),),
                 (Block("stage.static_labels", attributes=(("values", {"job": "j"}),)), Block("stage.decolorize")))
    assert block(node) == (
        'loki.process "x" {\n'
        "  forward_to = [loki.write.y.receiver]\n"
        "\n"
        "  stage.static_labels {\n"
        "    values = {\n"
        '      "job" = "j",\n'
        "    }\n"
        "  }\n"
        "\n"
        "  stage.decolorize {}\n"
        "}"
    )


def test_function_calls_and_concatenation() -> None:
    assert call("sys.env", "NODE_NAME") == Expr('sys.env("NODE_NAME")')
    assert concat("spec.nodeName=", call("sys.env", "N")) == Expr('"spec.nodeName=" + sys.env("N")')
    with pytest.raises(ValueError):
        call("sys env", "X")
    with pytest.raises(ValueError):
        concat()


def test_output_does_not_depend_on_dict_order() -> None:
    one = Block("stage.labels", attributes=(("values", {"level": "", "service": ""}),))
    other = Block("stage.labels", attributes=(("values", {"service": "", "level": ""}),))
    assert block(one) == block(other)


# --- Reading references back -------------------------------------------------------------------

def test_references_skip_strings_comments_headers_and_calls() -> None:
    text = ('// loki.write.commented.receiver\n'
            'loki.write "a" {\n  endpoint {\n    url = "http://loki.example.com/x.y.z"\n  }\n}\n'
            'loki.process "b" {\n  forward_to = [loki.write.a.receiver]\n  stage.json {\n'
            '    expressions = {"k" = sys.env("X")}\n  }\n}\n')
    assert references(text) == ["loki.write.a.receiver"]
    assert defined_components(text) == {"loki.write.a", "loki.process.b"}


def test_dangling_references_are_found(dev_config: StackConfig) -> None:
    text = alloy.render(alloy.alloy_config(dev_config))
    assert alloy.dangling_references(text.replace('loki.write "default"', 'loki.write "other"')) == [
        "loki.write.default.receiver"]
    # A component that exists, but not the field: loki.write exports `receiver` only.
    assert alloy.dangling_references(text.replace("loki.write.default.receiver", "loki.write.default.targets")) == [
        "loki.write.default.targets"]


# --- The pipeline ------------------------------------------------------------------------------

@pytest.fixture(params=["files", "docker", "kubernetes"])
def variant(request: pytest.FixtureRequest, dev_config: StackConfig) -> StackConfig:
    return {"files": dev_config, "docker": docker(dev_config), "kubernetes": kubernetes()}[request.param]


def test_rendering_is_deterministic(variant: StackConfig) -> None:
    first = alloy.render(alloy.alloy_config(variant))
    assert first == alloy.render(alloy.alloy_config(variant))
    assert first.startswith("// Generated by `python -m stack render`; edit the Python definitions, not this file.\n")


def test_every_reference_points_at_a_defined_component(variant: StackConfig) -> None:
    text = alloy.render(alloy.alloy_config(variant))
    found = references(text)
    assert "loki.process.medianest.receiver" in found and "loki.write.default.receiver" in found
    assert alloy.dangling_references(text) == []


def test_only_bounded_stream_labels(variant: StackConfig) -> None:
    model = alloy.alloy_config(variant)
    assert alloy.stream_labels(model) == {"service", "level", "environment", "job"} == set(LOKI_STREAM_LABELS)
    text = alloy.render(model)
    assert "userId" not in text and "user_id" not in text  # user ids stay in the line


def test_ids_go_to_structured_metadata(variant: StackConfig) -> None:
    model = alloy.alloy_config(variant)
    json_stage = stage(model, alloy.StageJson)
    assert isinstance(json_stage, alloy.StageJson)
    assert {k: json_stage.expressions[k] for k in ("correlation_id", "trace_id", "span_id")} == {
        "correlation_id": "correlationId", "trace_id": "traceId", "span_id": "spanId"}
    metadata = stage(model, alloy.StageStructuredMetadata)
    assert isinstance(metadata, alloy.StageStructuredMetadata)
    assert set(metadata.values) == {"correlation_id", "trace_id", "span_id"}
    assert not set(metadata.values) & alloy.stream_labels(model)


def test_labels_timestamp_and_environment(dev_config: StackConfig) -> None:
    model = alloy.alloy_config(dev_config.model_copy(update={"environment": "staging"}))
    labels = stage(model, alloy.StageLabels)
    assert isinstance(labels, alloy.StageLabels) and dict(labels.values) == {"level": "", "service": ""}
    static = stage(model, alloy.StageStaticLabels)
    assert isinstance(static, alloy.StageStaticLabels) and dict(static.values) == {"environment": "staging"}
    timestamp = stage(model, alloy.StageTimestamp)
    assert timestamp == alloy.StageTimestamp(source="timestamp", format="RFC3339")


def test_logs_are_pushed_to_loki(variant: StackConfig) -> None:
    model = alloy.alloy_config(variant)
    (write,) = components(model, alloy.LokiWrite)
    assert isinstance(write, alloy.LokiWrite) and write.url == "http://loki:3100/loki/api/v1/push"
    assert processor(model).forward_to == (Expr("loki.write.default.receiver"),)
    assert '    url = "http://loki:3100/loki/api/v1/push"\n' in alloy.render(model)


def test_file_source_reads_the_mounted_log_directory(dev_config: StackConfig) -> None:
    config = with_settings(dev_config, "alloy", log_directory="/srv/medianest/logs")
    model = alloy.alloy_config(config)
    (match,) = components(model, alloy.LocalFileMatch)
    assert isinstance(match, alloy.LocalFileMatch)
    # The logs dashboard selects the backend's job.
    assert match.path_targets == ({"__path__": "/var/log/medianest/*.log", "job": config.jobs.backend},)
    assert components(model, alloy.LokiSourceFile) and not components(model, alloy.DiscoveryDocker)
    spec = alloy.service(config)
    assert [(m.host_path, m.path) for m in spec.host_mounts] == [("/srv/medianest/logs", "/var/log/medianest")]
    assert spec.groups == ()


def test_docker_source_reads_the_socket_with_its_group(dev_config: StackConfig) -> None:
    config = with_settings(dev_config, "alloy", log_source="docker", docker_socket_group=998,
                           docker_socket="/run/docker.sock")
    model = alloy.alloy_config(config)
    (discovery,) = components(model, alloy.DiscoveryDocker)
    (source,) = components(model, alloy.LokiSourceDocker)
    assert isinstance(discovery, alloy.DiscoveryDocker) and isinstance(source, alloy.LokiSourceDocker)
    assert discovery.host == source.host == "unix:///var/run/docker.sock"
    assert not components(model, alloy.LocalFileMatch)
    spec = alloy.service(config)
    assert [(m.host_path, m.path) for m in spec.host_mounts] == [("/run/docker.sock", "/var/run/docker.sock")]
    assert spec.groups == ("998",)


def test_kubernetes_source_tails_its_own_nodes_pods_through_the_api() -> None:
    config = kubernetes(kubernetes={"backend": {"namespace": "medianest-prod"}})
    model = alloy.alloy_config(config)
    (discovery,) = components(model, alloy.DiscoveryKubernetes)
    (relabel,) = components(model, alloy.DiscoveryRelabel)
    (source,) = components(model, alloy.LokiSourceKubernetes)
    assert isinstance(discovery, alloy.DiscoveryKubernetes) and isinstance(source, alloy.LokiSourceKubernetes)
    assert discovery.role == "pod" and discovery.namespaces == ("medianest-prod",)
    assert source.targets == Expr("discovery.relabel.pods.output")
    assert source.forward_to == (Expr("loki.process.medianest.receiver"),)
    assert not components(model, alloy.LocalFileMatch) and not components(model, alloy.DiscoveryDocker)
    text = alloy.render(model)
    assert (
        'discovery.kubernetes "pods" {\n'
        '  role = "pod"\n'
        "\n"
        "  namespaces {\n"
        '    names = ["medianest-prod"]\n'
        "  }\n"
        "\n"
        "  selectors {\n"
        '    role = "pod"\n'
        '    field = "spec.nodeName=" + sys.env("NODE_NAME")\n'
        "  }\n"
        "}\n"
    ) in text
    assert 'loki.source.kubernetes "pods" {\n' in text
    # sys.env(...) is a call, not a component: every reference resolves.
    assert "sys.env" not in references(text) and alloy.dangling_references(text) == []
    assert isinstance(relabel, alloy.DiscoveryRelabel) and relabel.targets == discovery.export("targets")


def test_kubernetes_labels_come_from_the_pods_name_label() -> None:
    model = alloy.alloy_config(kubernetes(jobs={"backend": "api"}))
    (relabel,) = components(model, alloy.DiscoveryRelabel)
    assert isinstance(relabel, alloy.DiscoveryRelabel)
    app = "__meta_kubernetes_pod_label_app_kubernetes_io_name"
    assert [(r.source_labels, r.regex, r.replacement, r.target_label) for r in relabel.rules] == [
        ((app,), "(.*)", "$1", "service"),
        # Any workload: its name; the backend's pods (its scrape selector): the backend's job.
        ((app,), "(.*)", "$1", "job"),
        ((app,), "medianest-backend", "api", "job"),
    ]
    # No pod name, uid or container as a label: loki.source.kubernetes's `instance` is dropped.
    assert not any("pod_name" in s or "uid" in s for r in relabel.rules for s in r.source_labels)
    drop = stage(model, alloy.StageLabelDrop)
    assert drop == alloy.StageLabelDrop(values=("instance",))
    assert alloy.stream_labels(model) == set(LOKI_STREAM_LABELS)


def test_kubernetes_backend_selector_of_several_labels_is_escaped() -> None:
    config = kubernetes(kubernetes={"backend": {"podLabels": {"tier": "api.v2", "app.kubernetes.io/name": "mn"}}})
    (relabel,) = components(alloy.alloy_config(config), alloy.DiscoveryRelabel)
    assert isinstance(relabel, alloy.DiscoveryRelabel)
    backend_rule = relabel.rules[-1]
    assert backend_rule.source_labels == (
        "__meta_kubernetes_pod_label_app_kubernetes_io_name", "__meta_kubernetes_pod_label_tier")
    assert backend_rule.regex == r"mn;api\.v2"


def test_guard_sees_the_instance_label_of_kubernetes_sources() -> None:
    # loki.source.kubernetes labels every entry `instance="namespace/pod:container"`; the pipeline drops it.
    model = alloy.alloy_config(kubernetes())
    process = processor(model)
    kept = tuple(s for s in process.stages if not isinstance(s, alloy.StageLabelDrop))
    without_drop = alloy.AlloyConfig(model.logging, tuple(
        alloy.LokiProcess(c.label, c.forward_to, kept) if c is process else c for c in model.components))
    with pytest.raises(ValueError, match="instance"):
        alloy.check_stream_labels(without_drop)


def test_kubernetes_service_has_no_host_access() -> None:
    spec = alloy.service(kubernetes())
    assert spec.host_mounts == () and spec.groups == () and spec.user == "473:473"
    assert spec.pod_env == {"NODE_NAME": "spec.nodeName"}
    # Read positions still persist in the data volume (an emptyDir on a DaemonSet).
    assert [(v.name, v.path) for v in spec.volumes] == [("alloy-data", "/var/lib/alloy/data")]


@pytest.mark.parametrize("log_source", ["files", "docker"])
def test_other_sources_get_no_pod_env(dev_config: StackConfig, log_source: str) -> None:
    config = with_settings(dev_config, "alloy", log_source=log_source, docker_socket_group=998)
    model = alloy.alloy_config(config)
    assert not components(model, alloy.DiscoveryKubernetes) and not components(model, alloy.LokiSourceKubernetes)
    assert "instance" not in alloy.render(model)
    assert alloy.service(config).pod_env == {}


@pytest.mark.parametrize(("extra", "named"), [
    (alloy.StageLabels(values={"user_id": "userId"}), "user_id"),
    (alloy.StageStaticLabels(values={"trace_id": "x"}), "trace_id"),
], ids=["a user id label", "a trace id label"])
def test_guard_refuses_unbounded_labels(dev_config: StackConfig, extra: alloy.Stage, named: str) -> None:
    model = alloy.alloy_config(dev_config)
    process = processor(model)
    bad = alloy.LokiProcess(process.label, process.forward_to, (*process.stages, extra))
    with pytest.raises(ValueError, match=rf"stream label\(s\) {named} not in the bounded set"):
        alloy.check_stream_labels(alloy.AlloyConfig(model.logging, tuple(
            bad if c is process else c for c in model.components)))


def test_guard_sees_the_filename_label_of_file_sources(dev_config: StackConfig) -> None:
    # loki.source.file labels every entry with its file's path; the pipeline drops it.
    model = alloy.alloy_config(dev_config)
    process = processor(model)
    kept = tuple(s for s in process.stages if not isinstance(s, alloy.StageLabelDrop))
    without_drop = alloy.AlloyConfig(model.logging, tuple(
        alloy.LokiProcess(c.label, c.forward_to, kept) if c is process else c for c in model.components))
    with pytest.raises(ValueError, match="filename"):
        alloy.check_stream_labels(without_drop)


# --- The service -------------------------------------------------------------------------------

def test_service_spec(dev_config: StackConfig) -> None:
    config = with_settings(dev_config, "alloy", publish=12345, cpus=0.5)
    spec = alloy.service(config)
    settings = config.services.alloy
    assert spec.name == "alloy" and spec.user == "473:473"
    assert spec.image.reference == f"{settings.image.repository}:{settings.image.tag}"
    assert spec.args == ("run", "/etc/alloy/config.alloy", "--storage.path=/var/lib/alloy/data",
                         "--server.http.listen-addr=0.0.0.0:12345", "--disable-reporting")
    (config_file,) = spec.files
    assert (config_file.source, config_file.path) == ("alloy/config.alloy", "/etc/alloy/config.alloy")
    assert config_file.content == alloy.render(alloy.alloy_config(config))
    assert spec.config_dir == "/etc/alloy"
    assert [(v.name, v.path) for v in spec.volumes] == [("alloy-data", "/var/lib/alloy/data")]
    assert spec.port("http").container_port == 12345 and spec.port("http").host_port == 12345
    assert spec.metrics is not None and (spec.metrics.job, spec.metrics.port) == (config.jobs.alloy, 12345)
    assert spec.resources.memory_limit_bytes == memory_bytes(settings.memory) and spec.resources.cpu_limit == 0.5
    assert spec.health is not None and (spec.health.port, spec.health.path) == (12345, "/-/ready")


def test_port_is_not_published_unless_asked(dev_config: StackConfig) -> None:
    assert alloy.service(with_settings(dev_config, "alloy", publish=None)).port("http").host_port is None


class _Ready(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        self.send_response(self.status if self.path == "/-/ready" else 404)
        self.end_headers()
        self.wfile.write(b"Alloy is ready.\n")

    def log_message(self, *args: object) -> None:
        pass


Server = tuple[ThreadingHTTPServer, type[_Ready]]


@pytest.fixture
def ready_server() -> Iterator[Server]:
    handler = type("Handler", (_Ready,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, handler
    server.shutdown()
    server.server_close()


def _probe(dev_config: StackConfig, port: int) -> int:
    health = alloy.service(dev_config).health
    assert health is not None and health.command[:2] == ("bash", "-c")
    script = health.command[2].replace(f"/dev/tcp/127.0.0.1/{alloy.HTTP_PORT}", f"/dev/tcp/127.0.0.1/{port}")
    assert script != health.command[2]
    return subprocess.run(["bash", "-c", script], capture_output=True, timeout=10).returncode


@pytest.mark.parametrize(("status", "protocol", "healthy"), [
    (200, "HTTP/1.0", True), (200, "HTTP/1.1", True), (503, "HTTP/1.1", False), (404, "HTTP/1.0", False),
], ids=["ready", "ready, answered as HTTP/1.1 (Go's server)", "not ready", "no such path"])
def test_health_probe_passes_only_on_200(dev_config: StackConfig, ready_server: Server,
                                         status: int, protocol: str, healthy: bool) -> None:
    server, handler = ready_server
    handler.status, handler.protocol_version = status, protocol
    assert (_probe(dev_config, server.server_address[1]) == 0) is healthy


def test_health_probe_fails_when_nothing_listens(dev_config: StackConfig) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    assert _probe(dev_config, port) != 0
