"""The SLOs section: SLOs added, removed and changed, with the detection-time table before and
after. The SLOs are defined in code (rules/slos.py) and no config key changes what slos.json
holds (`jobs.backend` only changes the SLI queries: the rules section's business), so a changed
SLO is made by writing the head's slos.json with `facts.slos` over modified definitions."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from preview_helpers import config_with, trees

from rules.slos import slos as slo_definitions
from stack.bundle import Bundle, build
from stack.preview import facts
from stack.preview.model import FACTS_DIR, Block, Section, Trees
from stack.preview.slos import section


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Trees:
    return trees(tmp_path_factory.mktemp("slos"), "dev")


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return build(config_with("dev"))


def copied(source: Trees, to: Path) -> Trees:
    """Both sides copied, to edit one's facts."""
    return Trees(source.stack, Path(shutil.copytree(source.base, to / "base")),
                 Path(shutil.copytree(source.head, to / "head")))


def write_slos(tree: Path, bundle: Bundle, monkeypatch: pytest.MonkeyPatch, **changes: dict[str, Any]) -> None:
    """`.preview/slos.json` as `facts.slos` writes it, each named SLO's fields updated (None
    removes the SLO)."""
    defined = []
    for slo in slo_definitions(bundle.config):
        if slo.name in changes and changes[slo.name] is None:
            continue
        defined.append(slo.model_copy(update=changes.get(slo.name) or {}))
    with monkeypatch.context() as patch:
        patch.setattr(facts, "slo_definitions", lambda config: tuple(defined))
        (tree / FACTS_DIR / "slos.json").write_text(json.dumps(facts.slos(bundle)))


def texts(section: Section) -> dict[str, list[str]]:
    return {c.subject: [d for d in c.details if isinstance(d, str)] for c in section.changes}


def table(section: Section, subject: str) -> str:
    change = next(c for c in section.changes if c.subject == subject)
    blocks = [d for d in change.details if isinstance(d, Block)]
    assert len(blocks) == 1 and blocks[0].lang == "markdown"
    return blocks[0].text


def test_identical_trees_change_nothing(dev: Trees) -> None:
    assert section(dev) == Section("SLOs")


CHANGED = [
    ("objective and error budget", {"objective": Decimal("99.5")},
     ["objective 99.9% -> 99.5% (error budget 0.1% -> 0.5%)"],
     ["| page | 100% | 52s | **4.3m** |", "| page | 2% | 43.2m | **never** |",
      "| page | at objective (0.1% -> 0.5%) | never | never |", "| ticket | 10% | 43.2m | **3.6h** |"]),
    ("for", {"for_": "5m"}, ["for none -> 5m"],
     ["| page | 100% | 52s | **5.9m** |", "| page | 10% | 8.6m | **13.6m** |"]),
    ("period and burn windows", {"period": "28d"},
     ["period 30d -> 28d", "page burn windows 1h/5m at 14.4x, 6h/30m at 6x -> 56m/5m at 14.4x, 336m/28m at 6x",
      "ticket burn windows 1d/2h at 3x, 3d/6h at 1x -> 1344m/112m at 3x, 4032m/336m at 1x"],
     ["| page | 100% | 52s | **48s** |"]),
    ("ticket tier off", {"ticket": False}, ["ticket alerts on -> off"],
     ["| page | 100% | 52s | 52s |", "| ticket | 100% | 4.3m | **no alert** |"]),
]


@pytest.mark.parametrize(("update", "details", "rows"), [c[1:] for c in CHANGED], ids=[c[0] for c in CHANGED])
def test_a_changed_slo_shows_what_changed_and_the_detection_times(
        dev: Trees, bundle: Bundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        update: dict[str, Any], details: list[str], rows: list[str]) -> None:
    edited = copied(dev, tmp_path)
    write_slos(edited.head, bundle, monkeypatch, **{"api-availability": update})
    result = section(edited)
    assert texts(result) == {"SLO api-availability": details}
    assert result.changes[0].kind == "changed"
    rendered = table(result, "SLO api-availability")
    assert rendered.splitlines()[:2] == ["| tier | error ratio | before | after |", "|---|---|---|---|"]
    for row in rows:
        assert row in rendered.splitlines()
    assert not result.failed and result.notes == ()


def test_added_and_removed_slos(dev: Trees, bundle: Bundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    edited = copied(dev, tmp_path)
    write_slos(edited.base, bundle, monkeypatch, **{"api-latency": None})
    write_slos(edited.head, bundle, monkeypatch, **{"media-upload-success": None})
    result = section(edited)
    assert [(c.kind, c.subject) for c in result.changes] == [
        ("added", "SLO api-latency"), ("removed", "SLO media-upload-success")]
    added = texts(result)["SLO api-latency"]
    assert added[0] == "objective 95% over 30d (error budget 5%)"
    assert "page burn windows: 1h/5m at 14.4x, 6h/30m at 6x" in added
    assert "| page | 100% | 43.2m |" in table(result, "SLO api-latency").splitlines()
    assert "its burn-rate alerts go away" in texts(result)["SLO media-upload-success"]


def test_an_old_base_without_slo_facts_gives_a_note(dev: Trees, tmp_path: Path) -> None:
    edited = copied(dev, tmp_path)
    (edited.base / FACTS_DIR / "slos.json").unlink()
    result = section(edited)
    assert result.changes == ()
    assert len(result.notes) == 1 and result.notes[0].startswith("the base has no SLO facts")
