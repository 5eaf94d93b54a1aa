"""`livegate demo` runs on a fresh directory and its summary agrees with its files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from livegate.cli.main import app
from livegate.journal.journal import decode_event
from livegate.model import OrderIntent


def test_demo_runs_and_reports_what_its_journal_holds(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--dir", str(tmp_path), "--orders", "300"])
    assert result.exit_code == 0, result.output
    assert "Orders by status" in result.output and "orders/s" in result.output
    (run_dir,) = tmp_path.iterdir()
    assert str(run_dir.name) in result.output.replace("\n", "")
    with sqlite3.connect(run_dir / "journal.sqlite") as conn:
        payloads = [p for (p,) in conn.execute("SELECT payload FROM events WHERE kind='intent'")]
    intents = [decode_event(p) for p in payloads]
    assert len(intents) == 300 and all(isinstance(i, OrderIntent) for i in intents)
    assert "300" in result.output
    assert "report anomalies" in result.output


def test_demo_refuses_a_bad_order_count(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--dir", str(tmp_path), "--orders", "0"])
    assert result.exit_code != 0
    assert not any(tmp_path.iterdir())


def test_demo_over_fix_trades_with_ordermatch_and_both_sides_agree(tmp_path: Path) -> None:
    import os

    import pytest

    from livegate.drills.ordermatch import OrderMatchMissing, find_binary

    try:
        find_binary(tmp_path / "probe")
    except OrderMatchMissing as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))
    result = CliRunner().invoke(
        app, ["demo", "--broker", "fix", "--dir", str(tmp_path), "--orders", "120"]
    )
    assert result.exit_code == 0, result.output
    assert "both sides of every execution agree" in result.output
    (run_dir,) = [p for p in tmp_path.iterdir() if p.name.startswith("run-")]
    with sqlite3.connect(run_dir / "journal.sqlite") as conn:
        payloads = [p for (p,) in conn.execute("SELECT payload FROM events WHERE kind='intent'")]
    assert len(payloads) == 120  # repeated submits were stopped, not journaled again
    with sqlite3.connect(run_dir / "BUYER.sqlite") as conn:
        (sent,) = conn.execute("SELECT count(*) FROM sent WHERE msg_type = 'D'").fetchone()
    assert sent == 120  # one NewOrderSingle per order: nothing sent twice
