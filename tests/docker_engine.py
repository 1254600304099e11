"""A private Docker engine for tests: `dockerd` (vfs storage) on its own socket, data root and exec
root, stopped by its PID and its state removed afterwards. Needs root and docker.io (installed
with apt-get when missing). It never touches another engine: no default bridge (`--bridge=none`,
so it cannot collide with another engine's docker0) and no iptables rules of its own; containers
talk on user-defined bridge networks.

    with DockerEngine.started() as engine:
        subprocess.run([*engine.cli, "ps"], check=True)
"""

from __future__ import annotations

import contextlib
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


@dataclass
class DockerEngine:
    root: Path  # holds everything: socket, pidfile, data root, exec root, log
    process: subprocess.Popen[bytes]

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
        log = open(root / "dockerd.log", "wb")  # noqa: SIM115 - kept open for the engine's life
        process = subprocess.Popen(
            ["dockerd", "--storage-driver=vfs", "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
             "--host", f"unix://{root / 'docker.sock'}", "--pidfile", str(root / "dockerd.pid"),
             "--bridge=none", "--iptables=false", "--ip-masq=false"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        engine = cls(root, process)
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
        """Stop the engine (its containers with it) by its PID, then remove every trace of it."""
        if self.process.poll() is None:
            with contextlib.suppress(Exception):
                running = self.docker("ps", "-q", check=False, timeout=30).stdout.split()
                if running:
                    self.docker("rm", "-f", *running, check=False, timeout=120)
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
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
