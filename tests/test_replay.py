"""`livegate replay` on the shipped samples: each lands in the right final state."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from livegate.cli.main import app
from livegate.drills.capture import CaptureLine, RestartLine, SubmitLine
from livegate.drills.replay import ReplayBroker
from livegate.drills.replay import replay as run_replay
from livegate.model import BrokerReport, OrderReport
from livegate.model import OrderStatus as S

from .histories import History, histories, messy_delivery

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


def test_a_day_sized_capture_prints_counts_and_the_last_rows_not_every_row(
    tmp_path: Path,
) -> None:
    """20,000 orders as a table took 20 s to print; the count and the day's end do not."""
    lines = []
    for i in range(120):
        c, b = f"c{i}", f"b{i}"
        lines += [
            {"type": "submit", "client_order_id": c, "symbol": "AAPL", "side": "BUY",
             "quantity": "10", "price": "10.00"},
            {"type": "order_report", "status": "FILLED" if i % 3 else "CANCELLED",
             "client_order_id": c, "broker_order_id": b, "cum_qty": "10" if i % 3 else "0"},
        ]  # fmt: skip
        if i % 3:
            trade = {"type": "trade_report", "quantity": "10", "price": "10.00"}
            lines.append({**trade, "client_order_id": c, "broker_order_id": b, "trade_id": f"t{i}"})
    capture = tmp_path / "day.jsonl"
    capture.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = CliRunner().invoke(app, ["replay", str(capture)])
    assert result.exit_code == 0, result.output
    assert "120 orders (CANCELLED 40, FILLED 80), 80 fills" in result.output
    assert "(the last 50; 70 earlier orders not listed)" in result.output
    assert "(the last 50; 30 earlier fills not listed)" in result.output
    assert "c119" in result.output and "c10 " not in result.output
    everything = CliRunner().invoke(app, ["replay", str(capture), "--limit", "0"])
    assert "not listed" not in everything.output and "c10 " in everything.output
    assert len(json.loads(CliRunner().invoke(app, ["replay", str(capture), "--json"]).output)[
        "orders"]) == 120  # fmt: skip


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
    (line,) = result.stderr.splitlines()  # one line, however long the path
    assert message in line


def test_human_output_lists_orders_fills_and_anomalies() -> None:
    result = CliRunner().invoke(app, ["replay", str(SAMPLES / "duplicates.jsonl")])
    assert result.exit_code == 0
    for heading in ("Orders", "Fills", "Positions", "Anomalies", "DUPLICATE_FILL=3"):
        assert heading in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"type":"submit","client_order_id":"a","symbol":"X","side":"BUY","quantity":"NaN",'
         '"price":"1"}', "quantity=NaN"),
        ('{"type":"submit","client_order_id":"a","symbol":"X","side":"BUY","quantity":"-5",'
         '"price":"1"}', "must be positive"),
        ('{"type":"submit","client_order_id":"a","symbol":"X","side":"HOLD","quantity":"5",'
         '"price":"1"}', "side='HOLD'"),
        ('{"type":"submit","client_order_id":"a","symbol":"X","side":"BUY","quantity":"5",'
         '"order_type":"STOP","price":"1"}', "order_type='STOP'"),
        ('{"type":"submit","client_order_id":"a b","symbol":"X","side":"BUY","quantity":"5",'
         '"price":"1"}', "client_order_id 'a b'"),
        ('{"type":"order_report","status":"FILLED","cum_qty":"5"}', "names no order"),
        ('{"type":"order_report","status":"FILLED","client_order_id":"a","cum_qtty":"5"}',
         "unknown field(s) cum_qtty"),
        ('{"type":"trade_report","quantity":"0","price":"1","client_order_id":"a"}',
         "quantity=0 must be positive"),
        ('{"type":"trade_report","quantity":"5","price":"-1","client_order_id":"a"}',
         "price=-1 must be positive"),
        ('{"type":"trade_report","quantity":"Infinity","price":"1","client_order_id":"a"}',
         "not a finite number"),
        ('{"type":"trade_report","quantity":"1e999999999","price":"1","client_order_id":"a"}',
         "out of range"),
        ('{"type":"restart","missed":[{"type":"trade_report","quantity":"-1","price":"1",'
         '"client_order_id":"a"}]}', "missed[0]: quantity=-1"),
        ('{"type":"cancel","client_order_id":"never-submitted"}', "never-submitted"),
    ],
)  # fmt: skip
def test_bad_input_is_a_clear_line_never_a_traceback(
    tmp_path: Path, content: str, message: str
) -> None:
    capture = tmp_path / "bad.jsonl"
    capture.write_text("# a capture\n" + content + "\n")
    result = CliRunner().invoke(app, ["replay", str(capture)])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {capture}:2: ") and message in line, line


@pytest.mark.parametrize(
    "content", [b'{"type":"cancel","client_order_id":"\xff\xfe"}\n', bytes(range(256)) * 4]
)
def test_bytes_that_are_not_text_are_refused_by_line(tmp_path: Path, content: bytes) -> None:
    capture = tmp_path / "binary.jsonl"
    capture.write_bytes(content)
    result = CliRunner().invoke(app, ["replay", str(capture)])
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {capture}:1: ")


