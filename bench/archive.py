"""Archiving past trading days: what the live journal keeps, what a start and a trace cost.

    python bench/archive.py [--events 1000000 5000000] [--per-day 25000]

Each size is bench/startup.py's data folder (trading days of `--per-day`
orders, each closed by a retiring checkpoint, the last one stopped cleanly;
here in batches of 1,000 events, as a busy gateway's group commit writes),
its batches stamped with their simulated day. Then `archive_before` moves
every day but the last out of the live journal (what `livegate archive
--before` does). Prints the live journal's size before and after, how long
archiving took, a start from the checkpoint before and after, a full replay
after (every archive read), and a trace of an order of the first day (in an
archive) and of the last (live). Asserts the full replay holds every event.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from livegate.journal.archives import archive_before
from livegate.journal.sqlite import SQLiteStore
from startup import DAY_NS, START_NS, build, start, stop_checkpoint


def stamp_days(path: Path, per_day: int) -> None:
    """Each batch committed on its simulated day (a day's batches never span two)."""
    store = SQLiteStore(path, synchronous="NORMAL")
    store.open()
    store.conn.execute(
        "UPDATE batches SET ts_ns = ? + ((first_seq - 1) / ?) * ? + 17 * 3600 * 1000000000",
        (START_NS, per_day * 4, DAY_NS),
    )
    store.close()


def trace_seconds(path: Path, client_order_id: str) -> float:
    store = SQLiteStore(path, read_only=True)
    store.open()
    started = time.perf_counter()
    records = list(store.read_order(client_order_id))
    seconds = time.perf_counter() - started
    store.close()
    assert len(records) == 4, (client_order_id, len(records))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--per-day", type=int, default=25_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for events in args.events:
            path = Path(tmp) / str(events) / "journal.sqlite"
            path.parent.mkdir()
            build(path, events, args.per_day, batch=1_000)
            days = events // 4 // args.per_day
            book, _, _ = start(path, from_checkpoint=True)
            stop_checkpoint(path, book, START_NS + (days - 1) * DAY_NS + 17 * 3600 * 10**9)
            stamp_days(path, args.per_day)
            _, before_s, _ = start(path, from_checkpoint=True)
            last_day = datetime.fromtimestamp((START_NS + (days - 1) * DAY_NS) / 1e9, UTC)
            store = SQLiteStore(path, synchronous="NORMAL")
            store.open()
            started = time.perf_counter()
            summary = archive_before(store, last_day.date())
            archive_s = time.perf_counter() - started
            store.close()
            _, after_s, _ = start(path, from_checkpoint=True)
            full, full_s, _ = start(path, from_checkpoint=False)
            assert len(full.orders) == events // 4
            last = f"c{events // 4 - 1}"
            print(
                f"{events:>11,} events, {days} days: live journal"
                f" {summary.bytes_before / 1e6:,.0f} MB -> {summary.bytes_after / 1e6:,.1f} MB"
                f" ({len(summary.files)} archive files, {summary.events:,} events,"
                f" {archive_s:.1f} s);"
                f" start from the checkpoint {before_s:.2f} s before, {after_s:.2f} s after;"
                f" full replay through the archives {full_s:.1f} s;"
                f" trace c0 (archived) {trace_seconds(path, 'c0') * 1e3:,.0f} ms,"
                f" {last} (live) {trace_seconds(path, last) * 1e3:,.0f} ms",
                flush=True,
            )
            del full, book


if __name__ == "__main__":
    main()
