"""The write-ahead journal: group commit, durability, order, failure."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from livegate.journal import Batch, Journal, MemoryStore, SQLiteStore, Store
from livegate.journal.lock import JournalLockedError
from livegate.model import JournalError, OrderRequest, OrderStatus
from livegate.model.events import Anomaly, GatewayStarted

from .helpers import scripted_gateway


def note(i: int) -> Anomaly:
    return Anomaly("TEST", f"c{i}", f"event {i}", i)


class Stores:
    """The journal's store, SQLite or PostgreSQL (under a held lease), for the contract
    tests that must hold for both; `reopen` reads it back from a fresh connection."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind, self.path = kind, tmp_path / "j.sqlite"
        if kind == "postgres":
            from tests import pg

            self.account = pg.new_account()
            self.lease = pg.held_lease(self.account, renew=True)

    def writer(self) -> Store:
        if self.kind == "sqlite":
            return SQLiteStore(self.path)
        from tests import pg

        return pg.writer(self.account, self.lease)

    def reopen(self) -> Store:
        if self.kind == "sqlite":
            return SQLiteStore(self.path)
        from tests import pg

        return pg.reader(self.account)


@pytest.fixture(params=["sqlite", "postgres"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    made = Stores(request.param, tmp_path)
    yield made
    if made.kind == "postgres":
        made.lease.close()


def test_concurrent_appends_share_fsyncs_and_keep_their_order(stores: Stores) -> None:
    async def run() -> None:
        journal = Journal(stores.writer())
        journal.open()
        await journal.start()
        futures = [journal.append(note(i)) for i in range(5_000)]
        await asyncio.gather(*futures)
        assert journal.stats.events == 5_000
        assert journal.stats.batches < 100  # grouped, not one fsync per event
        await journal.close()

        reopened = Journal(stores.reopen())
        reopened.open()
        events = list(reopened.replay())
        assert [seq for seq, _ in events] == list(range(1, 5_001))
        assert [e.detail for _, e in events] == [f"event {i}" for i in range(5_000)]  # type: ignore[union-attr]
        assert reopened.last_seq == 5_000
        reopened.store.close()

    asyncio.run(run())


def test_a_resolved_append_is_on_disk_for_another_connection(tmp_path: Path) -> None:
    async def run() -> None:
        journal = Journal(SQLiteStore(tmp_path / "j.sqlite"))
        journal.open()
        await journal.start()
        await journal.append(note(1))
        with sqlite3.connect(tmp_path / "j.sqlite") as other:
            rows = other.execute("SELECT seq, kind, client_order_id FROM events").fetchall()
        assert rows == [(1, "anomaly", "c1")]
        await journal.close()

    asyncio.run(run())


def test_oversized_batches_are_written_in_parts_in_order(stores: Stores) -> None:
    async def run() -> None:
        journal = Journal(stores.writer(), max_batch=7)
        journal.open()
        await journal.start()
        await asyncio.gather(*(journal.append(note(i)) for i in range(100)))
        assert journal.stats.largest_batch <= 7
        await journal.close()
        store = stores.reopen()
        store.open()
        assert [r.seq for r in store.read()] == list(range(1, 101))
        assert [r.seq for r in store.read_order("c42")] == [43]
        store.close()

    asyncio.run(run())


class FailingStore(MemoryStore):
    """A store whose disk fills up when the test says so."""

    def __init__(self, broken: bool = False) -> None:
        super().__init__()
        self.broken = broken

    def write_batch(self, batch: Batch) -> None:
        if self.broken:
            raise OSError("disk full")
        super().write_batch(batch)


def test_a_failed_write_fails_its_events_and_everything_after() -> None:
    async def run() -> None:
        journal = Journal(FailingStore(broken=True))
        journal.open()
        await journal.start()
        future = journal.append(GatewayStarted(0, "x", "y"))
        with pytest.raises(JournalError, match="disk full"):
            await future
        assert isinstance(journal.failed, OSError)
        with pytest.raises(JournalError, match="failed earlier"):
            journal.append(note(2))
        await journal.close()

    asyncio.run(run())


def test_gateway_stops_trading_when_its_journal_fails() -> None:
    async def run() -> None:
        store = FailingStore()
        gateway, broker = scripted_gateway(store)
        await gateway.start()
        first = await gateway.submit_order(
            OrderRequest(symbol="AAPL", side="BUY", quantity=1, price="1.00", client_order_id="a")
        )
        assert first.broker_order_id == "B-a"
        store.broken = True
        with pytest.raises(JournalError):
            await gateway.submit_order(
                OrderRequest(
                    symbol="AAPL", side="BUY", quantity=1, price="1.00", client_order_id="b"
                )
            )
        # "b" was never durable: never sent, and not left behind half-made.
        assert broker.placed.get("b") is None
        assert [o.client_order_id for o in gateway.orders()] == ["a"]
        assert gateway.order("a").status is not OrderStatus.REJECTED
        with pytest.raises(JournalError):
            await gateway.submit_order(
                OrderRequest(symbol="AAPL", side="BUY", quantity=1, price="1.00")
            )
        await gateway.stop()

    asyncio.run(run())


def test_reading_after_any_seq_starts_exactly_there(stores: Stores) -> None:
    async def run() -> None:
        journal = Journal(stores.writer())
        journal.open()
        await journal.start()
        for size in (3, 1, 5, 2):  # batches of several sizes
            await asyncio.gather(*(journal.append(note(i)) for i in range(size)))
        await journal.close()
        store = stores.reopen()
        store.open()
        assert store.last_seq() == 11
        for after in range(0, 13):
            assert [r.seq for r in store.read(after)] == list(range(after + 1, 12))
        assert {r.kind for r in store.read()} == {"anomaly"}
        store.close()

    asyncio.run(run())


def _journal_with_batches(path: Path, batches: int = 5) -> None:
    async def run() -> None:
        journal = Journal(SQLiteStore(path))
        journal.open()
        await journal.start()
        for i in range(batches):
            await journal.append(GatewayStarted(i, "test", "0"))
        await journal.close()

    asyncio.run(run())


def _refused(path: Path) -> str:
    store = SQLiteStore(path)
    with pytest.raises(JournalError) as info:
        store.open()
    assert "restore the data folder from a backup" in str(info.value)
    return str(info.value)


def test_a_journal_truncated_to_nothing_refuses_to_start(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    _journal_with_batches(path)
    path.write_bytes(b"")
    assert "is empty (0 bytes)" in _refused(path)


def test_a_gap_in_the_sequence_refuses_to_start(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    _journal_with_batches(path)
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM batches WHERE first_seq = 3")
    assert "events 3 to 3 are missing" in _refused(path)


def test_a_journal_that_lost_its_last_events_refuses_to_start(tmp_path: Path) -> None:
    """A damaged WAL: SQLite keeps the frames before the damage and drops the rest."""
    path = tmp_path / "journal.sqlite"
    _journal_with_batches(path, 10)
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM batches WHERE first_seq > 6")  # as if never committed
    message = _refused(path)
    assert "ends at seq 6, but seq 10 was committed" in message


def test_a_garbage_file_is_named_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    path.write_bytes(b"garbage" * 1000)
    with pytest.raises(JournalError, match="not a readable journal"):
        SQLiteStore(path).open()


def test_a_whole_journal_opens_and_a_second_writer_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    _journal_with_batches(path)
    store = SQLiteStore(path)
    store.open()
    assert store.last_seq() == 5
    with pytest.raises(JournalLockedError, match="in use by process"):
        SQLiteStore(path).open()
    reader = SQLiteStore(path, read_only=True)  # operator commands read beside it
    reader.open()
    assert [r.seq for r in reader.read()] == [1, 2, 3, 4, 5]
    reader.close()
    store.close()