def test_the_replay_broker_only_moves_forward_and_joins_ids() -> None:
    broker = ReplayBroker()
    broker.learn(OrderReport(S.SUBMITTED, "a", "A1", cum_qty=D(0)))
    broker.learn(OrderReport(S.CANCELLED, "a", "A1", cum_qty=D(0)))
    broker.learn(OrderReport(S.SUBMITTED, "a", "A1", cum_qty=D(0)))  # late, same cum_qty
    # First named by its broker id alone, then by both.
    broker.learn(OrderReport(S.FILLED, None, "B1", cum_qty=D(5)))
    broker.learn(OrderReport(S.SUBMITTED, "b", "B1", cum_qty=D(0)))

    async def ask() -> None:
        assert await broker.open_orders() == []
        by_client = await broker.order_status("b", None)
        assert by_client is not None and by_client.status is S.FILLED
        assert by_client.broker_order_id == "B1" and by_client.client_order_id == "b"
        cancelled = await broker.order_status("a", None)
        assert cancelled is not None and cancelled.status is S.CANCELLED

    asyncio.run(ask())


@st.composite
def capture_with_restarts(draw: st.DrawFn) -> tuple[list[CaptureLine], list[History]]:
    """Histories delivered messily, with restarts whose missed reports the stream never
    carries; a last restart carries whatever the stream never did."""
    hs = draw(histories(max_orders=3))
    lines: list[CaptureLine] = [
        SubmitLine(h.coid, "AAPL", "BUY", h.quantity, price=D("20.00")) for h in hs
    ]
    reports = [r for h in hs for r in h.reports]
    delivered = draw(messy_delivery(reports))
    missed: list[BrokerReport] = []
    for report in delivered:
        if report not in missed and draw(st.integers(0, 4)) == 0:
            missed.append(report)  # happened while we were down
        else:
            lines.append(report)  # type: ignore[arg-type]
        if draw(st.integers(0, 5)) == 0:
            lines.append(RestartLine(tuple(missed)))
            missed = []
    lines.append(RestartLine(tuple(missed)))
    return lines, hs


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=capture_with_restarts())
def test_restarts_anywhere_end_in_the_brokers_final_state(
    case: tuple[list[CaptureLine], list[History]],
) -> None:
    lines, hs = case
    result = asyncio.run(run_replay(lines))
    by_id = {o.client_order_id: o for o in result.orders}
    for h in hs:
        order = by_id[h.coid]
        assert order.status is h.final, (h, order)
        assert order.filled_qty == sum(h.fills, D(0)), (h, order)
    assert sum(f.quantity for f in result.fills if not f.inferred) == sum(
        sum(h.fills, D(0)) for h in hs
    )


_GOOD = [
    '{"type":"submit","client_order_id":"a","symbol":"AAPL","side":"BUY","quantity":"1",'
    '"price":"10"}',
    '{"type":"order_report","status":"SUBMITTED","client_order_id":"a","broker_order_id":"A"}',
    '{"type":"trade_report","quantity":"1","price":"10","client_order_id":"a","trade_id":"t"}',
    '{"type":"cancel","client_order_id":"a"}',
    '{"type":"restart"}',
]


@st.composite
def capture_texts(draw: st.DrawFn) -> list[str]:
    """Good lines, then cut, glued, padded or spoiled: what a hostile file could hold."""
    texts = draw(st.lists(st.sampled_from(_GOOD), min_size=1, max_size=6))
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(texts) - 1))
        text = texts[i]
        how = draw(st.sampled_from(["cut", "glue", "space", "spoil", "comment", "unknown"]))
        if how == "cut" and len(text) > 2:
            at = draw(st.integers(1, len(text) - 1))
            texts[i : i + 1] = [text[:at], text[at:]]
        elif how == "glue" and i + 1 < len(texts):
            sep = draw(st.sampled_from(["", " ", ",", "\t"]))
            texts[i : i + 2] = [text + sep + texts[i + 1]]
        elif how == "space":
            texts[i] = " " + text + "\t"
        elif how == "spoil":
            at = draw(st.integers(0, len(text) - 1))
            texts[i] = text[:at] + draw(st.sampled_from(["}", "{", '"', "\\", "x"])) + text[at:]
        elif how == "comment":
            texts.insert(i, "# a note")
        elif how == "unknown":
            texts[i] = text[:-1] + ',"extra":1}'
    return texts


@given(capture_texts())
@settings(max_examples=400, deadline=None)
def test_the_whole_file_parse_agrees_with_the_line_by_line_one(texts: list[str]) -> None:
    """Captures are parsed whole when every line is good; a file the fast path takes
    must be exactly what checking each line alone takes, and a bad one names the same
    first bad line either way."""
    from livegate.drills.capture import CaptureError, _checked, parse_capture

    one_by_one: list[CaptureLine] = []
    first_bad = None
    for number, text in enumerate(texts, 1):
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            continue
        line = _checked(stripped)
        if isinstance(line, str):
            first_bad = f"<capture>:{number}: {line}"
            break
        one_by_one.append(line)
    try:
        parsed = parse_capture(texts)
    except CaptureError as exc:
        assert str(exc) == first_bad
    else:
        assert first_bad is None and parsed.lines == one_by_one
