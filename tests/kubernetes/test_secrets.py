"""Secrets on the kubectl path: `kubernetes/` holds none (re-applying it cannot overwrite one, and
no pod starts on a placeholder), every pod that reads a Secret waits for it, and
`kubernetes-secrets/create-secrets.sh` creates exactly the Secrets the pods mount, with the
contents the Pulumi program would give them, reading each value from a file and never passing
one on a command line.

The script runs for real (bash) against a fake `kubectl` that records its command lines and what
it is asked to apply, and answers `create secret generic --dry-run=client -o yaml` and
`label --local` the way kubectl does (a Secret with base64 data; labels added)."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi_mocks import run_program, unwrap

from stack.bundle import Bundle, build
from stack.config import load_stack
from stack.layout import KUBERNETES_SECRETS_SCRIPT as SCRIPT
from stack.services import redis_exporter
from stack.targets.kubernetes.secrets_script import env_name

WORKLOADS = ("StatefulSet", "Deployment", "DaemonSet")
BASH = shutil.which("bash")
pytestmark = pytest.mark.skipif(BASH is None, reason="bash runs the generated script")

# Values with what breaks naive quoting: spaces, quotes, backslashes, $, a trailing newline.
VALUES = {
    "pagerduty-routing-key": "pd-Routing-key-1111",
    "slack-alerts-critical-webhook-url": "https://hooks.slack.com/services/T0/B0/critical-2222",
    "slack-business-metrics-webhook-url": "https://hooks.slack.com/services/T0/B0/business-3333",
    "slack-alerts-webhook-url": "https://hooks.slack.com/services/T0/B0/alerts-4444",
    "smtp-password": "smtp Pass'word $HOME 5555",
    "deadman-token": "deadman-Token-6666",
    "postgres-password": "pg-Password-7777",
    "redis-password": 'redis "Pass\\word" 8888',
    "grafana-admin-password": "admin-Password-9999",
}

FAKE_KUBECTL = '''#!{python}
"""A stand-in for kubectl: records each command line, answers what create-secrets.sh asks."""
import base64, json, os, sys
import yaml

args = sys.argv[1:]
with open(os.environ["FAKE_KUBECTL_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
if args[:2] == ["get", "namespace"]:
    sys.exit(0 if args[2] in os.environ["FAKE_KUBECTL_NAMESPACES"].split(",") else 1)
if args[:3] == ["create", "secret", "generic"]:
    assert "--dry-run=client" in args and args[args.index("-o") + 1] == "yaml", args
    data = {{}}
    for arg in args:
        if arg.startswith("--from-file="):
            key, path = arg.removeprefix("--from-file=").split("=", 1)
            with open(path, "rb") as file:
                data[key] = base64.b64encode(file.read()).decode()
    namespace = args[args.index("--namespace") + 1]
    yaml.safe_dump({{"apiVersion": "v1", "kind": "Secret", "metadata": {{"name": args[3], "namespace": namespace}},
                    "data": data}}, sys.stdout)
    sys.exit(0)
if args[0] == "label":
    assert "--local" in args and args[args.index("-f") + 1] == "-", args
    document = yaml.safe_load(sys.stdin)
    document["metadata"]["labels"] = dict(a.split("=", 1) for a in args if "=" in a and not a.startswith("-"))
    yaml.safe_dump(document, sys.stdout)
    sys.exit(0)
if args[0] == "apply":
    assert args[args.index("-f") + 1] == "-", args
    with open(os.environ["FAKE_KUBECTL_APPLIED"], "a") as applied:
        applied.write("---\\n" + sys.stdin.read())
    sys.exit(0)
sys.exit("fake kubectl: unexpected " + " ".join(args))
'''


@pytest.fixture(scope="module")
def prod_bundle() -> Bundle:
    return build(load_stack("prod"))


def rendered_objects(bundle: Bundle) -> list[dict[str, Any]]:
    return [d for path, text in sorted(bundle.files.items()) if path.startswith("kubernetes/")
            for d in yaml.safe_load_all(text) if d]


def pod_specs(bundle: Bundle) -> dict[str, tuple[str, dict[str, Any]]]:
    """Each workload's namespace and pod spec, by name."""
    return {o["metadata"]["name"]: (o["metadata"]["namespace"], o["spec"]["template"]["spec"])
            for o in rendered_objects(bundle) if o["kind"] in WORKLOADS}


def secret_sources(pod: dict[str, Any]) -> list[dict[str, Any]]:
    """Every reference of a pod to a Secret: secret volumes, projected secret sources, env."""
    found = [v["secret"] for v in pod.get("volumes", []) if "secret" in v]
    found += [s["secret"] for v in pod.get("volumes", []) if "projected" in v
              for s in v["projected"]["sources"] if "secret" in s]
    found += [e["valueFrom"]["secretKeyRef"] for c in pod["containers"] for e in c.get("env", [])
              if "secretKeyRef" in e.get("valueFrom", {})]
    return found


