"""`pulumi up` and `pulumi destroy` of the dev stack's Docker resources on a real engine, where
the Pulumi engine cannot run: its CLI builds from the Go module proxy, but neither the Python
language host nor pulumi-docker's provider is served (issue 16's spike).

The program runs under Pulumi's mock runtime (tests/pulumi_mocks.py) with one provider call made
real: a `RemoteImage` resolves to the image on the engine, as pulumi-docker resolves an image
already present without pulling it (and fails here, with no registry, where it is missing). Every
other `docker:*` resource it declares is then applied with exactly its recorded inputs, through the
Docker Engine API calls pulumi-docker's provider makes: create the container, upload each file as a
tar at `/` (its owner, group and mode in the tar header), start it, wait until healthy when `wait`
is set; stop with the grace period and remove on delete.

Like Pulumi, the harness keeps a state (the inputs and engine id of every resource it applied)
and plans by comparing inputs: a resource whose inputs are unchanged is left alone, one whose
inputs changed is replaced (pulumi-docker forces a new container for every input our program
sets except restart, memory and memory_swap), one no longer declared is deleted, except where
`retain_on_delete` keeps it on the engine. An input the harness does not know how to apply is an
error, never dropped: a new input in the program must be taught here first.
"""

from __future__ import annotations

import contextlib
import io
import re
import tarfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.errors
import pulumi
from docker.types import Healthcheck, LogConfig, Mount
from pulumi_mocks import CONTAINER, Recorded, Resource, unwrap

from stack.sandbox import processes
from stack.sandbox.run import UNAVAILABLE
from tests.docker_engine import DockerEngine

