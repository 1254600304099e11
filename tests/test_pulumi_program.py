"""The Pulumi program under Pulumi's mock runtime (no CLI needed): it reads the stack config,
builds the bundle, and fails on a bad key naming it."""

from __future__ import annotations

import json
import runpy

import pulumi
import pytest
import yaml

from stack.config import PROJECT, ROOT


class Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        return args.name + "_id", args.inputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


def _set_config(stack: str, **overrides) -> None:
    config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    config.update({f"{PROJECT}:{k}": v for k, v in overrides.items()})
    pulumi.runtime.set_all_config(
        {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()})


def _run_program(stack: str) -> dict:
    pulumi.runtime.set_mocks(Mocks(), project=PROJECT, stack=stack, preview=False)
    return runpy.run_path(str(ROOT / "__main__.py"))


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_program_builds_the_bundle_from_stack_config(stack: str) -> None:
    _set_config(stack)
    program = _run_program(stack)
    assert program["config"].environment == stack
    assert "prometheus/rules/medianest.yaml" in program["bundle"].files


def test_bad_config_fails_naming_the_key() -> None:
    _set_config("dev", thresholds={"errorRatio": 2})
    with pytest.raises(Exception, match=r"medianest-observability:thresholds.errorRatio: Input should be less than 1"):
        _run_program("dev")
