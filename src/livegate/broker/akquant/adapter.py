"""Any akquant custom broker (a `TraderGateway`) as a livegate `BrokerAdapter`.

A desk's existing akquant broker code gets the whole checklist, certify
included, unchanged: its callbacks (from whatever thread its SDK uses)
become the report stream; its syncs and queries answer the gateway's
recovery and reconciliation; `classify_order_error` decides between a
refusal and an unknown outcome. Its blocking calls run on worker threads,
so a slow SDK never stalls the gateway's loop.

A profile names one as `broker = "akquant:package.module:factory"`, the
factory taking no argument and returning the TraderGateway. A `connect()`
that refuses the credentials raises PermissionError (akquant has no auth
error of its own); any other failure is a network error, retried.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from decimal import Decimal
from typing import Any

from akquant.gateway.broker_models import (
    UnifiedErrorType,
    UnifiedOrderRequest,
    UnifiedOrderSnapshot,
    UnifiedOrderStatus,
    UnifiedTrade,
)
from akquant.gateway.trader_base import TraderGatewayBase

from livegate.broker.adapter import Capabilities
from livegate.broker.errors import (
    BrokerAuthError,
    BrokerNetworkError,
    BrokerRejected,
    UnknownOutcome,
)
from livegate.model.account import AccountSnapshot, Position
from livegate.model.enums import OrderStatus, Side
from livegate.model.orders import OrderIntent
from livegate.model.reports import BrokerReport, OrderReport, TradeReport

_STATUS = {
    UnifiedOrderStatus.NEW: OrderStatus.SUBMITTED,  # the broker holds it: acknowledged
    UnifiedOrderStatus.SUBMITTED: OrderStatus.SUBMITTED,
    UnifiedOrderStatus.PARTIALLY_FILLED: OrderStatus.PARTIALLY_FILLED,
    UnifiedOrderStatus.FILLED: OrderStatus.FILLED,
    UnifiedOrderStatus.CANCELLED: OrderStatus.CANCELLED,
    UnifiedOrderStatus.REJECTED: OrderStatus.REJECTED,
    UnifiedOrderStatus.EXPIRED: OrderStatus.EXPIRED,
}
_CLOSED = object()


def load_trader(spec: str) -> Any:
    """`package.module:factory` (or `akquant:package.module:factory`): the broker it builds."""
    spec = spec.removeprefix("akquant:")
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise ValueError(f"{spec!r}: expected akquant:package.module:factory")
    factory: Callable[[], Any] = getattr(importlib.import_module(module), attr)
    return factory()


def _decimal(value: float) -> Decimal:
    return Decimal(str(value))


def order_report(snapshot: UnifiedOrderSnapshot) -> OrderReport:
    status = _STATUS.get(UnifiedOrderStatus(snapshot.status), OrderStatus.SUBMITTED)
    filled = _decimal(snapshot.filled_quantity)
    return OrderReport(
        status,
        client_order_id=snapshot.client_order_id or None,
        broker_order_id=snapshot.broker_order_id or None,
        cum_qty=filled,
        avg_price=_decimal(snapshot.avg_fill_price) if filled > 0 else None,
        text=snapshot.reject_reason,
        ts_ns=snapshot.timestamp_ns,
        symbol=snapshot.symbol,
    )


def trade_report(trade: UnifiedTrade) -> TradeReport:
    side = Side.BUY if str(trade.side).lower() == "buy" else Side.SELL
    return TradeReport(
        _decimal(trade.quantity),
        _decimal(trade.price),
        client_order_id=trade.client_order_id or None,
        broker_order_id=trade.broker_order_id or None,
        trade_id=trade.trade_id or None,
        symbol=trade.symbol,
        side=side,
        ts_ns=trade.timestamp_ns,
    )


class AkquantBroker:
    """The adapter; `trader` is the akquant TraderGateway (built, not yet connected)."""

    def __init__(self, trader: Any, currency: str = "CNY") -> None:
        self.trader = trader
        declared = getattr(trader, "get_capabilities", None)
        broker_name = getattr(declared(), "broker_name", "") if declared is not None else ""
        self.name = f"akquant:{broker_name or type(trader).__name__}"
        self.currency = currency
        # What livegate must make up for: a broker whose syncs are akquant's empty
        # defaults lists nothing; cancels and queries go by the broker's own id; a
        # client id is not known to be refused twice, so an unknown order is never resent.
        base = TraderGatewayBase
        lists = type(trader).sync_open_orders is not base.sync_open_orders
        self.capabilities = Capabilities(lists_orders=lists, reports_account=True)
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = False

    # -- the session ---------------------------------------------------------------------
    async def connect(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self.trader.on_order(lambda s: self._from_sdk(order_report(s)))
        self.trader.on_trade(lambda t: self._from_sdk(trade_report(t)))
        try:
            await asyncio.to_thread(self.trader.connect)
        except PermissionError as exc:  # akquant has no auth error: this is the convention
            raise BrokerAuthError(f"{self.name}: credentials refused: {exc}") from exc
        except Exception as exc:
            raise BrokerNetworkError(f"{self.name}: connect failed: {exc}") from exc
        if not self._started:  # some SDKs block in start(): their event loop
            self._started = True
            threading.Thread(
                target=self.trader.start, name=f"{self.name}-start", daemon=True
            ).start()

    def _from_sdk(self, report: BrokerReport) -> None:
        """Called on the SDK's thread: hand the report to our loop, nothing more."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._queue.put_nowait, report)

    async def close(self) -> None:
        disconnect = getattr(self.trader, "disconnect", None)
        if disconnect is not None:
            await asyncio.to_thread(disconnect)
        self._queue.put_nowait(_CLOSED)

    async def heartbeat(self) -> int:
        if not await asyncio.to_thread(self.trader.heartbeat):
            raise BrokerNetworkError(f"{self.name}: heartbeat says the broker is down")
        return 0

    async def reports(self) -> AsyncIterator[BrokerReport]:
        while True:
            item = await self._queue.get()
            if item is _CLOSED:
                return
            yield item

    # -- orders ----------------------------------------------------------------------------
    async def place(self, intent: OrderIntent) -> str | None:
        request = UnifiedOrderRequest(
            client_order_id=intent.client_order_id,
            symbol=intent.symbol,
            side="Buy" if intent.side is Side.BUY else "Sell",
            quantity=float(intent.quantity),
            price=float(intent.price) if intent.price is not None else None,
            order_type=intent.order_type.value.title(),
            time_in_force=intent.time_in_force.value,
        )
        try:
            broker_id = await asyncio.to_thread(self.trader.place_order, request)
        except Exception as exc:
            raise self._classified(exc, "place") from exc
        if broker_id:
            self.trader.record_broker_order(str(broker_id), intent.client_order_id)
        return str(broker_id) if broker_id else None

    def _classified(self, exc: Exception, what: str) -> Exception:
        """The SDK's own judgement: a refusal, or (by default) an unknown outcome."""
        classify = getattr(self.trader, "classify_order_error", None)
        kind = classify(exc) if classify is not None else UnifiedErrorType.RETRYABLE
        if kind in (UnifiedErrorType.RISK_REJECTED, UnifiedErrorType.NON_RETRYABLE):
            return BrokerRejected(f"{what} refused: {exc}")
        return UnknownOutcome(f"{what}: {exc}")

    async def cancel(self, client_order_id: str, broker_order_id: str | None) -> None:
        if broker_order_id is None:
            raise UnknownOutcome(f"{self.name} cancels by broker id; none known yet")
        try:
            await asyncio.to_thread(self.trader.cancel_order, broker_order_id)
        except Exception as exc:
            raise self._classified(exc, "cancel") from exc

    async def order_status(
        self, client_order_id: str, broker_order_id: str | None
    ) -> OrderReport | None:
        if broker_order_id is None:
            return None
        found = await asyncio.to_thread(self.trader.query_order, broker_order_id)
        return order_report(found) if found is not None else None

    async def open_orders(self) -> Sequence[OrderReport]:
        listed = await asyncio.to_thread(self.trader.sync_open_orders)
        return [order_report(s) for s in listed]

    async def today_trades(self) -> Sequence[TradeReport]:
        listed = await asyncio.to_thread(self.trader.sync_today_trades)
        return [trade_report(t) for t in listed]

    async def account(self) -> AccountSnapshot:
        account = await asyncio.to_thread(self.trader.query_account)
        held = await asyncio.to_thread(self.trader.query_positions)
        positions = tuple(
            Position(
                p.symbol,
                _decimal(p.quantity),
                _decimal(p.avg_price),
                available=_decimal(p.available_quantity),
            )
            for p in held
            if p.quantity
        )
        if account is None:
            raise BrokerNetworkError(f"{self.name}: the broker gave no account")
        return AccountSnapshot(
            account.account_id,
            self.currency,
            _decimal(account.cash),
            _decimal(account.available_cash),
            positions,
            account.timestamp_ns,
        )
