"""Property tests: dedup, ordering and idempotency hold for any interleaving."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livegate.engine.order_book import OrderBook
from livegate.model import (
    BrokerReport,
    ExecutionReport,
    Fill,
    OrderRequest,
    OrderSnapshot,
    TradeReport,
)
from livegate.model.events import FillInferred, Received

from .helpers import INSTRUMENTS, scripted_gateway, settle
from .histories import History, histories, intent_of, messy_delivery

D = Decimal


def _final(book: OrderBook) -> dict[str, tuple[str, Decimal, Decimal]]:
    return {
        coid: (o.status.value, o.filled_qty, o.reported_cum_qty) for coid, o in book.orders.items()
    }


def _run_book(hs: list[History], delivery: list[BrokerReport]) -> OrderBook:
    book = OrderBook(INSTRUMENTS)
    for h in hs:
        book.apply(intent_of(h))
    for report in delivery:
        book.apply(Received(report, 0))
    return book


@settings(max_examples=300, deadline=None)
@given(data=st.data(), hs=histories())
def test_any_permutation_with_duplicates_converges_to_the_in_order_state(
    data: st.DataObject, hs: list[History]
) -> None:
    in_order = [r for h in hs for r in h.reports]
    expected = _run_book(hs, in_order)
    messy = data.draw(messy_delivery(in_order))
    book = _run_book(hs, messy)
    assert _final(book) == _final(expected)
    for h in hs:
        order = book.orders[h.coid]
        assert order.status is h.final
        assert order.filled_qty == sum(h.fills, D(0)) <= order.quantity
    assert sorted(f.trade_id for f in book.fills) == sorted(f.trade_id for f in expected.fills)
    assert len({f.trade_id for f in book.fills}) == len(book.fills)
    assert book.ledger.positions == expected.ledger.positions
    assert book.held == {}


# -- the whole gateway, driven by random interleavings of commands --------------

Command = tuple[str, int]  # ("submit" | "resubmit" | "cancel" | "deliver", index)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[History], list[BrokerReport], list[Command]]:
    hs = draw(histories())
    delivery = draw(messy_delivery([r for h in hs for r in h.reports]))
    commands: list[Command] = [("submit", i) for i in range(len(hs))]
    commands += [("deliver", j) for j in range(len(delivery))]
    commands += [
        ("resubmit", draw(st.integers(0, len(hs) - 1))) for _ in range(draw(st.integers(0, 4)))
    ]
    commands += [
        ("cancel", draw(st.integers(0, len(hs) - 1))) for _ in range(draw(st.integers(0, 3)))
    ]
    return hs, delivery, draw(st.permutations(commands))


async def _drive(
    hs: list[History], delivery: list[BrokerReport], commands: list[Command]
) -> tuple[dict[str, tuple[str, Decimal]], list[Fill], dict[str, int], list[object]]:
    gateway, broker = scripted_gateway()
    callbacks: list[object] = []
    filled_seen: dict[str, list[Decimal]] = {}

    def on_order(snapshot: OrderSnapshot) -> None:
        callbacks.append(snapshot)
        filled_seen.setdefault(snapshot.client_order_id, []).append(snapshot.filled_qty)

    gateway.on_order(on_order)
    gateway.on_trade(callbacks.append)
    gateway.on_execution_report(callbacks.append)
    await gateway.start()
    submitted: set[str] = set()
    by_coid = {h.coid: h for h in hs}
    pending: list[BrokerReport] = []
    for kind, index in commands:
        if kind in ("submit", "resubmit"):
            h = hs[index]
            request = OrderRequest(
                symbol="AAPL",
                side="BUY",
                quantity=h.quantity,
                price="20.00",
                client_order_id=h.coid,
            )
            if kind == "submit" or h.coid in submitted:
                try:
                    await gateway.submit_order(request)
                except Exception as exc:  # reuse of a finished order's id
                    assert type(exc).__name__ == "DuplicateClientOrderIdError"
                submitted.add(h.coid)
                # A broker reports only what it was sent: release what waited.
                for report in [r for r in pending if r.broker_order_id == "B-" + h.coid]:
                    pending.remove(report)
                    broker.push(report)
        elif kind == "cancel":
            if hs[index].coid in submitted:
                await gateway.cancel_order(hs[index].coid)
        else:
            report = delivery[index]
            if report.broker_order_id and report.broker_order_id[2:] in submitted:
                broker.push(report)
            else:
                pending.append(report)
        await settle(gateway)
    await settle(gateway)
    # Invariants that hold at every step, checked on what the strategy saw.
    for coid, seq in filled_seen.items():
        assert seq == sorted(seq), f"filled quantity went down for {coid}: {seq}"
        assert seq[-1] <= by_coid[coid].quantity
    for cb in callbacks:
        assert isinstance(cb, OrderSnapshot | Fill | ExecutionReport)
        assert cb.client_order_id and cb.broker_order_id, cb
    final = {o.client_order_id: (o.status.value, o.filled_qty) for o in gateway.orders()}
    fills = gateway.trades()
    placed = dict(broker.placed)
    await gateway.stop()
    return final, fills, placed, callbacks


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios())
def test_gateway_invariants_under_random_interleavings(
    scenario: tuple[list[History], list[BrokerReport], list[Command]],
) -> None:
    hs, delivery, commands = scenario
    final, fills, placed, _ = asyncio.run(_drive(hs, delivery, commands))
    assert all(count == 1 for count in placed.values()), placed
    assert len({f.trade_id for f in fills}) == len(fills)
    for h in hs:
        assert final[h.coid][1] == sum(h.fills, D(0))

    # Final state does not depend on duplicate delivery: deliver each report once.
    seen: set[int] = set()
    once: list[Command] = []
    for kind, index in commands:
        if kind == "deliver":
            key = id(delivery[index])
            if key in seen:
                continue
            seen.add(key)
        once.append((kind, index))
    final_once, fills_once, _, _ = asyncio.run(_drive(hs, delivery, once))
    assert final_once == final
    assert sorted(f.trade_id for f in fills_once) == sorted(f.trade_id for f in fills)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), hs=histories())
def test_inferred_fills_are_replaced_by_late_real_fills_without_double_count(
    data: st.DataObject, hs: list[History]
) -> None:
    in_order = [r for h in hs for r in h.reports]
    expected = _run_book(hs, in_order)
    trades = [r for r in in_order if isinstance(r, TradeReport)]
    late = data.draw(st.lists(st.sampled_from(trades), unique=True)) if trades else []
    on_time = [r for r in in_order if r not in late]
    book = _run_book(hs, data.draw(messy_delivery(on_time)))
    for order in list(book.orders.values()):  # the resolver's grace runs out
        if order.fill_gap > 0:
            book.apply(FillInferred(order.client_order_id, order.fill_gap, D("10.50"), 0))
    for report in data.draw(messy_delivery(late)):
        book.apply(Received(report, 0))
    assert _final(book) == _final(expected)
    assert all(not f.inferred for f in book.fills)
    assert sorted(f.trade_id for f in book.fills) == sorted(f.trade_id for f in expected.fills)
    assert all(o.inferred_qty == 0 for o in book.orders.values())
    assert book.ledger.positions == expected.ledger.positions
    assert book.ledger.cash == expected.ledger.cash


@settings(max_examples=200, deadline=None)
@given(data=st.data(), hs=histories())
def test_the_open_orders_index_is_exactly_the_open_orders_after_every_event(
    data: st.DataObject, hs: list[History]
) -> None:
    """`open_orders` reads an index (it costs what is open, not the day): after every event
    of any delivery it lists exactly the open orders, oldest first."""
    book = OrderBook(INSTRUMENTS)
    delivery = data.draw(messy_delivery([r for h in hs for r in h.reports]))
    events = [intent_of(h) for h in hs] + [Received(r, 0) for r in delivery]
    order = data.draw(st.permutations(range(len(events))))
    for index in order:  # intents may even come after their reports (held, then applied)
        book.apply(events[index])
        expected = [o.client_order_id for o in book.orders.values() if o.status.is_open]
        assert [o.client_order_id for o in book.open_orders()] == expected
