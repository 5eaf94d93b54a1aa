"""A complete custom adapter: wrapping a callback-style vendor SDK.

Most broker wrappers a desk already has look like `ToyVendorSDK` below: a
client object whose methods send requests, and whose callbacks fire on the
SDK's own thread when the broker answers. The adapter's whole job is to map
that onto livegate's `BrokerAdapter`: ids and enums in, normalized reports
out, errors into the right class. Everything else (idempotency, dedup,
ordering, journal, recovery) is the gateway's.

Run it:  python examples/vendor_sdk_adapter.py
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from livegate.broker.adapter import Capabilities
from livegate.broker.errors import BrokerAuthError, BrokerRejected, UnknownOutcome
from livegate.drills.certify import CertifyEnv, NotApplicable, Target
from livegate.model import (
    AccountSnapshot,
    BrokerReport,
    Instrument,
    InstrumentRegistry,
    OrderIntent,
    OrderReport,
    OrderStatus,
    Position,
    RejectReason,
    Side,
    TradeReport,
)

# --------------------------------------------------------------------------
# The vendor's SDK (stand-in). Its conventions are deliberately not ours:
# its own status strings, float-free but string prices, numeric order ids,
# callbacks on a private thread.
# --------------------------------------------------------------------------


class ToyVendorServer:
    """The vendor's side: orders, executions and the account live here, not in the
    SDK client, so they outlive a reconnect or a restart of our process."""

    def __init__(self, cash: str = "1000000") -> None:
        self.ids = itertools.count(1000)
        self.execs = itertools.count(1)
        self.orders: dict[int, dict[str, Any]] = {}
        self.executions: list[dict[str, Any]] = []
        self.cash = Decimal(cash)
        self.positions: dict[str, tuple[int, Decimal]] = {}  # symbol -> quantity, average
        self.client: ToyVendorSDK | None = None  # the session callbacks go to
        self.lock = threading.Lock()


class ToyVendorSDK:
    def __init__(self, api_key: str, server: ToyVendorServer | None = None) -> None:
        self.api_key = api_key
        self.server = server or ToyVendorServer()
        self.on_order_update: Callable[[dict[str, Any]], None] = lambda _: None
        self.on_execution: Callable[[dict[str, Any]], None] = lambda _: None

    def login(self) -> bool:
        if self.api_key != "demo-key":
            return False
        self.server.client = self  # the newest session gets the callbacks
        return True

    def send_order(self, ref: str, symbol: str, side: str, qty: int, price: str) -> int:
        """Returns the vendor's order id at once; fills come later on its thread."""
        if qty > 10_000:
            raise ValueError("E1002 quantity exceeds account limit")
        server = self.server
        with server.lock:
            order_id = next(server.ids)
            server.orders[order_id] = {
                "id": order_id,
                "ref": ref,
                "symbol": symbol,
                "side": side,
                "qty": qty,
                "price": price,
                "filled": 0,
                "state": "OPEN",
            }
        threading.Timer(0.01, self._execute, args=(order_id,)).start()
        return order_id

    def cancel_order(self, order_id: int) -> None:
        with self.server.lock:
            order = self.server.orders.get(order_id)
            if order is None or order["state"] != "OPEN":
                raise ValueError(f"E2001 order {order_id} not cancellable")
            order["state"] = "CXL"
        self._tell("on_order_update", dict(order))

    def query_orders(self) -> list[dict[str, Any]]:
        with self.server.lock:
            return [dict(o) for o in self.server.orders.values()]

    def query_executions(self) -> list[dict[str, Any]]:
        with self.server.lock:
            return [dict(e) for e in self.server.executions]

    def query_account(self) -> dict[str, Any]:
        with self.server.lock:
            reserved = sum(
                (o["qty"] - o["filled"]) * Decimal(o["price"])
                for o in self.server.orders.values()
                if o["state"] == "OPEN" and o["side"] == "B"
            )
            return {
                "cash": str(self.server.cash),
                "available": str(self.server.cash - reserved),  # open buys hold cash
                "positions": dict(self.server.positions),
            }

    def _execute(self, order_id: int) -> None:
        # The toy market fills half of every order, then leaves the rest open.
        server = self.server
        with server.lock:
            order = server.orders[order_id]
            qty = order["qty"] // 2
            if order["state"] != "OPEN" or qty == 0:
                return
            order["filled"] += qty
            sign = 1 if order["side"] == "B" else -1
            commission, price = Decimal("0.50"), Decimal(order["price"])
            held, average = server.positions.get(order["symbol"], (0, Decimal(0)))
            if held == 0 or (held > 0) == (sign > 0):  # opening or adding: a new average
                average = (abs(held) * average + qty * price) / (abs(held) + qty)
            server.positions[order["symbol"]] = (held + sign * qty, average)
            server.cash -= sign * qty * price + commission
            execution = {
                "exec_id": f"X{next(server.execs)}",
                "order_id": order_id,
                "ref": order["ref"],
                "qty": qty,
                "price": order["price"],
                "commission": str(commission),
            }
            server.executions.append(execution)
        self._tell("on_execution", execution)
        self._tell("on_order_update", dict(order))

    def _tell(self, callback: str, data: dict[str, Any]) -> None:
        """The vendor calls back the session logged in now (a dropped one hears nothing)."""
        client = self.server.client
        if client is not None:
            getattr(client, callback)(data)


