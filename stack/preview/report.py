"""The diff as one pull-request comment (Markdown: a summary table, then each section folded in
a <details>, bounded in size) or as JSON (everything, for tools and CI artifacts)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from stack.preview.model import Block, Change, Section

# GitHub refuses a comment over 65,536 characters; leave room for the marker and the note.
MARKDOWN_LIMIT = 60_000
# Where the workflow finds its own comment to update instead of adding one per push.
COMMENT_MARKER = "<!-- medianest-observability-diff -->"
NOTHING = "This change touches nothing the stack generates: no rule, route, SLO, dashboard or service changes."


@dataclass(frozen=True)
class Report:
    base: str  # the ref as given, and its commit
    head: str
    # (stack, its sections), in order.
    stacks: tuple[tuple[str, tuple[Section, ...]], ...]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return any(s.failed for _, sections in self.stacks for s in sections)

    @property
    def empty(self) -> bool:
        return not any(s.changes for _, sections in self.stacks for s in sections)


def _counts(section: Section) -> Counter[str]:
    return Counter(c.kind for c in section.changes)


def _detail(detail: str | Block) -> str:
    """A detail inside its change's list item: blocks indented so lists continue after them."""
    if isinstance(detail, Block):
        text = detail.text.strip() if detail.lang == "markdown" else f"```{detail.lang}\n{detail.text.rstrip()}\n```"
        return "\n" + "".join(f"  {line}\n" if line else "\n" for line in text.splitlines()) + "\n"
    return f"  - {detail}\n"


def _change(change: Change) -> str:
    return f"- **{change.kind}** {change.subject}\n" + "".join(_detail(d) for d in change.details)


def _summary(report: Report) -> str:
    rows = ["| stack | what | added | removed | changed |", "|---|---|---:|---:|---:|"]
    for stack, sections in report.stacks:
        for section in sections:
            if section.changes:
                counts = _counts(section)
                rows.append(f"| {stack} | {section.title} | {counts['added']} | {counts['removed']} | "
                            f"{counts['changed']} |")
    return "\n".join(rows) + "\n"


def markdown(report: Report, limit: int = MARKDOWN_LIMIT) -> str:
    status = ("**The head has errors or failing rule tests** (details below)." if report.failed
              else "Static checks and the rule tests of changed alerts pass.")
    head = [COMMENT_MARKER, f"## Monitoring preview: `{report.base}` → {report.head}", "", status, ""]
    if report.empty:
        head.append(NOTHING)
    else:
        head.append(_summary(report))
    out = "\n".join(head) + "\n"
    cut: list[str] = []
    for stack, sections in report.stacks:
        for section in sections:
            if not (section.changes or section.notes or section.failed):
                continue
            counts = _counts(section)
            summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no changes"
            mark = " ❌" if section.failed else ""
            body = "".join(f"> {note}\n" for note in section.notes)
            shown = 0
            for change in section.changes:
                text = _change(change)
                # Keep room for the closing tags and the note of what was cut.
                if len(out) + len(body) + len(text) > limit - 2_000:
                    break
                body += text
                shown += 1
            block = f"<details><summary>{stack}: {section.title} ({summary}){mark}</summary>\n\n{body}\n</details>\n\n"
            if (section.changes and not shown) or len(out) + len(block) > limit - 1_000:
                cut.append(f"{stack} / {section.title}: all {len(section.changes)}")
                continue
            if shown < len(section.changes):
                cut.append(f"{stack} / {section.title}: {len(section.changes) - shown} of {len(section.changes)}")
            out += block
    if cut:
        out += ("**Cut to fit one comment** — changes not shown: " + "; ".join(cut)
                + ". Run `python -m stack diff --base <ref>` locally, or see the JSON report artifact.\n")
    return out


def _detail_json(detail: str | Block) -> Any:
    return {"text": detail.text, "lang": detail.lang} if isinstance(detail, Block) else detail


def as_json(report: Report) -> str:
    return json.dumps({
        "base": report.base,
        "head": report.head,
        "failed": report.failed,
        "empty": report.empty,
        "timings": report.timings,
        "stacks": {stack: [{
            "title": s.title, "failed": s.failed, "notes": list(s.notes),
            "changes": [{"kind": c.kind, "subject": c.subject, "details": [_detail_json(d) for d in c.details],
                         "data": c.data} for c in s.changes],
        } for s in sections] for stack, sections in report.stacks},
    }, indent=2, sort_keys=True, default=str) + "\n"
