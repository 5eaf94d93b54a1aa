"""Where a data folder's journal is: SQLite beside it, or PostgreSQL named by a pointer.

A gateway on a PostgreSQL journal keeps its data folder (control commands,
status, logs) and writes `journal.postgres.json` there: the database URL and
the account, never a password. Operator commands and the console find the
journal through it and read it as libpq clients do (PGPASSWORD, ~/.pgpass, or
a rule for a read-only role), so the kill switch, traces and the console work
the same for both stores.
"""

from __future__ import annotations

import json
from pathlib import Path

from livegate.journal.lock import is_locked
from livegate.journal.sqlite import SQLiteStore
from livegate.journal.store import Store
from livegate.model.errors import JournalError

POINTER = "journal.postgres.json"


def pointer_path(journal: Path) -> Path:
    return journal.with_name(POINTER)


def write_pointer(journal: Path, url: str, account: str) -> None:
    from livegate.engine.control import atomic_write

    data = {"journal": url, "account": account}
    atomic_write(pointer_path(journal), json.dumps(data, indent=2).encode())


def postgres_of(journal: Path) -> tuple[str, str] | None:
    """(url, account) when this journal is in PostgreSQL; None for SQLite."""
    if journal.is_file():
        return None
    try:
        data = json.loads(pointer_path(journal).read_text())
        return str(data["journal"]), str(data["account"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise JournalError(f"{pointer_path(journal)}: not a journal pointer ({exc})") from None


def exists(journal: Path) -> bool:
    return journal.is_file() or pointer_path(journal).is_file()


def open_reader(journal: Path) -> Store:
    """The journal, opened read-only (it never writes, never takes the writer's lock)."""
    located = postgres_of(journal)
    store: Store
    if located is None:
        store = SQLiteStore(journal, read_only=True)
    else:
        from livegate.journal.postgres import PostgresStore

        store = PostgresStore(located[0], located[1], None)
    store.open()
    return store


def writer_running(journal: Path) -> bool:
    """Whether a gateway writes this journal now: the SQLite writer's lock is held, or the
    account's lease in PostgreSQL is held and not lapsed."""
    located = postgres_of(journal)
    if located is None:
        return is_locked(journal)
    import psycopg

    try:
        with psycopg.connect(located[0], connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT expires_at > now() FROM livegate_leases WHERE account = %s",
                (located[1],),
            ).fetchone()
    except psycopg.Error as exc:
        raise JournalError(f"PostgreSQL journal: {' '.join(str(exc).split())}") from None
    return bool(row and row[0])
