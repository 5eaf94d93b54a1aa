"""The connection as a state machine: health checks, heartbeats, reconnects, retries."""

from __future__ import annotations

import asyncio

import pytest

from livegate.broker.errors import BrokerAuthError, BrokerRejected, BrokerThrottled
from livegate.engine.health import ClockSkewError
from livegate.engine.retry import TokenBucket
from livegate.model import OrderRequest, OrderStatus
from livegate.model.enums import ConnectionState as C
from livegate.model.enums import RejectReason

from .helpers import ScriptedBroker, scripted_gateway


def order(coid: str) -> OrderRequest:
    return OrderRequest(symbol="AAPL", side="BUY", quantity=1, price="1.00", client_order_id=coid)


async def until(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met")


class AuthenticatingBroker(ScriptedBroker):
    """An adapter that logs on as its own step, as the sim adapter does."""

    async def authenticate(self) -> None:
        await asyncio.sleep(0)


def test_states_through_start_drop_and_reconnect() -> None:
    async def run() -> None:
        gateway, _ = scripted_gateway()
        broker = AuthenticatingBroker()
        gateway.adapter = broker
        gateway.config.reconnect_delay = 0.01
        seen: list[C] = []
        gateway.on_connection_state.append(seen.append)
        await gateway.start()
        assert seen == [C.CONNECTING, C.AUTHENTICATING, C.SYNCING, C.READY]
        assert [c.name for c in gateway.health] == [
            "connect", "clock skew", "heartbeat", "account", "recovery sync",
        ]  # fmt: skip
        assert all(c.ok for c in gateway.health)
        seen.clear()
        broker.drop()
        await until(lambda: bool(seen) and seen[-1] is C.READY)
        assert seen == [C.DISCONNECTED, C.CONNECTING, C.AUTHENTICATING, C.SYNCING, C.READY]
        await gateway.stop()
        assert seen[-1] is C.DISCONNECTED

    asyncio.run(run())


def test_a_broker_clock_far_from_ours_refuses_to_start() -> None:
    async def run() -> None:
        gateway, broker = scripted_gateway()
        broker.clock_offset_ns = 10 * 10**9
        with pytest.raises(ClockSkewError, match=r"\+10\.\d+s from ours") as refused:
            await gateway.start()
        assert any("'heartbeat' failed" in note for note in refused.value.__notes__)
        assert [(c.name, c.ok) for c in gateway.health] == [("connect", True), ("heartbeat", False)]
        assert gateway.connection_state is C.DISCONNECTED and not broker.placed

    asyncio.run(run())


def test_slow_heartbeats_degrade_the_connection_and_orders_still_go_out() -> None:
    async def run() -> None:
        gateway, broker = scripted_gateway()
        gateway.config.heartbeat_interval = 0.02
        gateway.config.degraded_latency = 0.03
        await gateway.start()
        broker.heartbeat_delay = 0.06
        await until(lambda: gateway.connection_state is C.DEGRADED)
        sent = await gateway.submit_order(order("d-1"))
        assert sent.status is OrderStatus.SUBMITTED and broker.placed["d-1"] == 1
        broker.heartbeat_delay = 0
        await until(lambda: gateway.connection_state is C.READY)
        await gateway.stop()

    asyncio.run(run())


def test_an_unanswered_heartbeat_drops_the_connection_and_it_heals() -> None:
    async def run() -> None:
        gateway, broker = scripted_gateway()
        gateway.config.heartbeat_interval = 0.02
        gateway.config.heartbeat_timeout = 0.05
        gateway.config.reconnect_delay = 0.01
        await gateway.start()
        broker.heartbeat_delay = 10  # a stalled broker
        await until(lambda: gateway.disconnects == 1)
        assert broker.closes >= 1  # no abort(): the gateway closed the session
        broker.heartbeat_delay = 0
        await until(lambda: gateway.ready)
        assert gateway.reconnects == 1
        await gateway.stop()

    asyncio.run(run())


def test_throttled_place_waits_retry_after_and_goes_out_once_accepted() -> None:
    async def run() -> None:
        gateway, broker = scripted_gateway()
        await gateway.start()
        broker.place_errors = [BrokerThrottled("slow down", 0.05), BrokerThrottled("again", 0.05)]
        sent = await gateway.submit_order(order("t-1"))
        assert sent.status is OrderStatus.SUBMITTED and sent.broker_order_id == "B-t-1"
        assert broker.placed["t-1"] == 3 and gateway.throttled == 1  # two refusals, one accept
        # Past max_throttle_wait the order is refused THROTTLED, never queued forever.
        gateway.config.retry.max_throttle_wait = 0.1
        broker.place_errors = [BrokerThrottled("no", 0.08)] * 3
        refused = await gateway.submit_order(order("t-2"))
        assert refused.reject_reason is RejectReason.THROTTLED
        await gateway.stop()

    asyncio.run(run())


def test_a_rejection_is_never_retried() -> None:
    async def run() -> None:
        gateway, broker = scripted_gateway()
        await gateway.start()
        broker.place_errors = [BrokerRejected("bad symbol")]
        refused = await gateway.submit_order(order("r-1"))
        assert refused.status is OrderStatus.REJECTED and broker.placed["r-1"] == 1
        await gateway.stop()

    asyncio.run(run())


def test_refused_credentials_back_off_instead_of_hammering() -> None:
    async def run() -> None:
        gateway, broker = scripted_gateway()
        gateway.config.reconnect_delay = 0.001  # would be hundreds of attempts a second
        gateway.config.auth_retry_delay = 0.1
        await gateway.start()
        broker.connect_error = BrokerAuthError("invalid key")
        broker.refuse_connects = 10_000
        before = broker.connects
        broker.drop()
        await asyncio.sleep(0.35)
        attempts = broker.connects - before
        assert 1 <= attempts <= 5  # one at once, then one per auth_retry_delay
        assert isinstance(gateway.last_connect_error, BrokerAuthError)
        refused = await gateway.submit_order(order("a-1"))
        assert refused.reject_reason is RejectReason.NOT_READY and not broker.placed
        await gateway.stop()

    asyncio.run(run())


def test_token_bucket_paces_to_its_rate() -> None:
    now = [0.0]

    async def fake_sleep(seconds: float) -> None:
        now[0] += seconds

    async def run() -> None:
        bucket = TokenBucket(rate=100, burst=5, clock=lambda: now[0], sleep=fake_sleep)
        for _ in range(25):
            await bucket.acquire()
        # 5 from the burst, then 20 at 100/s: 0.2 s of waiting.
        assert now[0] == pytest.approx(0.2)

    asyncio.run(run())
