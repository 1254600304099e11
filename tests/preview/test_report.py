"""The report as one PR comment: summary first, sections folded, bounded with a note of what
was cut; and as JSON with everything."""

from __future__ import annotations

import json

from stack.preview.model import Block, Change, Section
from stack.preview.report import COMMENT_MARKER, NOTHING, Report, as_json, markdown


def report(*sections: Section, stack: str = "dev") -> Report:
    return Report(base="main (abc)", head="the working tree", stacks=((stack, sections),))


def test_nothing_generated_changed_says_so() -> None:
    text = markdown(report(Section("Alerts and recording rules"), Section("Routing")))
    assert text.startswith(COMMENT_MARKER) and NOTHING in text and "<details>" not in text


def test_summary_table_then_folded_sections_with_blocks_inside_their_item() -> None:
    rules = Section("Alerts and recording rules", (
        Change("changed", "alert HighErrorRate", ("threshold 0.05 -> 0.07", Block("-a > 0.05\n+a > 0.07"),
                                                   "reaches critical-alerts (unchanged)")),
        Change("added", "alert RedisRejectingConnections"),
    ))
    text = markdown(report(rules))
    assert "| dev | Alerts and recording rules | 1 | 0 | 1 |" in text
    assert "<details><summary>dev: Alerts and recording rules (1 added, 1 changed)</summary>" in text
    assert "  ```diff\n  -a > 0.05\n  +a > 0.07\n  ```\n" in text, "indented: the list item goes on after it"
    assert text.index("| stack |") < text.index("<details>")


def test_a_failed_section_is_marked_and_the_status_says_so() -> None:
    text = markdown(report(Section("Static checks", (Change("added", "1 error"),), failed=True)))
    assert "**The head has errors or failing rule tests**" in text and "❌" in text


def test_a_huge_report_is_cut_to_fit_one_comment_and_says_what_was_cut() -> None:
    many = tuple(Change("changed", f"panel {i}", ("x" * 500,)) for i in range(400))
    text = markdown(report(Section("Dashboards", many), Section("Stack", many)), limit=60_000)
    assert len(text) <= 60_000
    assert "Cut to fit one comment" in text and "dev / Dashboards:" in text and "dev / Stack: all 400" in text


def test_json_holds_every_change_and_the_verdict() -> None:
    section = Section("Routing", (Change("changed", "route x", (Block("| a |", "markdown"),), {"old": 1}),),
                      notes=("n",))
    data = json.loads(as_json(report(section)))
    (routing,) = data["stacks"]["dev"]
    assert routing["changes"][0] == {"kind": "changed", "subject": "route x",
                                     "details": [{"text": "| a |", "lang": "markdown"}], "data": {"old": 1}}
    assert data["failed"] is False and data["empty"] is False and routing["notes"] == ["n"]
