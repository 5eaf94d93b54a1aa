"""`livegate archive`: trading days out of the live journal, history kept whole.

The one operator command that writes a journal, so it runs only with the
gateway stopped: it takes the writer's lock a running gateway holds, and is
refused while one runs. What it does and why it is safe: journal/archives.py.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from livegate.cli.datadir import DirOption, choose_dir, journal_of
from livegate.cli.output import console, fail, say

if TYPE_CHECKING:
    from livegate.journal.archives import ArchiveFile


def archive_command(
    directory: DirOption = None,
    before: Annotated[
        str | None,
        typer.Option(
            "--before",
            help="Archive the days before this UTC date (YYYY-MM-DD); leave out to list.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Move past trading days out of the live journal into archive files, or list them.

    Only days at or before the newest checkpoint leave (a start reads the
    checkpoint and what follows it); trace, the gate and every history still
    read them from DIR/archive. Stop the gateway first.
    """
    from livegate.journal.locate import postgres_of, writer_running

    directory = choose_dir(None, directory)
    journal = journal_of(directory)
    if postgres_of(journal) is not None:
        fail(
            f"{directory}: the journal is in PostgreSQL; keep its size with the database's own"
            " tools (archive is for the embedded SQLite journal)"
        )
    if before is None:
        _list(journal)
        return
    try:
        day = date.fromisoformat(before)
    except ValueError:
        fail(f"--before {before!r} is not a date: write YYYY-MM-DD")
    if writer_running(journal):
        fail(
            f"{directory}: a gateway is running there; stop it first (archive rewrites the journal)"
        )
    from livegate.journal.archives import archive_before
    from livegate.journal.sqlite import SQLiteStore

    store = SQLiteStore(journal)
    store.open()
    try:
        summary = archive_before(store, day)
    finally:
        store.close()
    if not summary.files:
        say(
            f"nothing to archive before {day}: the live journal's first events are later,"
            f" or after the newest checkpoint (seq {summary.checkpoint_seq})"
        )
        return
    for entry in summary.files:
        say(f"archived events {entry.first_seq}-{entry.last_seq} to {directory / entry.file}")
    say(
        f"{summary.events:,} events archived; live journal {summary.bytes_before / 1e6:,.1f} MB"
        f" -> {summary.bytes_after / 1e6:,.1f} MB (newest checkpoint: seq {summary.checkpoint_seq})"
    )


def _list(journal: Path) -> None:
    from rich.table import Table

    from livegate.journal.archives import manifest
    from livegate.journal.sqlite import open_read_only

    conn = open_read_only(journal)
    try:
        entries = manifest(conn)
    finally:
        conn.close()
    if not entries:
        say(f"no archived days: every event is in {journal}")
        return
    table = Table(title=f"Archived days of {journal}")
    for column in ("day (UTC)", "events", "file", "present"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        day = datetime.fromtimestamp(entry.first_ts_ns / 1e9, UTC).date().isoformat()
        present = _checked(journal, entry)
        table.add_row(day, f"{entry.first_seq}-{entry.last_seq}", entry.file, present)
    console.print(table)


def _checked(journal: Path, entry: ArchiveFile) -> str:
    """yes, MISSING, or what is wrong with the file: read as every reader reads it."""
    from livegate.journal.archives import open_archive
    from livegate.model.errors import JournalError

    if not (journal.parent / entry.file).is_file():
        return "MISSING"
    try:
        open_archive(journal, entry).close()
    except JournalError as exc:
        return f"UNREADABLE: {str(exc).rsplit(': ', 1)[-1]}"
    return "yes"
