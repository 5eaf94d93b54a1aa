"""Finished orders out of memory: retired at a checkpoint, served from the journal's store.

A gateway that trades for weeks must not hold every order it ever sent. At
a checkpoint, orders finished and untouched for `retain_hours` leave the book
with their fills and dedup keys; each becomes one row in the store (client
id, broker id, the order's final state and fills), written in the checkpoint's
own transaction, so a row exists exactly when a checkpoint that left it out
of memory exists. Positions do not move: the fills folded away become the
ledger's anchor (`Anchor`), from which a recount starts.

Dedup stays exact. Whether an id was ever used is answered by Bloom filters
of retired ids (kept in the checkpoint) and, on a maybe, by the store; a
report naming a retired order brings it back into the book as it was, and it
is then handled as if it had never left (a late fill is booked once, a
duplicate refused). Only the newest checkpoint's rows are ever consulted, so
a start from it sees exactly what the book retired; a start that cannot use
it replays in full with an empty filter and never consults the store.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from decimal import Decimal

import msgspec

from livegate.model.account import Position
from livegate.model.ledger import LedgerState
from livegate.model.orders import Order
from livegate.model.reports import Fill


class RetiredOrder(msgspec.Struct, kw_only=True):
    order: Order
    fills: list[Fill]
    fill_keys: list[str]
    paper: bool = False


class Anchor(msgspec.Struct, kw_only=True):
    """The ledger that the folded fills made: where a recount starts instead of the
    baseline."""

    state: LedgerState
    before_ns: int  # every fill folded into it happened before this (broker time)

    def position(self, symbol: str) -> tuple[Position | None, Decimal | None]:
        """A symbol's position here, with its exact cost."""
        found = next((p for p in self.state.positions if p.symbol == symbol), None)
        return found, self.state.cost.get(symbol)


_encoder = msgspec.json.Encoder(decimal_format="string")
_decoder = msgspec.json.Decoder(RetiredOrder)


def encode_retired(retired: RetiredOrder) -> bytes:
    return _encoder.encode(retired)


def decode_retired(payload: bytes) -> RetiredOrder:
    return _decoder.decode(payload)


