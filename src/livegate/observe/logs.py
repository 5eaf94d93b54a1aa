"""Structured JSON logs about orders, traceable by client_order_id.

Every line about an order carries its client_order_id, broker_order_id
(once known), account and environment, and the correlation id of the
command (a submit or a cancel) whose consequences it reports, so a grep
for one id finds everything. Opt-in like the metrics: with no OrderLog the
order path writes nothing.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import MutableMapping
from typing import Any, BinaryIO

import msgspec
import structlog

_encoder = msgspec.json.Encoder()


def _stamp(_: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Level and epoch-ns time in one step: one processor is cheaper than two."""
    event["level"] = method
    event["ts_ns"] = time.time_ns()
    return event


def _encode(event: Any, **_: Any) -> bytes:
    return _encoder.encode(event)  # structlog passes json.dumps keywords; msgspec needs none


class OrderLog:
    def __init__(self, environment: str, account: str, stream: BinaryIO | None = None) -> None:
        # structlog's fast path: bytes out, epoch timestamps, msgspec for JSON. The
        # defaults (ISO times, json.dumps, text) cost over 10 us a line, and an
        # order writes about four.
        self.logger = structlog.wrap_logger(
            structlog.BytesLogger(stream or sys.stderr.buffer),
            processors=[_stamp, structlog.processors.JSONRenderer(serializer=_encode)],
            wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
            context_class=dict,
            cache_logger_on_first_use=True,
        ).bind(environment=environment, account=account)
        self._correlation: dict[str, str] = {}  # client id -> the command being followed
        self._commands = 0

    def command(self, kind: str, client_order_id: str, **fields: Any) -> str:
        """A new command for this order: its correlation id follows every later line."""
        self._commands += 1
        correlation = f"{kind}-{client_order_id}-{self._commands}"
        self._correlation[client_order_id] = correlation
        self.logger.info(
            kind, client_order_id=client_order_id, correlation_id=correlation, **fields
        )
        return correlation

    def order(
        self,
        event: str,
        client_order_id: str,
        broker_order_id: str | None,
        level: str = "info",
        **fields: Any,
    ) -> None:
        log = getattr(self.logger, level)
        log(
            event,
            client_order_id=client_order_id,
            broker_order_id=broker_order_id,
            correlation_id=self._correlation.get(client_order_id),
            **fields,
        )
