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

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import msgspec

from livegate.model.errors import InvalidOrderError
from livegate.model.instrument import Instrument, InstrumentRegistry
from livegate.model.orders import OrderRequest
from livegate.model.reports import BrokerReport, CancelRejectReport, OrderReport, TradeReport
from livegate.model.validation import (
    check_client_order_id,
    number_problem,
    report_problem,
    validate_request,
)


class SubmitLine(msgspec.Struct, frozen=True, tag="submit"):
    client_order_id: str
    symbol: str
    side: str
    quantity: Decimal
    order_type: str = "LIMIT"
    price: Decimal | None = None
    time_in_force: str = "DAY"

    def as_request(self) -> OrderRequest:
        """What the gateway's submit_order was given."""
        return OrderRequest(
            symbol=self.symbol,
            side=self.side,
            quantity=self.quantity,
            order_type=self.order_type,
            price=self.price,
            time_in_force=self.time_in_force,
            client_order_id=self.client_order_id,
        )


class CancelLine(msgspec.Struct, frozen=True, tag="cancel"):
    client_order_id: str


class RestartLine(msgspec.Struct, frozen=True, tag="restart"):
    missed: tuple[BrokerReport, ...] = ()


CaptureLine = SubmitLine | CancelLine | RestartLine | OrderReport | TradeReport | CancelRejectReport

_decoder = msgspec.json.Decoder(CaptureLine)
_raw_lines = msgspec.json.Decoder(dict[str, object])
_LINE_TYPES: dict[str, type[msgspec.Struct]] = {
    str(kind.__struct_config__.tag): kind
    for kind in (SubmitLine, CancelLine, RestartLine, OrderReport, TradeReport, CancelRejectReport)
}
_FIELDS = {
    tag: {"type", *(f.name for f in msgspec.structs.fields(kind))}
    for tag, kind in _LINE_TYPES.items()
}
_ANY = Decimal("1e-18")  # submits are checked on their own, not against reference data


class CaptureError(ValueError):
    """A line of a capture is not valid; names the file and line."""


@dataclass(repr=False)
class Capture:
    """Parsed lines with where each came from, so a failure while replaying names its line."""

    lines: list[CaptureLine] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)
    source: str = "<capture>"

    def where(self, index: int) -> str:
        return f"{self.source}:{self.numbers[index]}"

    def __iter__(self) -> Iterator[CaptureLine]:
        return iter(self.lines)

    def __len__(self) -> int:
        return len(self.lines)

    def __repr__(self) -> str:
        return f"Capture({self.source}, {len(self.lines)} lines)"  # never the lines


def parse_capture(lines: Iterable[str | bytes], source: str = "<capture>") -> Capture:
    capture = Capture(source=source)
    texts: list[str] = []
    not_text = 0  # the number of the first line that is not UTF-8
    for number, given in enumerate(lines, 1):
        try:
            text = given.decode("utf-8") if isinstance(given, bytes) else given
        except UnicodeDecodeError:
            not_text = number
            break
        text = text.strip()
        if not text or text.startswith("#"):
            continue
        texts.append(text)
        capture.numbers.append(number)
    parsed = None if not_text else _all_checked(texts)
    if parsed is not None:
        capture.lines = parsed
        return capture
    for number, text in zip(capture.numbers, texts, strict=True):  # what is wrong, and where
        line = _checked(text)
        if isinstance(line, str):
            raise CaptureError(f"{source}:{number}: {line}")
        capture.lines.append(line)
    if not_text:
        raise CaptureError(f"{source}:{not_text}: not UTF-8 text")
    return capture


def _all_checked(texts: list[str]) -> list[CaptureLine] | None:
    """Every line at once (two decoder calls, not two a line), or None if any line is
    wrong: the line by line path then says which and why.

    One value a line is certain: when every line starts with `{` and ends with `}`,
    those are structural (a JSON string cannot hold a raw line break), and `}` then
    `{` with only a line break between is valid nowhere inside a value, so a count of
    values equal to the count of lines is one value on each.
    """
    if not all(t[0] == "{" and t[-1] == "}" for t in texts):
        return None
    data = "\n".join(texts).encode()
    try:
        raws = _raw_lines.decode_lines(data)
        lines = _decoder.decode_lines(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if len(raws) != len(texts) or len(lines) != len(texts):
        return None
    for raw, line in zip(raws, lines, strict=True):
        if raw.keys() - _FIELDS[str(raw["type"])] or _line_problem(line, raw):
            return None
    return lines


def _checked(text: str) -> CaptureLine | str:
    """The line, or why it is not a capture line."""
    try:
        raw = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        return f"not JSON ({exc})"
    if not isinstance(raw, dict):
        return "not a JSON object"
    tag = raw.get("type")
    if tag not in _FIELDS:
        return f"type {tag!r} is not one of {', '.join(_FIELDS)}"
    unknown = sorted(set(raw) - _FIELDS[tag])
    if unknown:
        return f"unknown field(s) {', '.join(unknown)} in a {tag} line"
    try:
        line = _decoder.decode(text)
    except msgspec.ValidationError as exc:
        return str(exc)
    return _line_problem(line, raw) or line


def _line_problem(line: CaptureLine, raw: dict[str, object]) -> str:
    if isinstance(line, RestartLine):
        missed = raw.get("missed")
        for i, entry in enumerate(missed if isinstance(missed, list) else []):
            if isinstance(entry, dict):
                extra = sorted(set(entry) - _FIELDS.get(str(entry.get("type")), set(entry)))
                if extra:
                    return f"missed[{i}]: unknown field(s) {', '.join(extra)}"
        for i, report in enumerate(line.missed):
            if problem := report_problem(report):
                return f"missed[{i}]: {problem}"
        return ""
    if isinstance(line, SubmitLine):
        return _submit_problem(line)
    if isinstance(line, CancelLine):
        return _id_problem(line.client_order_id)
    return report_problem(line)


def _id_problem(client_order_id: str) -> str:
    try:
        check_client_order_id(client_order_id)
    except InvalidOrderError as exc:
        return str(exc)
    return ""


def _submit_problem(line: SubmitLine) -> str:
    request = line.as_request()
    try:
        validate_request(
            request, _anything(line.symbol), account="", client_order_id=line.client_order_id,
            ts_ns=0,
        )  # fmt: skip
    except (InvalidOrderError, ValueError) as exc:
        return str(exc)
    return number_problem(line.quantity, "quantity", positive=True)


@functools.lru_cache(maxsize=1024)
def _anything(symbol: str) -> InstrumentRegistry:
    """An instrument that takes any size and price: captures carry no reference data."""
    return InstrumentRegistry([Instrument(symbol, tick_size=_ANY, lot_size=_ANY, min_qty=_ANY)])


def read_capture(path: Path) -> Capture:
    with path.open("rb") as handle:
        return parse_capture(handle, str(path))
