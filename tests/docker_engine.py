"""A private Docker engine for tests: `dockerd` (vfs storage) on its own socket, data root and exec
root, stopped by its PID and its state removed afterwards. Needs root and docker.io (installed
with apt-get when missing). It never touches another engine: no default bridge (`--bridge=none`,
so it cannot collide with another engine's docker0) and no iptables rules of its own; containers
talk on user-defined bridge networks, allocated from one /24 free on this host (`subnet`), whose
first address is the host as containers see it (`host-gateway`, i.e. `host.docker.internal`).

dockerd runs in a mount namespace of its own in which `/` is a shared mount, as on any systemd
host: Docker refuses an `rslave` bind of a private `/` (node exporter's mount of the host's root),
and its mounts vanish with it. Its networks are removed before it stops, so no bridge outlives it.
Where the host's firewall filters bridged traffic (br_netfilter with a FORWARD policy of DROP, as
an engine managing iptables leaves it), one rule lets the engine's subnet talk to itself, and is
deleted with the engine.

    with DockerEngine.started() as engine:
        subprocess.run([*engine.cli, "ps"], check=True)
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


class EngineError(RuntimeError):
    pass


# The /24s an engine may take its networks from: far from Docker's default pools (172.17-31/16,
# 192.168/16), so a developer's own engine is never in the way.
SUBNETS = ipaddress.ip_network("10.213.0.0/16")


def routes() -> list[ipaddress.IPv4Network]:
    """The IPv4 networks this host routes to (the kernel's table: no iproute2 needed)."""
    found = []
    for line in Path("/proc/net/route").read_text().splitlines()[1:]:
        fields = line.split()
        destination, mask = (ipaddress.IPv4Address(int(value, 16).to_bytes(4, "little")) for value in
                             (fields[1], fields[7]))
        if int(mask):  # the default route covers nothing in particular
            found.append(ipaddress.IPv4Network(f"{destination}/{mask}", strict=False))
    return found


def free_subnet() -> ipaddress.IPv4Network:
    """A /24 of SUBNETS that no route of this host covers; engines started side by side (xdist
    workers) start their search at different places."""
    taken = routes()
    candidates = list(SUBNETS.subnets(new_prefix=24))
    start = os.getpid() % len(candidates)
    for subnet in candidates[start:] + candidates[:start]:
        if not any(subnet.overlaps(route) for route in taken):
            return subnet
    raise EngineError(f"no free /24 left in {SUBNETS}")


def ensure_docker() -> None:
    """docker.io's dockerd and CLI, installed through apt-get when missing."""
    if shutil.which("dockerd") and shutil.which("docker"):
        return
    if os.geteuid() != 0:
        raise EngineError("dockerd is missing and installing it needs root (`apt-get install docker.io`)")
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "docker.io"]):
        result = subprocess.run(command, capture_output=True, text=True, check=False,
                                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        if result.returncode != 0:
            raise EngineError(f"`{' '.join(command)}` failed:\n{result.stdout}{result.stderr}")


def _forward_rule(subnet: ipaddress.IPv4Network) -> list[str]:
    return ["FORWARD", "-s", str(subnet), "-d", str(subnet), "-j", "ACCEPT",
            "-m", "comment", "--comment", "medianest test engine"]


def allow_forwarding(subnet: ipaddress.IPv4Network) -> bool:
    """Accept traffic between containers of `subnet`; False where there is no iptables to ask."""
    if shutil.which("iptables") is None:
        return False
    result = subprocess.run(["iptables", "-I", *_forward_rule(subnet)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise EngineError(f"iptables refused the engine's forwarding rule: {result.stderr.strip()}")
    return True


@dataclass
class DockerEngine:
    root: Path  # holds everything: socket, pidfile, data root, exec root, log
    process: subprocess.Popen[bytes]
    subnet: ipaddress.IPv4Network
    forwarding: bool = False  # whether start() inserted the forwarding rule

    @property
    def gateway(self) -> str:
        """The host's address on the engine's network: where `host.docker.internal` leads."""
        return str(next(self.subnet.hosts()))

    @property
    def host(self) -> str:
        return f"unix://{self.root / 'docker.sock'}"

    @property
    def cli(self) -> list[str]:
        return ["docker", "--host", self.host]

    @property
    def log(self) -> str:
        return (self.root / "dockerd.log").read_text(errors="replace")

    def docker(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([*self.cli, *args], capture_output=True, text=True, check=False, timeout=timeout)
        if check and result.returncode != 0:
            raise EngineError(f"`docker {' '.join(args)}` failed: {(result.stdout + result.stderr).strip()}")
        return result

    @classmethod
    def start(cls, timeout: float = 60) -> DockerEngine:
        ensure_docker()
        if os.geteuid() != 0:
            raise EngineError("dockerd needs root")
        # Short: containerd's sockets live under the exec root (unix socket paths are limited).
        root = Path(tempfile.mkdtemp(prefix="de-", dir="/tmp"))
        subnet = free_subnet()
        log = open(root / "dockerd.log", "wb")  # noqa: SIM115 - kept open for the engine's life
        process = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "shared",
             "dockerd", "--storage-driver=vfs", "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
             "--host", f"unix://{root / 'docker.sock'}", "--pidfile", str(root / "dockerd.pid"),
             "--bridge=none", "--iptables=false", "--ip-masq=false",
             "--default-address-pool", f"base={subnet},size=24", "--host-gateway-ip", str(next(subnet.hosts()))],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        engine = cls(root, process, subnet, allow_forwarding(subnet))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                text = engine.log
                engine.stop()
                raise EngineError(f"dockerd exited with {process.returncode}:\n{text[-3000:]}")
            if engine.docker("version", check=False, timeout=10).returncode == 0:
                return engine
            time.sleep(0.5)
        text = engine.log
        engine.stop()
        raise EngineError(f"dockerd did not answer within {timeout:.0f} s:\n{text[-3000:]}")

    def stop(self) -> None:
        """Stop the engine (its containers and networks with it) by its PID, then remove every trace of it."""
        bridges: list[str] = []
        if self.process.poll() is None:
            with contextlib.suppress(Exception):
                running = self.docker("ps", "-aq", check=False, timeout=30).stdout.split()
                if running:
                    self.docker("rm", "-f", *running, check=False, timeout=120)
                networks = self.docker("network", "ls", "-q", "--filter", "type=custom", check=False,
                                       timeout=30).stdout.split()
                bridges = [f"br-{network[:12]}" for network in networks]
                if networks:
                    self.docker("network", "rm", *networks, check=False, timeout=60)
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        for bridge in bridges if shutil.which("ip") else ():  # a network the engine could not remove
            subprocess.run(["ip", "link", "delete", bridge], capture_output=True, check=False)
        if self.forwarding:
            subprocess.run(["iptables", "-D", *_forward_rule(self.subnet)], capture_output=True, check=False)
            self.forwarding = False
        # Mounts left under our root (network namespaces, container rootfs): deepest first.
        prefix = str(self.root) + "/"
        with open("/proc/self/mounts") as mounts:
            ours = sorted({line.split()[1] for line in mounts if line.split()[1].startswith(prefix)}, reverse=True)
        for mount in ours:
            subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    @classmethod
    @contextlib.contextmanager
    def started(cls, timeout: float = 60) -> Iterator[DockerEngine]:
        engine = cls.start(timeout)
        try:
            yield engine
        finally:
            engine.stop()
