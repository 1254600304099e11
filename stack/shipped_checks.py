"""Every config file the stack ships, checked by the program that will read it where its binary
runs here, else by the typed model it was generated from: each component module says how
(`COMPONENT.file_checks`: promtool, amtool, `jaeger validate`...). Kubernetes manifests are
validated by kubernetes-validate against the OpenAPI schemas of the configured Kubernetes version;
prometheus-operator's PrometheusRules (not in those schemas) by promtool on their groups."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import kubernetes_validate
import yaml

from stack import tools
from stack.bundle import Bundle
from stack.layout import KUBERNETES_DIR
from stack.services import components
from stack.services.component import FileCheck


@dataclass(frozen=True)
class Verdict:
    path: str
    judge: str
    ok: bool
    output: str = ""


def _file_checks(bundle: Bundle) -> list[FileCheck]:
    """The checks of every file the bundle holds (a component left out ships none)."""
    return [check for component in components() for check in component.file_checks
            if check.path in bundle.files or any(p.startswith(check.path + "/") for p in bundle.files)]


# Custom resources kubernetes-validate has no schema for.
OPERATOR_GROUP = "monitoring.coreos.com/"


def _manifest_problems(item: dict, version: str, out: Path) -> list[str]:
    name = f"{item.get('kind')} {item.get('metadata', {}).get('name')}"
    if str(item.get("apiVersion", "")).startswith(OPERATOR_GROUP):
        if item["kind"] != "PrometheusRule":
            return []
        rules = out / ".prometheus-rule.yaml"
        rules.write_text(yaml.safe_dump(item["spec"]))
        run = tools.promtool_check_rules([rules])
        rules.unlink()
        return [] if run.ok else [f"{name}: promtool check rules: {run.output}"]
    try:
        kubernetes_validate.validate(item, version, strict=True)
    except (kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError,
            kubernetes_validate.InvalidSchemaError) as error:
        return [f"{name}: {getattr(error, 'message', error)}"]
    return []


def _manifests(bundle: Bundle) -> list[str]:
    return sorted(p for p in bundle.files if p.startswith(KUBERNETES_DIR + "/"))


def _kubernetes(bundle: Bundle, out: Path, path: str) -> Verdict:
    version = bundle.config.kubernetes.version
    documents = [d for d in yaml.safe_load_all((out / path).read_text()) if d]
    problems = [line for item in documents for line in _manifest_problems(item, version, out)]
    return Verdict(path, f"kubernetes-validate {version} (strict)", not problems, "\n".join(problems))


def shipped_count(bundle: Bundle) -> int:
    """How many verdicts check_shipped gives."""
    return len(_file_checks(bundle)) + len(_manifests(bundle))


def check_shipped(bundle: Bundle, out: Path) -> Iterator[Verdict]:
    """Run every check on a rendered tree `out` of `bundle`, one verdict as each is done."""
    for check in _file_checks(bundle):
        ok, output = check.run(bundle.config, out / check.path)
        yield Verdict(check.path, check.judge, ok, "" if ok else output)
    for path in _manifests(bundle):
        yield _kubernetes(bundle, out, path)
