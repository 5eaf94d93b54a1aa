"""The `sim` adapter: livegate's broker contract over the sim broker's JSON-lines protocol.

A thin mapping, as an adapter should be: requests carry ids and wait for
their response; the server's error kinds become the error classes the
gateway acts on; pushed reports go to `reports()`; server heartbeats are
remembered so the gateway can tell a quiet broker from a dead one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgspec

from livegate.broker.adapter import Capabilities
from livegate.broker.errors import (
    BrokerAuthError,
    BrokerError,
    BrokerNetworkError,
    BrokerRejected,
    BrokerThrottled,
    UnknownOutcome,
)
from livegate.broker.sim.protocol import (
    Beat,
    Error,
    Push,
    Request,
    Response,
    line,
    read_frame,
    server_decoder,
)
from livegate.model.account import AccountSnapshot
from livegate.model.enums import RejectReason
from livegate.model.orders import OrderIntent
from livegate.model.reports import BrokerReport, OrderReport, TradeReport
from livegate.model.secret import Secret

NOT_SENT_IF_DROPPED = frozenset(
    ("auth", "order_status", "open_orders", "today_trades", "account", "ping")
)


class SimAdapter:
    name = "sim"
    capabilities = Capabilities(
        dedups_client_order_id=True,
        query_by_client_order_id=True,
        cancel_by_client_order_id=True,
    )

    def __init__(self, host: str, port: int, api_key: Secret, environment: str = "sim") -> None:
        self.host = host
        self.port = port
        self.api_key = api_key
        self.environment = environment
        self.server_environment: str | None = None
        self.last_heartbeat_ns = 0
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[str, asyncio.Future[Any]]] = {}
        self._queue: asyncio.Queue[BrokerReport | None] = asyncio.Queue()
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._alive = False  # the reader still reads: a request can be answered

    # -- session ----------------------------------------------------------------
    async def connect(self) -> None:
        """Open the connection; `authenticate` logs on (the gateway calls both)."""
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except OSError as exc:
            raise BrokerNetworkError(f"cannot reach {self.host}:{self.port}: {exc}") from exc
        self._writer = writer
        self._queue = asyncio.Queue()
        self._alive = True
        self._reader_task = asyncio.create_task(self._read(reader), name="sim-reader")

    async def authenticate(self) -> None:
        try:
            hello = await asyncio.wait_for(
                self._request("auth", {"api_key": self.api_key.reveal()}), 10
            )
        except TimeoutError as exc:
            self.abort()
            raise BrokerNetworkError("no answer to authentication") from exc
        except BrokerError:
            self.abort()
            raise
        self.server_environment = str(hello.get("environment"))
        if self.server_environment != self.environment:
            self.abort()
            raise BrokerAuthError(
                f"this broker serves {self.server_environment!r}, the profile is"
                f" {self.environment!r}: refusing to trade on the wrong environment"
            )

    def abort(self) -> None:
        """Cut the connection now; the report stream ends and the gateway reconnects."""
        if self._writer is not None:
            self._writer.transport.abort()

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        if self._reader_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task
        self._queue.put_nowait(None)

    async def heartbeat(self) -> int:
        result = await self._request("ping", {})
        return int(result)

    # -- requests -----------------------------------------------------------------
    async def place(self, intent: OrderIntent) -> str | None:
        result = await self._request("place", {"intent": intent})
        return str(result) if result else None

    async def cancel(self, client_order_id: str, broker_order_id: str | None) -> None:
        args = {"client_order_id": client_order_id, "broker_order_id": broker_order_id}
        await self._request("cancel", args)

    async def order_status(
        self, client_order_id: str, broker_order_id: str | None
    ) -> OrderReport | None:
        args = {"client_order_id": client_order_id, "broker_order_id": broker_order_id}
        result = await self._request("order_status", args)
        return msgspec.convert(result, OrderReport, strict=False) if result else None

    async def open_orders(self) -> Sequence[OrderReport]:
        result = await self._request("open_orders", {})
        return msgspec.convert(result, list[OrderReport], strict=False)

    async def today_trades(self) -> Sequence[TradeReport]:
        result = await self._request("today_trades", {})
        return msgspec.convert(result, list[TradeReport], strict=False)

    async def account(self) -> AccountSnapshot:
        result = await self._request("account", {})
        return msgspec.convert(result, AccountSnapshot, strict=False)

    async def reports(self) -> AsyncIterator[BrokerReport]:
        queue = self._queue
        while (report := await queue.get()) is not None:
            yield report

    async def _request(self, op: str, args: dict[str, Any]) -> Any:
        writer = self._writer
        if writer is None or writer.is_closing() or not self._alive:
            # Nothing was sent: no answer could ever come on this connection.
            raise BrokerNetworkError("not connected to the sim broker")
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = (op, future)
        try:
            writer.write(line(Request(request_id, op, args)))
            return await future
        finally:
            self._pending.pop(request_id, None)

    # -- what arrives ---------------------------------------------------------------
    async def _read(self, reader: asyncio.StreamReader) -> None:
        queue, pending = self._queue, self._pending
        try:
            while raw := await read_frame(reader):
                message = server_decoder.decode(raw)
                if type(message) is Push:
                    queue.put_nowait(message.report)
                elif type(message) is Response:
                    entry = pending.get(message.id)
                    if entry is not None and not entry[1].done():
                        if message.error is None:
                            entry[1].set_result(message.result)
                        else:
                            entry[1].set_exception(_error(message.error))
                elif type(message) is Beat:
                    self.last_heartbeat_ns = time.time_ns()
        except (ConnectionError, OSError, msgspec.DecodeError):
            pass
        finally:
            self._alive = False
            for op, future in pending.values():
                if not future.done():
                    # A query lost with the connection did nothing; a place or
                    # cancel may have reached the broker.
                    lost: Exception = (
                        BrokerNetworkError(f"connection lost during {op}")
                        if op in NOT_SENT_IF_DROPPED
                        else UnknownOutcome(f"connection lost during {op}")
                    )
                    future.set_exception(lost)
            queue.put_nowait(None)


def _error(error: Error) -> Exception:
    if error.kind == "auth":
        return BrokerAuthError(error.message)
    if error.kind == "throttled":
        return BrokerThrottled(error.message, error.retry_after)
    if error.kind == "rejected":
        try:
            reason = RejectReason(error.reason)
        except ValueError:
            reason = RejectReason.BROKER_REJECTED
        return BrokerRejected(error.message, reason)
    if error.kind == "network":
        return BrokerNetworkError(error.message)
    return UnknownOutcome(error.message)