def mounted(bundle: Bundle) -> dict[tuple[str, str], set[str]]:
    """(namespace, Secret name) -> the keys the pods read from it."""
    found: dict[tuple[str, str], set[str]] = {}
    for namespace, pod in pod_specs(bundle).values():
        for source in secret_sources(pod):
            keys = {i["key"] for i in source.get("items", [])} or {source.get("key")}
            found.setdefault((namespace, source.get("name") or source.get("secretName")), set()).update(keys)
    return found


def test_rendered_manifests_hold_no_secret(prod_bundle: Bundle) -> None:
    manifests = {p: t for p, t in prod_bundle.files.items() if p.startswith("kubernetes/")}
    assert manifests and "kubernetes/grafana.yaml" in manifests
    for path, text in manifests.items():
        assert not re.search(r"^kind:\s*Secret\s*$", text, re.MULTILINE), path
        assert "REPLACE-ME" not in text, path
    assert "Secret" not in {o["kind"] for o in rendered_objects(prod_bundle)}
    # The script is beside the manifests: `kubectl apply -f kubernetes/` never sees it.
    assert not SCRIPT.startswith("kubernetes/") and SCRIPT in prod_bundle.files


def test_every_pod_that_reads_a_secret_waits_for_it(prod_bundle: Bundle) -> None:
    readers = set()
    for name, (_, pod) in pod_specs(prod_bundle).items():
        for source in secret_sources(pod):
            readers.add(name)
            # Not optional: without the Secret the kubelet cannot build the volume, and the pod
            # stays in ContainerCreating instead of starting with no secret files.
            assert source.get("optional", False) is False, f"{name}: {source}"
    assert readers == {"alertmanager", "grafana", "postgres-exporter", "redis-exporter"}


def kubectl_env(tmp_path: Path, namespaces: str = "monitoring,monitoring-node") -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "kubectl"
    fake.write_text(FAKE_KUBECTL.format(python=sys.executable))
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    env = {k: v for k, v in os.environ.items() if not k.endswith("_FILE")}
    return {**env, "PATH": f"{bin_dir}{os.pathsep}{env['PATH']}", "FAKE_KUBECTL_LOG": str(tmp_path / "argv.log"),
            "FAKE_KUBECTL_APPLIED": str(tmp_path / "applied.yaml"), "FAKE_KUBECTL_NAMESPACES": namespaces}


def secrets_dir(tmp_path: Path, values: dict[str, str]) -> Path:
    directory = tmp_path / "secrets"
    directory.mkdir(exist_ok=True)
    for name, value in values.items():
        (directory / name).write_text(value + "\n")  # as `echo value > file` writes it
    return directory


def run_script(bundle: Bundle, tmp_path: Path, *args: str, env: dict[str, str] | None = None
               ) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "create-secrets.sh"
    script.write_text(bundle.files[SCRIPT])
    return subprocess.run([BASH, str(script), *args], env=env or kubectl_env(tmp_path), capture_output=True,
                          text=True, timeout=120)


def applied(tmp_path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """What the script had kubectl apply: (namespace, name) -> the Secret, its data decoded."""
    path = tmp_path / "applied.yaml"
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d] if path.exists() else []
    return {(d["metadata"]["namespace"], d["metadata"]["name"]): {
        **d, "data": {k: base64.b64decode(v).decode() for k, v in d["data"].items()}} for d in documents}


def command_lines(tmp_path: Path) -> list[list[str]]:
    path = tmp_path / "argv.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_the_script_creates_every_secret_the_pods_mount(prod_bundle: Bundle, tmp_path: Path) -> None:
    text = prod_bundle.files[SCRIPT]
    assert text.startswith("#!/usr/bin/env bash\n") and "\nset -euo pipefail\n" in text
    assert subprocess.run([BASH, "-n"], input=text, text=True, capture_output=True).returncode == 0
    result = run_script(prod_bundle, tmp_path, str(secrets_dir(tmp_path, VALUES)))
    assert result.returncode == 0, result.stderr
    secrets = applied(tmp_path)
    # Exactly the Secrets and keys the pods mount, each labelled as the stack's other objects.
    assert {key: set(s["data"]) for key, s in secrets.items()} == mounted(prod_bundle)
    for (_, name), secret in secrets.items():
        assert secret["metadata"]["labels"]["app.kubernetes.io/part-of"] == "medianest-observability", name
    # Each file holds the value alone (the trailing newline of `echo` dropped); redis_exporter's
    # is its JSON map of address to password, the value escaped.
    alertmanager = secrets[("monitoring", "alertmanager-secrets")]["data"]
    assert alertmanager["smtp-password"] == VALUES["smtp-password"]
    assert alertmanager["pagerduty-routing-key"] == VALUES["pagerduty-routing-key"]
    redis = secrets[("monitoring", "redis-exporter-secrets")]["data"]["redis-password"]
    address = load_stack("prod").services.redis_exporter.address
    assert json.loads(redis) == {address: VALUES["redis-password"]}
    assert redis == redis_exporter.password_file(address, VALUES["redis-password"])
    # Re-runnable: created client-side, applied server-side (no last-applied copy of the values).
    commands = command_lines(tmp_path)
    assert all("--dry-run=client" in c for c in commands if c[0] == "create")
    assert [c for c in commands if c[0] == "apply"] and all("--server-side" in c for c in commands if c[0] == "apply")


