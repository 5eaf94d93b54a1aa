"""Archived trading days: out of the live journal, still its history.

Every reader sees the same journal before and after `livegate archive`: a full
replay, a trace, the history of a kind; a start from the checkpoint needs no
archive, and one without a usable checkpoint reads them; a missing archive is
named, never a silently shorter history.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from livegate.cli.main import app
from livegate.engine.config import GatewayConfig
from livegate.engine.order_book import OrderBook
from livegate.journal.sqlite import SQLiteStore, events_of_kinds
from livegate.model import OrderStatus
from livegate.model.errors import JournalError

from .helpers import INSTRUMENTS, filled_orders, scripted_gateway
from .test_checkpoints import _state

D = Decimal
DAY_NS = 86_400 * 10**9
runner = CliRunner()


def _trading_days(journal: Path, sessions: list[tuple[list[str], bool]]) -> None:
    """Sessions on consecutive past days, the last one yesterday: each session's batches
    are moved back to its day (the store stamps a batch with the time it commits)."""
    for n, (coids, crash) in enumerate(sessions):
        done = _last_seq(journal)
        asyncio.run(
            filled_orders(
                journal,
                coids,
                stop=not crash,
                checkpoint_each=True,  # so a crash leaves only what follows the last one
                left_in_flight=coids[0] + "-x" if crash else None,
            )
        )
        with sqlite3.connect(journal) as conn:
            back = (len(sessions) - n) * DAY_NS
            conn.execute("UPDATE batches SET ts_ns = ts_ns - ? WHERE first_seq > ?", (back, done))


def _last_seq(journal: Path) -> int:
    if not journal.exists():
        return 0
    with sqlite3.connect(journal) as conn:
        row = conn.execute("SELECT coalesce(max(first_seq + size - 1), 0) FROM batches")
        return int(row.fetchone()[0])


def _history(journal: Path) -> list[tuple[int, str]]:
    store = SQLiteStore(journal, read_only=True)
    store.open()
    try:
        return [(r.seq, _text(r.payload)) for r in store.read()]
    finally:
        store.close()


def _trace(journal: Path, client_order_id: str) -> list[tuple[object, ...]]:
    store = SQLiteStore(journal, read_only=True)
    store.open()
    try:
        return [(*r[:4], _text(r.payload)) for r in store.read_order(client_order_id)]
    finally:
        store.close()


def _bytes(journal: Path) -> int:
    return sum(p.stat().st_size for p in journal.parent.glob(journal.name + "*") if p.is_file())


def _text(payload: bytes | str) -> str:
    return payload.decode() if isinstance(payload, bytes) else payload


def _book_of(journal: Path, full: bool, compare: bool = True) -> OrderBook:
    """The book a gateway starts with: from its checkpoint, or (`full`) with the
    checkpoints dropped, by replaying everything; `compare`: checked to be the book a
    full replay of the journal (archives and all) builds."""
    if full:
        with sqlite3.connect(journal) as conn:
            conn.execute("DELETE FROM checkpoints")

    async def start() -> OrderBook:
        gateway, _ = scripted_gateway(SQLiteStore(journal), GatewayConfig(heartbeat_interval=None))
        await gateway.start()
        if compare:
            replayed = OrderBook(INSTRUMENTS)
            for _, event in gateway.journal.replay():
                replayed.apply(event)
            assert _state(gateway.book) == _state(replayed)
        await gateway.stop()
        return gateway.book

    return asyncio.run(start())


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


def _archive(folder: Path, before: str) -> str:
    result = runner.invoke(app, ["archive", "--dir", str(folder), "--before", before])
    assert result.exit_code == 0, result.output
    return result.output


def test_archived_days_leave_the_live_journal_and_every_reader_still_sees_them(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "journal.sqlite"
    _trading_days(journal, [(["a0", "a1"], False), (["b0", "b1"], False), (["c0"], False)])
    history = _history(journal)
    alerts = events_of_kinds(journal, "intent", "trading_state")
    traces = {c: _trace(journal, c) for c in ("a0", "a1", "b1", "c0")}
    size = _bytes(journal)

    two_days_ago = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    shown = _archive(tmp_path, two_days_ago)  # the first two days; yesterday stays
    files = sorted((tmp_path / "archive").iterdir())
    assert len(files) == 2 and "2 " not in shown.splitlines()[-1][:2]
    assert all(f.name in shown for f in files)
    with sqlite3.connect(journal) as conn:
        first = conn.execute("SELECT min(first_seq) FROM batches").fetchone()[0]
    assert first > 1 and _bytes(journal) < size

    assert _history(journal) == history
    assert events_of_kinds(journal, "intent", "trading_state") == alerts
    assert {c: _trace(journal, c) for c in traces} == traces  # through the archives' index
    assert all(len(t) >= 3 for t in traces.values())
    traced = runner.invoke(app, ["trace", "a0", "--dir", str(tmp_path)])
    assert traced.exit_code == 0 and "BUY 10 AAPL LIMIT @ 20" in traced.output
    listed = runner.invoke(app, ["archive", "--dir", str(tmp_path)])
    assert listed.exit_code == 0 and listed.output.count("yes") == 2

    # A start reads the checkpoint and what follows; without one, the archives too.
    assert _book_of(journal, full=False).orders["a0"].status is OrderStatus.FILLED
    assert _book_of(journal, full=True).orders["a0"].status is OrderStatus.FILLED
    assert _history(journal)[: len(history)] == history


def test_everything_archived_the_journal_goes_on_from_the_archives_last_seq(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "journal.sqlite"
    _trading_days(journal, [(["a0"], False), (["b0"], False)])
    history = _history(journal)
    _archive(tmp_path, _today())
    assert _last_seq(journal) == 0  # no batch left in the live file
    book = _book_of(journal, full=False)
    assert book.orders["b0"].status is OrderStatus.FILLED
    after = _history(journal)
    assert after[: len(history)] == history
    assert [seq for seq, _ in after] == list(range(1, len(after) + 1))


def test_never_past_the_newest_checkpoint(tmp_path: Path) -> None:
    """A crash leaves events after the last checkpoint: they stay live, whatever the day."""
    journal = tmp_path / "journal.sqlite"
    _trading_days(journal, [(["a0", "a1"], True)])
    store = SQLiteStore(journal, read_only=True)
    store.open()
    checkpoint = store.last_checkpoint()
    last = store.last_seq()
    store.close()
    assert checkpoint is not None and checkpoint[0] < last
    _archive(tmp_path, _today())
    with sqlite3.connect(journal) as conn:
        first = conn.execute("SELECT min(first_seq) FROM batches").fetchone()[0]
    assert first is not None and first <= checkpoint[0] + 1 and _last_seq(journal) == last
    assert _book_of(journal, full=False).orders["a1"].status is OrderStatus.FILLED


def test_a_missing_archive_is_named_and_a_start_from_the_checkpoint_needs_none(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "journal.sqlite"
    _trading_days(journal, [(["a0"], False), (["b0"], False)])
    two_days_ago = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    _archive(tmp_path, two_days_ago)
    (archived,) = (tmp_path / "archive").iterdir()
    archived.rename(tmp_path / "elsewhere.sqlite")
    traced = runner.invoke(app, ["trace", "a0", "--dir", str(tmp_path)])
    assert traced.exit_code == 2 and archived.name in traced.output and "missing" in traced.output
    listed = runner.invoke(app, ["archive", "--dir", str(tmp_path)])
    assert "MISSING" in listed.output
    assert _book_of(journal, False, compare=False).orders["b0"].status is OrderStatus.FILLED
    with pytest.raises(JournalError, match=archived.name):
        _book_of(journal, full=True)
    # Another file in its place is refused too.
    shutil.copy(journal, archived)
    wrong = runner.invoke(app, ["trace", "a0", "--dir", str(tmp_path)])
    assert wrong.exit_code == 2 and "instead: not this journal's file" in wrong.output
    listed = runner.invoke(app, ["archive", "--dir", str(tmp_path)])
    assert "UNREADABLE: not this journal's file" in listed.output
    (tmp_path / "elsewhere.sqlite").rename(archived)
    _book_of(journal, full=True)  # with the file back, the full replay starts


def test_refused_while_a_gateway_runs_without_a_checkpoint_and_for_bad_input(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "journal.sqlite"
    store = SQLiteStore(journal)
    store.open()  # a running gateway holds the writer's lock
    held = runner.invoke(app, ["archive", "--dir", str(tmp_path), "--before", _today()])
    assert held.exit_code == 2 and "stop it first" in held.output
    store.close()
    none = runner.invoke(app, ["archive", "--dir", str(tmp_path), "--before", _today()])
    assert none.exit_code == 2 and "no checkpoint" in none.output
    bad = runner.invoke(app, ["archive", "--dir", str(tmp_path), "--before", "yesterday"])
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output
    pg = tmp_path / "pg"
    pg.mkdir()
    (pg / "journal.postgres.json").write_text('{"journal": "postgresql://x/y", "account": "a"}')
    refused = runner.invoke(app, ["archive", "--dir", str(pg), "--before", _today()])
    assert refused.exit_code == 2 and "PostgreSQL" in refused.output


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sessions=st.lists(st.tuples(st.integers(1, 3), st.booleans()), min_size=1, max_size=4),
    cut=st.integers(0, 5),
    full=st.booleans(),
)
def test_any_archive_cut_keeps_the_history_and_the_start_exact(
    sessions: list[tuple[int, bool]], cut: int, full: bool
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        journal = Path(folder) / "journal.sqlite"
        days = [
            ([f"d{n}o{k}" for k in range(count)], crash)
            for n, (count, crash) in enumerate(sessions)
        ]
        _trading_days(journal, days)
        history = _history(journal)
        before = (datetime.now(UTC) - timedelta(days=cut)).date().isoformat()
        _archive(Path(folder), before)
        assert _history(journal) == history
        book = _book_of(journal, full)
        filled = [c for coids, crash in days for c in coids]
        assert all(book.orders[c].status is OrderStatus.FILLED for c in filled)


def test_a_profile_archives_old_days_at_each_start_and_never_stops_one(tmp_path: Path) -> None:
    from livegate.ops.profiles import ProfileError, load_profiles
    from livegate.ops.wiring import build_store

    data = tmp_path / "svc"
    data.mkdir()
    _trading_days(data / "journal.sqlite", [(["a0"], False), (["b0"], False), (["c0"], False)])
    history = _history(data / "journal.sqlite")
    config = tmp_path / "livegate.toml"
    config.write_text(
        '[profiles.paper]\nenvironment = "paper"\nbroker = "paper"\ndata_dir = "svc"\n'
        "archive_after_days = 2\n"
    )
    profile = load_profiles(config)["paper"]
    profile.data_dir = str(data)
    store = build_store(profile)
    store.open()  # what a gateway's start does first
    store.close()
    # Three days back, two back, yesterday: only the first is older than two days.
    (archived,) = (data / "archive").iterdir()
    assert "journal." in archived.name and _history(data / "journal.sqlite") == history
    store = build_store(profile)
    store.open()  # the next start: nothing more is old enough
    store.close()
    assert len(list((data / "archive").iterdir())) == 1

    # A journal with no checkpoint yet starts as it is.
    bare = tmp_path / "bare"
    bare.mkdir()
    profile.data_dir = str(bare)
    store = build_store(profile)
    store.open()
    store.close()
    assert not (bare / "archive").exists()

    config.write_text(
        '[profiles.pg]\nenvironment = "paper"\nbroker = "paper"\ndata_dir = "svc"\n'
        'journal = "postgresql://u@h:5432/db"\narchive_after_days = 2\n'
    )
    with pytest.raises(ProfileError, match="archive_after_days is for the SQLite journal"):
        load_profiles(config)
    config.write_text(
        '[profiles.x]\nenvironment = "paper"\nbroker = "paper"\ndata_dir = "svc"\n'
        "archive_after_days = -1\n"
    )
    with pytest.raises(ProfileError, match="archive_after_days"):
        load_profiles(config)
