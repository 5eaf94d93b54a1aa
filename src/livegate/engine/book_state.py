"""Checkpoints: the order book's whole state at one journal position.

A start used to replay every event since the folder's first day; a month of
trading made a restart minutes long at exactly the moment the desk needs the
gateway back. A checkpoint is the state that replay would build, encoded at
a position where every earlier event is durable and applied and no later one
is; a start decodes the latest and applies only the events after it.

Why a record beside the events and not an event: the state it holds is
derived from the events, so it must never be needed to rebuild them; a
checkpoint this code cannot read (an older format, damaged bytes, a position
the journal does not reach) is ignored with a warning and the start replays
in full. Slower, never wrong: nothing in a checkpoint can stop a start.

The tests prove a checkpoint against a full replay (`capture` of both is
equal) for random histories with restarts in between.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal

import msgspec

from livegate.engine.archive import Anchor, Archive, BloomState
from livegate.engine.order_book import OrderBook
from livegate.engine.release_state import ReleaseState
from livegate.model.account import AccountSnapshot
from livegate.model.diffs import Diff
from livegate.model.enums import TradingState
from livegate.model.events import AlertChanged
from livegate.model.instrument import InstrumentRegistry
from livegate.model.ledger import Ledger, LedgerState
from livegate.model.orders import Order
from livegate.model.reports import BrokerReport, Fill

log = logging.getLogger("livegate.checkpoint")

# Raised whenever what a checkpoint holds changes meaning: an older one is then
# ignored (full replay) rather than misread.
VERSION = 3


class HeldReport(msgspec.Struct, array_like=True):
    report: BrokerReport
    received_ns: int
    source: str


class BookState(msgspec.Struct, kw_only=True):
    """Everything `OrderBook.apply` builds, and what retirement keeps (archive.py)."""

    version: int
    seq: int  # the last journal event the state includes
    orders: list[Order]
    by_broker_id: dict[str, str]
    maybe_open: list[str]
    attention: list[str]
    fills: list[Fill]
    fill_keys: list[str]
    ledger: LedgerState
    baseline: AccountSnapshot | None
    held: dict[str, list[HeldReport]]
    external: dict[str, BrokerReport]
    trading_state: TradingState
    applied_commands: list[str]
    release: ReleaseState
    diffs: list[Diff]
    alerts: list[AlertChanged]
    last_eod: str
    multipliers: dict[str, Decimal]
    last_fill_ns: dict[str, int]
    anchor: Anchor | None = None
    retired: BloomState | None = None  # the filter of retired ids (archive.py)


# Deterministic: sets and dict keys sorted, so two equal books encode to equal bytes
# whatever order they were built in (what the tests compare).
_encoder = msgspec.json.Encoder(decimal_format="string", order="deterministic")
_decoder = msgspec.json.Decoder(BookState)


def capture(book: OrderBook, seq: int, pending: Collection[str] = ()) -> BookState:
    """The book at `seq`; `pending`: orders registered whose intents come after `seq`
    (still in flight), left out: the events after the checkpoint bring them."""
    release = book.release
    orders = [o for o in book.orders.values() if o.client_order_id not in pending]
    return BookState(
        version=VERSION,
        seq=seq,
        orders=orders,
        by_broker_id={b: c for b, c in book.by_broker_id.items() if c not in pending},
        maybe_open=[
            o.client_order_id for o in book.open_orders() if o.client_order_id not in pending
        ],
        attention=sorted(o.client_order_id for o in book.needing_attention()),
        fills=list(book.fills),
        fill_keys=sorted(book.fill_keys),
        ledger=book.ledger.state(),
        baseline=book.baseline,
        held={key: [HeldReport(*entry) for entry in entries] for key, entries in book.held.items()},
        external=dict(book.external),
        trading_state=book.trading_state,
        applied_commands=sorted(book.applied_commands),
        release=ReleaseState(
            stage=release.stage,
            safe_stop=release.safe_stop,
            last_safe_stop=release.last_safe_stop,
            release=release.release,
            evidence=list(release.evidence),
            venue=release.venue,
            paper_orders=release.paper_orders.difference(pending),
        ),
        diffs=list(book.diffs.values()),
        alerts=list(book.alerts),
        last_eod=book.last_eod,
        multipliers=dict(book._multipliers),
        last_fill_ns=dict(book._last_fill_ns),
        anchor=book.anchor,
        retired=book.archive.state() if book.archive is not None else None,
    )


def encode(state: BookState) -> bytes:
    return _encoder.encode(state)


def decode(payload: bytes) -> BookState:
    return _decoder.decode(payload)


def restore(state: BookState, instruments: InstrumentRegistry | None) -> OrderBook:
    """A book holding exactly `state`, which it takes over (its orders are the book's)."""
    book = OrderBook(instruments)
    book.orders = {o.client_order_id: o for o in state.orders}
    book.by_broker_id = state.by_broker_id
    book._maybe_open = {coid: book.orders[coid] for coid in state.maybe_open}
    book.attention = set(state.attention)
    book.fills = state.fills
    book.fill_keys = set(state.fill_keys)
    book.ledger = Ledger.from_state(state.ledger)
    book.baseline = state.baseline
    book.held = {
        key: [(h.report, h.received_ns, h.source) for h in entries]
        for key, entries in state.held.items()
    }
    book.external = state.external
    book.trading_state = state.trading_state
    book.applied_commands = set(state.applied_commands)
    book.release = state.release
    book.diffs = {d.id: d for d in state.diffs}
    book.alerts = state.alerts
    book.last_eod = state.last_eod
    book._multipliers = state.multipliers
    book._last_fill_ns = state.last_fill_ns
    book.anchor = state.anchor
    book.archive = Archive.of(state.retired) if state.retired is not None else None
    return book


@dataclass
class Loaded:
    book: OrderBook
    seq: int  # replay the events after this one


def load(payload: bytes | None, last_seq: int, instruments: InstrumentRegistry | None) -> Loaded:
    """The book a start begins from: the checkpoint's, or an empty one (seq 0) when there
    is none or it cannot be used, which costs a full replay and nothing else."""
    if payload is None:
        return Loaded(OrderBook(instruments), 0)
    try:
        state = decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        log.warning("checkpoint not readable (%s); replaying the whole journal", exc)
        return Loaded(OrderBook(instruments), 0)
    if state.version != VERSION or not 0 < state.seq <= last_seq:
        log.warning(
            "checkpoint at seq %s (format %s) does not fit a journal ending at %s (format %s);"
            " replaying the whole journal",
            state.seq, state.version, last_seq, VERSION,
        )  # fmt: skip
        return Loaded(OrderBook(instruments), 0)
    try:
        return Loaded(restore(state, instruments), state.seq)
    except Exception as exc:  # a checkpoint never stops a start
        log.warning("checkpoint at seq %s not usable (%r); replaying in full", state.seq, exc)
        return Loaded(OrderBook(instruments), 0)
