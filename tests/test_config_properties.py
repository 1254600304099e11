"""Properties of the config loader under random input (hypothesis): the shipped stack files,
mutated at random paths with values of random types, numbers and strings, and their YAML text
mangled, give a config or a ConfigError, never another exception and never a hang; a config that
loads builds (`stack.bundle.build`) without an exception; a planted secret is echoed only for an
allowlisted field."""

from __future__ import annotations

import copy
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from stack.bundle import build
from stack.config import PROJECT, ROOT, ConfigError, _shown_kind, from_mapping, load_stack

STACKS = ("dev", "prod")
SOURCE = "Pulumi.dev.yaml"
PLANTED = "S3cret-planted"
BASE = {stack: yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"] for stack in STACKS}
TEXT = {stack: (ROOT / f"Pulumi.{stack}.yaml").read_text() for stack in STACKS}
# Built once: the first build fills caches (SLO scenarios) a deadline should not pay for.
WARM = [build(load_stack(stack)) for stack in STACKS]

# Per example: hypothesis's deadline fails a slow example; the alarm stops a hung one.
LIMIT = settings(deadline=timedelta(seconds=2), database=None, print_blob=True,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
HANG_SECONDS = 20

# Strings a config is made of, and their near misses.
PLAUSIBLE = ["", " ", "0", "1m", "0s", "-5m", "30s", "2s", "24h", "1d", "5d", "30d", "10y", "1000y", "90061s",
             "256Mi", "0Mi", "6Mi", "1Ti", "2Ti", "99999999999999999999Gi", "10GB", "0B", "1PB", "v1.0", "latest",
             "docker", "kubernetes", "files", "badger", "memory", "elasticsearch", "postgres", "mysql", "disable",
             "false", "required", "sandbox", "1.30", "10.0.0.0/8", "::/0", "0.0.0.0/0", "http://a", "https://a:1/b",
             "https://a:0", "https://a:99999", "http://[::1", "http://u:p@a", "redis://a:1", "redis://:p@a:1",
             "a:1", "a:99999", "db:5432/x?password=p", "/etc/alertmanager/secrets/x",
             "/etc/alertmanager/secrets/../x", "/etc/grafana/secrets/..", "#a", "a@b.c", "../x", "..", ".",
             "a" * 300, "é\u202e", "x\0y", "line\nbreak", "{secure: x}", "sha256:" + "0" * 64, "medianest", PLANTED]
KEYS = ["enabled", "replicas", "memory", "cpus", "tag", "secure", "password", "x", "<<", ""]

leaves = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70), st.sampled_from([0, 1, -1, 3, 65535, 65536, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True), st.floats(min_value=0, max_value=10),
    st.sampled_from(PLAUSIBLE), st.text(max_size=20),
)
values = st.recursive(
    leaves,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


def _plausible(old: Any) -> st.SearchStrategy[Any]:
    """A value of the same type as `old`, often a sane one: the mutations that get past the
    loader and reach the generators."""
    if isinstance(old, bool):
        return st.booleans()
    if isinstance(old, int):
        return (st.sampled_from([1, 2, 3, 7, 50, 80, 1000, 3000, 65535, 2**30, old * 2, old // 2, old + 1])
                | st.integers(-10, 2**41))
    if isinstance(old, float):
        return (st.sampled_from([0.001, 0.01, 0.05, 0.1, 0.3, 0.5, 0.9, 0.999, 1.0, 2.0, 4.99, 60.0, old * 2, old / 3])
                | st.floats(min_value=0, max_value=1, exclude_min=True) | st.floats())
    if isinstance(old, str):
        digits = st.text(alphabet="0123456789", min_size=1, max_size=4)
        return (st.sampled_from(sorted(STRINGS) + PLAUSIBLE)
                | st.builds(lambda d: "".join(c if not c.isdigit() else d[0] for c in old), digits)
                | st.text(alphabet=PRINTABLE, max_size=12).map(lambda extra: old + extra))
    return values


def _leaves(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _leaves(value)
    elif isinstance(node, list):
        for value in node:
            yield from _leaves(value)
    else:
        yield node


# Every string of the shipped stacks: a value valid for one field is a plausible mistake in another.
STRINGS = {leaf for config in BASE.values() for leaf in _leaves(config) if isinstance(leaf, str)}
PRINTABLE = "abcxyzABC0123456789-_.:/@#?=&% "


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*prefix, index))


@st.composite
def mutated_configs(draw: st.DrawFn, plausible: bool = False) -> dict[str, Any]:
    """A shipped stack's config mapping, one to three of its values replaced, removed or added;
    `plausible`: leaves only, mostly by values of their own type (most such configs load)."""
    config = copy.deepcopy(BASE[draw(st.sampled_from(STACKS))])
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = [p for p in _paths(config) if p]
        if plausible:
            paths = [p for p in paths if not isinstance(_at(config, p), dict | list)] or paths
        path = draw(st.sampled_from(paths))
        parent = _at(config, path[:-1])
        actions = ["same type"] * 8 + ["remove"] if plausible else ["same type", "any", "any", "remove", "add key"]
        action = draw(st.sampled_from(actions))
        if action == "remove" and isinstance(parent, dict):
            del parent[path[-1]]
        elif action == "add key" and isinstance(parent[path[-1]], dict):
            parent[path[-1]][draw(st.sampled_from(KEYS) | st.text(max_size=8))] = draw(values)
        elif action == "same type":
            parent[path[-1]] = draw(_plausible(parent[path[-1]]))
        else:
            parent[path[-1]] = draw(values)
    return config


def _at(node: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        node = node[part]
    return node


@contextmanager
def _no_hang(seconds: float = HANG_SECONDS) -> Iterator[None]:
    def hung(signum: int, frame: Any) -> None:
        raise TimeoutError(f"no answer after {seconds}s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _one_line_per_problem(message: str) -> None:
    lines = message.splitlines()
    assert lines and all(line.startswith(f"{SOURCE}: ") for line in lines), message
    assert all(len(line) < 1000 for line in lines), message


@settings(LIMIT, max_examples=100)
@given(mutated_configs())
def test_a_config_of_random_values_loads_or_is_a_config_error(config: dict[str, Any]) -> None:
    with _no_hang():
        try:
            from_mapping(config, SOURCE)
        except ConfigError as error:
            _one_line_per_problem(str(error))


@settings(LIMIT, max_examples=80)
@given(mutated_configs(plausible=True))
def test_a_plausibly_mutated_config_builds_or_is_a_config_error(config: dict[str, Any]) -> None:
    with _no_hang():
        try:
            loaded = from_mapping(config, SOURCE)
        except ConfigError as error:
            _one_line_per_problem(str(error))
            event("refused")
            return
        event("loaded and built")
        bundle = build(loaded)
        bundle.problems()


@settings(LIMIT, max_examples=60)
@given(st.sampled_from(STACKS), st.data())
def test_mangled_stack_file_text_loads_or_is_a_config_error(stack: str, data: st.DataObject) -> None:
    text = TEXT[stack]
    position = data.draw(st.integers(min_value=0, max_value=len(text)))
    cut = data.draw(st.integers(min_value=0, max_value=40))
    insert = data.draw(st.sampled_from(["&a ", "*a", "<<: ", ": ", "- ", "{", "[", "]", "}", "\t", "\0", "\n  ",
                                        '"', "'", "!!python/name:os.system ", "!!binary ", "? ", "%YAML 1.1\n",
                                        "---\n", ".inf", "9" * 5000, "\ufeff", "\x85"]) | st.text(max_size=10))
    mangled = text[:position] + insert + text[position + cut:]
    with tempfile.TemporaryDirectory() as root, _no_hang():
        (Path(root) / f"Pulumi.{stack}.yaml").write_text(mangled, encoding="utf-8", errors="surrogatepass")
        try:
            load_stack(stack, Path(root))
        except ConfigError as error:
            assert str(error).startswith(f"Pulumi.{stack}.yaml"), str(error)


@settings(LIMIT, max_examples=60)
@given(mutated_configs(), st.data())
def test_a_planted_secret_is_echoed_only_by_an_allowlisted_field(config: dict[str, Any],
                                                                 data: st.DataObject) -> None:
    path = data.draw(st.sampled_from([p for p in _paths(config) if p]))
    parent = _at(config, path[:-1])
    parent[path[-1]] = data.draw(st.sampled_from([PLANTED, f"https://u:{PLANTED}@h/", f"h:1/db?password={PLANTED}",
                                                  {"secure": PLANTED}, [PLANTED]]))
    with _no_hang():
        try:
            from_mapping(config, SOURCE)
        except ConfigError as error:
            _one_line_per_problem(str(error))
            for line in str(error).splitlines():
                if PLANTED in line:
                    key = line.removeprefix(f"{SOURCE}: {PROJECT}:").split(": ", 1)[0]
                    loc = tuple(int(p) if p.isdigit() else p for p in key.split("."))
                    assert _shown_kind(loc) == "text", line

