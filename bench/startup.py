"""Start-up: rebuilding the book from a checkpoint and its tail, against a full replay.

    python bench/startup.py [--events 1000000 5000000] [--tail 10000]

For each size, a SQLite journal of that many events (orders of four events:
intent, acknowledgement, fill, FILLED; finished, as most of a history is),
then: a full replay (what every start did before checkpoints), a checkpoint
of that book, and a start from the checkpoint plus `--tail` events after it.
Prints seconds and the checkpoint's size; asserts nothing but that both
starts build the same book.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from livegate.engine import book_state
from livegate.engine.order_book import OrderBook
from livegate.journal.journal import Journal
from livegate.journal.sqlite import SQLiteStore
from livegate.model import OrderReport, OrderStatus, Side, TradeReport
from livegate.model.enums import OrderType, TimeInForce
from livegate.model.events import JournalEvent, Received
from livegate.model.orders import OrderIntent

D = Decimal


def order_events(i: int) -> list[JournalEvent]:
    c, b = f"c{i}", f"b{i}"
    return [
        OrderIntent(c, "a", "AAPL", Side.BUY, OrderType.LIMIT, D(100), D(10), TimeInForce.DAY, i),
        Received(OrderReport(OrderStatus.SUBMITTED, c, b), i, "stream"),
        Received(TradeReport(D(100), D(10), c, b, f"t{i}", "AAPL", Side.BUY), i, "stream"),
        Received(OrderReport(OrderStatus.FILLED, c, b, cum_qty=D(100)), i, "stream"),
    ]


def write_journal(path: Path, orders: int, start: int = 0) -> None:
    journal = Journal(SQLiteStore(path, synchronous="NORMAL"))
    journal.open()
    chunk: list[JournalEvent] = []
    for i in range(start, start + orders):
        chunk += order_events(i)
        if len(chunk) >= 20_000:
            journal.write_now(chunk)
            chunk = []
    journal.write_now(chunk)
    journal.store.close()


def full_replay(journal: Journal) -> OrderBook:
    book = OrderBook()
    for _, event in journal.replay():
        book.apply(event)
    return book


def from_checkpoint(journal: Journal) -> OrderBook:
    loaded = book_state.load(journal.last_checkpoint(), journal.last_seq, None)
    for _, event in journal.replay(loaded.seq):
        loaded.book.apply(event)
    return loaded.book


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--tail", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for events in args.events:
            path = Path(tmp) / f"journal-{events}.sqlite"
            history = (events - args.tail) // 4
            write_journal(path, history)
            journal = Journal(SQLiteStore(path, synchronous="NORMAL"))
            journal.open()
            started = time.perf_counter()
            book = full_replay(journal)
            replay_s = time.perf_counter() - started
            state = book_state.encode(book_state.capture(book, journal.last_seq))
            journal.store.write_checkpoint(journal.last_seq, state)
            del book
            journal.store.close()
            write_journal(path, args.tail // 4, start=history)
            journal = Journal(SQLiteStore(path, synchronous="NORMAL"))
            journal.open()
            started = time.perf_counter()
            book = from_checkpoint(journal)
            checkpoint_s = time.perf_counter() - started
            full = full_replay(journal)
            assert book_state.encode(book_state.capture(book, 1)) == book_state.encode(
                book_state.capture(full, 1)
            )
            del book, full
            journal.store.close()
            print(
                f"{journal.last_seq:>11,} events: full replay {replay_s:6.2f} s,"
                f" checkpoint ({len(state) / 1e6:,.0f} MB) + {args.tail:,} events"
                f" {checkpoint_s:6.2f} s ({replay_s / checkpoint_s:.1f}x)"
            )


if __name__ == "__main__":
    main()
