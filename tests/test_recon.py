"""Each kind of diff: found with the right marker and severity, resolved, then clean."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import json
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from livegate.cli.main import app
from livegate.engine import Gateway, book_state
from livegate.journal import SQLiteStore
from livegate.model import AccountSnapshot, OrderReport, OrderRequest, OrderStatus, Position
from livegate.model.diffs import Diff, DiffKind, DiffStatus, Marker, Resolution, Severity
from livegate.recon import Reconciler, ReconConfig

from .helpers import ScriptedBroker, scripted_gateway, settle
from .test_recovery import trade

D = Decimal
S = OrderStatus
NOW = ReconConfig(settle_window=0)


def limit(coid: str, qty: int = 100) -> OrderRequest:
    return OrderRequest(
        symbol="AAPL", side="BUY", quantity=qty, price="10.00", client_order_id=coid
    )


def books_agree(gateway: Gateway, broker: ScriptedBroker) -> None:
    """Make the broker's account say what our books say (the non-differing part)."""
    cash = gateway.cash()
    broker.snapshot = AccountSnapshot(
        "test", "USD", cash.balance, cash.available, tuple(gateway.positions())
    )


async def started() -> tuple[Gateway, ScriptedBroker, Reconciler, list[Diff]]:
    gateway, broker = scripted_gateway()
    await gateway.start()
    reconciler = Reconciler(gateway, NOW)
    alerts: list[Diff] = []
    reconciler.on_alert(alerts.append)
    return gateway, broker, reconciler, alerts


async def working(gateway: Gateway, broker: ScriptedBroker, coid: str) -> None:
    await gateway.submit_order(limit(coid))
    broker.status[coid] = OrderReport(S.SUBMITTED, coid, "B-" + coid, cum_qty=D(0))


def only(diffs: list[Diff]) -> Diff:
    assert len(diffs) == 1, diffs
    return diffs[0]


def test_a_clean_book_reconciles_clean() -> None:
    async def run() -> None:
        gateway, broker, reconciler, _ = await started()
        await working(gateway, broker, "w-1")
        books_agree(gateway, broker)
        result = await reconciler.run()
        assert result.clean and reconciler.diffs() == []
        await gateway.stop()

    asyncio.run(run())


def test_end_of_day_leaves_a_checkpoint_the_next_start_begins_from() -> None:
    async def run() -> None:
        gateway, broker, reconciler, _ = await started()
        await working(gateway, broker, "w-1")
        books_agree(gateway, broker)
        await reconciler.end_of_day(dt.date(2026, 12, 1), None)
        store = gateway.journal.store
        found = store.last_checkpoint()
        assert found is not None and found[0] == gateway.journal.last_seq
        assert book_state.decode(found[1]).last_eod == "2026-12-01"
        await gateway.stop()

    asyncio.run(run())


def test_a_missing_fill_is_settled_by_policy_and_journaled_as_automatic() -> None:
    async def run() -> None:
        gateway, broker, reconciler, alerts = await started()
        await working(gateway, broker, "t-1")
        broker.trades.append(trade("t-1", "T1", 100))
        broker.status["t-1"] = OrderReport(S.FILLED, "t-1", "B-t-1", cum_qty=D(100))
        broker.snapshot = AccountSnapshot(
            "test",
            "USD",
            D(100_000) - D(1001),
            D(100_000) - D(1001),
            (Position("AAPL", D(100), D("10.00")),),
        )
        result = await reconciler.run()
        opened = [gateway.book.diffs[i] for i in result.opened]
        (diff,) = [d for d in opened if d.finding.kind is DiffKind.TRADE]
        assert (diff.finding.marker, diff.finding.severity) == (
            Marker.MISSING_LOCAL,
            Severity.CRITICAL,
        )
        assert diff.status is DiffStatus.RESOLVED and diff.resolution is Resolution.ADOPT_BROKER
        assert "automatically" in diff.history[-1]
        assert gateway.order("t-1").filled_qty == 100 and not alerts
        assert (await reconciler.run()).clean
        await gateway.stop()

    asyncio.run(run())


def test_an_order_the_broker_closed_is_closed_here() -> None:
    async def run() -> None:
        gateway, broker, reconciler, _ = await started()
        await working(gateway, broker, "c-1")
        books_agree(gateway, broker)
        broker.status["c-1"] = OrderReport(S.EXPIRED, "c-1", "B-c-1", cum_qty=D(0))
        result = await reconciler.run()
        diff = gateway.book.diffs[result.opened[0]]
        assert diff.finding.marker is Marker.STATUS_MISMATCH
        assert diff.status is DiffStatus.RESOLVED
        assert gateway.order("c-1").status is S.EXPIRED
        books_agree(gateway, broker)  # the broker released the order's cash too
        assert (await reconciler.run()).clean
        await gateway.stop()

    asyncio.run(run())


