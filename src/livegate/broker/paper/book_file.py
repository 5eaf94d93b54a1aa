"""The paper broker's own file, separate from the gateway's journal.

WAL with synchronous=NORMAL: each save is a committed transaction, which
survives the process being killed (what the crash tests do), though not a
power cut; a simulated broker needs no more, and the fsync it skips would
otherwise dominate the paper broker's cost.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Protocol, TypeVar

import msgspec

from livegate.model.account import Position

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (number INTEGER PRIMARY KEY, payload BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS trades (seq INTEGER PRIMARY KEY, payload BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS state (id INTEGER PRIMARY KEY CHECK (id = 1), payload BLOB NOT NULL);
"""


class PaperState(msgspec.Struct):
    cash: Decimal
    fees_paid: Decimal
    positions: tuple[Position, ...]
    next_order_no: int
    next_trade_no: int
    duplicate_place_attempts: int


class _Numbered(Protocol):
    """Orders are keyed by the paper broker's own sequence number (integer keys
    are the cheapest rows SQLite has; this file is rewritten every loop turn)."""

    @property
    def number(self) -> int: ...


_enc = msgspec.json.Encoder(decimal_format="string")


class PaperBookFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"paper book {self.path} is not open")
        return self._conn

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
        self._conn = conn

    def load_state(self) -> PaperState | None:
        row = self.conn.execute("SELECT payload FROM state WHERE id = 1").fetchone()
        return msgspec.json.decode(row[0], type=PaperState) if row else None

    def load_orders(self, kind: type[T]) -> Iterator[T]:
        dec = msgspec.json.Decoder(kind)
        for (payload,) in self.conn.execute("SELECT payload FROM orders ORDER BY number"):
            yield dec.decode(payload)

    def load_trades(self, kind: type[T]) -> Iterator[T]:
        dec = msgspec.json.Decoder(kind)
        for (payload,) in self.conn.execute("SELECT payload FROM trades ORDER BY seq"):
            yield dec.decode(payload)

    def save(
        self, orders: Sequence[_Numbered], trades: Sequence[object], state: PaperState
    ) -> None:
        conn = self.conn
        conn.execute("BEGIN")
        try:
            conn.executemany(
                "INSERT OR REPLACE INTO orders VALUES (?, ?)",
                [(o.number, _enc.encode(o)) for o in orders],
            )
            conn.executemany(
                "INSERT INTO trades (payload) VALUES (?)", [(_enc.encode(t),) for t in trades]
            )
            conn.execute("INSERT OR REPLACE INTO state VALUES (1, ?)", (_enc.encode(state),))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
