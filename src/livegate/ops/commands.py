"""Commands to a running gateway and the wait for its word: for the CLI and the console.

A command is a file in the data folder's control folder (engine/control.py);
the gateway journals what it applied with the command's id. "Sent" is never
reported as "done": a caller learns the journal seq where the gateway applied
it, or that no gateway confirmed within the wait (the command stays queued).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from livegate.journal.store import Store

JOURNAL = "journal.sqlite"


@dataclass(frozen=True)
class Sent:
    command_id: str
    seq: int | None  # where the gateway journaled it; None: not confirmed (still queued)
    running: bool  # a gateway held the journal when the wait began


def send_and_wait(directory: Path, kind: str, send: Callable[[], str], wait: float) -> Sent:
    """Leave a command (`send` writes it and returns its id) and wait until the gateway
    journals an event of `kind` carrying that id (SQLite or PostgreSQL alike)."""
    from livegate.journal.locate import open_reader, writer_running

    journal = directory / JOURNAL
    store = open_reader(journal)
    try:
        before = store.last_seq()
        command_id = send()
        running = writer_running(journal)
        seq = _poll(store, before, kind, command_id, wait) if wait > 0 and running else None
    finally:
        store.close()
    return Sent(command_id, seq, running)


def _poll(store: Store, after_seq: int, kind: str, command_id: str, wait: float) -> int | None:
    """Only what was journaled after the command was left is looked at."""
    import msgspec

    deadline = time.monotonic() + wait
    while True:
        for record in store.read(after_seq):
            after_seq = record.seq
            if record.kind == kind:
                fields = msgspec.json.decode(record.payload)
                if fields.get("command_id") == command_id:
                    return record.seq
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.1)


def ask(directory: Path, op: str, wait: float, **fields: object) -> dict[str, Any] | None:
    """A request the running service answers (reconciliation, a diff, a fallback): its
    answer, or None when none came within `wait` (the request is then withdrawn)."""
    import msgspec

    from livegate.engine.control import RECON_PREFIX, take_recon_answer, write_recon_command

    control = directory / "control"
    command = write_recon_command(control, op, **fields)
    deadline = time.monotonic() + wait
    while (raw := take_recon_answer(control, command.command_id)) is None:
        if time.monotonic() >= deadline:
            (control / f"{RECON_PREFIX}{command.command_id}.json").unlink(missing_ok=True)
            return None
        time.sleep(0.1)
    answer: dict[str, Any] = msgspec.json.decode(raw)
    return answer