def test_an_order_the_broker_never_had_needs_a_person() -> None:
    async def run() -> None:
        gateway, broker, reconciler, alerts = await started()
        await working(gateway, broker, "m-1")
        books_agree(gateway, broker)
        del broker.status["m-1"]
        await reconciler.run()
        diff = only(reconciler.diffs())
        assert (diff.finding.marker, diff.finding.severity) == (
            Marker.MISSING_BROKER,
            Severity.CRITICAL,
        )
        assert alerts == [diff]
        await reconciler.acknowledge(diff.id, "ops", "looking")
        assert diff.status is DiffStatus.ACKNOWLEDGED
        await reconciler.resolve(diff.id, "adopt_broker", "ops", "broker lost it")
        assert gateway.order("m-1").status is S.CANCELLED
        books_agree(gateway, broker)
        assert (await reconciler.run()).clean
        assert diff.status is DiffStatus.RESOLVED
        assert "acknowledged by ops: looking" in diff.history[0]
        assert "before: ours SUBMITTED, broker none" in diff.history[1]
        assert reconciler.diffs(open_only=False) == [diff]  # stays in the history
        await gateway.stop()

    asyncio.run(run())


def test_external_orders_are_marked_known_or_cancelled_at_the_broker() -> None:
    async def run() -> None:
        gateway, broker, reconciler, _ = await started()
        books_agree(gateway, broker)
        broker.status["manual"] = OrderReport(S.SUBMITTED, "manual", "X1", cum_qty=D(0))
        broker.status["fat-finger"] = OrderReport(S.SUBMITTED, "fat-finger", "X2", cum_qty=D(0))
        await reconciler.run()
        known, stray = sorted(reconciler.diffs(), key=lambda d: d.finding.subject)
        assert (known.finding.marker, known.finding.severity) == (
            Marker.MISSING_LOCAL,
            Severity.WARNING,
        )
        await reconciler.resolve(known.id, Resolution.MARK_KNOWN, "ops", "desk hedge")
        await reconciler.resolve(stray.id, Resolution.CANCEL_AT_BROKER, "ops", "not ours")
        assert broker.cancels["fat-finger"] == 1
        del broker.status["fat-finger"]  # the broker cancelled it
        assert (await reconciler.run()).clean
        await gateway.stop()

    asyncio.run(run())


def test_position_and_cash_differences_adopt_the_broker_when_a_person_says_so() -> None:
    async def run() -> None:
        gateway, broker, reconciler, alerts = await started()
        broker.snapshot = AccountSnapshot(
            "test", "USD", D(99_000), D(99_000), (Position("MSFT", D(100), D("10.00")),)
        )
        await reconciler.run()
        by_kind = {d.finding.kind: d for d in reconciler.diffs()}
        assert by_kind[DiffKind.POSITION].finding.marker is Marker.QTY_MISMATCH
        assert by_kind[DiffKind.CASH].finding.marker is Marker.CASH_MISMATCH
        assert {d.finding.severity for d in by_kind.values()} == {Severity.CRITICAL}
        assert len(alerts) == 2  # positions and cash wait for a person
        for diff in by_kind.values():
            await reconciler.resolve(diff.id, "ADOPT_BROKER", "ops", "statement checked")
        assert gateway.positions() == [Position("MSFT", D(100), D("10.00"))]
        assert gateway.cash().balance == D(99_000)
        assert (await reconciler.run()).clean
        await gateway.stop()

    asyncio.run(run())


def test_a_fill_price_difference_can_be_written_off() -> None:
    async def run() -> None:
        gateway, broker, reconciler, _ = await started()
        await working(gateway, broker, "p-1")
        broker.push(trade("p-1", "T9", 100, "10.00"))
        await settle(gateway)
        broker.status["p-1"] = OrderReport(S.FILLED, "p-1", "B-p-1", cum_qty=D(100))
        books_agree(gateway, broker)
        broker.trades.append(trade("p-1", "T9", 100, "10.01"))  # broker's record differs
        await reconciler.run()
        diff = only(reconciler.diffs())
        assert (diff.finding.marker, diff.finding.ours, diff.finding.theirs) == (
            Marker.PRICE_MISMATCH,
            "10.00",
            "10.01",
        )
        await reconciler.resolve(diff.id, "WRITE_OFF", "ops", "broker correction pending")
        assert (await reconciler.run()).clean
        await gateway.stop()

    asyncio.run(run())


