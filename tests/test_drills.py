"""Every failure drill against a real sim broker process, with short timings.

A drill's verdict is the test: orders sent exactly once, fills counted
exactly once, our books equal to the broker's, nothing left in flight,
and what its fault must show. The checks are listed so a failure says
which one broke.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from livegate.cli.main import app
from livegate.drills.faults import SCENARIOS, DrillTimings, run_drill


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_drill_passes(scenario: str, tmp_path: Path) -> None:
    verdict = asyncio.run(run_drill(scenario, tmp_path, DrillTimings.fast()))
    failed = [f"{c.name}: {c.detail}" for c in verdict.checks if not c.ok]
    assert verdict.passed, failed
    names = {c.name for c in verdict.checks}
    assert {
        "each order sent exactly once",
        "each fill counted exactly once, and ours are the broker's",
        "local state equals the broker's (orders, trades, positions, cash)",
        "nothing left in flight",
    } <= names
    assert len(names) > 4 or scenario in ("delayed-reports", "reordered-reports")
    assert verdict.orders >= DrillTimings.fast().orders and verdict.fills > 0
    assert verdict.recovery_seconds is not None


def test_drill_cli_prints_a_verdict_and_refuses_unknown_drills(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["drill", "duplicate-reports", "--fast", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output and "duplicates seen and dropped" in result.output
    bad = runner.invoke(app, ["drill", "meteor-strike"])
    assert bad.exit_code == 2 and "unknown drill" in bad.output


def test_the_rollback_drill_passes_and_its_verdict_reaches_a_gateway_journal(
    tmp_path: Path,
) -> None:
    from livegate.journal.sqlite import events_of_kinds
    from livegate.model.events import EvidenceRecorded

    from .helpers import start_and_stop

    data = tmp_path / "desk"
    data.mkdir()

    start_and_stop(data)  # a data folder, its gateway stopped
    runner = CliRunner()
    result = runner.invoke(
        app, ["drill", "rollback", "--dir", str(tmp_path / "drill"), "--evidence", str(data)]
    )
    assert result.exit_code == 0, result.output
    for check in ("open orders intact", "positions intact", "limits back to A's",
                  "stage back to A's"):  # fmt: skip
        assert check in result.output
    drill_journal = tmp_path / "drill" / "rollback" / "config" / "data" / "journal.sqlite"
    own = events_of_kinds(drill_journal, "evidence")
    assert len(own) == 1 and isinstance(own[0], EvidenceRecorded) and own[0].passed
    assert own[0].config_id  # the config the drill rolled back to

    start_and_stop(data)  # the gateway journals what was left for it, once
    start_and_stop(data)
    left = events_of_kinds(data / "journal.sqlite", "evidence")
    assert [(e.kind, e.name, e.passed) for e in left] == [("drill", "rollback", True)]  # type: ignore[union-attr]
    assert not list((data / "control").glob("evidence-*.json"))
    bad = runner.invoke(app, ["drill", "rollback", "--evidence", str(tmp_path / "nowhere")])
    assert bad.exit_code == 2 and "no such folder" in bad.output
