"""Session rules ordermatch never exercises, against a scripted FIX peer on loopback.

ordermatch never asks us to resend, never sends a sequence number too
low, never resets, and never rejects at the session or business level.
A peer that does exactly what each test says covers those paths.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import simplefix

from livegate.broker.fix import FixAdapter, FixSessionConfig
from livegate.model.enums import OrderStatus, OrderType, Side, TimeInForce
from livegate.model.orders import OrderIntent
from livegate.model.reports import CancelRejectReport, OrderReport, TradeReport

D = Decimal


class Peer:
    """The acceptor side: reads our messages, sends what the test scripts."""

    def __init__(self) -> None:
        self.received: list[simplefix.FixMessage] = []
        self.seq = 1
        self.writer: asyncio.StreamWriter | None = None
        self._arrived = asyncio.Condition()

    async def serve(self) -> int:
        server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.server = server
        return int(server.sockets[0].getsockname()[1])

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        parser = simplefix.FixParser()
        while chunk := await reader.read(65536):
            parser.append_buffer(chunk)
            while (message := parser.get_message()) is not None:
                async with self._arrived:
                    self.received.append(message)
                    self._arrived.notify_all()

    async def expect(self, msg_type: bytes, after: int = 0) -> simplefix.FixMessage:
        async with self._arrived:
            await asyncio.wait_for(
                self._arrived.wait_for(
                    lambda: any(m.get(35) == msg_type for m in self.received[after:])
                ),
                5,
            )
        return next(m for m in self.received[after:] if m.get(35) == msg_type)

    def send(self, msg_type: bytes, fields: list[tuple[int, bytes | str]], seq: int | None = None,
             poss_dup: bool = False, sender: str = "PEER", target: str = "US",
             begin: str = "FIX.4.2", corrupt: bool = False) -> None:  # fmt: skip
        message = simplefix.FixMessage()
        message.append_pair(8, begin, header=True)
        message.append_pair(35, msg_type, header=True)
        message.append_pair(49, sender, header=True)
        message.append_pair(56, target, header=True)
        message.append_pair(34, seq if seq is not None else self.seq, header=True)
        if poss_dup:
            message.append_pair(43, "Y", header=True)
        message.append_utc_timestamp(52, header=True)
        for tag, value in fields:
            message.append_pair(tag, value)
        if seq is None:
            self.seq += 1
        assert self.writer is not None
        raw = message.encode()
        if corrupt:  # a flipped digit in transit: CheckSum no longer matches
            raw = raw.replace(b"\x0132=10\x01", b"\x0132=30\x01")
        self.writer.write(raw)


def session_test(
    tmp_path: Path, body: Callable[[Peer, FixAdapter], Awaitable[None]], **settings: Any
) -> None:
    async def run() -> None:
        peer = Peer()
        port = await peer.serve()
        adapter = FixAdapter(
            FixSessionConfig("127.0.0.1", port, "US", "PEER", tmp_path / "s.sqlite",
                             heartbeat_interval=30, logon_timeout=3, **settings)
        )  # fmt: skip
        connecting = asyncio.create_task(adapter.connect())
        await peer.expect(b"A")
        peer.send(b"A", [(98, "0"), (108, "30")])
        await connecting
        try:
            await body(peer, adapter)
        finally:
            adapter.session.abort()
            peer.server.close()

    asyncio.run(run())


def intent(coid: str) -> OrderIntent:
    return OrderIntent(
        coid, "", "IBM", Side.BUY, OrderType.LIMIT, D(10), D("1.5"), TimeInForce.DAY, 0
    )


async def next_report(adapter: FixAdapter) -> object:
    return await asyncio.wait_for(adapter._queue.get(), 5)


def test_our_messages_are_resent_as_possdup_and_admin_ones_gap_filled(tmp_path: Path) -> None:
    async def body(peer: Peer, adapter: FixAdapter) -> None:
        await adapter.place(intent("o-1"))  # our seq 2 (the Logon was 1)
        await peer.expect(b"D")
        mark = len(peer.received)
        peer.send(b"2", [(7, "1"), (16, "0")])  # "send me everything again"
        fill = await peer.expect(b"4", mark)
        assert fill.get(34) == b"1" and fill.get(123) == b"Y" and fill.get(36) == b"2"
        again = await peer.expect(b"D", mark)
        assert again.get(34) == b"2" and again.get(43) == b"Y"
        assert again.get(122) is not None and again.get(11) == b"o-1"

    session_test(tmp_path, body)


def test_a_gap_asks_once_and_waits_for_the_resend(tmp_path: Path) -> None:
    async def body(peer: Peer, adapter: FixAdapter) -> None:
        await adapter.place(intent("o-1"))
        mark = len(peer.received)
        report = [(37, "X1"), (11, "o-1"), (17, "E1"), (20, "0"), (39, "0"), (55, "IBM"),
                  (54, "1"), (38, "10"), (14, "0"), (151, "10"), (6, "0")]  # fmt: skip
        peer.send(b"8", report, seq=3)  # 2 is missing
        request = await peer.expect(b"2", mark)
        assert request.get(7) == b"2" and request.get(16) == b"0"
        assert adapter._queue.empty()  # 3 waits for the resend
        peer.send(b"4", [(123, "Y"), (36, "3")], seq=2, poss_dup=True)  # 2 was admin
        peer.send(b"8", report, seq=3, poss_dup=True)
        first = await next_report(adapter)
        assert isinstance(first, OrderReport) and first.status is OrderStatus.SUBMITTED
        assert adapter.session.store.next_in == 4

    session_test(tmp_path, body)


def test_business_and_session_rejects_name_the_order(tmp_path: Path) -> None:
    async def body(peer: Peer, adapter: FixAdapter) -> None:
        await adapter.place(intent("o-1"))
        await adapter.place(intent("o-2"))
        await adapter.cancel("o-1", None)
        await peer.expect(b"F")
        peer.send(b"j", [(45, "2"), (372, "D"), (379, "o-1"), (380, "3"), (58, "no such symbol")])
        peer.send(b"3", [(45, "3"), (58, "required tag missing")])  # our o-2
        peer.send(b"3", [(45, "4"), (58, "cannot cancel now")])  # our cancel of o-1
        r1, r2, r3 = [await next_report(adapter) for _ in range(3)]
        assert isinstance(r1, OrderReport) and r1.client_order_id == "o-1"
        assert r1.status is OrderStatus.REJECTED and r1.text == "no such symbol"
        assert isinstance(r2, OrderReport) and r2.client_order_id == "o-2"
        assert r2.status is OrderStatus.REJECTED
        assert isinstance(r3, CancelRejectReport) and r3.client_order_id == "o-1"

    session_test(tmp_path, body)


def test_a_sequence_number_too_low_ends_the_session_with_a_reason(tmp_path: Path) -> None:
    async def body(peer: Peer, adapter: FixAdapter) -> None:
        peer.send(b"0", [], seq=1)  # we expect 2; not a possible duplicate
        logout = await peer.expect(b"5")
        assert b"too low" in (logout.get(58) or b"")
        await asyncio.wait_for(adapter.session.closed.wait(), 5)

    session_test(tmp_path, body)


def test_a_possdup_below_the_expected_number_is_ignored(tmp_path: Path) -> None:
    async def body(peer: Peer, adapter: FixAdapter) -> None:
        peer.send(b"0", [], seq=1, poss_dup=True)
        peer.send(b"1", [(112, "ping")])  # seq 2, in order
        answer = await peer.expect(b"0")
        assert answer.get(112) == b"ping" and adapter.session.logged_on

    session_test(tmp_path, body)


def test_sequence_reset_moves_the_expected_number(tmp_path: Path) -> None:
    async def body(peer: Peer, adapter: FixAdapter) -> None:
        peer.send(b"4", [(36, "10")], seq=2)  # Reset mode: no GapFillFlag
        peer.seq = 10
        peer.send(b"1", [(112, "after-reset")])
        answer = await peer.expect(b"0")
        assert answer.get(112) == b"after-reset"
        assert adapter.session.store.next_in == 11

    session_test(tmp_path, body)


FILL = [(37, "X1"), (11, "o-1"), (17, "E1"), (20, "0"), (150, "1"), (39, "1"), (55, "IBM"),
        (54, "1"), (38, "10"), (32, "10"), (31, "1.5"), (14, "10"), (151, "0"),
        (6, "1.5")]  # fmt: skip


def test_a_garbled_message_is_ignored_and_its_number_not_consumed(tmp_path: Path) -> None:
    async def body(peer: Peer, adapter: FixAdapter) -> None:
        await adapter.place(intent("o-1"))
        peer.send(b"8", FILL, seq=2, corrupt=True)  # 30 shares instead of 10
        peer.writer.write(b"\x00\xffnot fix at all\x01")  # type: ignore[union-attr]
        peer.send(b"8", FILL, seq=2)  # the same message, intact
        reports = [await next_report(adapter), await next_report(adapter)]
        trades = [r for r in reports if isinstance(r, TradeReport)]
        assert [t.quantity for t in trades] == [10]
        assert adapter.session.store.next_in == 3 and adapter.session.logged_on
        assert any("garbled" in p for p in adapter.problems.since(0))

    session_test(tmp_path, body)


def test_a_message_for_another_session_is_refused_with_a_logout(tmp_path: Path) -> None:
    for wrong in ({"sender": "INTRUDER"}, {"target": "SOMEONE"}, {"begin": "FIX.4.4"}):

        async def body(peer: Peer, adapter: FixAdapter, wrong: dict[str, str] = wrong) -> None:
            mark = len(peer.received)
            peer.send(b"8", FILL, **wrong)  # type: ignore[arg-type]
            logout = await peer.expect(b"5", mark)
            assert b"not this session" in (logout.get(58) or b"")
            await asyncio.wait_for(adapter.session.closed.wait(), 5)
            assert adapter._queue.empty() or (await next_report(adapter)) is None

        session_test(tmp_path / str(len(wrong) + len(str(wrong))), body)


def test_a_possdup_fill_below_the_expected_number_reaches_the_gateway(tmp_path: Path) -> None:
    """Resent after a restart: whether it was journaled is the gateway's to know."""

    async def body(peer: Peer, adapter: FixAdapter) -> None:
        await adapter.place(intent("o-1"))
        peer.send(b"8", FILL, seq=2, poss_dup=True)  # we expect 2: in order
        peer.send(b"8", FILL, seq=2, poss_dup=True)  # again, below the expected 3
        got = [await next_report(adapter) for _ in range(4)]
        trades = [r for r in got if isinstance(r, TradeReport)]
        assert len(trades) == 2 and trades[0].trade_id == trades[1].trade_id  # one exec id

    session_test(tmp_path, body)


