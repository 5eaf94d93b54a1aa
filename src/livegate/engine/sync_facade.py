"""A blocking face of the Gateway for hosts that are not asyncio programs.

The gateway runs on its own event loop in a background thread; every call
here is handed to that loop and waited for, so the gateway's state is only
ever touched from one thread. Callbacks run on the gateway's thread: keep
them short, or hand work to your own thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from livegate.engine.gateway import Gateway
from livegate.model.account import CashBalance, Position
from livegate.model.orders import OrderRequest, OrderSnapshot
from livegate.model.reports import Fill

T = TypeVar("T")


class SyncGateway:
    def __init__(self, gateway: Gateway, timeout: float = 60.0) -> None:
        self.gateway = gateway
        self.timeout = timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="livegate-loop", daemon=True
        )

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(self.timeout)

    def _call(self, fn: Callable[[], T]) -> T:
        async def call() -> T:
            return fn()

        return self._run(call())

    def start(self) -> SyncGateway:
        self._thread.start()
        self._run(self.gateway.start())
        return self

    def stop(self) -> None:
        try:
            self._run(self.gateway.stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(self.timeout)
            self._loop.close()

    def __enter__(self) -> SyncGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def call_in_loop(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the gateway's thread (e.g. feeding a paper quote)."""
        return self._call(fn)

    def submit_order(self, request: OrderRequest) -> OrderSnapshot:
        return self._run(self.gateway.submit_order(request))

    def submit_orders(self, requests: Sequence[OrderRequest]) -> list[OrderSnapshot]:
        return self._run(self.gateway.submit_orders(requests))

    def cancel_order(
        self, client_order_id: str | None = None, broker_order_id: str | None = None
    ) -> OrderSnapshot:
        return self._run(self.gateway.cancel_order(client_order_id, broker_order_id))

    def order(self, client_order_id: str) -> OrderSnapshot:
        return self._call(lambda: self.gateway.order(client_order_id))

    def orders(self, open_only: bool = False) -> list[OrderSnapshot]:
        return self._call(lambda: self.gateway.orders(open_only))

    def trades(self) -> list[Fill]:
        return self._call(self.gateway.trades)

    def positions(self) -> list[Position]:
        return self._call(self.gateway.positions)

    def cash(self) -> CashBalance:
        return self._call(self.gateway.cash)

    def sync(self) -> None:
        self._run(self.gateway.recover())
