"""A small, deterministic writer of Alloy configuration syntax (formerly River).

Alloy syntax has blocks (`name "label" { ... }`), attributes (`name = value`) and values: strings,
numbers, bools, arrays, objects and expressions such as references to another component's export
(`loki.write.default.receiver`). Reference: grafana/alloy, docs/sources/get-started/
configuration-syntax/syntax.md and expressions/types_and_values.md.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

INDENT = "  "
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A block name is one identifier or several joined by dots (`logging`, `loki.source.file`, `stage.json`).
BLOCK_NAME = re.compile(rf"{IDENTIFIER.pattern}(?:\.{IDENTIFIER.pattern})*")


@dataclass(frozen=True)
class Expr:
    """An expression written as is, never quoted: a reference such as `loki.write.default.receiver`."""

    text: str

    def __post_init__(self) -> None:
        if not self.text.strip() or "\n" in self.text:
            raise ValueError(f"an expression must be one non-empty line, got {self.text!r}")


Value = str | int | float | bool | Expr | Sequence["Value"] | Mapping[str, "Value"]


def call(function: str, *args: Value) -> Expr:
    """A call of a standard library function: `call("sys.env", "NODE_NAME")` is `sys.env("NODE_NAME")`."""
    if not BLOCK_NAME.fullmatch(function):
        raise ValueError(f"{function!r} is not a function name (identifiers joined by dots)")
    return Expr(f"{function}({', '.join(value(a) for a in args)})")


def concat(*parts: str | Expr) -> Expr:
    """Strings and expressions joined with `+` (Alloy concatenates strings so)."""
    if not parts:
        raise ValueError("nothing to concatenate")
    return Expr(" + ".join(value(p) for p in parts))


@dataclass(frozen=True)
class Block:
    """`name "label" { attributes, then nested blocks }`; attributes and blocks keep their order."""

    name: str
    label: str | None = None
    attributes: tuple[tuple[str, Value], ...] = ()
    blocks: tuple[Block, ...] = ()

    def __post_init__(self) -> None:
        if not BLOCK_NAME.fullmatch(self.name):
            raise ValueError(f"{self.name!r} is not a block name (identifiers joined by dots)")
        # Alloy wants a label that is itself an identifier, even though it is written quoted.
        if self.label is not None and not IDENTIFIER.fullmatch(self.label):
            raise ValueError(f"{self.name}: label {self.label!r} must be an identifier")
        for name, _ in self.attributes:
            if not IDENTIFIER.fullmatch(name):
                raise ValueError(f"{self.name}: attribute {name!r} must be an identifier")


def string(value: str) -> str:
    """A double-quoted Alloy string: Go-style escapes, control characters as \\uNNNN."""
    out = []
    for char in value:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def value(item: Value, depth: int = 0) -> str:
    """One value; arrays of plain values stay on one line, objects are one key a line, sorted."""
    if isinstance(item, Expr):
        return item.text
    if isinstance(item, bool):  # before int: bool is an int in Python
        return "true" if item else "false"
    if isinstance(item, int):
        return str(item)
    if isinstance(item, float):
        if not math.isfinite(item):
            raise ValueError(f"Alloy has no number {item!r}")
        return repr(item)
    if isinstance(item, str):
        return string(item)
    if isinstance(item, Mapping):
        if not item:
            return "{}"
        inner = INDENT * (depth + 1)
        # Keys always quoted (valid for any key) and sorted, so output never depends on dict order.
        lines = [f"{inner}{string(str(k))} = {value(item[k], depth + 1)}," for k in sorted(item)]
        return "{\n" + "\n".join(lines) + "\n" + INDENT * depth + "}"
    if isinstance(item, Sequence):
        if not item:
            return "[]"
        if not any(isinstance(x, Mapping | list | tuple) for x in item):
            return "[" + ", ".join(value(x, depth) for x in item) + "]"
        inner = INDENT * (depth + 1)
        # A trailing comma is required when the closing bracket is on its own line.
        return "[\n" + "\n".join(f"{inner}{value(x, depth + 1)}," for x in item) + "\n" + INDENT * depth + "]"
    raise TypeError(f"no Alloy value for {type(item).__name__}: {item!r}")


def block(node: Block, depth: int = 0) -> str:
    pad = INDENT * depth
    head = node.name if node.label is None else f"{node.name} {string(node.label)}"
    body = [f"{pad}{INDENT}{name} = {value(item, depth + 1)}" for name, item in node.attributes]
    for child in node.blocks:
        if body:
            body.append("")
        body.append(block(child, depth + 1))
    if not body:
        return f"{pad}{head} {{}}"
    return f"{pad}{head} {{\n" + "\n".join(body) + f"\n{pad}}}"


def document(blocks: Sequence[Block], comment: str) -> str:
    """A whole file: a leading `//` comment, then the top-level blocks separated by blank lines."""
    header = "\n".join(f"// {line}" for line in comment.splitlines())
    return header + "\n\n" + "\n\n".join(block(b) for b in blocks) + "\n"


# Reading back: the components a text defines and the references it makes (for tests and checks).
_SKIP = re.compile(r'"(?:[^"\\\n]|\\.)*"|`[^`]*`|//[^\n]*|/\*.*?\*/', re.S)
_CHAIN = re.compile(rf"{IDENTIFIER.pattern}(?:\.{IDENTIFIER.pattern})+")
_HEADER = re.compile(rf'^[ \t]*({BLOCK_NAME.pattern})[ \t]+"({IDENTIFIER.pattern})"[ \t]*\{{', re.M)


def defined_components(text: str) -> set[str]:
    """`name.label` of every labelled block (`loki.write "default" {` gives `loki.write.default`)."""
    return {f"{m.group(1)}.{m.group(2)}" for m in _HEADER.finditer(_SKIP.sub(_blank_comment, text))}


def references(text: str) -> list[str]:
    """Dotted names used as values (`loki.write.default.receiver`), outside strings and comments;
    block headers (followed by a label or `{`) and function calls (`sys.env(...)`) are left out."""
    code = _SKIP.sub(lambda m: '""' if m.group(0)[0] in '"`' else "", text)
    found = []
    for match in _CHAIN.finditer(code):
        rest = code[match.end():].lstrip(" \t")
        if not rest.startswith(("{", '"', "(")):
            found.append(match.group(0))
    return found


def _blank_comment(match: re.Match[str]) -> str:
    # Keep strings (the labels live in them); drop comments.
    return match.group(0) if match.group(0)[0] in '"`' else ""
