"""Start-up against history: a data folder of many trading days, as a gateway leaves it.

    python bench/startup.py [--events 1000000 5000000 20000000] [--per-day 25000]
                            [--full-replay-up-to 5000000]

Each size is a SQLite journal of that many events, `--per-day` orders a day
(four events each: intent, acknowledgement, fill, FILLED), with what the
gateway does at each day's end-of-day reconciliation: a checkpoint that
retires the orders finished more than a day ago (engine/archive.py). Then a
start: the latest checkpoint and the events after it (here, the whole of the
last day), timed, against a full replay of every event (what every start did
before checkpoints; skipped above `--full-replay-up-to`, where it needs more
memory than a desk's machine should). Prints seconds, the checkpoint's size
and how many orders the start holds in memory; asserts that both starts agree
on what they both hold.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from livegate.engine import book_state
from livegate.engine.archive import Archive
from livegate.engine.config import GatewayConfig
from livegate.engine.order_book import OrderBook
from livegate.engine.retirement import retire
from livegate.journal.journal import Journal
from livegate.journal.sqlite import SQLiteStore
from livegate.model import OrderReport, OrderStatus, Side, TradeReport
from livegate.model.enums import OrderType, TimeInForce
from livegate.model.events import JournalEvent, Received
from livegate.model.orders import OrderIntent

D = Decimal
DAY_NS = 24 * 3600 * 10**9
START_NS = 1_764_547_200 * 10**9  # 2025-12-01 00:00 UTC
RETAIN_NS = int(GatewayConfig().retain_hours * 3600e9)  # the gateway's default


def order_events(i: int, at_ns: int) -> list[JournalEvent]:
    c, b = f"c{i}", f"b{i}"
    intent = OrderIntent(
        c, "a", "AAPL", Side.BUY, OrderType.LIMIT, D(100), D(10), TimeInForce.DAY, at_ns
    )
    return [
        intent,
        Received(OrderReport(OrderStatus.SUBMITTED, c, b, ts_ns=at_ns), at_ns, "stream"),
        Received(TradeReport(D(100), D(10), c, b, f"t{i}", "AAPL", Side.BUY, ts_ns=at_ns), at_ns),
        Received(OrderReport(OrderStatus.FILLED, c, b, cum_qty=D(100), ts_ns=at_ns), at_ns),
    ]


def build(path: Path, events: int, per_day: int, batch: int = 0) -> None:
    """Trading days of `per_day` orders, each day closed by a retiring checkpoint; a day
    is written as one batch, or in batches of `batch` events (as a gateway commits)."""
    store = SQLiteStore(path, synchronous="NORMAL")
    journal = Journal(store)
    journal.open()
    book = OrderBook()
    book.archive = Archive()
    book.archive.connect(store.retired_order)
    orders = events // 4
    for day, first in enumerate(range(0, orders, per_day)):
        day_start = START_NS + day * DAY_NS
        chunk: list[JournalEvent] = []
        for i in range(first, min(first + per_day, orders)):
            chunk += order_events(i, day_start + 9 * 3600 * 10**9 + i)
        step = batch or len(chunk)
        for at in range(0, len(chunk), step):
            journal.write_now(chunk[at : at + step])
        for event in chunk:
            book.apply(event)
        if first + per_day < orders:  # the day's close; the last day is still trading
            close = day_start + 17 * 3600 * 10**9
            retirement = retire(book, close, RETAIN_NS)
            state = book_state.encode(book_state.capture(book, journal.last_seq))
            store.write_checkpoint(journal.last_seq, state, retirement.rows())
    store.close()


def stop_checkpoint(path: Path, book: OrderBook, now_ns: int) -> None:
    """What a clean stop writes: the book at the journal's end (retiring as always)."""
    store = SQLiteStore(path, synchronous="NORMAL")
    store.open()
    book.archive = book.archive or Archive()
    book.archive.connect(store.retired_order)
    retirement = retire(book, now_ns, RETAIN_NS)
    state = book_state.encode(book_state.capture(book, store.last_seq()))
    store.write_checkpoint(store.last_seq(), state, retirement.rows())
    store.close()


def start(path: Path, from_checkpoint: bool) -> tuple[OrderBook, float, int]:
    store = SQLiteStore(path, synchronous="NORMAL")
    journal = Journal(store)
    started = time.perf_counter()
    journal.open()
    payload = journal.last_checkpoint() if from_checkpoint else None
    loaded = book_state.load(payload, journal.last_seq, None)
    for _, event in journal.replay(loaded.seq):
        loaded.book.apply(event)
    seconds = time.perf_counter() - started
    store.close()
    return loaded.book, seconds, len(payload or b"")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000, 5_000_000, 20_000_000])
    parser.add_argument("--per-day", type=int, default=25_000)
    parser.add_argument("--full-replay-up-to", type=int, default=5_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for events in args.events:
            path = Path(tmp) / f"journal-{events}.sqlite"
            started = time.perf_counter()
            build(path, events, args.per_day)
            built = time.perf_counter() - started
            days = events // 4 // args.per_day
            crashed, crash_s, _ = start(path, from_checkpoint=True)
            stop_checkpoint(path, crashed, START_NS + (days - 1) * DAY_NS + 17 * 3600 * 10**9)
            book, clean_s, size = start(path, from_checkpoint=True)
            line = (
                f"{events:>11,} events, {days} days (built in {built:.0f} s): after a stop"
                f" {clean_s:5.2f} s (checkpoint {size / 1e6:.0f} MB, {len(book.orders):,}"
                f" orders held); after a crash {crash_s:5.2f} s (the last day replayed)"
            )
            if events <= args.full_replay_up_to:
                full, full_seconds, _ = start(path, from_checkpoint=False)
                assert all(full.orders[c].status is o.status for c, o in book.orders.items())
                assert full.ledger.positions == book.ledger.positions == crashed.ledger.positions
                line += f"; full replay {full_seconds:6.2f} s ({len(full.orders):,} orders held)"
                del full
            del book, crashed
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"{line}; peak RSS so far {rss:,.0f} MB", flush=True)
            path.unlink()


if __name__ == "__main__":
    main()