class Bloom:
    """Ids that may have been retired: no false "no", about 1% false "maybe" at capacity.

    One layer of the archive's filter; a full one is kept as it is and a larger
    one started (`Archive.added`).
    """

    HASHES = 7

    def __init__(self, capacity: int = 1 << 16, bits: bytes | None = None, count: int = 0):
        self.capacity = capacity
        self.size = capacity * 10  # bits: 10 per id, 7 hashes: under 1% false positives
        self.bits = bytearray(bits) if bits is not None else bytearray((self.size + 7) // 8)
        self.count = count

    def _start(self, key: str) -> tuple[int, int]:
        """Double hashing from two CRC-32s (stable across processes, unlike hash(); in C,
        so a check costs well under a microsecond: it runs for every new client id)."""
        data = key.encode()
        return zlib.crc32(data), zlib.crc32(data, 0x9E3779B9) | 1

    def add(self, key: str) -> None:
        a, h = self._start(key)
        bits, size = self.bits, self.size
        for i in range(self.HASHES):
            p = (a + i * h) % size
            bits[p >> 3] |= 1 << (p & 7)
        self.count += 1

    def __contains__(self, key: str) -> bool:
        if not self.count:
            return False
        a, h = self._start(key)
        bits, size = self.bits, self.size
        for i in range(self.HASHES):
            p = (a + i * h) % size
            if not bits[p >> 3] & (1 << (p & 7)):
                return False
        return True

    @property
    def full(self) -> bool:
        return self.count > self.capacity


class BloomState(msgspec.Struct, array_like=True):
    capacity: int
    count: int
    bits: bytes
    # What retired orders used of their days, by quarter hour (UTC): the rollout's daily
    # caps count them after a restart, in whatever time zone its day is.
    usage: list[tuple[int, int, Decimal]] = msgspec.field(default_factory=list)
    # Layers filled before this one, oldest first: (capacity, count, bits) each.
    filled: list[tuple[int, int, bytes]] = msgspec.field(default_factory=list)


class Usage(msgspec.Struct, array_like=True):
    orders: int = 0  # sent (or tried), created in this quarter hour
    traded: Decimal = Decimal(0)  # notional of fills executed in it


USAGE_BUCKET_NS = 15 * 60 * 10**9  # every time zone's day starts on a quarter hour
USAGE_KEPT_NS = 48 * 3600 * 10**9


class Archive:
    """The book's way to the retired orders: the filter here, the rows in the store.

    The filter is layered: when the newest layer is full, it is kept as it is and
    one four times larger is started. Rebuilding one larger filter from every
    retired id instead stalled the event loop for seconds (3 s at half a million
    orders, growing with history); a layer costs nothing to start, and each kept
    layer adds at most its 1% of false "maybe" (a point query in the store), with
    eight layers at a billion ids.

    `connect` gives it the store's `retired_order(client_id, broker_id)`; until
    then it answers no for every id.
    """

    def __init__(
        self,
        bloom: Bloom | None = None,
        usage: dict[int, Usage] | None = None,
        filled: list[Bloom] | None = None,
    ) -> None:
        self.bloom = bloom or Bloom()
        self.filled = filled or []  # the layers filled before `bloom`, oldest first
        self.usage = usage if usage is not None else {}
        self._lookup: Callable[[str | None, str | None], bytes | None] | None = None

    def connect(self, lookup: Callable[[str | None, str | None], bytes | None]) -> None:
        self._lookup = lookup

    @property
    def empty(self) -> bool:
        """Nothing was ever retired: every lookup would say no (checked for every new id)."""
        return not self.bloom.count and not self.filled

    def may_hold(self, key: str) -> bool:
        return key in self.bloom or any(key in layer for layer in self.filled)

    def find(self, client_order_id: str | None, broker_order_id: str | None) -> RetiredOrder | None:
        if self._lookup is None:
            return None
        may_hold = self.may_hold
        coid = client_order_id if client_order_id and may_hold("c:" + client_order_id) else None
        boid = broker_order_id if broker_order_id and may_hold("b:" + broker_order_id) else None
        if coid is None and boid is None:
            return None
        payload = self._lookup(coid, boid)
        return decode_retired(payload) if payload is not None else None

    def added(self, retired: Iterable[RetiredOrder]) -> None:
        """Ids of orders just retired (their rows are being written with the checkpoint)."""
        for r in retired:
            if self.bloom.full:
                self.filled.append(self.bloom)
                self.bloom = Bloom(self.bloom.capacity * 4)
            self.bloom.add("c:" + r.order.client_order_id)
            if r.order.broker_order_id:
                self.bloom.add("b:" + r.order.broker_order_id)

    def used(self, at_ns: int, orders: int = 0, traded: Decimal = Decimal(0)) -> None:
        """Count what a retired order (or fill) used, in the quarter hour of `at_ns`."""
        bucket = self.usage.setdefault(at_ns - at_ns % USAGE_BUCKET_NS, Usage())
        bucket.orders += orders
        bucket.traded += traded

    def prune_usage(self, now_ns: int) -> None:
        self.usage = {t: u for t, u in self.usage.items() if t >= now_ns - USAGE_KEPT_NS}

    def usage_rows(self) -> list[tuple[int, int, Decimal]]:
        """What retired orders used: (quarter hour start, orders, notional), oldest first."""
        return [(start, u.orders, u.traded) for start, u in sorted(self.usage.items())]

    def state(self) -> BloomState:
        bloom = self.bloom
        filled = [(layer.capacity, layer.count, bytes(layer.bits)) for layer in self.filled]
        return BloomState(bloom.capacity, bloom.count, bytes(bloom.bits), self.usage_rows(), filled)

    @classmethod
    def of(cls, state: BloomState | None) -> Archive:
        if state is None:
            return cls()
        usage = {start: Usage(orders, traded) for start, orders, traded in state.usage}
        filled = [Bloom(capacity, bits, count) for capacity, count, bits in state.filled]
        return cls(Bloom(state.capacity, state.bits, state.count), usage, filled)
