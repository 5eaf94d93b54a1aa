"""The peer flow on akquant's live runner (broker_live), in akquant's own environment.

    python akquant_flow.py ORDERS IN_FLIGHT

A strategy sends one-share limit buys through akquant's own order path (self.buy:
local checks, the submitter, the trader gateway), IN_FLIGHT of them on the first
bar and one more for each fill its on_trade is told of (on akquant's dispatch
thread), until it has seen ORDERS fills. Every send is made on the bar's thread,
which waits for a fill to send the next: akquant's submitter is not meant to be
called from two threads at once (a flow that did so lost an order now and then,
and waited for its fill for ever). The trader gateway behind it is the
least a broker can be: it answers each place_order with the order's fill at once,
through akquant's bridge and dispatch thread, as a real gateway's callbacks would.
Prints one JSON line: orders, seconds (first send to last fill seen), peak RSS.
"""

from __future__ import annotations

import json
import resource
import sys
import threading
import time
from typing import Any

import akquant
from akquant import Bar, Instrument, Strategy, run_live
from akquant.gateway import GatewayBundle, register_broker
from akquant.gateway.broker_models import (
    BrokerCapability,
    UnifiedAccount,
    UnifiedOrderRequest,
    UnifiedOrderSnapshot,
    UnifiedOrderStatus,
    UnifiedTrade,
)
from akquant.gateway.trader_base import TraderGatewayBase

ORDERS, IN_FLIGHT = int(sys.argv[1]), int(sys.argv[2])
PRICE = 100.01
result: dict[str, Any] = {"orders": ORDERS, "peer": "akquant", "version": akquant.__version__}
filled = threading.Event()
room = threading.Semaphore(0)  # one for each fill seen: the next order may go


class FillAtOnce(TraderGatewayBase):
    """Every order filled in full as it is placed; nothing else."""

    def __init__(self) -> None:
        super().__init__()
        self._seq = 0

    def connect(self) -> None:
        return None

    def start(self) -> None:
        return None

    def disconnect(self) -> None:
        return None

    def heartbeat(self) -> bool:
        return True

    def get_capabilities(self) -> BrokerCapability:
        return BrokerCapability(broker_name="fill")

    def place_order(self, req: UnifiedOrderRequest) -> str:
        self._seq += 1
        coid, now = str(req.client_order_id), time.time_ns()
        qty, price = float(req.quantity), float(req.price or PRICE)
        done = UnifiedOrderSnapshot(
            client_order_id=coid,
            broker_order_id=coid,
            symbol=req.symbol,
            status=UnifiedOrderStatus.FILLED,
            filled_quantity=qty,
            avg_fill_price=price,
            reject_reason="",
            timestamp_ns=now,
        )
        self._emit_order(done)
        self._emit_trade(
            UnifiedTrade(
                trade_id=f"T{self._seq}",
                broker_order_id=coid,
                client_order_id=coid,
                symbol=req.symbol,
                side=req.side,
                quantity=qty,
                price=price,
                timestamp_ns=now,
            )
        )
        return coid

    def cancel_order(self, broker_order_id: str) -> None:
        return None

    def query_order(self, broker_order_id: str) -> None:
        return None

    def query_trades(self, since: int | None = None) -> list[UnifiedTrade]:
        return []

    def query_account(self) -> UnifiedAccount:
        return UnifiedAccount(
            account_id="bench",
            equity=1e12,
            cash=1e12,
            available_cash=1e12,
            timestamp_ns=time.time_ns(),
        )

    def query_positions(self) -> list[Any]:
        return []


def build(feed: Any = None, symbols: Any = (), use_aggregator: bool = False, **_: Any) -> Any:
    trader = FillAtOnce()
    return GatewayBundle(
        market_gateway=None,
        trader_gateway=trader,
        trader_capabilities=trader.get_capabilities(),
        metadata={"broker": "fill"},
    )


register_broker("fill", build)


class Sender(Strategy):
    fills = refused = 0

    def on_bar(self, bar: Bar) -> None:
        if "seconds" in result or getattr(self, "_started", False):
            return
        self._started = True
        started = time.perf_counter()
        for sent in range(ORDERS):
            if sent >= IN_FLIGHT and not room.acquire(timeout=60):
                raise SystemExit(f"no fill for 60 s after {self.fills} of {ORDERS}")
            self.buy(bar.symbol, 1, price=PRICE)
        if not filled.wait(600):
            raise SystemExit(f"only {self.fills} of {ORDERS} fills seen")
        result["seconds"] = time.perf_counter() - started
        result["refused"] = self.refused

    def on_trade(self, trade: Any) -> None:
        self.fills += 1
        room.release()
        if self.fills + self.refused == ORDERS:
            filled.set()

    def on_reject(self, order: Any) -> None:
        self.refused += 1  # counted, so that a refusal shows instead of a hang
        room.release()
        if self.fills + self.refused == ORDERS:
            filled.set()


t0 = 1_764_550_000_000_000_000
bars = [Bar(t0 + i * 60_000_000_000, 100.0, 100.1, 99.9, 100.0, 1e6, "AAPL") for i in range(2)]
run_live(
    Sender,
    [Instrument("AAPL", akquant.AssetType.Stock, tick_size=0.01, lot_size=1)],
    trading_mode="broker_live",
    broker="fill",
    market_broker="replay",
    trader_broker="fill",
    gateway_options={"bars": bars},
    duration="600s",
)
result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(result), flush=True)
