from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Tool results are cached for the session only, never in the user's cache: a test run proves
# what this checkout's tools say now (identical runs within it are done once). Set once, by the
# first process: xdist's workers inherit it and share the session's results.
if not os.environ.get("MEDIANEST_TEST_SESSION_CACHE"):
    os.environ["MEDIANEST_TEST_SESSION_CACHE"] = tempfile.mkdtemp(prefix="medianest-test-cache-")
os.environ["MEDIANEST_CACHE_DIR"] = os.environ["MEDIANEST_TEST_SESSION_CACHE"]
# This checkout's judges, also for the copies of the project some tests run commands in.
os.environ.setdefault("MEDIANEST_TOOLS_DIR", str(ROOT / ".tools"))

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
