"""The sandbox's start-up check: a component whose spec carries an argument its shipped binary
does not know does not start, and the failure's first line names the component and the flag
(with the binary's own words, then the tail of its log). Each component in turn, from the
sandbox's own specs with one argument changed."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from stack.bundle import build
from stack.config import StackConfig
from stack.sandbox import processes
from stack.sandbox.datastores import Postgres, Redis
from stack.sandbox.processes import ProcessFailed, Supervisor
from stack.sandbox.run import BINARIES, Component, Ports, components, free_ports_except, sandbox_config, start_component
from stack.services import jaeger, postgres_exporter, prometheus, victoria_metrics, vmalert

pytestmark = pytest.mark.e2e

# Per component: the argument (by its flag) replaced, and what replaces it.
UNKNOWN = {name: ("--web.listen-address", "--web.no-such-flag=1") for name in BINARIES} | {
    prometheus.NAME: ("--storage.tsdb.path", "--storage.tsdb.no-such-flag=1"),
    # Jaeger's one argument is its config file; its listeners are in the file.
    jaeger.NAME: ("--config", "--no-such-flag=1"),
    # Go's flag package, one dash.
    victoria_metrics.NAME: ("-httpListenAddr", "-no-such-flag=1"), vmalert.NAME: ("-httpListenAddr", "-no-such-flag=1")}


def _components(dev_config: StackConfig, root: Path) -> dict[str, Component]:
    """The sandbox's components on free ports. Nothing they connect to runs: each fails on its
    command line before it would."""
    ports = Ports.free(dict.fromkeys(BINARIES, 1))
    postgres = Postgres(host="127.0.0.1", port=processes.free_port(), database="medianest", user="postgres_exporter",
                        password="p", superuser="postgres", socket_dir=root, data_dir=root)
    redis = Redis(host="127.0.0.1", port=processes.free_port(), password=None)
    bundle = build(sandbox_config(dev_config, ports, postgres, redis, "2s", "2s"))
    return {c.spec.name: c for c in components(bundle, ports, root, free_ports_except(ports.taken()))}


@pytest.mark.parametrize("name", list(BINARIES))
def test_an_argument_the_shipped_binary_does_not_know_fails_the_start_naming_it(
        dev_config: StackConfig, tmp_path: Path, name: str) -> None:
    replaced, unknown = UNKNOWN[name]
    flag = unknown.split("=")[0]
    with Supervisor(tmp_path) as supervisor:
        component = _components(dev_config, supervisor.workdir)[name]
        args = tuple(unknown if a.split("=")[0] == replaced else a for a in component.spec.args)
        assert args != component.spec.args
        broken = dataclasses.replace(component, spec=dataclasses.replace(component.spec, args=args))
        with pytest.raises(ProcessFailed) as failure:
            start_component(supervisor, broken, {postgres_exporter.PASSWORD.name: "s3cret"})
    first, second, *_ = str(failure.value).splitlines()
    # The spec's flag, then the binary's own words (Go's flag package writes `-web.no-such-flag`).
    assert first.startswith(f"{component.process}: {component.binary} does not know {flag}, an argument of its "
                            f"spec ("), first
    assert flag.lstrip("-") in first.split("(", 1)[1], first
    assert re.fullmatch(rf"{component.process} exited \(exit code \d+\) before it was ready", second), second
