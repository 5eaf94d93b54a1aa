"""The simulated broker: the paper broker's matching behind a network protocol, with faults.

It is a broker to be hurt by. The trading port speaks the JSON-lines
protocol of `sim.protocol` (API-key authentication first, then requests,
pushed reports and heartbeats). The control port takes fault commands, so
a drill or a test can do to the gateway what real brokers do: drop the
connection, stall, delay, duplicate or reorder reports, split fills,
throttle, refuse credentials, restart with or without its book.

The book is a `PaperAdapter` in the data folder, so the matching is the
paper broker's, every report is saved before it is told, and the state
survives a restart of this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from livegate.broker.errors import BrokerRejected
from livegate.broker.paper import PaperAdapter, PaperConfig
from livegate.broker.sim.protocol import (
    Beat,
    Error,
    Push,
    Request,
    Response,
    line,
    read_frame,
    request_decoder,
)
from livegate.model.orders import OrderIntent
from livegate.model.reports import BrokerReport

log = logging.getLogger("livegate.sim")

TRADING_OPS = frozenset(("place", "cancel"))


@dataclass
class Faults:
    """What the sim broker is doing wrong right now."""

    stalled_until: float = 0.0  # monotonic; answers, reports and heartbeats wait
    delay_ms: int = 0  # every report waits this long
    duplicate: bool = False  # every report is sent twice
    reorder: bool = False  # reports are held in small windows and sent backwards
    throttle_rate: float = 0.0  # > 0: place/cancel beyond this many per second are refused
    throttle_burst: float = 5.0
    retry_after: float = 0.2
    fail_auth: bool = False
    down_until: float = 0.0  # monotonic; new connections are refused


@dataclass
class Session:
    writer: asyncio.StreamWriter
    peer: str
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def send(self, message: msgspec.Struct) -> None:
        if not self.writer.is_closing():
            self.writer.write(line(message))


class SimBroker:
    def __init__(
        self,
        data_dir: Path,
        api_keys: set[str],
        environment: str = "sim",
        paper: PaperConfig | None = None,
        heartbeat_interval: float = 1.0,
    ) -> None:
        self.data_dir = data_dir
        self.api_keys = api_keys
        self.environment = environment
        self.paper_config = paper or PaperConfig(
            initial_cash=Decimal(10) ** 9, displayed_liquidity=Decimal(10) ** 6
        )
        self.heartbeat_interval = heartbeat_interval
        self.faults = Faults()
        self.sessions: list[Session] = []
        self.places: Counter[str] = Counter()  # place requests per client order id
        self.auth_attempts = 0
        self.connections = 0
        self.paper: PaperAdapter | None = None
        self._server: asyncio.Server | None = None
        self._control: asyncio.Server | None = None
        self._pump: asyncio.Task[None] | None = None
        self._beats: asyncio.Task[None] | None = None
        self._tokens = 0.0
        self._refilled = 0.0
        self._reorder_buffer: list[BrokerReport] = []
        self.host = "127.0.0.1"
        self.port = 0
        self.control_port = 0

    # -- life cycle ----------------------------------------------------------------
    async def start(
        self, port: int = 0, control_port: int = 0, forget_open_orders: bool = False
    ) -> None:
        await self._open_book(forget_open_orders)
        self._server = await asyncio.start_server(self._client, self.host, port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        self._control = await asyncio.start_server(
            self._control_client, self.host, control_port, reuse_address=True
        )
        self.control_port = self._control.sockets[0].getsockname()[1]
        self._beats = asyncio.create_task(self._heartbeats())

    async def _open_book(self, forget_open_orders: bool = False) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.paper = PaperAdapter(self.data_dir / "book.sqlite", self.paper_config)
        await self.paper.connect()
        if forget_open_orders:
            lost = self.paper.broker.forget_open_orders()
            await self.paper.quiesce()
            log.warning("restarted without its book: %d open orders lost", len(lost))
        self._pump = asyncio.create_task(self._pump_reports(self.paper))

    async def _close_book(self) -> None:
        if self.paper is not None:
            await self.paper.close()
        if self._pump is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        self.paper = None

    async def stop(self) -> None:
        for server in (self._server, self._control):
            if server is not None:
                server.close()
        self.drop()
        if self._beats is not None:
            self._beats.cancel()
        await self._close_book()

    def drop(self) -> None:
        """Cut every trading connection at once (no goodbye)."""
        for session in list(self.sessions):
            session.writer.transport.abort()
            for task in session.tasks:
                task.cancel()
        self.sessions.clear()

    async def restart(self, lose_state: bool = False, down_ms: int = 200) -> None:
        """Go away for `down_ms` and come back from the saved book (or without open orders)."""
        self.faults.down_until = time.monotonic() + down_ms / 1000
        self.drop()
        await self._close_book()
        await asyncio.sleep(down_ms / 1000)
        await self._open_book(forget_open_orders=lose_state)
        self.faults.down_until = 0.0

    # -- trading sessions -------------------------------------------------------------
    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = str(writer.get_extra_info("peername"))
        if time.monotonic() < self.faults.down_until or self.paper is None:
            writer.transport.abort()  # as a broker that is down: the connection is refused
            return
        self.connections += 1
        session = Session(writer, peer)
        try:
            if not await self._authenticate(reader, session):
                return
            self.sessions.append(session)
            while raw := await read_frame(reader):
                await self._unstalled()
                try:
                    request = request_decoder.decode(raw)
                except msgspec.DecodeError as exc:
                    session.send(Response(0, error=Error("rejected", f"bad request: {exc}")))
                    continue
                if request.op in TRADING_OPS:
                    # Answered in order but concurrently: a slow save must not stall reads.
                    task = asyncio.create_task(self._answer(session, request))
                    session.tasks.append(task)
                    task.add_done_callback(session.tasks.remove)
                else:
                    await self._answer(session, request)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if session in self.sessions:
                self.sessions.remove(session)
            writer.close()

    async def _authenticate(self, reader: asyncio.StreamReader, session: Session) -> bool:
        try:
            raw = await asyncio.wait_for(read_frame(reader), 10)
            request = request_decoder.decode(raw)
        except (TimeoutError, msgspec.DecodeError):
            session.writer.close()
            return False
        self.auth_attempts += 1
        await self._unstalled()  # a stalled broker does not answer a logon either
        key = str(request.args.get("api_key", ""))
        if request.op != "auth" or self.faults.fail_auth or key not in self.api_keys:
            # The key itself is never echoed, logged or kept.
            session.send(Response(request.id, error=Error("auth", "authentication failed")))
            await session.writer.drain()
            session.writer.close()
            return False
        session.send(
            Response(
                request.id,
                result={"environment": self.environment, "server_time_ns": time.time_ns()},
            )
        )
        return True

    async def _answer(self, session: Session, request: Request) -> None:
        try:
            result = await self._dispatch(request)
            response = Response(request.id, result=result)
        except BrokerRejected as exc:
            response = Response(
                request.id, error=Error("rejected", exc.text, reason=exc.reason.value)
            )
        except _Throttled as exc:
            response = Response(
                request.id, error=Error("throttled", str(exc), retry_after=exc.retry_after)
            )
        except Exception as exc:  # a bug here must not kill the session
            log.exception("sim broker request %s failed", request.op)
            response = Response(request.id, error=Error("unknown", repr(exc)))
        await self._unstalled()
        session.send(response)

    async def _dispatch(self, request: Request) -> Any:
        paper = self.paper
        if paper is None:
            raise ConnectionError("restarting")
        op, args = request.op, request.args
        if op in TRADING_OPS:
            self._take_token()
        if op == "place":
            intent = msgspec.convert(args["intent"], OrderIntent, strict=False)
            self.places[intent.client_order_id] += 1
            return await paper.place(intent)
        if op == "cancel":
            await paper.cancel(args["client_order_id"], args.get("broker_order_id"))
            return None
        if op == "order_status":
            report = await paper.order_status(args["client_order_id"], args.get("broker_order_id"))
            return msgspec.to_builtins(report) if report else None
        if op == "open_orders":
            return msgspec.to_builtins(await paper.open_orders())
        if op == "today_trades":
            return msgspec.to_builtins(await paper.today_trades())
        if op == "account":
            return msgspec.to_builtins(await paper.account())
        if op == "ping":
            return time.time_ns()
        raise BrokerRejected(f"unknown op {op!r}")

    def _take_token(self) -> None:
        rate = self.faults.throttle_rate
        if rate <= 0:
            return
        now = time.monotonic()
        burst = self.faults.throttle_burst
        self._tokens = min(burst, self._tokens + (now - self._refilled) * rate)
        self._refilled = now
        if self._tokens < 1:
            raise _Throttled(f"over {rate:g} requests/s", self.faults.retry_after)
        self._tokens -= 1

    async def _unstalled(self) -> None:
        while (left := self.faults.stalled_until - time.monotonic()) > 0:
            await asyncio.sleep(left)

    # -- reports and heartbeats -----------------------------------------------------
    async def _pump_reports(self, paper: PaperAdapter) -> None:
        async for report in paper.reports():
            faults = self.faults
            if faults.reorder:
                self._reorder_buffer.append(report)
                if len(self._reorder_buffer) == 1:
                    asyncio.get_running_loop().call_later(0.02, self._release_reordered)
                continue
            self._deliver(report)

    def _release_reordered(self) -> None:
        held, self._reorder_buffer = self._reorder_buffer, []
        random.shuffle(held)
        for report in held:
            self._deliver(report)

    def _deliver(self, report: BrokerReport) -> None:
        faults = self.faults
        delay = max(faults.delay_ms / 1000, faults.stalled_until - time.monotonic())
        copies = 2 if faults.duplicate else 1
        for _ in range(copies):
            if delay > 0:
                asyncio.get_running_loop().call_later(delay, self._broadcast, report)
            else:
                self._broadcast(report)

    def _broadcast(self, report: BrokerReport) -> None:
        push = Push(report)
        for session in self.sessions:
            session.send(push)

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            if time.monotonic() < self.faults.stalled_until:
                continue  # a stalled broker sends nothing
            beat = Beat(time.time_ns())
            for session in self.sessions:
                session.send(beat)

    # -- the control channel -----------------------------------------------------------
    async def _control_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while raw := await read_frame(reader):
            try:
                command = msgspec.json.decode(raw)
                result = await self.control(command.pop("op"), **command)
                writer.write(msgspec.json.encode({"ok": True, "result": result}) + b"\n")
            except Exception as exc:
                writer.write(msgspec.json.encode({"ok": False, "error": repr(exc)}) + b"\n")
            await writer.drain()
        writer.close()

    async def control(self, op: str, **args: Any) -> Any:
        """One fault or query; the same from the control port or in-process."""
        f = self.faults
        now = time.monotonic()
        if op == "drop":
            self.drop()
        elif op == "down":  # an outage: connections dropped and refused for a while
            f.down_until = now + int(args.get("ms", 1000)) / 1000
            self.drop()
        elif op == "stall":
            f.stalled_until = now + int(args.get("ms", 1000)) / 1000
        elif op == "delay":
            f.delay_ms = int(args.get("ms", 0))
        elif op == "duplicate":
            f.duplicate = bool(args.get("on", True))
        elif op == "reorder":
            f.reorder = bool(args.get("on", True))
        elif op == "split":
            assert self.paper is not None
            self.paper.broker.fill_parts = int(args.get("parts", 1))
        elif op == "throttle":
            f.throttle_rate = float(args.get("rate", 0))
            f.retry_after = float(args.get("retry_after", 0.2))
            f.throttle_burst = float(args.get("burst", 5))
            self._tokens, self._refilled = f.throttle_burst, now
        elif op == "fail_auth":
            f.fail_auth = bool(args.get("on", True))
            if f.fail_auth and args.get("drop", True):
                self.drop()  # so the client must authenticate again
        elif op == "restart":
            await self.restart(bool(args.get("lose_state", False)), int(args.get("down_ms", 200)))
        elif op == "quote":
            assert self.paper is not None
            self.paper.set_quote(
                str(args["symbol"]),
                _dec(args.get("bid")),
                _dec(args.get("ask")),
                _dec(args.get("bid_size")),
                _dec(args.get("ask_size")),
            )
            await self.paper.quiesce()
        elif op == "clear":
            self.faults = Faults(down_until=f.down_until)
            if self.paper is not None:
                self.paper.broker.fill_parts = 1
        elif op == "stats":
            stats: dict[str, Any] = {
                "connections": self.connections,
                "sessions": len(self.sessions),
                "auth_attempts": self.auth_attempts,
                "places": sum(self.places.values()),
                "orders": len(self.places),
                "sent_twice": sorted(c for c, n in self.places.items() if n > 1),
            }
            if args.get("ids"):  # every client order id ever placed (a failover's audit)
                stats["placed_ids"] = sorted(self.places)
            return stats
        else:
            raise ValueError(f"unknown control op {op!r}")
        return None


class _Throttled(Exception):
    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _dec(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))


async def control(host: str, port: int, op: str, **args: Any) -> Any:
    """Send one control command to a sim broker and return its result."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(msgspec.json.encode({"op": op, **args}) + b"\n")
        await writer.drain()
        answer = msgspec.json.decode(await read_frame(reader))
    finally:
        writer.close()
    if not answer.get("ok"):
        raise RuntimeError(f"sim broker refused {op}: {answer.get('error')}")
    return answer.get("result")