# --------------------------------------------------------------------------
# The adapter: the only part a desk writes.
# --------------------------------------------------------------------------

_STATES = {
    "OPEN": OrderStatus.SUBMITTED,
    "CXL": OrderStatus.CANCELLED,
    "DONE": OrderStatus.FILLED,
    "REJ": OrderStatus.REJECTED,
}


class VendorSDKAdapter:
    name = "toy-vendor"
    # The SDK neither deduplicates our ref nor answers queries by it, and
    # cancels need its own id: the gateway compensates for all three.
    capabilities = Capabilities()

    def __init__(self, api_key: str, server: ToyVendorServer | None = None) -> None:
        self.sdk = ToyVendorSDK(api_key, server)
        self._queue: asyncio.Queue[BrokerReport | None] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def connect(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        if not self.sdk.login():
            raise BrokerAuthError("vendor refused the API key")
        # SDK callbacks run on the SDK's thread: hop onto the gateway's loop.
        self.sdk.on_order_update = lambda o: self._emit(self._order_report(o))
        self.sdk.on_execution = lambda e: self._emit(self._trade_report(e))

    async def close(self) -> None:
        self._queue.put_nowait(None)

    async def heartbeat(self) -> int:
        return time.time_ns()

    async def place(self, intent: OrderIntent) -> str | None:
        if intent.price is None:
            raise BrokerRejected("toy vendor takes limit orders only", RejectReason.INVALID_ORDER)
        try:
            order_id = await asyncio.to_thread(
                self.sdk.send_order,
                intent.client_order_id,
                intent.symbol,
                "B" if intent.side is Side.BUY else "S",
                int(intent.quantity),
                str(intent.price),
            )
        except ValueError as exc:  # the SDK's way of refusing
            raise BrokerRejected(str(exc)) from exc
        except OSError as exc:  # the socket broke mid-request: it may have arrived
            raise UnknownOutcome(str(exc)) from exc
        return str(order_id)

    async def cancel(self, client_order_id: str, broker_order_id: str | None) -> None:
        if broker_order_id is None:
            raise BrokerRejected("toy vendor cancels by its own order id only")
        try:
            await asyncio.to_thread(self.sdk.cancel_order, int(broker_order_id))
        except ValueError as exc:
            raise BrokerRejected(str(exc)) from exc

    async def order_status(
        self, client_order_id: str, broker_order_id: str | None
    ) -> OrderReport | None:
        for order in await asyncio.to_thread(self.sdk.query_orders):
            if str(order["id"]) == broker_order_id or order["ref"] == client_order_id:
                return self._order_report(order)
        return None

    async def open_orders(self) -> Sequence[OrderReport]:
        orders = await asyncio.to_thread(self.sdk.query_orders)
        return [self._order_report(o) for o in orders if o["state"] == "OPEN"]

    async def today_trades(self) -> Sequence[TradeReport]:
        executions = await asyncio.to_thread(self.sdk.query_executions)
        return [self._trade_report(e) for e in executions]

    async def account(self) -> AccountSnapshot:
        state = await asyncio.to_thread(self.sdk.query_account)
        positions = tuple(
            Position(symbol, Decimal(qty), average)
            for symbol, (qty, average) in state["positions"].items()
            if qty
        )
        return AccountSnapshot(
            "toy", "USD", Decimal(state["cash"]), Decimal(state["available"]), positions
        )

    async def reports(self) -> AsyncIterator[BrokerReport]:
        while (report := await self._queue.get()) is not None:
            yield report

    # -- mapping ----------------------------------------------------------
    def _emit(self, report: BrokerReport) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._queue.put_nowait, report)

    @staticmethod
    def _order_report(order: dict[str, Any]) -> OrderReport:
        status = _STATES[order["state"]]
        if status is OrderStatus.SUBMITTED and order["filled"]:
            status = OrderStatus.PARTIALLY_FILLED
        return OrderReport(
            status=status,
            client_order_id=order["ref"],
            broker_order_id=str(order["id"]),
            cum_qty=Decimal(order["filled"]),
        )

    @staticmethod
    def _trade_report(execution: dict[str, Any]) -> TradeReport:
        return TradeReport(
            quantity=Decimal(execution["qty"]),
            price=Decimal(execution["price"]),
            client_order_id=execution["ref"],
            broker_order_id=str(execution["order_id"]),
            trade_id=execution["exec_id"],
            fee=Decimal(execution["commission"]),
        )


