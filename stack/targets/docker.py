"""The Docker target (the `dev` stack): each ServiceSpec becomes a hardened container on one
private network, its data on named volumes that outlive it.

- Configs and secrets live in a per-component config volume, mounted read-only at the spec's
  `config_dir`. They reach it through a *config carrier*: a container of the same image that is
  created, given the files as uploads, and never started. The component's own container cannot
  take them: pulumi-docker extracts uploads at `/`, and Docker refuses any upload there into a
  container with a read-only root filesystem ("container rootfs is marked read-only", found on a
  real engine; the mocks accepted it). The volume's name carries a hash of what it holds, so a
  config change creates a fresh one (no stale rule file or dashboard survives) while data volumes
  keep their names and are retained when deleted.
- A container is replaced when its config volume changes; `wait` makes `pulumi up` fail when
  the new one does not become healthy.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence

import pulumi
import pulumi_docker as docker

from stack.config import StackConfig
from stack.secrets import secret_content
from stack.services.spec import ServiceSpec
from stack.targets.components import Component

TMP = "/tmp"
LOOPBACK = "127.0.0.1"
# The host, from inside a container: a backend or database run outside Docker on a laptop.
HOST_GATEWAY = docker.ContainerHostArgs(host="host.docker.internal", ip="host-gateway")
MIB = 1024 * 1024


def prefix(config: StackConfig) -> str:
    return f"medianest-{config.environment}"


def config_volume_name(config: StackConfig, spec: ServiceSpec) -> str:
    """Named by a hash of the files and of the secrets' names and paths (never their values)."""
    digest = hashlib.sha256()
    for file in sorted(spec.files, key=lambda f: f.path):
        digest.update(f"{file.path}\0{file.content}\0".encode())
    for secret in sorted(spec.secrets, key=lambda s: s.path):
        digest.update(f"{secret.name}\0{secret.path}\0".encode())
    return f"{prefix(config)}-{spec.name}-config-{digest.hexdigest()[:12]}"


def _labels(config: StackConfig, component: str) -> list[dict[str, str]]:
    return [{"label": "com.medianest.environment", "value": config.environment},
            {"label": "com.medianest.component", "value": component}]


def _uploads(spec: ServiceSpec, secrets: Mapping[str, pulumi.Input[str]]) -> list[docker.ContainerUploadArgs]:
    uid, _, gid = spec.user.partition(":")
    files = [docker.ContainerUploadArgs(file=f.path, content=f.content, permissions="0444")
             for f in sorted(spec.files, key=lambda f: f.path)]
    # Readable by the component's user alone; the value is a Pulumi secret, encrypted in state.
    hidden = [docker.ContainerUploadArgs(file=s.path, content=secret_content(s, secrets[s.name]), owner=uid,
                                         group=gid or uid, permissions="0400")
              for s in sorted(spec.secrets, key=lambda s: s.path)]
    return files + hidden


def _healthcheck(spec: ServiceSpec) -> docker.ContainerHealthcheckArgs | None:
    if spec.health is None:
        return None
    health = spec.health
    return docker.ContainerHealthcheckArgs(
        tests=["CMD", *health.command], interval=f"{health.interval_seconds}s", timeout=f"{health.timeout_seconds}s",
        retries=health.retries, start_period=f"{health.start_period_seconds}s", start_interval="2s")


def wait_timeout(spec: ServiceSpec) -> int:
    """Long enough for the start period and every retry: then `up` fails on an unhealthy container."""
    if spec.health is None:
        return 60
    health = spec.health
    return health.start_period_seconds + health.retries * (health.interval_seconds + health.timeout_seconds) + 30


def config_carrier(config: StackConfig, spec: ServiceSpec, image: docker.RemoteImage, volume: docker.Volume,
                   secrets: Mapping[str, pulumi.Input[str]], component: Component) -> docker.Container:
    """Writes the spec's files and secrets into its config volume: created with them as uploads
    (its own root filesystem writable, so Docker accepts them), never started, on no network."""
    return docker.Container(
        f"{spec.name}-config-carrier",
        name=f"{prefix(config)}-{spec.name}-config",
        image=image.image_id,
        start=False,
        must_run=False,
        network_mode="none",
        volumes=[docker.ContainerVolumeArgs(volume_name=volume.name, container_path=spec.config_dir)],
        uploads=_uploads(spec, secrets),
        labels=_labels(config, spec.name),
        opts=component.options(delete_before_replace=True),
    )


