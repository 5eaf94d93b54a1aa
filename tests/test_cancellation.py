"""A caller that gives up never takes durable events, or other callers, with it (issue 12).

Events of one journal write share one future. A submit bounded by
`asyncio.wait_for`, or a strategy task cancelled at SIGTERM, used to cancel
that shared future: the batch stayed durable but was dropped from memory,
other orders' fills included, and the other submits waiting on it got
CancelledError with their orders left NEW and never sent.
"""

from __future__ import annotations

import asyncio
import contextlib

from livegate.model import OrderRequest, OrderStatus, TradeReport
from livegate.model.enums import RejectReason

from .helpers import D, scripted_gateway, settle


def order(coid: str) -> OrderRequest:
    return OrderRequest(
        symbol="AAPL", side="BUY", quantity=100, price="10.00", client_order_id=coid
    )


def test_cancelling_one_waiter_of_a_shared_write_loses_nothing() -> None:
    async def run() -> None:
        gateway, broker = scripted_gateway()
        await gateway.start()
        await gateway.submit_order(order("filled"))
        fills: list[str] = []
        gateway.on_trade(lambda f: fills.append(f.trade_id))
        # One batch: a fill on the stream, and three submits; one is cancelled.
        broker.push(TradeReport(D(100), D(10), "filled", "B-filled", "T1"))
        tasks = [asyncio.create_task(gateway.submit_order(order(f"o{i}"))) for i in range(3)]
        await asyncio.sleep(0)  # all three have journaled their intents
        tasks[1].cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await settle(gateway)
        assert isinstance(results[1], asyncio.CancelledError)
        for i in (0, 2):  # the others were not cancelled: sent, acknowledged
            assert not isinstance(results[i], BaseException), results[i]
            assert gateway.order(f"o{i}").status is OrderStatus.SUBMITTED
            assert broker.placed[f"o{i}"] == 1
        # The cancelled caller's order never went out, and says so.
        gave_up = gateway.order("o1")
        assert broker.placed["o1"] == 0
        assert gave_up.status is OrderStatus.REJECTED
        assert gave_up.reject_reason is RejectReason.CALLER_CANCELLED
        # The fill in the same batch reached the books and the strategy.
        assert gateway.order("filled").filled_qty == 100 and fills == ["T1"]
        await gateway.stop()

    asyncio.run(run())


def test_a_submit_bounded_by_wait_for_leaves_the_books_whole() -> None:
    async def run() -> None:
        gateway, broker = scripted_gateway()
        await gateway.start()
        broker.hang = True  # place never answers
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(gateway.submit_order(order("slow")), 0.05)
        broker.hang = False
        await gateway.submit_order(order("next"))
        await settle(gateway)
        assert gateway.order("slow").status is OrderStatus.UNKNOWN  # asked, never resent
        assert gateway.order("next").status is OrderStatus.SUBMITTED
        await gateway.stop()

    asyncio.run(run())


def test_a_cancelled_cancel_request_still_reaches_the_broker() -> None:
    async def run() -> None:
        gateway, broker = scripted_gateway()
        await gateway.start()
        await gateway.submit_order(order("c"))
        task = asyncio.create_task(gateway.cancel_order("c"))
        await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await settle(gateway)
        assert broker.cancels["c"] == 1  # journaled as requested: it goes out
        assert gateway.order("c").status is OrderStatus.PENDING_CANCEL
        await gateway.stop()

    asyncio.run(run())