NETWORK = "docker:index/network:Network"
VOLUME = "docker:index/volume:Volume"
IMAGE = "docker:index/remoteImage:RemoteImage"
# Created on the engine in this order, deleted in the reverse one (what depends on what).
ORDER = (IMAGE, NETWORK, VOLUME, CONTAINER)
NANOSECONDS = {"h": 3600 * 10**9, "m": 60 * 10**9, "s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
MIB = 1024 * 1024


class HarnessError(RuntimeError):
    pass


def duration_ns(value: str) -> int:
    """A Go duration as pulumi-docker reads it ("30s", "1m30s", "500ms") in nanoseconds."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|ns|m|s)", value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise HarnessError(f"not a duration: {value!r}")
    return round(sum(float(number) * NANOSECONDS[unit] for number, unit in parts))


class EngineImages(Recorded):
    """The mock runtime, with RemoteImage answered by the engine: the local image's id."""

    def __init__(self, client: docker.APIClient) -> None:
        super().__init__()
        self.client = client

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        resource_id, outputs = super().new_resource(args)
        if args.typ == IMAGE:
            name = args.inputs["name"]
            try:
                outputs["imageId"] = self.client.inspect_image(name)["Id"]
            except docker.errors.ImageNotFound:
                raise HarnessError(f"{args.name}: image {name} is not on the engine, and pulumi-docker would pull "
                                   "it from a registry this machine cannot reach (`python -m stack.images build`)"
                                   ) from None
        return resource_id, outputs


@dataclass(frozen=True)
class Step:
    op: str  # create, replace, delete or same
    typ: str
    name: str

    def __str__(self) -> str:
        return f"{self.op} {self.typ.rsplit(':', 1)[-1]} {self.name}"


@dataclass
class Applied:
    resource: Resource
    engine_id: str


@dataclass
class Plan:
    steps: list[Step]

    def changes(self) -> list[Step]:
        return [s for s in self.steps if s.op != "same"]

    def names(self, op: str, typ: str = CONTAINER) -> set[str]:
        return {s.name for s in self.steps if s.op == op and s.typ == typ}


def _key(resource: Resource) -> tuple[str, str]:
    return resource.typ, resource.name


def _docker_resources(recorded: Recorded) -> list[Resource]:
    ours = [r for r in recorded.declared if r.typ.startswith("docker:")]
    unknown = sorted({r.typ for r in ours} - set(ORDER))
    if unknown:
        raise HarnessError(f"the harness does not apply {', '.join(unknown)}")
    return sorted(ours, key=lambda r: ORDER.index(r.typ))  # stable: declaration order within a type


def plan(state: Mapping[tuple[str, str], Applied], recorded: Recorded) -> Plan:
    """What `up` would do, as Pulumi's preview says it: each declared resource created, replaced
    (its inputs changed) or left the same; each applied one no longer declared deleted, containers
    first."""
    declared = _docker_resources(recorded)
    steps = []
    for resource in declared:
        applied = state.get(_key(resource))
        if applied is None:
            steps.append(Step("create", resource.typ, resource.name))
        elif applied.resource.inputs != resource.inputs:
            steps.append(Step("replace", resource.typ, resource.name))
        else:
            steps.append(Step("same", resource.typ, resource.name))
    wanted = {_key(r) for r in declared}
    gone = [a.resource for key, a in state.items() if key not in wanted]
    steps += [Step("delete", r.typ, r.name) for r in sorted(gone, key=lambda r: -ORDER.index(r.typ))]
    return Plan(steps)


@dataclass
class Harness:
    engine: DockerEngine
    client: docker.APIClient = field(init=False)
    # Like a Pulumi stack's state: what was applied, by (type, name).
    state: dict[tuple[str, str], Applied] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.client = docker.APIClient(base_url=self.engine.host, version="auto", timeout=120)

    def mocks(self) -> EngineImages:
        return EngineImages(self.client)

    # --- planning ------------------------------------------------------------------------------

    def plan(self, recorded: Recorded) -> Plan:
        return plan(self.state, recorded)

    # --- applying ------------------------------------------------------------------------------

    def up(self, recorded: Recorded) -> Plan:
        """Apply what `recorded` declares; the plan it carried out. Containers with `wait` must be
        healthy within their `waitTimeout`, as `pulumi up` requires."""
        plan = self.plan(recorded)
        declared = {_key(r): r for r in _docker_resources(recorded)}
        # Replacements first delete the old resource (the program sets delete_before_replace on
        # containers: their names are fixed), containers before the volumes and networks they use.
        for step in sorted((s for s in plan.steps if s.op in ("replace", "delete")),
                           key=lambda s: -ORDER.index(s.typ)):
            self._delete(self.state.pop((step.typ, step.name)))
        waiting = []
        for step in plan.steps:
            if step.op in ("create", "replace"):
                resource = declared[(step.typ, step.name)]
                engine_id = self._create(resource)
                self.state[_key(resource)] = Applied(resource, engine_id)
                if resource.typ == CONTAINER and resource.inputs.get("wait"):
                    waiting.append((resource, engine_id))
        # pulumi-docker waits for each container in parallel with the others' creation.
        self._wait_healthy(waiting)
        return plan

    def destroy(self) -> list[Step]:
        """Delete every resource, newest kind first; retained ones stay on the engine."""
        steps = []
        for key in sorted(self.state, key=lambda k: -ORDER.index(k[0])):
            applied = self.state.pop(key)
            self._delete(applied)
            steps.append(Step("delete", *key))
        return steps

    def _delete(self, applied: Applied) -> None:
        resource = applied.resource
        if resource.retain_on_delete:
            return  # Pulumi forgets it; the engine keeps it
        if resource.typ == CONTAINER:
            grace = int(resource.inputs.get("destroyGraceSeconds", 0))
            with contextlib.suppress(docker.errors.NotFound):
                self.client.stop(applied.engine_id, timeout=grace)
                # pulumi-docker's removeVolumes defaults to true: the container's anonymous volumes
                # go with it (never a named one).
                self.client.remove_container(applied.engine_id, force=True,
                                             v=resource.inputs.get("removeVolumes", True))
        elif resource.typ == VOLUME:
            self.client.remove_volume(applied.engine_id)
        elif resource.typ == NETWORK:
            self.client.remove_network(applied.engine_id)
        # A RemoteImage with keepLocally leaves the image where it was.

    def _create(self, resource: Resource) -> str:
        inputs = {k: unwrap(v) for k, v in resource.inputs.items()}
        if resource.typ == IMAGE:
            _known(resource, inputs, {"name", "keepLocally"})
            return self.client.inspect_image(inputs["name"])["Id"]
        if resource.typ == NETWORK:
            _known(resource, inputs, {"name", "driver", "labels"})
            created = self.client.create_network(inputs["name"], driver=inputs.get("driver"),
                                                 labels=_labels(inputs), check_duplicate=True)
            return created["Id"]
        if resource.typ == VOLUME:
            _known(resource, inputs, {"name", "labels"})
            return self.client.create_volume(inputs["name"], labels=_labels(inputs))["Name"]
        return self._create_container(resource, inputs)

    def _create_container(self, resource: Resource, inputs: Mapping[str, Any]) -> str:
        _known(resource, inputs, CONTAINER_INPUTS)
        client = self.client
        ports = [(int(p["internal"]), p.get("protocol", "tcp")) for p in inputs.get("ports", [])]
        attached = inputs.get("networksAdvanced", [])
        network_mode = attached[0]["name"] if attached else inputs.get("networkMode")
        host_config = client.create_host_config(
            binds=[_bind(v) for v in inputs.get("volumes", [])],
            mounts=[_mount(m) for m in inputs.get("mounts", [])] or None,
            tmpfs=inputs.get("tmpfs"),
            port_bindings={f"{p['internal']:.0f}/{p.get('protocol', 'tcp')}": (p["ip"], int(p["external"]))
                           for p in inputs.get("ports", [])},
            extra_hosts={h["host"]: h["ip"] for h in inputs.get("hosts", [])},
            network_mode=network_mode,
            read_only=inputs.get("readOnly", False),
            cap_drop=inputs.get("capabilities", {}).get("drops"),
            cap_add=inputs.get("capabilities", {}).get("adds"),
            security_opt=inputs.get("securityOpts"),
            group_add=inputs.get("groupAdds"),
            pid_mode=inputs.get("pidMode"),
            mem_limit=int(inputs["memory"]) * MIB if "memory" in inputs else None,
            memswap_limit=int(inputs["memorySwap"]) * MIB if "memorySwap" in inputs else None,
            nano_cpus=round(float(inputs["cpus"]) * 10**9) if "cpus" in inputs else None,
            log_config=LogConfig(type=inputs.get("logDriver", "json-file"), config=inputs.get("logOpts", {})),
            restart_policy={"Name": inputs["restart"]} if "restart" in inputs else None,
        )
        created = client.create_container(
            inputs["image"], command=inputs.get("command"), name=inputs["name"], user=inputs.get("user"),
            environment=inputs.get("envs"), labels=_labels(inputs), ports=ports or None,
            healthcheck=_healthcheck(inputs.get("healthcheck")), host_config=host_config,
            networking_config=client.create_networking_config(
                {n["name"]: client.create_endpoint_config(aliases=n.get("aliases")) for n in attached}))
        container_id = created["Id"]
        for upload in inputs.get("uploads", []):
            client.put_archive(container_id, "/", _upload_tar(resource.name, upload))
        if inputs.get("start", True):
            client.start(container_id)
        return container_id

    def _wait_healthy(self, waiting: Sequence[tuple[Resource, str]]) -> None:
        began = time.monotonic()
        pending = {resource.name: (resource, container_id) for resource, container_id in waiting}
        while pending:
            for resource, container_id in list(pending.values()):
                state = self.client.inspect_container(container_id)["State"]
                status = state.get("Health", {}).get("Status")
                if status == "healthy":
                    del pending[resource.name]
                elif not state["Running"] or time.monotonic() - began > int(resource.inputs["waitTimeout"]):
                    logs = self.client.logs(container_id, tail=15).decode(errors="replace")
                    health = state.get("Health", {}).get("Log", [])[-1:]
                    raise HarnessError(f"container {resource.name} did not become healthy ({state['Status']}, "
                                       f"health {status}): {health}\n{logs}")
            time.sleep(1)

    # --- reading the engine ---------------------------------------------------------------------

    def container(self, name: str) -> dict[str, Any]:
        """`docker inspect` of the container the program declared as `name`."""
        return self.client.inspect_container(self.state[(CONTAINER, name)].engine_id)

    def containers(self, running: bool = True) -> Iterator[tuple[str, dict[str, Any]]]:
        """`docker inspect` of each container declared to run (`running`), or of each declared
        only to be created (the config carriers)."""
        for (typ, name), applied in sorted(self.state.items()):
            if typ == CONTAINER and applied.resource.inputs.get("start", True) == running:
                yield name, self.client.inspect_container(applied.engine_id)

    def exec(self, name: str, *command: str) -> tuple[int, str]:
        """Run `command` in a container; its exit code and output."""
        client = self.client
        execution = client.exec_create(self.state[(CONTAINER, name)].engine_id, list(command))
        output = client.exec_start(execution["Id"]).decode(errors="replace")
        return client.exec_inspect(execution["Id"])["ExitCode"], output


# Every input of a container our program may set; another one fails until it is taught here.
CONTAINER_INPUTS = {
    "name", "image", "command", "envs", "user", "groupAdds", "readOnly", "tmpfs", "volumes", "mounts", "uploads",
    "networksAdvanced", "hosts", "ports", "healthcheck", "wait", "waitTimeout", "restart", "capabilities",
    "securityOpts", "pidMode", "memory", "memorySwap", "cpus", "logDriver", "logOpts", "labels",
    "destroyGraceSeconds", "start", "mustRun", "networkMode", "removeVolumes",
}


def _known(resource: Resource, inputs: Mapping[str, Any], known: set[str]) -> None:
    unknown = sorted(set(inputs) - known)
    if unknown:
        raise HarnessError(f"{resource.typ} {resource.name}: the harness does not apply {', '.join(unknown)}")


def _labels(inputs: Mapping[str, Any]) -> dict[str, str]:
    return {label["label"]: label["value"] for label in inputs.get("labels", [])}


def _bind(volume: Mapping[str, Any]) -> str:
    """A `volumes` entry as the provider passes it: a named volume or a host path, read-only or not."""
    source = volume.get("volumeName") or volume["hostPath"]
    return f"{source}:{volume['containerPath']}:{'ro' if volume.get('readOnly') else 'rw'}"


def _mount(mount: Mapping[str, Any]) -> Mount:
    options = mount.get("bindOptions", {})
    return Mount(mount["target"], mount["source"], type=mount["type"], read_only=mount.get("readOnly", False),
                 propagation=options.get("propagation"))


def _healthcheck(check: Mapping[str, Any] | None) -> Healthcheck | None:
    if check is None:
        return None
    health = Healthcheck(test=check["tests"], interval=duration_ns(check["interval"]),
                         timeout=duration_ns(check["timeout"]), retries=int(check["retries"]),
                         start_period=duration_ns(check["startPeriod"]))
    if "startInterval" in check:
        # Sent as pulumi-docker sends it; an engine older than API 1.44 (Docker 25) ignores it.
        health["StartInterval"] = duration_ns(check["startInterval"])
    return health


def _upload_tar(container: str, upload: Mapping[str, Any]) -> bytes:
    """One upload as the provider sends it: a tar of one file extracted at `/`."""
    unknown = sorted(set(upload) - {"file", "content", "permissions", "owner", "group"})
    if unknown:
        raise HarnessError(f"container {container}: the harness does not apply upload fields {', '.join(unknown)}")
    data = upload["content"].encode()
    info = tarfile.TarInfo(upload["file"].lstrip("/"))
    info.size, info.mode = len(data), int(upload.get("permissions", "0644"), 8)
    info.uid, info.gid = int(upload.get("owner", 0)), int(upload.get("group", 0))
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


# --- the test stack ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ports:
    """On the host, chosen before the program runs: the test stack names them."""

    simulator: int
    sink: int
    postgres: int
    redis: int
    prometheus: int  # published on loopback
    alertmanager: int

    @classmethod
    def free(cls) -> Ports:
        return cls(*processes.free_ports(6))


def inside(port: int) -> str:
    """The host's `port`, as a container reaches it."""
    return f"host.docker.internal:{port}"


def engine_stack_overrides(ports: Ports, database: str, exporter_user: str) -> dict[str, Any]:
    """The overrides laid over `dev` for the real engine: what has no binary here switched off (as
    in the sandbox), the host's services on `ports`, Prometheus and Alertmanager published on
    loopback to be asked, the sandbox's short intervals so a fault pages in seconds."""
    off = {"enabled": False}
    return {
        "backend": {"targets": [inside(ports.simulator)]},
        "alerting": {"localWebhookUrl": f"http://{inside(ports.sink)}"},
        "services": {
            **{component: off for component in UNAVAILABLE},
            "prometheus": {"publish": ports.prometheus, "scrapeInterval": "2s", "evaluationInterval": "2s"},
            "alertmanager": {"publish": ports.alertmanager},
            "postgresExporter": {"dataSourceUri": f"{inside(ports.postgres)}/{database}?sslmode=disable",
                                 "user": exporter_user, "password": True},
            "redisExporter": {"address": f"redis://{inside(ports.redis)}"},
            "blackboxExporter": {"targets": [f"http://{inside(ports.simulator)}/api/health"]},
        },
    }