# --------------------------------------------------------------------------
# Certification: `livegate certify examples/vendor_sdk_adapter.py:certify_target`
# --------------------------------------------------------------------------
_SERVERS: dict[Path, ToyVendorServer] = {}  # one vendor account per certification scenario


class ToyMarket:
    """How certify trades here. The toy market fills by itself and takes no quotes,
    so the scenarios that need to move prices say "not applicable"."""

    symbol = "AAPL"
    mid = Decimal("190.00")
    tick = Decimal("0.01")

    async def quote(self, bid: Decimal, ask: Decimal, size: Decimal | None = None) -> None:
        raise NotApplicable("the toy market fills half of each order by itself; no quotes")

    async def throttle(self, on: bool) -> bool:
        return False


def certify_target(env: CertifyEnv) -> Target:
    server = _SERVERS.setdefault(env.directory, ToyVendorServer())
    key = "not-the-key" if env.bad_credentials else "demo-key"
    return Target(
        VendorSDKAdapter(key, server),
        ToyMarket(),
        InstrumentRegistry([Instrument("AAPL", Decimal("0.01"))]),
        checks_funds=True,  # E1002: beyond the account limit
        order_types=("LIMIT",),
        reachable_from_another_process=False,  # the toy vendor lives in this process
    )


async def main(directory: Path) -> None:
    from livegate.engine import Gateway
    from livegate.journal import Journal, SQLiteStore
    from livegate.model import OrderRequest

    gateway = Gateway(
        VendorSDKAdapter("demo-key"),
        Journal(SQLiteStore(directory / "journal.sqlite")),
        InstrumentRegistry([Instrument("AAPL", Decimal("0.01"))]),
    )
    gateway.on_order(lambda o: print("on_order", o.client_order_id, o.broker_order_id, o.status))
    gateway.on_trade(lambda f: print("on_trade", f.client_order_id, f.trade_id, f.quantity))
    async with gateway:
        order = await gateway.submit_order(
            OrderRequest(symbol="AAPL", side="BUY", quantity=100, price="190.00")
        )
        await asyncio.sleep(0.1)
        await gateway.cancel_order(order.client_order_id)
        await asyncio.sleep(0.05)
        print("final", gateway.order(order.client_order_id))


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(Path(tmp)))