def test_settle_window_and_differences_that_clear_themselves() -> None:
    async def run() -> None:
        gateway, broker = scripted_gateway()
        await gateway.start()
        reconciler = Reconciler(gateway, ReconConfig(settle_window=0.05))
        books_agree(gateway, broker)
        broker.status["ext"] = OrderReport(S.SUBMITTED, "ext", "X5", cum_qty=D(0))
        first = await reconciler.run()
        assert first.findings and not first.opened  # may still be in flight
        await asyncio.sleep(0.06)
        second = await reconciler.run()
        assert len(second.opened) == 1
        del broker.status["ext"]
        third = await reconciler.run()
        assert third.cleared == second.opened and third.clean
        assert gateway.book.diffs[second.opened[0]].resolution is Resolution.CLEARED
        await gateway.stop()

    asyncio.run(run())


def test_bad_interventions_are_refused_clearly() -> None:
    async def run() -> None:
        gateway, broker, reconciler, _ = await started()
        broker.snapshot = AccountSnapshot("test", "USD", D(1), D(1))
        await reconciler.run()
        diff = only(reconciler.diffs())
        with pytest.raises(ValueError, match="who and why"):
            await reconciler.resolve(diff.id, "WRITE_OFF", "", "")
        with pytest.raises(ValueError, match="CANCEL_AT_BROKER does not apply to a CASH"):
            await reconciler.resolve(diff.id, "CANCEL_AT_BROKER", "ops", "x")
        with pytest.raises(KeyError, match="no diff D99"):
            await reconciler.acknowledge("D99", "ops", "x")
        await reconciler.resolve(diff.id, "WRITE_OFF", "ops", "test account")
        with pytest.raises(ValueError, match="already resolved"):
            await reconciler.resolve(diff.id, "WRITE_OFF", "ops", "again")
        await gateway.stop()

    asyncio.run(run())


def test_diffs_survive_a_restart_and_recovery_triggers_a_run(tmp_path: Path) -> None:
    async def run() -> None:
        gateway, broker = scripted_gateway(SQLiteStore(tmp_path / "j.sqlite"))
        await gateway.start()
        reconciler = Reconciler(gateway, NOW)
        reconciler.start()
        broker.snapshot = AccountSnapshot("test", "USD", D(5), D(5))
        await gateway.recover()  # a recovery sync runs reconciliation after it
        assert len(reconciler.diffs()) == 1
        await reconciler.stop()
        await gateway.stop()
        again, _ = scripted_gateway(SQLiteStore(tmp_path / "j.sqlite"))
        await again.start()
        (diff,) = again.book.open_diffs()
        assert diff.finding.marker is Marker.CASH_MISMATCH
        await again.stop()

    asyncio.run(run())


class _Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.table = ""
        self.rows: dict[str, list[list[str]]] = {}
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.table = dict(attrs).get("id") or ""
            self.rows[self.table] = []
        elif tag == "tr":
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row:
            self.rows[self.table].append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def test_eod_report_from_a_drill_run_agrees_across_html_json_and_csv(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["demo", "--dir", str(tmp_path), "--orders", "300"]).exit_code == 0
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    # The drill: while the gateway is down, someone else trades on the account
    # and the desk cancels one of our working orders by hand at the broker.
    from livegate.broker.paper import PaperBroker
    from livegate.model import OrderIntent, Side
    from livegate.model.enums import OrderType, TimeInForce

    broker = PaperBroker(run_dir / "paper.sqlite")
    broker.open()
    working = [o for o in broker.orders.values() if o.status.is_open]
    deep = D(10) ** 9  # enough for our resting orders and the other client's
    broker.set_quote("AAPL", D("150.00"), D("150.02"), deep, deep)
    broker.place(
        OrderIntent(
            "someone-else", "x", "AAPL", Side.BUY, OrderType.MARKET, D(10), None, TimeInForce.DAY, 0
        )
    )
    broker.place(  # and leaves an order resting, far from the market
        OrderIntent(
            "someone-resting", "x", "AAPL", Side.BUY, OrderType.LIMIT, D(10), D("1.00"),
            TimeInForce.DAY, 0,
        )
    )  # fmt: skip
    if working:
        broker.cancel(working[0].client_order_id, None)
    broker.close()

    result = runner.invoke(app, ["recon", "--dir", str(run_dir), "--eod"])
    assert result.exit_code == 1, result.output  # unresolved differences remain
    (json_path,) = run_dir.glob("recon-*.json")
    report = json.loads(json_path.read_text())
    summary = report["summary"]
    markers = {(d["kind"], d["marker"]) for d in report["diffs"]}
    assert ("TRADE", "MISSING_LOCAL") in markers  # the other client's fill
    (resting,) = [
        d for d in report["diffs"] if (d["kind"], d["marker"]) == ("ORDER", "MISSING_LOCAL")
    ]
    assert resting["theirs"].startswith("BUY 10 AAPL SUBMITTED"), resting  # what it is
    assert ("POSITION", "QTY_MISMATCH") in markers and ("CASH", "CASH_MISMATCH") in markers

    cells = _Cells()
    cells.feed(json_path.with_suffix(".html").read_text())
    html_counts = {row[0]: int(row[1]) for row in cells.rows["summary"]}
    assert html_counts["total"] == summary["total"] == len(report["diffs"])
    assert html_counts["unresolved"] == summary["unresolved"]
    for severity, count in summary["by_severity"].items():
        assert html_counts[f"severity {severity}"] == count
    html_rows = cells.rows["diffs"]
    assert [r[0] for r in html_rows] == [d["id"] for d in report["diffs"]]
    assert [r[3] for r in html_rows] == [d["severity"] for d in report["diffs"]]
    with json_path.with_suffix(".csv").open() as handle:
        csv_rows = list(csv.DictReader(handle))
    assert [r["marker"] for r in csv_rows] == [d["marker"] for d in report["diffs"]]

    listed = runner.invoke(app, ["diffs", "--dir", str(run_dir)])
    assert "CASH_MISMATCH" in listed.output


