"""The sim broker's wire protocol: JSON lines over TCP (docs/sim-broker.md).

One JSON object per line, each tagged by its `t` field. The client sends
requests with ids; the server answers each with a response carrying the
same id, and pushes reports and heartbeats whenever it likes.
"""

from __future__ import annotations

import asyncio
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


# A frame is one JSON line of any size the peer needs (today's trades of a
# busy account run to megabytes); this bound only stops a peer that never
# ends its line from taking all our memory.
MAX_FRAME = 1 << 30


class FrameTooLarge(ConnectionError):
    """The peer sent a line longer than MAX_FRAME: the connection is not usable."""


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    """The next newline-terminated frame, whatever its size; b"" at end of stream.

    StreamReader.readline() fails on a line longer than the reader's buffer
    limit (64 KiB by default) and loses the connection's framing with it.
    """
    parts: list[bytes] = []
    size = 0
    while True:
        try:
            part = await reader.readuntil(b"\n")
        except asyncio.LimitOverrunError as exc:
            part = await reader.readexactly(exc.consumed)
            size += len(part)
            if size > MAX_FRAME:
                raise FrameTooLarge(f"a frame longer than {MAX_FRAME} bytes") from None
            parts.append(part)
            continue
        except asyncio.IncompleteReadError as exc:
            return b"".join(parts) + exc.partial if parts else exc.partial
        if not parts:
            return part
        parts.append(part)
        return b"".join(parts)