def container(config: StackConfig, spec: ServiceSpec, network: docker.Network,
              secrets: Mapping[str, pulumi.Input[str]], component: Component) -> docker.Container:
    name = prefix(config)
    image = docker.RemoteImage(f"{spec.name}-image", name=spec.image.reference, keep_locally=True,
                               opts=component.options())
    data = [
        (volume, docker.Volume(volume.name, name=f"{name}-{volume.name}", labels=_labels(config, spec.name),
                               opts=component.options(retain_on_delete=True)))
        for volume in spec.volumes
    ]
    config_volume = docker.Volume(f"{spec.name}-config", name=config_volume_name(config, spec),
                                  labels=_labels(config, spec.name), opts=component.options())
    carrier = config_carrier(config, spec, image, config_volume, secrets, component)
    # Read-only: the component reads its configuration, never writes it.
    mounts = [docker.ContainerVolumeArgs(volume_name=config_volume.name, container_path=spec.config_dir,
                                         read_only=True)]
    mounts += [docker.ContainerVolumeArgs(volume_name=v.name, container_path=volume.path) for volume, v in data]
    mounts += [docker.ContainerVolumeArgs(host_path=m.host_path, container_path=m.path, read_only=True)
               for m in spec.host_mounts if not m.follow_mounts]
    # Bind mounts with a propagation mode are only expressible as `mounts`.
    binds = [docker.ContainerMountArgs(type="bind", source=m.host_path, target=m.path, read_only=True,
                                       bind_options=docker.ContainerMountBindOptionsArgs(propagation="rslave"))
             for m in spec.host_mounts if m.follow_mounts]
    memory_mib = math.ceil(spec.resources.memory_limit_bytes / MIB)
    return docker.Container(
        spec.name,
        name=f"{name}-{spec.name}",
        image=image.image_id,
        command=list(spec.args) or None,
        envs=[f"{k}={v}" for k, v in sorted(spec.env.items())],
        user=spec.user,
        group_adds=list(spec.groups) or None,
        read_only=spec.read_only_root,
        # Scratch space that never touches the image: the root filesystem stays read-only.
        tmpfs=None if any(v.path == TMP for v in spec.volumes) else {TMP: "rw,noexec,nosuid,size=64m"},
        volumes=mounts,
        mounts=binds or None,
        networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=network.name, aliases=[spec.name])],
        hosts=[HOST_GATEWAY],
        ports=[docker.ContainerPortArgs(internal=p.container_port, external=p.host_port, ip=LOOPBACK,
                                        protocol=p.protocol)
               for p in spec.ports if p.host_port is not None],
        healthcheck=_healthcheck(spec),
        wait=spec.health is not None,
        wait_timeout=wait_timeout(spec),
        restart="unless-stopped",
        capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"]),
        security_opts=["no-new-privileges:true"],
        pid_mode="host" if spec.host_pid else None,
        memory=memory_mib,
        memory_swap=memory_mib,  # no swap: a leak hits the limit instead of slowing the host down
        cpus=None if spec.resources.cpu_limit is None else str(spec.resources.cpu_limit),
        log_driver="json-file",
        log_opts={"max-size": "10m", "max-file": "3"},
        labels=_labels(config, spec.name),
        destroy_grace_seconds=30,
        # The container name is fixed, so the old one must go before its replacement starts.
        opts=component.options(delete_before_replace=True, depends_on=[carrier]),
    )


def url(spec: ServiceSpec, network: str) -> str:
    """Where a user reaches a component's UI or API: its loopback port when published."""
    port = next(p for p in spec.ports if p.name in ("http", "ui"))
    if port.host_port is not None:
        return f"http://{LOOPBACK}:{port.host_port}"
    return f"http://{spec.name}:{port.container_port} (network {network} only: set publish to reach it)"


def deploy(config: StackConfig, specs: Sequence[ServiceSpec], secrets: Mapping[str, pulumi.Input[str]],
           components: Mapping[str, Component], shared: pulumi.ResourceOptions) -> dict[str, str]:
    """Create every component's resources under it (the network, which they share, with `shared`);
    returns the URL of each by name."""
    network_name = f"{prefix(config)}-monitoring"
    network = docker.Network("network", name=network_name, driver="bridge",
                             labels=_labels(config, "network"), opts=shared)
    for spec in specs:
        container(config, spec, network, secrets, components[spec.name])
    return {spec.name: url(spec, network_name) for spec in specs}
