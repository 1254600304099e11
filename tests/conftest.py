from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stack.bundle import Bundle, build  # noqa: E402
from stack.config import StackConfig, load_stack  # noqa: E402

STACKS = ("dev", "prod")


@pytest.fixture(scope="session", params=STACKS)
def stack_name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def config(stack_name: str) -> StackConfig:
    return load_stack(stack_name)


@pytest.fixture(scope="session")
def bundle(config: StackConfig) -> Bundle:
    return build(config)


@pytest.fixture(scope="session")
def dev_config() -> StackConfig:
    return load_stack("dev")
