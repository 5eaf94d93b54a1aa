"""The gate's verdict for a person (plain lines, an HTML page) and for programs (JSON).

Plain lines, not a table: a verdict is pasted into tickets and grepped, so
nothing may wrap with the terminal's width.
"""

from __future__ import annotations

import html
from typing import Any

from livegate.gate.rules import Verdict, when


def as_lines(verdict: Verdict, data_dir: str) -> list[str]:
    head = "PASS" if verdict.passed else "FAIL"
    lines = [
        f"livegate gate {head}: {data_dir}",
        f"  adapter {verdict.adapter}, config {verdict.config_id}, at {when(verdict.evaluated_ns)}",
    ]
    for c in verdict.criteria:
        lines.append(f"[{'pass' if c.passed else 'FAIL'}] {c.name}")
        lines += [f"       {line}" for line in c.evidence]
        if not c.passed and c.todo:
            lines.append(f"       to do: {c.todo}")
    return lines


def as_json(verdict: Verdict, data_dir: str, recorded: str) -> dict[str, Any]:
    return {
        "verdict": "PASS" if verdict.passed else "FAIL",
        "passed": verdict.passed,
        "data_dir": data_dir,
        "adapter": verdict.adapter,
        "config_id": verdict.config_id,
        "evaluated_ns": verdict.evaluated_ns,
        "recorded": recorded,
        "criteria": [
            {"name": c.name, "passed": c.passed, "evidence": c.evidence, "todo": c.todo}
            for c in verdict.criteria
        ],
    }


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>livegate gate: {verdict}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 70em; }}
.banner {{ padding: .6em 1em; color: #fff; font-size: 1.6em; border-radius: 6px; }}
.PASS {{ background: #1a7f37; }} .FAIL {{ background: #cf222e; }}
.criterion {{ border-left: 10px solid; padding: .3em 1em; margin: 1em 0; }}
.criterion.pass {{ border-color: #1a7f37; }} .criterion.fail {{ border-color: #cf222e; }}
.todo {{ font-weight: bold; }} li {{ font-family: monospace; }}
</style></head><body>
<div class="banner {verdict}" id="verdict">{verdict}</div>
<p>{data_dir}: adapter {adapter}, config {config_id}, evaluated {at}</p>
{criteria}
</body></html>
"""


def as_html(verdict: Verdict, data_dir: str) -> str:
    blocks = []
    for c in verdict.criteria:
        mark = "pass" if c.passed else "fail"
        items = "".join(f"<li>{html.escape(line)}</li>" for line in c.evidence)
        todo = (
            f'<p class="todo">To do: {html.escape(c.todo)}</p>' if c.todo and not c.passed else ""
        )
        blocks.append(
            f'<div class="criterion {mark}" data-passed="{str(c.passed).lower()}">'
            f"<h2>{mark.upper()}: {html.escape(c.name)}</h2><ul>{items}</ul>{todo}</div>"
        )
    return _PAGE.format(
        verdict="PASS" if verdict.passed else "FAIL",
        data_dir=html.escape(data_dir),
        adapter=html.escape(verdict.adapter),
        config_id=html.escape(verdict.config_id),
        at=when(verdict.evaluated_ns),
        criteria="\n".join(blocks),
    )
