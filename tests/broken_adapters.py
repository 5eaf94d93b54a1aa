"""A gallery of broken adapters, one classic bug each, for `livegate certify` to catch.

Each is the paper adapter with one thing done wrong, as wrappers written
against real vendor SDKs get it wrong. Each has a factory, as a user's
adapter would: `tests.broken_adapters:resends_under_new_id`, and so on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgspec

from livegate.broker.errors import BrokerNetworkError, BrokerRejected
from livegate.broker.paper import PaperAdapter
from livegate.drills.certify.shipped import paper
from livegate.drills.certify.target import CertifyEnv, Target
from livegate.model import OrderIntent, OrderReport, TradeReport
from livegate.model.reports import BrokerReport


def _target(env: CertifyEnv, kind: type[PaperAdapter]) -> Target | None:
    target = paper(env)
    if target is None:
        return None
    good = target.adapter
    assert isinstance(good, PaperAdapter)
    broken = kind.__new__(kind)
    broken.__dict__.update(good.__dict__)  # the same broker book, the bug on top
    target.adapter = broken
    target.market.adapter = broken  # type: ignore[union-attr]
    return target


class ResendsUnderNewId(PaperAdapter):
    """Thinks the answer to every place was lost and sends it again under a new id."""

    async def place(self, intent: OrderIntent) -> str | None:
        await super().place(intent)
        retry = msgspec.structs.replace(intent, client_order_id=intent.client_order_id + "-R")
        return await super().place(retry)


class DropsFillsOnReconnect(PaperAdapter):
    """After a reconnect, forgets the fills it has not yet sent (stream and list alike)."""

    connects = 0
    sent_trades: set[str]

    async def connect(self) -> None:
        self.connects = getattr(self, "connects", 0) + 1
        if not hasattr(self, "sent_trades"):
            self.sent_trades = set()
        await super().connect()

    async def reports(self) -> AsyncIterator[BrokerReport]:
        async for report in super().reports():
            if isinstance(report, TradeReport):
                if self.connects > 1:
                    continue  # lost with the old session
                self.sent_trades.add(report.trade_id)
            yield report

    async def today_trades(self) -> Sequence[TradeReport]:
        trades = await super().today_trades()
        return [t for t in trades if t.trade_id in getattr(self, "sent_trades", set())]


class CumulativeGoesBackwards(PaperAdapter):
    """Reports the last fill's quantity as the cumulative quantity."""

    async def reports(self) -> AsyncIterator[BrokerReport]:
        last: dict[str, Any] = {}
        async for report in super().reports():
            if isinstance(report, TradeReport):
                last[report.client_order_id or ""] = report.quantity
            elif isinstance(report, OrderReport) and report.client_order_id in last:
                report = msgspec.structs.replace(report, cum_qty=last[report.client_order_id])
            yield report


class CancelNotIdempotent(PaperAdapter):
    """Crashes on a cancel of an order it no longer holds open."""

    async def cancel(self, client_order_id: str, broker_order_id: str | None) -> None:
        order = self.broker.find(client_order_id, broker_order_id)
        if order is None or not order.status.is_open:
            raise KeyError(client_order_id)
        await super().cancel(client_order_id, broker_order_id)


class ForgetsIdsOnRestart(PaperAdapter):
    """Keeps the client-id-to-order map in memory only, and cancels through it."""

    ids: dict[str, str]

    async def place(self, intent: OrderIntent) -> str | None:
        broker_id = await super().place(intent)
        self.__dict__.setdefault("ids", {})[intent.client_order_id] = str(broker_id)
        return broker_id

    async def cancel(self, client_order_id: str, broker_order_id: str | None) -> None:
        known = self.__dict__.get("ids", {}).get(client_order_id)
        if known is None:
            raise BrokerRejected(f"unknown order {client_order_id}")
        await super().cancel(client_order_id, known)


class NetworkErrorAfterSending(PaperAdapter):
    """Says the connection failed after the broker took the order."""

    async def place(self, intent: OrderIntent) -> str | None:
        await super().place(intent)
        raise BrokerNetworkError("connection reset by peer")


class FillTwiceUnderTwoIds(PaperAdapter):
    """Sends every fill twice, the second under another trade id."""

    async def reports(self) -> AsyncIterator[BrokerReport]:
        async for report in super().reports():
            yield report
            if isinstance(report, TradeReport):
                yield msgspec.structs.replace(report, trade_id=report.trade_id + "b")


def resends_under_new_id(env: CertifyEnv) -> Target | None:
    return _target(env, ResendsUnderNewId)


def drops_fills_on_reconnect(env: CertifyEnv) -> Target | None:
    return _target(env, DropsFillsOnReconnect)


def cumulative_goes_backwards(env: CertifyEnv) -> Target | None:
    return _target(env, CumulativeGoesBackwards)


def cancel_not_idempotent(env: CertifyEnv) -> Target | None:
    return _target(env, CancelNotIdempotent)


def forgets_ids_on_restart(env: CertifyEnv) -> Target | None:
    return _target(env, ForgetsIdsOnRestart)


def network_error_after_sending(env: CertifyEnv) -> Target | None:
    return _target(env, NetworkErrorAfterSending)


def fill_twice_under_two_ids(env: CertifyEnv) -> Target | None:
    return _target(env, FillTwiceUnderTwoIds)
