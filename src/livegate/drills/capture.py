"""The broker event capture format: JSON Lines, one event per line.

Broker reports are written exactly as the journal stores them
(`order_report`, `trade_report`, `cancel_reject`), so a capture can be cut
from a journal or recorded at an adapter. Three more line types carry what
our side did: `submit` and `cancel` (replayed through the gateway's own
submit and cancel), and `restart`, which restarts the gateway at that point;
its `missed` reports happened at the broker while we were down and are
never delivered on the stream: recovery has to find them.
See docs/capture-format.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

import msgspec

from livegate.model.reports import BrokerReport, CancelRejectReport, OrderReport, TradeReport


class SubmitLine(msgspec.Struct, frozen=True, tag="submit"):
    client_order_id: str
    symbol: str
    side: str
    quantity: Decimal
    order_type: str = "LIMIT"
    price: Decimal | None = None
    time_in_force: str = "DAY"


class CancelLine(msgspec.Struct, frozen=True, tag="cancel"):
    client_order_id: str


class RestartLine(msgspec.Struct, frozen=True, tag="restart"):
    missed: tuple[BrokerReport, ...] = ()


CaptureLine = SubmitLine | CancelLine | RestartLine | OrderReport | TradeReport | CancelRejectReport

_decoder = msgspec.json.Decoder(CaptureLine)


class CaptureError(ValueError):
    """A line of a capture is not valid; names the file and line."""


def parse_capture(lines: Iterable[str], source: str = "<capture>") -> list[CaptureLine]:
    events: list[CaptureLine] = []
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            events.append(_decoder.decode(text))
        except msgspec.ValidationError as exc:
            raise CaptureError(f"{source}:{number}: {exc}") from None
        except msgspec.DecodeError as exc:
            raise CaptureError(f"{source}:{number}: not JSON ({exc})") from None
    return events


def read_capture(path: Path) -> list[CaptureLine]:
    with path.open(encoding="utf-8") as handle:
        return parse_capture(handle, str(path))
