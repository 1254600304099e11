"""Running the Pulumi program under Pulumi's mock runtime (no CLI, no engine, no providers) and
recording every resource it declares: its type, inputs and resource options."""

from __future__ import annotations

import json
import runpy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pulumi
import yaml

from stack.config import PROJECT, ROOT, SECRETS_KEY

CONTAINER = "docker:index/container:Container"
IMAGE_ID = "sha256:" + "0" * 64
# What the mock pulumi-random returns: tests look for it in plain text.
GENERATED_PASSWORD = "generated-Pa55word-from-pulumi-random"
# Pulumi marks a secret value on the wire with this signature key.
SECRET_SIG = "4dabf18193072939515e22adb298388d"


@dataclass
class Resource:
    typ: str
    name: str
    inputs: dict[str, Any]
    retain_on_delete: bool = False
    delete_before_replace: bool = False
    protect: bool = False


@dataclass
class Recorded(pulumi.runtime.Mocks):
    resources: dict[str, Resource] = field(default_factory=dict)
    # Every resource in order; names repeat across types (a Kubernetes Service and StatefulSet).
    declared: list[Resource] = field(default_factory=list)
    options: dict[tuple[str, str], pulumi.ResourceOptions] = field(default_factory=dict)
    # The component resources (MonitoringStack and one per service), apart from what they hold.
    components: list[Resource] = field(default_factory=list)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        if not args.custom:
            self.components.append(Resource(args.typ, args.name, args.inputs))
            return f"{args.name}_id", {}
        opts = self.options.get((args.typ, args.name), pulumi.ResourceOptions())
        resource = Resource(args.typ, args.name, args.inputs, bool(opts.retain_on_delete),
                            bool(opts.delete_before_replace), bool(opts.protect))
        self.resources[args.name] = resource
        self.declared.append(resource)
        outputs = dict(args.inputs)
        if args.typ == "docker:index/remoteImage:RemoteImage":
            outputs["imageId"] = IMAGE_ID
        if args.typ == "random:index/randomPassword:RandomPassword":
            outputs["result"] = GENERATED_PASSWORD
        return f"{args.name}_id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}

    def of_type(self, typ: str) -> dict[str, Resource]:
        return {n: r for n, r in self.resources.items() if r.typ == typ}

    @property
    def containers(self) -> dict[str, Resource]:
        """The containers that run, by component."""
        return {n: r for n, r in self.of_type(CONTAINER).items() if r.inputs.get("start", True)}

    @property
    def config_carriers(self) -> dict[str, Resource]:
        """The containers created only to write a component's config volume, by component."""
        return {n.removesuffix("-config-carrier"): r for n, r in self.of_type(CONTAINER).items()
                if not r.inputs.get("start", True)}

    @property
    def volumes(self) -> dict[str, Resource]:
        return self.of_type("docker:index/volume:Volume")


def stack_config(stack: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]


def run_program(stack: str, overrides: dict[str, Any] | None = None, secrets: dict[str, str] | None = None,
                mocks: Recorded | None = None) -> tuple[Recorded, dict[str, Any]]:
    """Run __main__.py for `stack` with its Pulumi.<stack>.yaml, `overrides` of project keys and
    `secrets` as `medianest-observability:secrets`; the recorded resources (into `mocks`, a fresh
    Recorded by default) and the program's globals."""
    config = stack_config(stack)
    for key, value in (overrides or {}).items():
        config[f"{PROJECT}:{key}"] = merged(config.get(f"{PROJECT}:{key}"), value)
    secret_keys = []
    if secrets is not None:
        config[f"{PROJECT}:{SECRETS_KEY}"] = secrets
        secret_keys.append(f"{PROJECT}:{SECRETS_KEY}")
    mocks = Recorded() if mocks is None else mocks
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False)
    pulumi.runtime.set_all_config({k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()},
                                  secret_keys)
    program: dict[str, Any] = {}

    def record_options(args: pulumi.ResourceTransformationArgs) -> None:
        mocks.options[(args.type_, args.name)] = args.opts

    @pulumi.runtime.test
    def run() -> None:
        pulumi.runtime.register_stack_transformation(record_options)
        program.update(runpy.run_path(str(ROOT / "__main__.py")))

    run()
    return mocks, program


def unwrap(value: Any) -> Any:
    """A value without its secret marker. Pulumi marks secrets per top-level input, so one secret
    upload makes a container's whole `uploads` list secret (encrypted in state)."""
    if isinstance(value, dict) and SECRET_SIG in value:
        return unwrap(value["value"])
    return value


def merged(base: Any, override: Any) -> Any:
    """`override` laid over `base`, objects merged key by key (as `pulumi config set --path` does)."""
    if isinstance(base, dict) and isinstance(override, dict):
        return {**base, **{k: merged(base.get(k), v) for k, v in override.items()}}
    return override


def plain_strings(value: Any, secret: bool = False) -> Iterator[tuple[str, bool]]:
    """Every string in a resource's inputs, with whether it travels as a Pulumi secret."""
    if isinstance(value, dict):
        inside = secret or value.get(SECRET_SIG) is not None
        for key, item in value.items():
            if key != SECRET_SIG:
                yield from plain_strings(item, inside)
    elif isinstance(value, list):
        for item in value:
            yield from plain_strings(item, secret)
    elif isinstance(value, str):
        yield value, secret
