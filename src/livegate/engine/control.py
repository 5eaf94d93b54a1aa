"""Commands for a gateway from outside its process: trading state and alert acks, from the CLI.

Nothing outside the gateway ever writes to its journal (the gateway numbers
events in memory; a foreign row would collide). A command is a small JSON
file dropped atomically into the gateway's control folder; the gateway reads
it on its next resolver round, or at its next start, and journals the change
itself. Each command has an id, and the journal remembers applied ids, so a
command is applied once however often it is read.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import msgspec

from livegate.model.enums import TradingState

TRADING_STATE_FILE = "trading-state.json"


class TradingStateCommand(msgspec.Struct, frozen=True):
    state: TradingState
    who: str
    why: str
    command_id: str
    ts_ns: int


def write_trading_state_command(
    control_dir: Path, state: TradingState | str, who: str, why: str
) -> TradingStateCommand:
    if not who or not why:
        raise ValueError("a trading state change needs who and why")
    command = TradingStateCommand(
        TradingState(str(state).upper()), who, why, secrets.token_hex(8), time.time_ns()
    )
    _write_atomically(control_dir / TRADING_STATE_FILE, command)
    return command


def _write_atomically(target: Path, command: msgspec.Struct) -> None:
    atomic_write(target, msgspec.json.encode(command))


def atomic_write(target: Path, data: bytes) -> None:
    """Readers of `target` see the old content or the new, never half."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(target.suffix + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, target)


def read_trading_state_command(control_dir: Path) -> TradingStateCommand | None:
    path = control_dir / TRADING_STATE_FILE
    try:
        return msgspec.json.decode(path.read_bytes(), type=TradingStateCommand)
    except FileNotFoundError:
        return None


ALERT_ACK_PREFIX = "alert-ack-"


class AlertAckCommand(msgspec.Struct, frozen=True):
    key: str
    who: str
    why: str
    command_id: str
    ts_ns: int


def write_alert_ack_command(control_dir: Path, key: str, who: str, why: str) -> AlertAckCommand:
    if not who or not why:
        raise ValueError("acknowledging an alert needs who and why")
    command = AlertAckCommand(key, who, why, secrets.token_hex(8), time.time_ns())
    _write_atomically(control_dir / f"{ALERT_ACK_PREFIX}{key}.json", command)
    return command


def read_alert_ack_commands(control_dir: Path) -> list[AlertAckCommand]:
    return [
        msgspec.json.decode(path.read_bytes(), type=AlertAckCommand)
        for path in sorted(control_dir.glob(f"{ALERT_ACK_PREFIX}*.json"))
    ]
