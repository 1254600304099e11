"""The registry: every component of the stack is a module of this package with a `COMPONENT`
(stack/services/component.py says what it provides). Found here by reading the package, never by
a list: adding a component is adding its module.

Nothing here is imported at import time of this package: config.py reads the components' settings
while it is being defined, and component modules import the generators (rules, dashboards)."""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stack.config import StackConfig
    from stack.services.component import ComponentModule
    from stack.services.spec import ServiceSpec


@functools.cache
def components() -> tuple[ComponentModule, ...]:
    """Every component module's `COMPONENT`, ordered by name."""
    found = []
    for module in pkgutil.iter_modules(__path__):
        component = getattr(importlib.import_module(f"{__name__}.{module.name}"), "COMPONENT", None)
        if component is not None:
            found.append(component)
    found.sort(key=lambda c: c.name)
    names = [c.name for c in found]
    keys = [c.settings_key for c in found]
    if len(set(names)) != len(names) or len(set(keys)) != len(keys):
        raise RuntimeError(f"two component modules share a name or settings key: {names}, {keys}")
    return tuple(found)


def by_name() -> dict[str, ComponentModule]:
    return {component.name: component for component in components()}


def deployed(config: StackConfig) -> tuple[ComponentModule, ...]:
    """The components this stack deploys: enabled, and made for its target."""
    return tuple(component for component in components() if component.deployed(config))


def scraper_settings(config: StackConfig) -> Any:
    """The settings of the component that scrapes the others (its scrape interval is the pace
    every rule window was written for)."""
    (scraper,) = [c for c in components() if c.scrapes_others]
    return scraper.settings_of(config)


def period_rules_evaluator(config: StackConfig) -> ComponentModule:
    """Who evaluates the SLOs' period-long rules: a deployed component made for it besides the
    scraper (the long-term store's rule evaluator, where the period's history is), else the
    scraper (Prometheus, on its own TSDB)."""
    evaluators = [c for c in deployed(config) if c.slo_period_history is not None]
    return next((c for c in evaluators if not c.scrapes_others), next(c for c in components() if c.scrapes_others))


def service_specs(config: StackConfig, files: Mapping[str, str]) -> tuple[ServiceSpec, ...]:
    """Every deployed component's spec, in the registry's order; a component that scrapes the
    others (Prometheus) is built after them, from their specs."""
    chosen = deployed(config)
    built = {c.name: c.service(config, files, ()) for c in chosen if not c.scrapes_others}
    others = tuple(built.values())
    built |= {c.name: c.service(config, files, others) for c in chosen if c.scrapes_others}
    return tuple(built[c.name] for c in chosen)