def test_an_unanswered_resend_is_asked_again_then_the_session_dropped(tmp_path: Path) -> None:
    async def body(peer: Peer, adapter: FixAdapter) -> None:
        mark = len(peer.received)
        peer.send(b"8", FILL, seq=5)  # 2 to 4 are missing, and never come
        await peer.expect(b"2", mark)
        again = len(peer.received)
        await peer.expect(b"2", again)  # asked a second time
        await asyncio.wait_for(adapter.session.closed.wait(), 5)
        assert not adapter.session.logged_on
        assert any("never filled the gap" in p for p in adapter.problems.since(0))  # alerted

    session_test(tmp_path, body, resend_timeout=0.3)


def test_the_inbound_number_is_stored_only_once_the_gateway_had_time_to_journal(
    tmp_path: Path,
) -> None:
    async def body(peer: Peer, adapter: FixAdapter) -> None:
        await adapter.place(intent("o-1"))
        peer.send(b"8", FILL, seq=2)
        await next_report(adapter)
        store = adapter.session.store
        assert store.next_in == 3 and store.stored_next_in() < 3  # a crash now asks again
        await asyncio.sleep(0.5)
        store.persist_due(time.monotonic() - adapter.config.inbound_persist_lag)
        assert store.stored_next_in() == 3

    session_test(tmp_path, body, inbound_persist_lag=0.2)


def test_a_trade_bust_or_correction_is_never_a_fill(tmp_path: Path) -> None:
    async def body(peer: Peer, adapter: FixAdapter) -> None:
        await adapter.place(intent("o-1"))
        bust = [(t, "H" if t == 150 else v) for t, v in FILL]
        correction = [(t, "G" if t == 150 else v) for t, v in FILL]
        peer.send(b"8", bust)
        peer.send(b"8", correction)
        peer.send(b"1", [(112, "after")])
        await peer.expect(b"0")
        assert adapter._queue.empty() and adapter.refused_corrections == 2
        assert len([p for p in adapter.problems.since(0) if "settle it by hand" in p]) == 2

    session_test(tmp_path, body)
