"""The sim broker's wire protocol: JSON lines over TCP (docs/sim-broker.md).

One JSON object per line, each tagged by its `t` field. The client sends
requests with ids; the server answers each with a response carrying the
same id, and pushes reports and heartbeats whenever it likes.
"""

from __future__ import annotations

from typing import Any

import msgspec

from livegate.model.reports import BrokerReport


class Request(msgspec.Struct, tag="req", tag_field="t", omit_defaults=True):
    id: int
    op: str  # auth place cancel order_status open_orders today_trades account ping
    args: dict[str, Any] = {}


class Error(msgspec.Struct, omit_defaults=True):
    kind: str  # network auth throttled rejected unknown
    message: str
    retry_after: float = 0.0
    reason: str = ""  # a RejectReason value, for `rejected`


class Response(msgspec.Struct, tag="res", tag_field="t", omit_defaults=True):
    id: int
    result: Any = None
    error: Error | None = None


class Push(msgspec.Struct, tag="rep", tag_field="t"):
    report: BrokerReport


class Beat(msgspec.Struct, tag="hb", tag_field="t"):
    ts_ns: int


ServerMessage = Response | Push | Beat

encoder = msgspec.json.Encoder(decimal_format="string")
request_decoder = msgspec.json.Decoder(Request)
server_decoder = msgspec.json.Decoder(ServerMessage)


def line(message: msgspec.Struct) -> bytes:
    return encoder.encode(message) + b"\n"
