"""Every config file a component is shipped, checked by the program that will read it where
its binary runs here (promtool, amtool, the blackbox exporter), else by the typed model it was
generated from (Loki, Jaeger, Alloy: no binary here). Kubernetes manifests are validated by
kubernetes-validate against the OpenAPI schemas of the configured Kubernetes version;
prometheus-operator's PrometheusRules (not in those schemas) by promtool on their groups."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import kubernetes_validate
import yaml
from pydantic import BaseModel, ValidationError

from stack import tools
from stack.bundle import Bundle
from stack.layout import (
    ALERTMANAGER_CONFIG,
    ALLOY_CONFIG,
    BLACKBOX_CONFIG,
    JAEGER_CONFIG,
    KUBERNETES_DIR,
    LOKI_CONFIG,
    PROMETHEUS_CONFIG,
)
from stack.services import alloy, loki
from stack.services.spec import SERVICE_ACCOUNT_TOKEN


@dataclass(frozen=True)
class Verdict:
    path: str
    judge: str
    ok: bool
    output: str = ""


def _tool(path: str, judge: str, run: Callable[[Path], tools.ToolRun]) -> Callable[[Bundle, Path], Verdict]:
    def check(bundle: Bundle, out: Path) -> Verdict:
        result = run(out / path)
        return Verdict(path, judge, result.ok, result.output)
    return check


def _model(path: str, model: type[BaseModel]) -> Callable[[Bundle, Path], Verdict]:
    def check(bundle: Bundle, out: Path) -> Verdict:
        try:
            model.model_validate(yaml.safe_load((out / path).read_text()))
        except ValidationError as error:
            return Verdict(path, f"the {model.__name__} model", False, str(error))
        return Verdict(path, f"the {model.__name__} model", True)
    return check


def _alloy(bundle: Bundle, out: Path) -> Verdict:
    judge = "the Alloy models (references, bounded stream labels)"
    text = (out / ALLOY_CONFIG).read_text()
    problems = [f"reference to an undefined component or export: {r}" for r in alloy.dangling_references(text)]
    try:
        alloy.check_stream_labels(alloy.alloy_config(bundle.config))
    except ValueError as error:
        problems.append(str(error))
    return Verdict(ALLOY_CONFIG, judge, not problems, "\n".join(problems))


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


def _prometheus(bundle: Bundle, out: Path) -> Verdict:
    """promtool check config, which also loads every rule file prometheus.yml names, and judges
    the Kubernetes service discovery blocks (promtool built at the shipped version has every SD)."""
    path = out / PROMETHEUS_CONFIG
    document = yaml.safe_load(path.read_text())
    # promtool requires every credentials file to exist: the pod's service-account token
    # (node exporter's kube-rbac-proxy wants it) is replaced by a stand-in beside the file.
    token = path.with_name(".service-account-token")
    replaced = False
    for job in document.get("scrape_configs", []):
        authorization = job.get("authorization") or {}
        if authorization.get("credentials_file") == SERVICE_ACCOUNT_TOKEN:
            authorization["credentials_file"] = token.name
            replaced = True
    if replaced:
        variant = path.with_name(".prometheus-with-stand-in-token.yml")
        variant.write_text(yaml.safe_dump(document))
        token.write_text("stand-in\n")
        try:
            run = tools.promtool_check_config(variant)
        finally:
            variant.unlink()
            token.unlink()
    else:
        run = tools.promtool_check_config(path)
    # promtool names the file it read: the stand-in's name would only confuse.
    output = run.output.replace(".prometheus-with-stand-in-token.yml", path.name) if not run.ok else ""
    return Verdict(PROMETHEUS_CONFIG, "promtool check config", run.ok, output)


CHECKS: tuple[Callable[[Bundle, Path], Verdict], ...] = (
    _prometheus,
    _tool(ALERTMANAGER_CONFIG, "amtool check-config", tools.amtool_check_config),
    _tool(BLACKBOX_CONFIG, "blackbox_exporter --config.check", tools.blackbox_check_config),
    _model(LOKI_CONFIG, loki.LokiConfig),
    _tool(JAEGER_CONFIG, "jaeger validate", tools.jaeger_validate),
    _alloy,
)


def shipped_count(bundle: Bundle) -> int:
    """How many verdicts check_shipped gives."""
    return len(CHECKS) + len(_manifests(bundle))


def check_shipped(bundle: Bundle, out: Path) -> Iterator[Verdict]:
    """Run every check on a rendered tree `out` of `bundle`, one verdict as each is done."""
    for check in CHECKS:
        yield check(bundle, out)
    for path in _manifests(bundle):
        yield _kubernetes(bundle, out, path)
