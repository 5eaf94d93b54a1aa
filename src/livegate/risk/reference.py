"""Instrument reference data files, and the daily price limits they imply.

One file per environment, CSV or TOML, loaded at start and reloadable. A
bad row is refused with its file and line; a reload that fails leaves the
previous data in force.

CSV columns (header row; only symbol and tick_size required):
symbol, exchange, tick_size, lot_size, min_qty, max_qty, currency,
multiplier, prev_close, limit_up, limit_down, limit_pct, board

TOML: an array of tables `[[instrument]]` with the same keys.
"""

from __future__ import annotations

import csv
import tomllib
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import msgspec

from livegate.model.instrument import Instrument, InstrumentRegistry

_DECIMAL_FIELDS = (
    "tick_size",
    "lot_size",
    "min_qty",
    "max_qty",
    "multiplier",
    "prev_close",
    "limit_up",
    "limit_down",
    "limit_pct",
)

# China A-share daily limits by board, as a fraction of the previous close.
BOARD_LIMITS = {
    "main": Decimal("0.10"),
    "star": Decimal("0.20"),
    "chinext": Decimal("0.20"),
    "st": Decimal("0.05"),
    "bse": Decimal("0.30"),
}


class ReferenceDataError(ValueError):
    """A reference data file or row is invalid; names where."""


def board_of(instrument: Instrument) -> str:
    """The board an A-share trades on: given in the data, else from its code."""
    if instrument.board:
        return instrument.board
    code, _, market = instrument.symbol.partition(".")
    if market == "SH" and code.startswith("688"):
        return "star"
    if market == "SZ" and code.startswith(("300", "301")):
        return "chinext"
    if market == "BJ":
        return "bse"
    if market in ("SH", "SZ"):
        return "main"
    return ""


def daily_limits(instrument: Instrument) -> tuple[Decimal, Decimal] | None:
    """(limit_down, limit_up) for today, or None when the instrument has none.

    Given limits win; otherwise previous close +/- the percentage (the
    instrument's own, or its board's), rounded half up to the tick, as the
    exchanges publish them.
    """
    if instrument.limit_up is not None and instrument.limit_down is not None:
        return instrument.limit_down, instrument.limit_up
    if instrument.prev_close is None:
        return None
    pct = instrument.limit_pct
    if pct is None:
        pct = BOARD_LIMITS.get(board_of(instrument))
    if pct is None:
        return None
    tick = instrument.tick_size
    up = (instrument.prev_close * (1 + pct) / tick).quantize(Decimal(1), ROUND_HALF_UP) * tick
    down = (instrument.prev_close * (1 - pct) / tick).quantize(Decimal(1), ROUND_HALF_UP) * tick
    return down, up


def _instrument(row: dict[str, Any], where: str) -> Instrument:
    fields: dict[str, Any] = {}
    for key, value in row.items():
        if value is None or value == "":
            continue
        if key in _DECIMAL_FIELDS:
            if isinstance(value, float):
                raise ReferenceDataError(f"{where}: {key}={value!r}: write decimals as strings")
            try:
                fields[key] = Decimal(str(value))
            except InvalidOperation:
                raise ReferenceDataError(f"{where}: {key}={value!r} is not a number") from None
        else:
            fields[key] = str(value)
    try:
        return msgspec.convert(fields, Instrument)
    except (msgspec.ValidationError, ValueError) as exc:
        raise ReferenceDataError(f"{where}: {exc}") from None


def load_instruments(path: Path) -> list[Instrument]:
    if path.suffix == ".toml":
        with path.open("rb") as handle:
            try:
                data = tomllib.load(handle)
            except tomllib.TOMLDecodeError as exc:
                raise ReferenceDataError(f"{path}: {exc}") from None
        rows = data.get("instrument", [])
        found = [_instrument(row, f"{path}: instrument {i + 1}") for i, row in enumerate(rows)]
    elif path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            found = [_instrument(row, f"{path}:{reader.line_num}") for row in reader]
    else:
        raise ReferenceDataError(f"{path}: reference data must be .csv or .toml")
    symbols = [i.symbol for i in found]
    duplicated = {s for s in symbols if symbols.count(s) > 1}
    if duplicated:
        raise ReferenceDataError(f"{path}: symbols listed twice: {sorted(duplicated)}")
    return found


class ReferenceData:
    """The instruments in force, from a file; `reload()` swaps them all or none."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.registry = InstrumentRegistry(load_instruments(path))

    def reload(self) -> InstrumentRegistry:
        """Re-read the file into the same registry; on any error the old data stays."""
        self.registry.replace_all(load_instruments(self.path))
        return self.registry
