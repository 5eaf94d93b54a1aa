"""The `fix` adapter: livegate's broker contract over a FIX 4.2/4.4 session.

The application mapping:

| FIX | livegate |
|---|---|
| NewOrderSingle (D), ClOrdID = client_order_id | `place` |
| OrderCancelRequest (F), OrigClOrdID = the order's ClOrdID | `cancel` |
| ExecutionReport (8) | OrderReport, and a TradeReport when LastShares > 0 |
| OrderCancelReject (9) | CancelRejectReport |
| BusinessMessageReject (j), Reject (3) of our D / F | a REJECTED order / a refused cancel |

A counterparty like QuickFIX's ordermatch cannot be asked anything: no
OrderStatusRequest, no list of open orders or trades, no account, and no
ClOrdID deduplication. The adapter says so in its Capabilities, and the
gateway makes up for it: duplicate submissions stop at the gateway's
idempotency, what was missed while disconnected comes from the FIX
resend, and orders whose state a reconnect leaves unconfirmed are flagged
by reconciliation rather than believed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import simplefix

from livegate.broker.adapter import AdapterProblems, Capabilities
from livegate.broker.errors import BrokerNetworkError, BrokerRejected, UnknownOutcome
from livegate.broker.fix.session import (
    FixSession,
    FixSessionConfig,
    text,
    utc_timestamp,
)
from livegate.model.account import AccountSnapshot
from livegate.model.enums import OrderStatus, OrderType, RejectReason, Side, TimeInForce
from livegate.model.orders import OrderIntent
from livegate.model.reports import BrokerReport, CancelRejectReport, OrderReport, TradeReport

log = logging.getLogger("livegate.fix")

ORD_STATUS = {
    b"0": OrderStatus.SUBMITTED,
    b"1": OrderStatus.PARTIALLY_FILLED,
    b"2": OrderStatus.FILLED,
    b"3": OrderStatus.FILLED,  # done for day: nothing more will fill
    b"4": OrderStatus.CANCELLED,
    b"5": OrderStatus.SUBMITTED,  # replaced: still working
    b"6": OrderStatus.PENDING_CANCEL,
    b"8": OrderStatus.REJECTED,
    b"A": OrderStatus.SUBMITTED,  # pending new
    b"C": OrderStatus.EXPIRED,
    b"E": OrderStatus.SUBMITTED,  # pending replace
}
SIDE = {Side.BUY: b"1", Side.SELL: b"2"}
FIX_SIDE = {b"1": Side.BUY, b"2": Side.SELL}
ORD_TYPE = {OrderType.LIMIT: b"2", OrderType.MARKET: b"1"}
TIF = {TimeInForce.DAY: b"0", TimeInForce.GTC: b"1", TimeInForce.IOC: b"3"}


def _decimal(message: simplefix.FixMessage, tag: int) -> Decimal | None:
    value = message.get(tag)
    if value is None or value == b"":
        return None
    try:
        return Decimal(value.decode())
    except InvalidOperation:
        return None


def _timestamp_ns(message: simplefix.FixMessage, tag: int) -> int:
    value = text(message, tag)
    if not value:
        return 0
    for fmt in ("%Y%m%d-%H:%M:%S.%f", "%Y%m%d-%H:%M:%S"):
        try:
            moment = datetime.strptime(value, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
        return int(moment.timestamp() * 1_000_000) * 1000
    return 0


def _number(value: Decimal) -> bytes:
    return format(value.normalize(), "f").encode()


class FixAdapter:
    name = "fix"
    capabilities = Capabilities(
        dedups_client_order_id=False,
        query_by_client_order_id=False,
        cancel_by_client_order_id=True,  # OrigClOrdID is our client id
        lists_orders=False,
        reports_account=False,
    )

    def __init__(self, config: FixSessionConfig, account: AccountSnapshot | None = None) -> None:
        self.config = config
        self.problems = AdapterProblems()
        self.session = FixSession(config, self._on_app, self.problems.add)
        self._account = account or AccountSnapshot(
            config.sender_comp_id, "USD", Decimal(0), Decimal(0)
        )
        self._queue: asyncio.Queue[BrokerReport | None] = asyncio.Queue()
        self._orders: dict[str, OrderIntent] = {}  # for the fields a cancel repeats
        self._cancels = 0
        self.refused_corrections = 0  # busts and corrections not applied (logged)
        self._load_orders()

    # -- the orders a cancel needs, kept beside the session ---------------------------
    def _load_orders(self) -> None:
        db = self.session.store.db
        db.execute(
            "CREATE TABLE IF NOT EXISTS orders (client_order_id TEXT PRIMARY KEY,"
            " symbol TEXT NOT NULL, side TEXT NOT NULL, quantity TEXT NOT NULL)"
        )
        for coid, symbol, side, qty in db.execute("SELECT * FROM orders"):
            self._orders[coid] = OrderIntent(
                coid, "", symbol, Side(side), OrderType.LIMIT, Decimal(qty), None,
                TimeInForce.DAY, 0,
            )  # fmt: skip

    def _remember(self, intent: OrderIntent) -> None:
        self._orders[intent.client_order_id] = intent
        self.session.store.db.execute(
            "INSERT OR REPLACE INTO orders VALUES (?, ?, ?, ?)",
            (intent.client_order_id, intent.symbol, intent.side.value, str(intent.quantity)),
        )

    # -- session ------------------------------------------------------------------------
    async def connect(self) -> None:
        self._queue = asyncio.Queue()
        try:
            await self.session.connect()
        except OSError as exc:
            raise BrokerNetworkError(
                f"cannot reach {self.config.host}:{self.config.port}: {exc}"
            ) from exc
        asyncio.get_running_loop().create_task(self._end_stream_when_closed())

    async def _end_stream_when_closed(self) -> None:
        await self.session.closed.wait()
        self._queue.put_nowait(None)

    def abort(self) -> None:
        """Cut the socket now (the gateway's heartbeat watch found the peer dead)."""
        self.session.abort()

    async def close(self) -> None:
        await self.session.logout()
        self._queue.put_nowait(None)

    async def heartbeat(self) -> int:
        return 0

    # -- orders ------------------------------------------------------------------------
    async def place(self, intent: OrderIntent) -> str | None:
        if intent.order_type not in ORD_TYPE:
            raise BrokerRejected(
                f"{intent.order_type} orders are not supported over FIX", RejectReason.INVALID_ORDER
            )
        fields = [
            (11, intent.client_order_id.encode()),
            (21, b"1"),
            (55, intent.symbol.encode()),
            (54, SIDE[intent.side]),
            (60, utc_timestamp()),
            (38, _number(intent.quantity)),
            (40, ORD_TYPE[intent.order_type]),
            (59, TIF.get(intent.time_in_force, b"0")),
        ]
        if intent.price is not None:
            fields.append((44, _number(intent.price)))
        if intent.account:
            fields.append((1, intent.account.encode()))
        self._remember(intent)
        await self._send(b"D", fields)
        return None  # the broker's OrderID comes with the ExecutionReport

    async def cancel(self, client_order_id: str, broker_order_id: str | None) -> None:
        intent = self._orders.get(client_order_id)
        if intent is None:
            raise BrokerRejected(f"{client_order_id}: not an order sent over this session")
        self._cancels += 1
        fields = [
            (41, client_order_id.encode()),
            (11, f"{client_order_id}~C{self._cancels}-{int(time.time())}".encode()),
            (55, intent.symbol.encode()),
            (54, SIDE[intent.side]),
            (38, _number(intent.quantity)),
            (60, utc_timestamp()),
        ]
        if broker_order_id:
            fields.append((37, broker_order_id.encode()))
        await self._send(b"F", fields)

    async def _send(self, msg_type: bytes, fields: list[tuple[int, bytes]]) -> None:
        if not self.session.logged_on:
            raise BrokerNetworkError("FIX session not logged on")
        try:
            await self.session.send_app(msg_type, fields)
        except (ConnectionError, OSError) as exc:
            # Stored and perhaps written: the peer may have it. Never "not sent".
            raise UnknownOutcome(f"FIX connection failed while sending: {exc}") from exc

    # -- what the counterparty cannot answer -------------------------------------------
    async def order_status(
        self, client_order_id: str, broker_order_id: str | None
    ) -> OrderReport | None:
        return None

    async def open_orders(self) -> Sequence[OrderReport]:
        return ()

    async def today_trades(self) -> Sequence[TradeReport]:
        return ()

    async def account(self) -> AccountSnapshot:
        """As configured: a FIX order session says nothing about the account."""
        return self._account

    async def reports(self) -> AsyncIterator[BrokerReport]:
        queue = self._queue
        while True:
            report = await queue.get()
            if report is None:
                return
            yield report

    # -- mapping what arrives ------------------------------------------------------------
    def _on_app(self, message: simplefix.FixMessage) -> None:
        msg_type = message.get(35)
        try:
            reports = self._map(msg_type, message)
        except Exception:
            log.exception("FIX message not understood: %s", message)
            return
        for report in reports:
            self._queue.put_nowait(report)

    def _map(self, msg_type: bytes | None, m: simplefix.FixMessage) -> list[BrokerReport]:
        if msg_type == b"8":
            return self._execution_report(m)
        if msg_type == b"9":
            return [
                CancelRejectReport(
                    _original_id(m),
                    _broker_id(m),
                    text(m, 58) or "cancel refused",
                    _timestamp_ns(m, 60),
                )
            ]
        if msg_type == b"j":  # BusinessMessageReject
            return self._rejected(
                text(m, 372), text(m, 379), text(m, 58) or "business reject", int(m.get(45) or 0)
            )
        if msg_type == b"3":  # session-level Reject of one of our messages
            return self._rejected(
                None, None, text(m, 58) or "rejected by the session", int(m.get(45) or 0)
            )
        log.info("FIX message type %r ignored", msg_type)
        return []

    def _rejected(
        self, ref_type: str | None, ref_id: str | None, reason: str, ref_seq: int
    ) -> list[BrokerReport]:
        if ref_seq and (ref_type is None or ref_id is None):
            sent = self.session.store.sent_message(ref_seq)
            if sent is not None:
                ref_type = ref_type or text(sent, 35)
                ref_id = ref_id or text(sent, 41) or text(sent, 11)
        if ref_id is None:
            log.warning("FIX reject of nothing we can name: %s", reason)
            return []
        if ref_type == "D":
            return [
                OrderReport(
                    OrderStatus.REJECTED,
                    ref_id,
                    None,
                    reject_reason=RejectReason.BROKER_REJECTED,
                    text=reason,
                )
            ]
        if ref_type == "F":
            return [CancelRejectReport(ref_id.split("~C")[0], None, reason)]
        return []

    def _execution_report(self, m: simplefix.FixMessage) -> list[BrokerReport]:
        # A bust or correction of an earlier fill (4.2 ExecTransType 1/2, 4.4
        # ExecType H/G) is not a new fill; counting it as one books shares that
        # never traded. Refused loudly: a person settles it with the broker
        # (reconciliation then shows the difference).
        if m.get(20) in (b"1", b"2") or m.get(150) in (b"H", b"G"):
            self.refused_corrections += 1
            what = "correction" if m.get(20) == b"2" or m.get(150) == b"G" else "cancel (bust)"
            self.problems.add(
                f"FIX trade {what} for order {text(m, 11)} (exec {text(m, 17)}) not applied:"
                " settle it by hand"
            )
            return []
        status = ORD_STATUS.get(m.get(39) or b"")
        if status is None:
            log.warning("FIX OrdStatus %r not understood", m.get(39))
            return []
        coid, broker_id = _original_id(m), _broker_id(m)
        ts_ns = _timestamp_ns(m, 60) or _timestamp_ns(m, 52)
        reports: list[BrokerReport] = []
        last_qty, last_px = _decimal(m, 32), _decimal(m, 31)
        if last_qty and last_qty > 0 and last_px is not None:
            # ExecIDs are unique per session day at most (ordermatch restarts
            # them at 1), so the order's id qualifies them.
            exec_id = text(m, 17) or ""
            reports.append(
                TradeReport(
                    last_qty, last_px, coid, broker_id, f"{broker_id or coid}:{exec_id}",
                    text(m, 55) or "", FIX_SIDE.get(m.get(54) or b""), ts_ns=ts_ns,
                )
            )  # fmt: skip
        reject = RejectReason.BROKER_REJECTED if status is OrderStatus.REJECTED else None
        reports.append(
            OrderReport(
                status, coid, broker_id, _decimal(m, 14), _decimal(m, 6) or None, reject,
                text(m, 58) or "", ts_ns,
            )
        )  # fmt: skip
        return reports


def _original_id(m: simplefix.FixMessage) -> str | None:
    """The order's own ClOrdID: OrigClOrdID on cancel answers, else ClOrdID."""
    value = text(m, 41) or text(m, 11)
    return value.split("~C")[0] if value else None


def _broker_id(m: simplefix.FixMessage) -> str | None:
    value = text(m, 37)
    return value if value and value != "NONE" else None
