"""`livegate replay` on the shipped samples: each lands in the right final state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from livegate.cli.main import app

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def replay(name: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["replay", str(SAMPLES / name), "--json"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.output)
    return data


def orders(data: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {o["client_order_id"]: (o["status"], o["filled_qty"]) for o in data["orders"]}


def test_duplicates_are_counted_once() -> None:
    data = replay("duplicates.jsonl")
    assert orders(data) == {"dup-1": ("FILLED", "100")}
    assert [f["trade_id"] for f in data["fills"]] == ["E1", "E2"]
    assert data["anomaly_counts"] == {"DUPLICATE_FILL": 3}
    assert data["positions"][0]["quantity"] == "100"


def test_reordered_reports_converge_and_stale_ones_are_flagged() -> None:
    data = replay("reordering.jsonl")
    assert orders(data) == {"ord-1": ("FILLED", "300")}
    assert data["anomaly_counts"] == {"STALE_REPORT": 2}
    assert data["positions"][0]["quantity"] == "-300"


def test_fill_before_ack_is_held_then_matched() -> None:
    data = replay("fill-before-ack.jsonl")
    assert orders(data) == {"fba-1": ("FILLED", "50")}
    (fill,) = data["fills"]
    assert fill["client_order_id"] == "fba-1" and fill["broker_order_id"] == "B42"
    assert data["anomaly_counts"] == {"HELD_UNKNOWN_ORDER": 2}


def test_cancel_confirmation_after_a_fill_keeps_the_fill() -> None:
    data = replay("cancel-after-fill.jsonl")
    assert orders(data) == {"caf-1": ("FILLED", "100")}
    assert data["anomaly_counts"] == {"STALE_REPORT": 1}


def test_restart_mid_day_recovers_what_happened_while_down() -> None:
    data = replay("restart-mid-day.jsonl")
    assert data["restarts"] == 1
    assert orders(data) == {
        "rmd-1": ("FILLED", "200"),
        "rmd-2": ("CANCELLED", "0"),
        "rmd-3": ("FILLED", "50"),
    }
    assert sorted(f["trade_id"] for f in data["fills"]) == ["R1", "R2", "R3"]
    assert data["anomaly_counts"] == {"DUPLICATE_FILL": 1}
    assert data["positions"][0]["quantity"] == "150"


def test_gaps_and_unknown_orders_are_reported(tmp_path: Path) -> None:
    capture = tmp_path / "gap.jsonl"
    capture.write_text(
        '{"type":"submit","client_order_id":"g","symbol":"X","side":"BUY","quantity":"10",'
        '"price":"1.5"}\n'
        '{"type":"order_report","status":"PARTIALLY_FILLED","client_order_id":"g",'
        '"broker_order_id":"b","cum_qty":"4"}\n'
        '{"type":"trade_report","quantity":"1","price":"2","broker_order_id":"zzz",'
        '"trade_id":"q"}\n'
    )
    data = json.loads(CliRunner().invoke(app, ["replay", str(capture), "--json"]).output)
    assert data["gaps"] == {"g": "4"}
    assert data["anomaly_counts"] == {"FILL_GAP": 1, "HELD_UNKNOWN_ORDER": 1}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"type":"order_report","status":"DONE"}', "bad.jsonl:2"),
        ("not json", "bad.jsonl:2: not JSON"),
        ('{"type":"nope"}', "bad.jsonl:2"),
    ],
)
def test_a_bad_line_is_named_and_nothing_runs(tmp_path: Path, text: str, message: str) -> None:
    capture = tmp_path / "bad.jsonl"
    capture.write_text('{"type":"cancel","client_order_id":"x"}\n' + text + "\n")
    result = CliRunner().invoke(app, ["replay", str(capture)])
    assert result.exit_code == 2
    assert message in result.output.replace("\n", "")


def test_human_output_lists_orders_fills_and_anomalies() -> None:
    result = CliRunner().invoke(app, ["replay", str(SAMPLES / "duplicates.jsonl")])
    assert result.exit_code == 0
    for heading in ("Orders", "Fills", "Positions", "Anomalies", "DUPLICATE_FILL=3"):
        assert heading in result.output
