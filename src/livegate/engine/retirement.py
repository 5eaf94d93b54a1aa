"""What leaves memory at a checkpoint, and taking it out (the why is in archive.py).

An order leaves when it is finished (terminal, no fill gap, nothing inferred)
and nothing has touched it for the retention time. Fills leave when their
order leaves or when the broker's time says they are older than the retention
time (a fill without a time leaves only with its order): they are folded
into the ledger's anchor in the broker's time order, so a later recount
(anchor plus the fills still held) gives what a recount of every fill would.

The book is changed by building new containers, never by editing the old
ones, so a checkpoint whose write fails puts the old ones back (`revert`) and
nothing was lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from livegate.engine.archive import Anchor, RetiredOrder, encode_retired
from livegate.engine.fills import order_of_fill_key
from livegate.engine.order_book import OrderBook
from livegate.journal.store import Retired
from livegate.model.ledger import Ledger
from livegate.model.orders import Order
from livegate.model.reports import Fill
from livegate.risk.rollout import counts_as_sent


@dataclass
class Retirement:
    retired: list[RetiredOrder] = field(default_factory=list)
    folded: int = 0  # fills folded into the anchor
    _before: tuple[object, ...] = ()

    def rows(self) -> list[Retired]:
        return [
            Retired(r.order.client_order_id, r.order.broker_order_id, encode_retired(r))
            for r in self.retired
        ]

    def revert(self, book: OrderBook) -> None:
        """Put back what `retire` took out (the checkpoint carrying it was not written)."""
        if self._before:
            orders, by_broker_id, fills, fill_keys, anchor, paper = self._before
            book.orders, book.by_broker_id = orders, by_broker_id  # type: ignore[assignment]
            book.fills, book.fill_keys = fills, fill_keys  # type: ignore[assignment]
            book.anchor, book.release.paper_orders = anchor, paper  # type: ignore[assignment]


def _finished(order: Order, cutoff_ns: int) -> bool:
    return (
        order.status.is_terminal
        and order.fill_gap == 0
        and not order.inferred_qty
        and max(order.created_ns, order.updated_ns) < cutoff_ns
    )


def retire(book: OrderBook, now_ns: int, retain_ns: int) -> Retirement:
    """Take finished orders untouched since `now_ns - retain_ns` out of the book, with
    their fills and dedup keys, and fold old fills into the anchor. The ids go into the
    archive's filter at once; the caller writes `rows()` with the checkpoint."""
    archive = book.archive
    if archive is None:
        return Retirement()
    cutoff = now_ns - retain_ns
    oldest = next(iter(book.orders.values()), None)  # orders are kept in creation order
    if oldest is None or oldest.created_ns >= cutoff:
        # Nothing is old enough (the usual case inside a day): no scan. An order brought
        # back from the archive sits at the end; it leaves again once those before it do.
        return Retirement()
    leaving = {coid for coid, order in book.orders.items() if _finished(order, cutoff)}
    fold = [
        f
        for f in book.fills
        if not f.inferred and (f.client_order_id in leaving or 0 < f.ts_ns < cutoff)
    ]
    if not leaving and not fold:
        return Retirement()
    result = Retirement(
        _before=(
            book.orders,
            book.by_broker_id,
            book.fills,
            book.fill_keys,
            book.anchor,
            book.release.paper_orders,
        )
    )
    if fold:
        book.anchor = _folded(book, fold, cutoff)
        folded = {id(f) for f in fold}
        book.fills = [f for f in book.fills if id(f) not in folded]
        result.folded = len(fold)
    fills_of: dict[str, list[Fill]] = {}
    for f in fold:
        if f.client_order_id in leaving:
            fills_of.setdefault(f.client_order_id, []).append(f)
    keys_of: dict[str, list[str]] = {}
    kept_keys = set()
    for key in book.fill_keys:
        coid = order_of_fill_key(key)
        if coid in leaving:
            keys_of.setdefault(coid, []).append(key)
        else:
            kept_keys.add(key)
    orders_of = book.orders
    for f in fold:
        if f.replaces is None:  # a real fill confirming an inferred one was counted then
            owner = orders_of.get(f.client_order_id)
            when = f.ts_ns or (owner.updated_ns if owner is not None else now_ns)
            archive.used(when, traded=f.quantity * f.price * book._multiplier(f.symbol))
    paper = book.release.paper_orders
    for coid in leaving:
        order = book.orders[coid]
        archive.used(order.created_ns, orders=int(counts_as_sent(order)))
        result.retired.append(
            RetiredOrder(
                order=order,
                fills=fills_of.get(coid, []),
                fill_keys=sorted(keys_of.get(coid, [])),
                paper=coid in paper,
            )
        )
    book.orders = {c: o for c, o in book.orders.items() if c not in leaving}
    book.by_broker_id = {b: c for b, c in book.by_broker_id.items() if c not in leaving}
    book.fill_keys = kept_keys
    book.release.paper_orders = paper - leaving
    archive.added(result.retired)
    archive.prune_usage(now_ns)
    return result


def _folded(book: OrderBook, fold: list[Fill], cutoff: int) -> Anchor:
    """The anchor with `fold` applied in the broker's time order."""
    if book.anchor is not None:
        ledger = Ledger.from_state(book.anchor.state)
        before = max(book.anchor.before_ns, cutoff)
    else:
        ledger = Ledger.from_snapshot(book.baseline) if book.baseline else Ledger()
        before = cutoff
    for f in sorted(fold, key=lambda f: f.ts_ns):
        ledger.apply_fill(f.symbol, f.side, f.quantity, f.price, f.fee, book._multiplier(f.symbol))
    return Anchor(state=ledger.state(), before_ns=before)
