"""Faults at the adapter boundary: a wrapper between the gateway and any adapter.

The sim broker injects faults on its own wire; a user's adapter talks to
a broker we cannot reach into. So certify puts this wrapper in between and
makes the faults there: the session dropped mid-flight, reports delayed,
duplicated or reordered, and the answer to a place or a cancel that did
reach the broker lost on the way back. It also counts what the gateway
asked of the adapter, the evidence for "sent once".
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from livegate.broker.adapter import BrokerAdapter, Capabilities
from livegate.broker.errors import UnknownOutcome
from livegate.model.account import AccountSnapshot
from livegate.model.orders import OrderIntent
from livegate.model.reports import BrokerReport, OrderReport, TradeReport


@dataclass
class Faults:
    lose_place_answers: int = 0  # the next N places reach the broker, their answers do not
    lose_cancel_answers: int = 0
    duplicate: bool = False  # every report twice
    reorder: bool = False  # reports in a shuffled order, a few at a time
    delay: float = 0.0  # seconds each report waits
    refuse_connects: int = 0  # the next N connects fail (a broker that is away)


class FaultyAdapter:
    """Everything the wrapped adapter does, with `faults` applied; `placed` and
    `cancelled` count the gateway's requests per client id."""

    def __init__(self, inner: BrokerAdapter, seed: int = 7) -> None:
        self.inner = inner
        self.name = inner.name
        self.capabilities: Capabilities = inner.capabilities
        self.faults = Faults()
        self.placed: Counter[str] = (
            Counter()
        )  # places the broker took (its answer came, or was lost by us)
        self.asked: Counter[str] = Counter()  # every place the gateway asked for
        self.cancelled: Counter[str] = Counter()
        self.connects = 0
        self._rng = random.Random(seed)
        self._drop = asyncio.Event()

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)  # problems, version, authenticate, ...

    def drop(self) -> None:
        """End the session now, as a cut connection does."""
        self._drop.set()

    async def connect(self) -> None:
        self.connects += 1
        if self.faults.refuse_connects > 0:
            self.faults.refuse_connects -= 1
            from livegate.broker.errors import BrokerNetworkError

            raise BrokerNetworkError("certify: the broker is away")
        self._drop = asyncio.Event()
        await self.inner.connect()

    async def close(self) -> None:
        self._drop.set()
        await self.inner.close()

    async def heartbeat(self) -> int:
        return await self.inner.heartbeat()

    async def place(self, intent: OrderIntent) -> str | None:
        self.asked[intent.client_order_id] += 1
        result = await self.inner.place(intent)  # raised: refused, or never arrived
        self.placed[intent.client_order_id] += 1
        if self.faults.lose_place_answers > 0:
            self.faults.lose_place_answers -= 1
            raise UnknownOutcome("certify: the broker got the order, its answer was lost")
        return result

    async def cancel(self, client_order_id: str, broker_order_id: str | None) -> None:
        self.cancelled[client_order_id] += 1
        await self.inner.cancel(client_order_id, broker_order_id)
        if self.faults.lose_cancel_answers > 0:
            self.faults.lose_cancel_answers -= 1
            raise UnknownOutcome("certify: the broker got the cancel, its answer was lost")

    async def order_status(
        self, client_order_id: str, broker_order_id: str | None
    ) -> OrderReport | None:
        return await self.inner.order_status(client_order_id, broker_order_id)

    async def open_orders(self) -> Sequence[OrderReport]:
        return await self.inner.open_orders()

    async def today_trades(self) -> Sequence[TradeReport]:
        return await self.inner.today_trades()

    async def account(self) -> AccountSnapshot:
        return await self.inner.account()

    async def reports(self) -> AsyncIterator[BrokerReport]:
        stream = self.inner.reports().__aiter__()
        dropped = asyncio.ensure_future(self._drop.wait())
        held: list[BrokerReport] = []
        following: asyncio.Future[Any] | None = None
        try:
            while True:
                if following is None:
                    following = asyncio.ensure_future(stream.__anext__())
                done, _ = await asyncio.wait(
                    {following, dropped},
                    timeout=0.05 if held else None,  # a reordered batch waits 50 ms at most
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if not done:
                    batch = held[:]
                    held.clear()
                    self._rng.shuffle(batch)
                    for late in batch:
                        yield late
                    continue
                if dropped in done and following not in done:
                    abort = getattr(self.inner, "abort", None)
                    if abort is None:
                        # An in-process broker: our side of the stream ends, the broker
                        # (and the adapter's state) lives on, as when a network drops.
                        following.cancel()
                        return
                    abort()  # a network adapter: cut its socket; its stream ends by itself
                    dropped = asyncio.ensure_future(asyncio.Event().wait())
                try:
                    report = following.result()
                    following = None
                except StopAsyncIteration:
                    for late in held:
                        yield late
                    return
                for out in self._apply(report, held):
                    if self.faults.delay:
                        await asyncio.sleep(self.faults.delay)
                    yield out
        finally:
            dropped.cancel()
            if following is not None:  # the consumer left mid-wait: nothing left dangling
                following.cancel()
                following.add_done_callback(_quietly)

    def _apply(self, report: BrokerReport, held: list[BrokerReport]) -> list[BrokerReport]:
        out = [report, report] if self.faults.duplicate else [report]
        if not self.faults.reorder:
            return out
        held.extend(out)
        if len(held) < 3:
            return []
        batch = held[:]
        held.clear()
        self._rng.shuffle(batch)
        return batch


def _quietly(future: asyncio.Future[Any]) -> None:
    """Take a finished future's outcome, so nothing is reported as never retrieved."""
    if not future.cancelled():
        future.exception()