def test_no_value_reaches_a_command_line_or_the_script(prod_bundle: Bundle, tmp_path: Path) -> None:
    result = run_script(prod_bundle, tmp_path, str(secrets_dir(tmp_path, VALUES)))
    assert result.returncode == 0, result.stderr
    logged = (tmp_path / "argv.log").read_text()
    for name, value in VALUES.items():
        for fragment in (value, json.dumps(value)[1:-1]):
            assert fragment not in logged, f"{name} on a kubectl command line"
            assert fragment not in prod_bundle.files[SCRIPT], name
            assert fragment not in result.stdout + result.stderr, name
    # ...and the files it wrote for kubectl are gone.
    assert applied(tmp_path) and not any(Path(arg.split("=", 2)[-1]).exists() for c in command_lines(tmp_path)
                                         for arg in c if arg.startswith("--from-file="))


def test_every_file_is_checked_before_anything_is_sent(prod_bundle: Bundle, tmp_path: Path) -> None:
    partial = {k: v for k, v in VALUES.items() if k not in ("smtp-password", "postgres-password")}
    directory = secrets_dir(tmp_path, partial)
    (directory / "deadman-token").write_text("")
    result = run_script(prod_bundle, tmp_path, str(directory))
    assert result.returncode == 1
    for name in ("smtp-password", "postgres-password", "deadman-token"):
        assert name in result.stderr
    assert command_lines(tmp_path) == [], "kubectl was called although files were missing"
    # Without a directory or a variable, each secret says where it may come from.
    result = run_script(prod_bundle, tmp_path)
    assert result.returncode == 1 and f"set {env_name('smtp-password')}" in result.stderr
    assert command_lines(tmp_path) == []


def test_secrets_wait_for_their_namespace(prod_bundle: Bundle, tmp_path: Path) -> None:
    result = run_script(prod_bundle, tmp_path, str(secrets_dir(tmp_path, VALUES)),
                        env=kubectl_env(tmp_path, namespaces="kube-system"))
    assert result.returncode == 1 and "00-namespaces.yaml" in result.stderr
    assert [c[:2] for c in command_lines(tmp_path)] == [["get", "namespace"]]
    assert not applied(tmp_path)


def test_a_file_per_variable_and_a_generated_admin_password(prod_bundle: Bundle, tmp_path: Path) -> None:
    directory = secrets_dir(tmp_path, {k: v for k, v in VALUES.items() if k != "grafana-admin-password"})
    elsewhere = tmp_path / "vault" / "smtp"
    elsewhere.parent.mkdir()
    elsewhere.write_text("from-the-variable\n")
    env = {**kubectl_env(tmp_path), env_name("smtp-password"): str(elsewhere)}
    result = run_script(prod_bundle, tmp_path, str(directory), env=env)
    assert result.returncode == 0, result.stderr
    secrets = applied(tmp_path)
    assert secrets[("monitoring", "alertmanager-secrets")]["data"]["smtp-password"] == "from-the-variable"
    # Grafana's admin password is generated when not given, as under Pulumi, into its file
    # (readable by its owner alone), and never printed.
    generated = directory / "grafana-admin-password"
    assert stat.S_IMODE(generated.stat().st_mode) == 0o600
    password = generated.read_text()
    assert len(password) >= 32 and password not in result.stderr + result.stdout
    assert secrets[("monitoring", "grafana-secrets")]["data"]["grafana-admin-password"] == password
    # Run again: the same password, not a new one.
    assert run_script(prod_bundle, tmp_path, str(directory), env=env).returncode == 0
    assert generated.read_text() == password


def test_the_script_writes_what_the_pulumi_program_would(prod_bundle: Bundle, tmp_path: Path) -> None:
    """The two paths agree: Secret names, namespaces, keys and file contents."""
    mocks, _ = run_program("prod", secrets=VALUES)
    pulumi_secrets = {(r.inputs["metadata"]["namespace"], r.inputs["metadata"]["name"]): unwrap(r.inputs["stringData"])
                      for r in mocks.declared if r.typ == "kubernetes:core/v1:Secret"}
    assert run_script(prod_bundle, tmp_path, str(secrets_dir(tmp_path, VALUES))).returncode == 0
    assert {key: s["data"] for key, s in applied(tmp_path).items()} == pulumi_secrets
