"""Commands to a running gateway and the wait for its word: for the CLI and the console.

A command is a file in the data folder's control folder (engine/control.py);
the gateway journals what it applied with the command's id. "Sent" is never
reported as "done": a caller learns the journal seq where the gateway applied
it, or that no gateway confirmed within the wait (the command stays queued).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

JOURNAL = "journal.sqlite"


@dataclass(frozen=True)
class Sent:
    command_id: str
    seq: int | None  # where the gateway journaled it; None: not confirmed (still queued)
    running: bool  # a gateway held the journal when the wait began


def send_and_wait(directory: Path, kind: str, send: Callable[[], str], wait: float) -> Sent:
    """Leave a command (`send` writes it and returns its id) and wait until the gateway
    journals an event of `kind` carrying that id."""
    from livegate.journal.lock import is_locked
    from livegate.journal.sqlite import open_read_only

    journal = directory / JOURNAL
    conn = open_read_only(journal)
    try:
        before = conn.execute("SELECT coalesce(max(first_seq), 0) FROM batches").fetchone()[0]
        command_id = send()
        running = is_locked(journal)
        seq = _poll(conn, before, kind, command_id, wait) if wait > 0 and running else None
    finally:
        conn.close()
    return Sent(command_id, seq, running)


_APPLIED = (
    "SELECT b.first_seq + j.key FROM batches AS b, json_each(b.events) AS j"
    " WHERE b.first_seq >= ? AND j.value ->> 'type' = ? AND j.value ->> 'command_id' = ?"
    " ORDER BY 1 LIMIT 1"
)


def _poll(
    conn: sqlite3.Connection, after_batch: int, kind: str, command_id: str, wait: float
) -> int | None:
    """Only batches from the last one before the command on are looked at."""
    deadline = time.monotonic() + wait
    while True:
        row = conn.execute(_APPLIED, (after_batch, kind, command_id)).fetchone()
        if row is not None:
            return int(row[0])
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
