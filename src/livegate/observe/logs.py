"""Structured JSON logs about orders, traceable by client_order_id.

Every line about an order carries its client_order_id, broker_order_id
(once known), account and environment, and the correlation id of the
command (a submit or a cancel) whose consequences it reports, so a grep
for one id finds everything. Opt-in like the metrics: with no OrderLog the
order path writes nothing.

What it costs, and why it is built this way: the first version called a
structlog BoundLogger per line. Counted with callgrind on the throughput
benchmark, that and a flush per line was most of what observability cost
an order (42% of throughput). Now the order path builds one `OrderLine`
(a msgspec struct: no dict, no key hashing) and appends it to a list;
`flush` renders the whole batch in one msgspec call and writes it in one
go. The timestamp is taken when the line is recorded. The journal, not
this log, is the durable record, so a line may wait in memory up to
`flush_interval` (the gateway flushes on a timer and at stop), or until
`max_pending` lines wait, or an error-level line comes.

structlog is still the way to shape the output: pass `processors` (a
structlog processor chain ending in a bytes renderer, e.g. to add ISO
timestamps, redact, or render for a console) and each line goes through
it as the dict a bound logger would have built. Logs other than order
lines (reconnects, alerts, the CLI) go through `configure_json_logging`.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, BinaryIO, TextIO

import msgspec
import structlog
from structlog.typing import Processor

from livegate.model.enums import OrderStatus, RejectReason, Side
from livegate.model.orders import Order, OrderIntent
from livegate.model.reports import Fill

_encoder = msgspec.json.Encoder()


class OrderLine(msgspec.Struct, omit_defaults=True, gc=False):
    """One log line about an order; absent fields are left out of the JSON."""

    event: str
    level: str
    ts_ns: int
    environment: str
    account: str
    client_order_id: str
    correlation_id: str | None = None
    broker_order_id: str | None = None
    symbol: str | None = None
    side: Side | None = None
    quantity: Decimal | None = None
    price: Decimal | None = None
    basket: bool = False
    status: OrderStatus | None = None
    filled_qty: Decimal | None = None
    trade_id: str | None = None
    last_qty: Decimal | None = None
    last_price: Decimal | None = None
    inferred: bool = False
    reject_reason: RejectReason | None = None
    reject_text: str | None = None
    venue: str | None = None  # "paper" after a fallback


class OrderLog:
    def __init__(
        self,
        environment: str,
        account: str,
        stream: BinaryIO | None = None,
        flush_interval: float = 0.2,
        processors: Sequence[Processor] | None = None,
        max_pending: int = 10_000,
    ) -> None:
        self.stream = stream or sys.stderr.buffer
        self.flush_interval = flush_interval  # the gateway flushes this often
        self.max_pending = max_pending  # or sooner, when this many lines wait
        self.processors = tuple(processors or ())
        self.environment = environment
        self.account = account
        self.venue = ""  # "paper" while fallen back: every line is marked
        self._pending: list[OrderLine] = []
        self._correlation: dict[str, str] = {}  # client id -> the command being followed
        self._commands = 0

    # -- what the gateway reports ------------------------------------------------
    def submit(self, intent: OrderIntent, basket: bool = False) -> str:
        coid = intent.client_order_id
        correlation = self._command("submit", coid)
        self._add(
            OrderLine(
                "submit",
                "info",
                time.time_ns(),
                self.environment,
                self.account,
                coid,
                correlation,
                symbol=intent.symbol,
                side=intent.side,
                quantity=intent.quantity,
                price=intent.price,
                basket=basket,
            )
        )
        return correlation

    def cancel(self, client_order_id: str, broker_order_id: str | None) -> str:
        correlation = self._command("cancel", client_order_id)
        self._add(
            OrderLine(
                "cancel",
                "info",
                time.time_ns(),
                self.environment,
                self.account,
                client_order_id,
                correlation,
                broker_order_id,
            )
        )
        return correlation

    def change(self, order: Order, fill: Fill | None) -> None:
        """The order changed state, or was filled (`fill`)."""
        coid = order.client_order_id
        rejected = order.status is OrderStatus.REJECTED
        line = OrderLine(
            "fill" if fill is not None else "order_update",
            "warning" if rejected else "info",
            time.time_ns(),
            self.environment,
            self.account,
            coid,
            self._correlation.get(coid),
            order.broker_order_id,
            symbol=order.symbol,
            status=order.status,
            filled_qty=order.filled_qty,
            reject_reason=order.reject_reason,
            reject_text=order.reject_text if rejected else None,
        )
        if fill is not None:
            line.trade_id = fill.trade_id
            line.last_qty = fill.quantity
            line.last_price = fill.price
            line.inferred = fill.inferred
        self._add(line)

    def forget(self, client_order_ids: set[str]) -> None:
        """Orders that left the gateway's memory: their correlation ids go too (a late
        line for one starts a correlation of its own)."""
        for coid in client_order_ids:
            self._correlation.pop(coid, None)

    # -- batching ------------------------------------------------------------------
    def _command(self, kind: str, client_order_id: str) -> str:
        """A new command for this order: its correlation id follows every later line."""
        self._commands += 1
        correlation = f"{kind}-{client_order_id}-{self._commands}"
        self._correlation[client_order_id] = correlation
        return correlation

    def _add(self, line: OrderLine) -> None:
        if self.venue:
            line.venue = self.venue
        pending = self._pending
        pending.append(line)
        if len(pending) >= self.max_pending:
            self.flush()

    def flush(self) -> None:
        """Render what was recorded and write it out."""
        pending, self._pending = self._pending, []
        if pending:
            if self.processors:
                data = b"".join(self._through_processors(line) + b"\n" for line in pending)
            else:
                data = _encoder.encode_lines(pending)
            self.stream.write(data)
        self.stream.flush()

    def _through_processors(self, line: OrderLine) -> bytes:
        rendered: Any = msgspec.to_builtins(line)  # absent fields left out, as in JSON
        for processor in self.processors:
            rendered = processor(None, line.level, rendered)
        return rendered if isinstance(rendered, bytes) else str(rendered).encode()


def json_renderer() -> Processor:
    """structlog's JSON renderer with msgspec (it handles Decimals and enums)."""

    def encode(event: Any, **_: Any) -> bytes:  # structlog passes json.dumps keywords
        return _encoder.encode(event)

    return structlog.processors.JSONRenderer(serializer=encode)


def configure_json_logging(stream: TextIO | None = None, level: int = logging.INFO) -> None:
    """Every standard-library log line of the process as one JSON object, via structlog.

    For a gateway run as a service: reconnects, recovery, alerts and errors
    come out in the same shape as the order lines, each with a level,
    logger name and epoch time, exceptions rendered into the line.
    """
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt=None, key="ts"),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
