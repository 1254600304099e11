"""The "SLOs" section: SLOs added, removed or changed (objective and error budget, period, alert
tiers, `for`, burn-rate windows) and, for a changed SLO, how long each tier takes to fire at
each error ratio before and after (the detection-time table of `python -m stack slo report`).

Reads `.preview/slos.json` of both sides (written by `stack/preview/facts.py`)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Literal

from rules.humanize import humanize_percentage
from rules.slo.detection import human
from rules.slo.windows import window_name
from stack.preview.model import Block, Change, Section, Trees

TITLE = "SLOs"
FACTS = "slos.json"
TIERS = ("page", "ticket")
# A detection row's key for the objective's own error ratio (a burn rate of 1): it moves with
# the objective, so it is compared by position, not by ratio.
AT_OBJECTIVE = "objective"


def load(trees: Trees, side: Literal["base", "head"]) -> dict[str, dict[str, Any]] | None:
    """The side's SLOs by name; None when the side has no SLO facts (an older export)."""
    path = trees.facts(side, FACTS)
    if not path.exists():
        return None
    return {slo["name"]: slo for slo in json.loads(path.read_text())}


def _decimal(value: Decimal) -> str:
    return format(value.normalize(), "f")


def objective(slo: dict[str, Any]) -> str:
    return f"{_decimal(Decimal(slo['objective']))}%"


def error_budget(slo: dict[str, Any]) -> str:
    return f"{_decimal(Decimal(100) - Decimal(slo['objective']))}%"


def tiers(slo: dict[str, Any]) -> str:
    on = [t for t in TIERS if slo.get(t)]
    return ", ".join(on) if on else "none (no burn-rate alert)"


def windows(slo: dict[str, Any], tier: str) -> str:
    """`1h/5m at 14.4x, 6h/30m at 6x`: each path's long and short window and burn-rate factor."""
    paths = [f"{window_name(w['long'])}/{window_name(w['short'])} at {_decimal(Decimal(w['factor']))}x"
             for w in slo.get("windows", []) if w["tier"] == tier]
    return ", ".join(paths) or "none"


def _for(slo: dict[str, Any]) -> str:
    return slo.get("for") or "none"


def summary(slo: dict[str, Any]) -> tuple[str, ...]:
    """An SLO in a few lines (added and removed SLOs)."""
    return (
        f"objective {objective(slo)} over {slo['period']} (error budget {error_budget(slo)})",
        f"alert tiers: {tiers(slo)}; for: {_for(slo)}",
        *(f"{tier} burn windows: {windows(slo, tier)}" for tier in TIERS if slo.get(tier)),
    )


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What changed in an SLO's definition, one line per fact."""
    lines = []
    if Decimal(before["objective"]) != Decimal(after["objective"]):
        lines.append(f"objective {objective(before)} -> {objective(after)} "
                     f"(error budget {error_budget(before)} -> {error_budget(after)})")
    if before["period"] != after["period"]:
        lines.append(f"period {before['period']} -> {after['period']}")
    for tier in TIERS:
        if bool(before.get(tier)) != bool(after.get(tier)):
            lines.append(f"{tier} alerts {'on' if before.get(tier) else 'off'} -> {'on' if after.get(tier) else 'off'}")
    if before.get("for") != after.get("for"):
        lines.append(f"for {_for(before)} -> {_for(after)}")
    for tier in TIERS:
        old, new = windows(before, tier), windows(after, tier)
        if old != new and before.get(tier) and after.get(tier):
            lines.append(f"{tier} burn windows {old} -> {new}")
    return lines


def _rows(slo: dict[str, Any]) -> dict[tuple[str, Any], dict[str, Any]]:
    """Detection cells by (tier, error ratio); the objective's own ratio, each tier's last cell,
    keyed AT_OBJECTIVE."""
    by_tier: dict[str, list[dict[str, Any]]] = {}
    for cell in slo.get("detection", []):
        by_tier.setdefault(cell["tier"], []).append(cell)
    rows = {}
    for tier, cells in by_tier.items():
        for index, cell in enumerate(cells):
            key = AT_OBJECTIVE if index == len(cells) - 1 else cell["error_ratio"]
            rows[(tier, key)] = cell
    return rows


def _ratio_label(key: Any, old: dict[str, Any] | None, new: dict[str, Any] | None) -> str:
    if key != AT_OBJECTIVE:
        return humanize_percentage(key)
    ratios = [humanize_percentage(c["error_ratio"]) for c in (old, new) if c is not None]
    if len(ratios) == 2 and ratios[0] != ratios[1]:
        return f"at objective ({ratios[0]} -> {ratios[1]})"
    return f"at objective ({ratios[0]})"


def _time(slo: dict[str, Any], tier: str, cell: dict[str, Any] | None) -> str:
    if not slo.get(tier):
        return "no alert"
    return human(cell["seconds"]) if cell is not None else "-"


def detection_table(before: dict[str, Any], after: dict[str, Any]) -> str:
    """Markdown: one row per tier and error ratio, the time to fire (after a clean history)
    before and after; changed times in bold."""
    old, new = _rows(before), _rows(after)
    keys = list(old) + [k for k in new if k not in old]
    keys.sort(key=lambda k: TIERS.index(k[0]) if k[0] in TIERS else len(TIERS))
    lines = ["| tier | error ratio | before | after |", "|---|---|---|---|"]
    for tier, key in keys:
        was, now = _time(before, tier, old.get((tier, key))), _time(after, tier, new.get((tier, key)))
        if was != now:
            now = f"**{now}**"
        lines.append(f"| {tier} | {_ratio_label(key, old.get((tier, key)), new.get((tier, key)))} | {was} | {now} |")
    return "\n".join(lines)


def times_table(slo: dict[str, Any]) -> str:
    """Markdown: one row per tier and error ratio, the time to fire (an added SLO)."""
    lines = ["| tier | error ratio | time to fire |", "|---|---|---|"]
    for (tier, key), cell in _rows(slo).items():
        lines.append(f"| {tier} | {_ratio_label(key, cell, None)} | {_time(slo, tier, cell)} |")
    return "\n".join(lines)


def _definition(slo: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in slo.items() if k != "detection"}


def section(trees: Trees) -> Section:
    head = load(trees, "head")
    if head is None:
        return Section(TITLE, notes=("the head has no SLO facts (.preview/slos.json): SLOs not compared",))
    base = load(trees, "base")
    if base is None:
        return Section(TITLE, notes=(f"the base has no SLO facts (exported by an older version): "
                                     f"SLOs not compared; the head has {len(head)}: {', '.join(sorted(head))}",))
    changes = []
    for name in sorted(set(base) | set(head)):
        old, new = base.get(name), head.get(name)
        if old is None and new is not None:
            changes.append(Change("added", f"SLO {name}", (*summary(new), Block(times_table(new), "markdown")),
                                  {"slo": name, "after": new}))
        elif new is None and old is not None:
            changes.append(Change("removed", f"SLO {name}", (*summary(old), "its burn-rate alerts go away"),
                                  {"slo": name, "before": old}))
        elif old != new and old is not None and new is not None:
            lines = differences(old, new) or ["detection times changed"]
            changes.append(Change("changed", f"SLO {name}", (*lines, Block(detection_table(old, new), "markdown")),
                                  {"slo": name, "before": _definition(old), "after": _definition(new),
                                   "detection_before": old.get("detection", []),
                                   "detection_after": new.get("detection", [])}))
    return Section(TITLE, tuple(changes))
