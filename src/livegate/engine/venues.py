"""Where orders go: the configured broker, or the embedded paper broker after a fallback.

One adapter is active (`parts.adapter`); the other waits aside. A switch
is journaled before it happens (`VenueChanged`, with the book the venue
starts from and the paper broker's file), so a restart comes back on the
same venue and the same paper book. Each venue keeps its own books: the
paper book starts from the live broker's positions and cash, and a return
to live restores our live books as they were left, untouched by paper
fills. The checks that decide whether a switch may happen (open orders
cancelled, a clean reconciliation) belong to the caller: `ops/fallback.py`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from livegate.broker.adapter import BrokerAdapter
from livegate.broker.paper import PaperAdapter, PaperConfig
from livegate.engine.parts import Parts
from livegate.engine.pipeline import Pipeline
from livegate.model.account import AccountSnapshot
from livegate.model.events import VenueChanged

PaperFactory = Callable[[Path, AccountSnapshot], BrokerAdapter]
Swap = Callable[[BrokerAdapter], Awaitable[None]]


def embedded_paper(book: Path, account: AccountSnapshot) -> BrokerAdapter:
    """The embedded paper broker, opening with `account`'s cash and positions."""
    config = PaperConfig(
        initial_cash=account.cash,
        currency=account.currency,
        initial_positions=account.positions,
        id_prefix=f"{book.stem}:",  # its ids never collide with the live broker's
    )
    return PaperAdapter(book, config)


class Venues:
    def __init__(
        self, parts: Parts, pipeline: Pipeline, swap: Swap, paper: PaperFactory = embedded_paper
    ) -> None:
        self.parts = parts
        self.pipeline = pipeline
        self.swap = swap  # the gateway's: close one adapter, connect and recover the other
        self.paper = paper
        self.standby: BrokerAdapter | None = None  # the adapter not in use

    @property
    def name(self) -> str:
        return "paper" if self.pipeline.book.release.on_paper else "live"

    def at_start(self) -> None:
        """After the journal replay, before connecting: back on paper if we left on it."""
        switched = self.pipeline.book.release.venue
        if switched is None or switched.venue != "paper" or self.standby is not None:
            return
        self.standby = self.parts.adapter
        self.parts.adapter = self.paper(Path(switched.paper_book), switched.account)
        self._mark("paper")

    async def to_paper(
        self, who: str, why: str, account: AccountSnapshot, book: Path, command_id: str = ""
    ) -> VenueChanged:
        event = VenueChanged(
            "paper", who, why, account, self.parts.clock.now_ns(), str(book), command_id
        )
        await self.pipeline.record(event)
        paper = self.paper(book, account)
        self.standby = self.parts.adapter
        self._mark("paper")
        await self.swap(paper)
        return event

    async def to_live(self, who: str, why: str, command_id: str = "") -> VenueChanged:
        switched = self.pipeline.book.release.venue
        live = self.standby
        if switched is None or switched.venue != "paper" or live is None:
            raise ValueError("not on paper: nothing to return from")
        # Our live books as the switch to paper left them (paper fills never touched them).
        event = VenueChanged(
            "live", who, why, switched.account, self.parts.clock.now_ns(), "", command_id
        )
        await self.pipeline.record(event)
        self.standby = None
        self._mark("")
        await self.swap(live)
        return event

    def _mark(self, venue: str) -> None:
        """Reports, log lines and the fill metric say "paper" from here on."""
        self.pipeline.venue_mark = venue
        if self.parts.order_log is not None:
            self.parts.order_log.venue = venue
