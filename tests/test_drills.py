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


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_drill_passes(scenario: str, store: str, tmp_path: Path) -> None:
    journal = None
    if store == "postgres":
        from tests import pg

        account = pg.new_account()
        journal = pg.writer(account, pg.held_lease(account, ttl=5, renew=True))
    try:
        verdict = asyncio.run(run_drill(scenario, tmp_path, DrillTimings.fast(), store=journal))
    finally:
        if journal is not None and journal.lease is not None:
            journal.lease.close()
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


def test_the_rollback_drill_proves_a_profile_that_names_no_other_file(tmp_path: Path) -> None:
    """Config B must differ from A even when the profiles file is all there is."""
    from livegate.drills.rollback import run_rollback_drill
    from livegate.ops.config_files import load_config
    from livegate.ops.profiles import load_profiles

    (tmp_path / "profiles.toml").write_text(
        '[profiles.bare]\nenvironment = "sim"\nbroker = "sim"\nport = 7001\n'
        'api_key = "env:NOT_NEEDED"\ndata_dir = "data"\ncalendar = "XSHG"\n'
    )
    profile = load_profiles(tmp_path / "profiles.toml")["bare"]
    (tmp_path / "data").mkdir()
    from .helpers import start_and_stop

    start_and_stop(tmp_path / "data")
    verdict = asyncio.run(run_rollback_drill(tmp_path / "drill", tmp_path / "data", profile))
    assert verdict.passed, [(c.name, c.detail) for c in verdict.checks if not c.ok]
    (left,) = (tmp_path / "data" / "control").glob("evidence-*.json")
    assert load_config(profile).config_id in left.read_text()  # evidence for this config
