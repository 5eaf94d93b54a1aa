"""`BrokerAdapter` over the in-process `PaperBroker`: the embedded default.

Everything the broker does within one turn of the event loop is queued for
saving at the end of that turn, and only once it is saved are its reports
released and its answers returned, so the paper broker never tells the
gateway something its file would not remember after a crash.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from pathlib import Path

from livegate.broker.adapter import Capabilities
from livegate.broker.errors import BrokerNetworkError, BrokerRejected
from livegate.broker.paper.broker import PaperBroker, PaperConfig
from livegate.model.account import AccountSnapshot
from livegate.model.orders import OrderIntent
from livegate.model.reports import BrokerReport, OrderReport, TradeReport


class PaperAdapter:
    name = "paper"
    capabilities = Capabilities(
        dedups_client_order_id=True,
        query_by_client_order_id=True,
        cancel_by_client_order_id=True,
    )

    def __init__(self, path: Path | str, config: PaperConfig | None = None) -> None:
        self.broker = PaperBroker(path, config or PaperConfig())
        # Reports travel in the lists one save released: one queue hop per save.
        self._queue: asyncio.Queue[list[BrokerReport] | None] = asyncio.Queue()
        self._saved: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = False
        self._opened = False

    # -- session ---------------------------------------------------------
    async def connect(self) -> None:
        self._loop = asyncio.get_running_loop()
        if not self._opened:
            self.broker.open()
            await self.broker.start()
            self._opened = True
        self._queue = asyncio.Queue()
        self._connected = True

    async def close(self) -> None:
        if self._connected:
            self._save()
            self._connected = False
        if self._opened:
            await self.broker.stop()  # drains: everything told is saved
            self._opened = False
        self._queue.put_nowait(None)

    async def heartbeat(self) -> int:
        self._check()
        return time.time_ns()

    # -- requests --------------------------------------------------------
    async def place(self, intent: OrderIntent) -> str | None:
        self._check()
        boid = self.broker.place(intent)
        await self._after_save()
        return boid

    async def place_many(self, intents: Sequence[OrderIntent]) -> list[str | Exception | None]:
        """A basket in one go: one save of the book for all of it."""
        self._check()
        results: list[str | Exception | None] = []
        for intent in intents:
            try:
                results.append(self.broker.place(intent))
            except BrokerRejected as exc:
                results.append(exc)
        await self._after_save()
        return results

    async def cancel(self, client_order_id: str, broker_order_id: str | None) -> None:
        self._check()
        self.broker.cancel(client_order_id, broker_order_id)
        await self._after_save()

    async def order_status(
        self, client_order_id: str, broker_order_id: str | None
    ) -> OrderReport | None:
        self._check()
        order = self.broker.find(client_order_id, broker_order_id)
        return order.report(listed=True) if order else None

    async def open_orders(self) -> Sequence[OrderReport]:
        self._check()
        return self.broker.open_orders()

    async def today_trades(self) -> Sequence[TradeReport]:
        self._check()
        return list(self.broker.trades)

    async def account(self) -> AccountSnapshot:
        self._check()
        return self.broker.account()

    async def reports(self) -> AsyncIterator[BrokerReport]:
        queue = self._queue
        while True:
            released = await queue.get()
            if released is None:  # closed
                return
            for report in released:
                yield report

    # -- market data (the host feeds quotes) -----------------------------
    def set_quote(
        self,
        symbol: str,
        bid: Decimal | None,
        ask: Decimal | None,
        bid_size: Decimal | None = None,
        ask_size: Decimal | None = None,
    ) -> None:
        self.broker.set_quote(symbol, bid, ask, bid_size, ask_size, time.time_ns())
        self._schedule_save()

    async def quiesce(self) -> None:
        """Return once everything the broker did so far is saved and its reports released."""
        self._schedule_save()
        if self._saved is not None:
            await asyncio.shield(self._saved)

    # -- internals -------------------------------------------------------
    def _check(self) -> None:
        if not self._connected:
            raise BrokerNetworkError("paper broker is not connected")

    def _after_save(self) -> asyncio.Future[None]:
        self._schedule_save()
        assert self._saved is not None
        return self._saved

    def _schedule_save(self) -> None:
        if self._saved is None and self._loop is not None:
            self._saved = self._loop.create_future()
            self._loop.call_soon(self._save)

    def _save(self) -> None:
        saved, self._saved = self._saved, None
        released, durable = self.broker.save()
        if durable is None:
            self._release(released, saved)
        else:
            durable.add_done_callback(lambda _: self._release(released, saved))

    def _release(self, released: list[BrokerReport], saved: asyncio.Future[None] | None) -> None:
        if released:
            self._queue.put_nowait(released)
        if saved is not None and not saved.done():
            saved.set_result(None)
