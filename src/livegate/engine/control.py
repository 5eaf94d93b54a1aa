"""Commands for a gateway from outside its process: trading state and alert acks, from the CLI.

Nothing outside the gateway ever writes to its journal (the gateway numbers
events in memory; a foreign row would collide). A command is a small JSON
file dropped atomically into the gateway's control folder; the gateway reads
it on its next resolver round, or at its next start, and journals the change
itself. Each command has an id, and the journal remembers applied ids, so a
command is applied once however often it is read.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from pathlib import Path
from typing import TypeVar

import msgspec

from livegate.model.enums import TradingState
from livegate.model.events import EvidenceRecorded

log = logging.getLogger("livegate.control")
T = TypeVar("T")
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


RECON_PREFIX = "recon-request-"
ANSWER_PREFIX = "recon-answer-"


class ReconCommand(msgspec.Struct, frozen=True, omit_defaults=True):
    """`livegate recon` / `diffs` for a running gateway: its own reconciler answers.

    op: "run" (reconcile now; `eod` writes the report to `out`), "ack" or
    "resolve" (a diff, with `action`, `who` and `why`), or "fallback" (to the
    venue in `action`, paper or live, with `who` and `why`).
    """

    op: str
    command_id: str
    ts_ns: int
    eod: bool = False
    out: str = ""
    diff_id: str = ""
    action: str = ""
    who: str = ""
    why: str = ""
    show_all: bool = False


def write_recon_command(control_dir: Path, op: str, **fields: object) -> ReconCommand:
    command = msgspec.convert(
        {"op": op, "command_id": secrets.token_hex(8), "ts_ns": time.time_ns(), **fields},
        ReconCommand,
    )
    _write_atomically(control_dir / f"{RECON_PREFIX}{command.command_id}.json", command)
    return command


def read_recon_commands(control_dir: Path) -> list[ReconCommand]:
    commands = []
    for path in sorted(control_dir.glob(f"{RECON_PREFIX}*.json")):
        try:
            commands.append(msgspec.json.decode(path.read_bytes(), type=ReconCommand))
        except (OSError, msgspec.DecodeError):
            continue  # half-written by hand, or taken meanwhile: not ours to guess
    return commands


def answer_recon_command(control_dir: Path, command: ReconCommand, answer: object) -> None:
    """The answer first, then the request goes: a reader never sees neither."""
    atomic_write(
        control_dir / f"{ANSWER_PREFIX}{command.command_id}.json", msgspec.json.encode(answer)
    )
    (control_dir / f"{RECON_PREFIX}{command.command_id}.json").unlink(missing_ok=True)


def take_recon_answer(control_dir: Path, command_id: str) -> bytes | None:
    path = control_dir / f"{ANSWER_PREFIX}{command_id}.json"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    path.unlink(missing_ok=True)
    return data


# -- release controls: the rollout stage, the kill switch, evidence from drills --------
STAGE_FILE = "rollout-stage.json"
SAFE_STOP_FILE = "safe-stop.json"
EVIDENCE_PREFIX = "evidence-"


class StageCommand(msgspec.Struct, frozen=True):
    stage: str
    who: str
    why: str
    command_id: str
    ts_ns: int


class SafeStopCommand(msgspec.Struct, frozen=True):
    who: str
    why: str
    flatten: bool
    command_id: str
    ts_ns: int  # when it was asked: the safe-stop's time counts from here


class EvidenceCommand(msgspec.Struct, frozen=True):
    """A verdict (a drill's, a certification's) for the gateway to journal."""

    kind: str
    name: str
    passed: bool
    millis: int
    config_id: str
    detail: str
    command_id: str
    ts_ns: int
    adapter: str = ""
    covers: tuple[str, ...] = ()


def write_stage_command(control_dir: Path, stage: str, who: str, why: str) -> StageCommand:
    if not stage or not who or not why:
        raise ValueError("a stage change needs the stage, who and why")
    command = StageCommand(stage, who, why, secrets.token_hex(8), time.time_ns())
    _write_atomically(control_dir / STAGE_FILE, command)
    return command


def write_safe_stop_command(
    control_dir: Path, who: str, why: str, flatten: bool
) -> SafeStopCommand:
    if not who or not why:
        raise ValueError("a safe-stop needs who and why")
    command = SafeStopCommand(who, why, flatten, secrets.token_hex(8), time.time_ns())
    _write_atomically(control_dir / SAFE_STOP_FILE, command)
    return command


def write_evidence_command(
    control_dir: Path,
    kind: str,
    name: str,
    passed: bool,
    millis: int,
    config_id: str,
    detail: str,
    adapter: str = "",
    covers: tuple[str, ...] = (),
) -> EvidenceCommand:
    command = EvidenceCommand(
        kind, name, passed, max(0, int(millis)), config_id, detail, secrets.token_hex(8),
        time.time_ns(), adapter, covers,
    )  # fmt: skip
    _write_atomically(control_dir / f"{EVIDENCE_PREFIX}{command.command_id}.json", command)
    return command


def evidence_event(command: EvidenceCommand) -> EvidenceRecorded:
    """The journal entry for a verdict: stamped when it was proven, not when picked up."""
    return EvidenceRecorded(
        command.kind, command.name, command.passed, command.millis, command.config_id,
        command.detail, command.ts_ns, command.command_id, command.adapter, command.covers,
    )  # fmt: skip


OPERATOR_PREFIX = "operator-"


class OperatorActionCommand(msgspec.Struct, frozen=True):
    action: str
    who: str
    why: str
    detail: str
    command_id: str
    ts_ns: int


def write_operator_action_command(
    control_dir: Path, action: str, who: str, why: str, detail: str
) -> OperatorActionCommand:
    if not who or not why:
        raise ValueError("an operator action needs who and why")
    command = OperatorActionCommand(action, who, why, detail, secrets.token_hex(8), time.time_ns())
    _write_atomically(control_dir / f"{OPERATOR_PREFIX}{command.command_id}.json", command)
    return command


def read_operator_action_commands(control_dir: Path) -> list[OperatorActionCommand]:
    return _read_all(control_dir, OPERATOR_PREFIX, OperatorActionCommand)


def remove_operator_action_command(control_dir: Path, command_id: str) -> None:
    (control_dir / f"{OPERATOR_PREFIX}{command_id}.json").unlink(missing_ok=True)


def read_stage_command(control_dir: Path) -> StageCommand | None:
    return _read_one(control_dir / STAGE_FILE, StageCommand)


def read_safe_stop_command(control_dir: Path) -> SafeStopCommand | None:
    return _read_one(control_dir / SAFE_STOP_FILE, SafeStopCommand)


def read_evidence_commands(control_dir: Path) -> list[EvidenceCommand]:
    return _read_all(control_dir, EVIDENCE_PREFIX, EvidenceCommand)


def _read_all(control_dir: Path, prefix: str, kind: type[T]) -> list[T]:
    """Every readable command file `prefix*.json`, in name order."""
    found = []
    for path in sorted(control_dir.glob(f"{prefix}*.json")):
        command = _read_one(path, kind)
        if command is not None:
            found.append(command)
    return found


def remove_evidence_command(control_dir: Path, command_id: str) -> None:
    (control_dir / f"{EVIDENCE_PREFIX}{command_id}.json").unlink(missing_ok=True)


def _read_one(path: Path, kind: type[T]) -> T | None:
    """A command file, or None when absent or not a command (never a crash of the resolver)."""
    try:
        return msgspec.json.decode(path.read_bytes(), type=kind)
    except FileNotFoundError:
        return None
    except (OSError, msgspec.DecodeError) as exc:
        log.error("control file %s ignored: %s", path, exc)
        return None
