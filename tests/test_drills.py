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
