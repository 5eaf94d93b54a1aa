"""Our books against the broker's: a pure comparison, every difference a Finding."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from livegate.engine.archive import RetiredOrder
from livegate.model.account import AccountSnapshot, CashBalance, Position
from livegate.model.decimals import ZERO
from livegate.model.diffs import DiffKind, Finding, Marker, Severity
from livegate.model.orders import OrderSnapshot
from livegate.model.reports import Fill, OrderReport, TradeReport

K, M, S = DiffKind, Marker, Severity


@dataclass(frozen=True)
class Tolerances:
    cash: Decimal = Decimal("0.01")
    avg_price: Decimal = Decimal("0.0001")


@dataclass
class BrokerView:
    """What the broker says, fetched at one moment."""

    open_orders: Sequence[OrderReport]
    statuses: Mapping[str, OrderReport | None]  # for our open orders it does not list
    trades: Sequence[TradeReport]
    account: AccountSnapshot
    # A broker that cannot list orders and trades (a plain FIX session): only
    # orders unconfirmed since this session began are findings (UNVERIFIED).
    blind_since_ns: int | None = None
    reports_account: bool = True


def _nothing_retired(client_order_id: str | None, broker_order_id: str | None) -> None:
    return None


@dataclass
class LocalView:
    orders: Sequence[OrderSnapshot]
    fills: Sequence[Fill]
    positions: Sequence[Position]
    cash: CashBalance
    open_sell_qty: Mapping[str, Decimal]
    # A finished order that left memory (engine/archive.py), by client or broker id:
    # what the broker lists of it is ours, compared with what we hold of it.
    recall: Callable[[str | None, str | None], RetiredOrder | None] = _nothing_retired


def compare(local: LocalView, broker: BrokerView, tol: Tolerances) -> list[Finding]:
    findings: list[Finding] = []
    if broker.blind_since_ns is None:
        findings += [*_orders(local, broker), *_trades(local, broker)]
    else:
        findings += _unverified(local, broker.blind_since_ns)
    if broker.reports_account:
        findings += [*_positions(local, broker, tol), *_cash(local, broker, tol)]
    return findings


def _unverified(local: LocalView, session_began_ns: int) -> Iterable[Finding]:
    """Open orders with no news since the broker session began.

    The broker cannot be asked, and a reconnect cannot tell a network blip
    from a counterparty that restarted and lost its book. Such an order is
    neither believed nor closed: it is a diff for a person (or the next
    report about it, which clears it).
    """
    for order in local.orders:
        # Only the broker's word verifies: our own cancel request does not.
        if order.status.is_open and max(order.created_ns, order.confirmed_ns) < session_began_ns:
            yield Finding(
                K.ORDER,
                M.UNVERIFIED,
                S.CRITICAL,
                order.client_order_id,
                order.status.value,
                "unknown",
                "open here, unconfirmed since the broker session began; the broker"
                " cannot be asked (it may have restarted and lost its book)",
            )


def _orders(local: LocalView, broker: BrokerView) -> Iterable[Finding]:
    by_coid = {o.client_order_id: o for o in local.orders}
    by_boid = {o.broker_order_id: o for o in local.orders if o.broker_order_id}
    listed: set[str] = set()
    for report in broker.open_orders:
        ours = by_coid.get(report.client_order_id or "") or by_boid.get(
            report.broker_order_id or ""
        )
        if ours is None:
            retired = local.recall(report.client_order_id, report.broker_order_id)
            ours = retired.order.snapshot() if retired is not None else None
        if ours is None:
            subject = report.broker_order_id or report.client_order_id or "?"
            what = " ".join(
                str(part)
                for part in (report.side, report.quantity, report.symbol)
                if part is not None and part != ""
            )
            yield Finding(
                K.ORDER,
                M.MISSING_LOCAL,
                S.WARNING,
                subject,
                "none",
                f"{what + ' ' if what else ''}{report.status} cum {report.cum_qty}",
                f"broker order {subject} was not sent by this gateway",
            )
            continue
        listed.add(ours.client_order_id)
        if ours.status.is_terminal:
            yield Finding(
                K.ORDER,
                M.STATUS_MISMATCH,
                S.CRITICAL,
                ours.client_order_id,
                ours.status.value,
                report.status.value,
                "we hold it finished; the broker still has it working",
            )
        elif report.cum_qty is not None and report.cum_qty != ours.filled_qty:
            yield Finding(
                K.ORDER,
                M.QTY_MISMATCH,
                S.WARNING,
                ours.client_order_id,
                str(ours.filled_qty),
                str(report.cum_qty),
                "filled quantity differs",
            )
    for order in local.orders:
        if order.status.is_terminal or order.client_order_id in listed:
            continue
        if order.client_order_id not in broker.statuses:
            continue  # not asked (never acknowledged): the unknown-order path owns it
        status = broker.statuses[order.client_order_id]
        if status is None:
            yield Finding(
                K.ORDER,
                M.MISSING_BROKER,
                S.CRITICAL,
                order.client_order_id,
                order.status.value,
                "none",
                "we hold it working; the broker has no such order",
            )
        elif status.status is not order.status and status.status.is_terminal:
            yield Finding(
                K.ORDER,
                M.STATUS_MISMATCH,
                S.CRITICAL,
                order.client_order_id,
                order.status.value,
                status.status.value,
                "the broker closed an order we hold working",
            )


def _trades(local: LocalView, broker: BrokerView) -> Iterable[Finding]:
    # Matched by (order, trade id): both sides of a self-cross carry one trade id.
    ours = {(f.client_order_id, f.trade_id): f for f in local.fills}
    by_broker_id = {o.broker_order_id: o.client_order_id for o in local.orders if o.broker_order_id}
    ours_ids = {o.client_order_id for o in local.orders} | set(by_broker_id)
    theirs_keys: set[tuple[str, str]] = set()
    for trade in broker.trades:
        key = trade.dedup_key()
        owner = by_broker_id.get(trade.broker_order_id or "") or trade.client_order_id or ""
        theirs_keys.add((owner, key))
        fill = ours.get((owner, key))
        retired = None
        if fill is None:
            retired = local.recall(trade.client_order_id, trade.broker_order_id)
        if retired is not None:  # an order out of memory: its fills as it left
            owner = retired.order.client_order_id
            theirs_keys.add((owner, key))
            fill = next((f for f in retired.fills if f.trade_id == key), None)
        if fill is None:
            mine = (
                retired is not None
                or trade.client_order_id in ours_ids
                or trade.broker_order_id in ours_ids
            )
            yield Finding(
                K.TRADE,
                M.MISSING_LOCAL,
                S.CRITICAL if mine else S.WARNING,
                key,
                "none",
                f"{trade.quantity} @ {trade.price}",
                "a fill of ours we never counted" if mine else "a fill of an order not ours",
            )
        elif fill.quantity != trade.quantity:
            yield Finding(
                K.TRADE,
                M.QTY_MISMATCH,
                S.CRITICAL,
                key,
                str(fill.quantity),
                str(trade.quantity),
                "fill quantity differs",
            )
        elif fill.price != trade.price:
            yield Finding(
                K.TRADE,
                M.PRICE_MISMATCH,
                S.CRITICAL,
                key,
                str(fill.price),
                str(trade.price),
                "fill price differs",
            )
    for (owner, key), fill in ours.items():
        if (owner, key) in theirs_keys:
            continue
        if fill.inferred:
            yield Finding(
                K.TRADE,
                M.MISSING_BROKER,
                S.WARNING,
                key,
                f"{fill.quantity} @ {fill.price}",
                "none",
                "an inferred fill still waiting for its trade report",
            )
        else:
            yield Finding(
                K.TRADE,
                M.MISSING_BROKER,
                S.CRITICAL,
                key,
                f"{fill.quantity} @ {fill.price}",
                "none",
                "a fill we counted that the broker does not list",
            )


def _positions(local: LocalView, broker: BrokerView, tol: Tolerances) -> Iterable[Finding]:
    ours = {p.symbol: p for p in local.positions if p.quantity}
    theirs = {p.symbol: p for p in broker.account.positions if p.quantity}
    for symbol in sorted(set(ours) | set(theirs)):
        a, b = ours.get(symbol), theirs.get(symbol)
        qa = a.quantity if a else ZERO
        qb = b.quantity if b else ZERO
        if qa != qb:
            yield Finding(
                K.POSITION,
                M.QTY_MISMATCH,
                S.CRITICAL,
                symbol,
                str(qa),
                str(qb),
                "position quantity differs",
            )
            continue
        if a is None or b is None:
            continue
        if abs(a.avg_price - b.avg_price) > tol.avg_price:
            yield Finding(
                K.POSITION,
                M.PRICE_MISMATCH,
                S.WARNING,
                symbol,
                str(a.avg_price),
                str(b.avg_price),
                f"average price differs by more than {tol.avg_price}",
            )
        if b.available is not None:
            sellable = max(ZERO, qa - local.open_sell_qty.get(symbol, ZERO))
            if sellable != b.available:
                yield Finding(
                    K.POSITION,
                    M.QTY_MISMATCH,
                    S.INFO,
                    f"{symbol}:available",
                    str(sellable),
                    str(b.available),
                    "available quantity differs (T+1 holdings, pending sells)",
                )


def _cash(local: LocalView, broker: BrokerView, tol: Tolerances) -> Iterable[Finding]:
    account, cash = broker.account, local.cash
    if abs(cash.balance - account.cash) > tol.cash:
        yield Finding(
            K.CASH,
            M.CASH_MISMATCH,
            S.CRITICAL,
            account.currency or "cash",
            str(cash.balance),
            str(account.cash),
            f"cash balance differs by {account.cash - cash.balance}",
        )
    elif abs(cash.available - account.available) > tol.cash:
        yield Finding(
            K.CASH,
            M.CASH_MISMATCH,
            S.WARNING,
            f"{account.currency}:available",
            str(cash.available),
            str(account.available),
            "available cash differs",
        )