def test_remaining_markers_each_found_resolved_and_clean() -> None:
    async def run() -> None:
        gateway, broker, reconciler, _ = await started()
        # A fill we counted that the broker does not list.
        await working(gateway, broker, "f-1")
        broker.push(trade("f-1", "F1", 40))
        # A fill the broker records with another quantity.
        await working(gateway, broker, "f-2")
        broker.push(trade("f-2", "F2", 30))
        await settle(gateway)
        broker.trades.append(trade("f-2", "F2", 35))
        # The broker says more of a working order is filled than we hold.
        await working(gateway, broker, "f-3")
        broker.status["f-1"] = OrderReport(S.PARTIALLY_FILLED, "f-1", "B-f-1", cum_qty=D(40))
        broker.status["f-2"] = OrderReport(S.PARTIALLY_FILLED, "f-2", "B-f-2", cum_qty=D(30))
        broker.status["f-3"] = OrderReport(S.PARTIALLY_FILLED, "f-3", "B-f-3", cum_qty=D(10))
        books_agree(gateway, broker)
        # ...and the broker's average price for the position is not ours.
        (ours,) = broker.snapshot.positions
        broker.snapshot = AccountSnapshot(
            "test",
            "USD",
            broker.snapshot.cash,
            broker.snapshot.available,
            (Position("AAPL", ours.quantity, ours.avg_price + D("0.05")),),
        )
        await reconciler.run()
        found = {
            (d.finding.kind, d.finding.marker, d.finding.subject): d for d in reconciler.diffs()
        }
        expected = {
            (DiffKind.TRADE, Marker.MISSING_BROKER, "F1"): Severity.CRITICAL,
            (DiffKind.TRADE, Marker.QTY_MISMATCH, "F2"): Severity.CRITICAL,
            (DiffKind.ORDER, Marker.QTY_MISMATCH, "f-3"): Severity.WARNING,
            (DiffKind.POSITION, Marker.PRICE_MISMATCH, "AAPL"): Severity.WARNING,
        }
        assert {k: d.finding.severity for k, d in found.items()} == expected
        for key, diff in found.items():
            action = "ADOPT_BROKER" if key[0] is DiffKind.POSITION else "WRITE_OFF"
            await reconciler.resolve(diff.id, action, "ops", "checked with the broker")
        assert (await reconciler.run()).clean
        await gateway.stop()

    asyncio.run(run())


def test_intraday_runs_on_its_schedule() -> None:
    async def run() -> None:
        gateway, broker = scripted_gateway()
        await gateway.start()
        reconciler = Reconciler(gateway, ReconConfig(interval=0.02, settle_window=0))
        reconciler.start()
        broker.snapshot = AccountSnapshot("test", "USD", D(7), D(7))
        for _ in range(200):
            if reconciler.diffs():
                break
            await asyncio.sleep(0.01)
        assert only(reconciler.diffs()).finding.marker is Marker.CASH_MISMATCH
        await reconciler.stop()
        await gateway.stop()

    asyncio.run(run())
