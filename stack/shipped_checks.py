"""Every config file a component is shipped, checked by the program that will read it where
its binary runs here (promtool, amtool, the blackbox exporter), else by the typed model it was
generated from (Loki, Jaeger, Alloy: no binary here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from stack import tools
from stack.bundle import ALERTMANAGER_CONFIG, Bundle
from stack.services import alloy, blackbox_exporter, jaeger, loki, prometheus


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
    text = (out / alloy.CONFIG_FILE).read_text()
    problems = [f"reference to an undefined component or export: {r}" for r in alloy.dangling_references(text)]
    try:
        alloy.check_stream_labels(alloy.alloy_config(bundle.config))
    except ValueError as error:
        problems.append(str(error))
    return Verdict(alloy.CONFIG_FILE, judge, not problems, "\n".join(problems))


CHECKS: tuple[Callable[[Bundle, Path], Verdict], ...] = (
    # promtool loads the rule files prometheus.yml names, as Prometheus would.
    _tool(prometheus.CONFIG_FILE, "promtool check config", tools.promtool_check_config),
    _tool(ALERTMANAGER_CONFIG, "amtool check-config", tools.amtool_check_config),
    _tool(blackbox_exporter.CONFIG_FILE, "blackbox_exporter --config.check", tools.blackbox_check_config),
    _model(loki.CONFIG_FILE, loki.LokiConfig),
    _model(jaeger.CONFIG_FILE, jaeger.JaegerConfig),
    _alloy,
)


def check_shipped(bundle: Bundle, out: Path) -> list[Verdict]:
    """Run every check on a rendered tree `out` of `bundle`."""
    return [check(bundle, out) for check in CHECKS]
