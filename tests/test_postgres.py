"""Account leases with fencing on the PostgreSQL journal: one writer per account, a
takeover refuses the old writer's next batch, a paused holder stops before its lease
could have expired, and a gateway that lost its lease sends nothing more."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from livegate.journal import Batch
from livegate.journal.lease import Lease, LeaseLostError
from livegate.model import JournalError, OrderRequest
from livegate.model.events import Anomaly
from livegate.ops.profiles import ProfileError, load_profiles
from tests import pg
from tests.helpers import scripted_gateway


def batch(first: int, *details: str) -> Batch:
    from livegate.journal.journal import encode_event

    rows = [encode_event(Anomaly("TEST", None, d, 0)) for d in details]
    return Batch(first, len(rows), b"[" + b",".join(rows) + b"]")


def test_a_takeover_fences_the_old_writer_even_when_its_own_clock_says_it_still_holds() -> None:
    account = pg.new_account()
    old = pg.held_lease(account, ttl=0.5)
    old_store = pg.writer(account, old)
    old_store.open()
    old_store.write_batch(batch(1, "before"))
    time.sleep(0.6)  # paused: not renewed, the lease expires in the database's time
    new = Lease(pg.dsn(), account, ttl=5.0)
    new.connect()
    assert new.try_acquire() and new.epoch == old.epoch + 1
    new_store = pg.writer(account, new)
    new_store.open()
    new_store.write_batch(batch(2, "new active"))
    old._valid_until = time.monotonic() + 60  # its clock lies: only the epoch check is left
    with pytest.raises(LeaseLostError, match="passed to another gateway"):
        old_store.write_batch(batch(3, "old writer after the takeover"))
    assert not old.renew() and old.lost
    reader = pg.reader(account)
    reader.open()
    assert [(r.seq, r.kind) for r in reader.read()] == [(1, "anomaly"), (2, "anomaly")]
    for handle in (old_store, new_store, reader):
        handle.close()
    old.close()
    new.close()


def test_a_held_lease_is_not_taken_and_a_released_one_is_taken_at_once() -> None:
    account = pg.new_account()
    first = pg.held_lease(account, ttl=30)
    second = Lease(pg.dsn(), account, ttl=30)
    second.connect()
    assert not second.try_acquire()
    holder = second.who()
    assert holder is not None and holder[0] == first.holder and holder[1] == first.epoch
    first.release()  # a clean stop
    assert second.try_acquire() and second.epoch == first.epoch + 1
    first.close()
    second.close()


def test_a_holder_paused_past_its_lease_stops_before_the_lease_could_expire() -> None:
    account = pg.new_account()
    lease = pg.held_lease(account, ttl=0.4)
    store = pg.writer(account, lease)
    store.open()
    assert lease.valid()
    time.sleep(0.35)  # past ttl * (1 - margin): nobody took it, but it might have
    with pytest.raises(LeaseLostError, match="may have expired"):
        store.write_batch(batch(1, "too late"))
    reader = pg.reader(account)
    reader.open()
    assert list(reader.read()) == []
    store.close()
    reader.close()
    lease.close()


def test_a_gateway_that_lost_its_lease_sends_nothing_more_and_stops_journaling() -> None:
    async def run() -> None:
        account = pg.new_account()
        lease = pg.held_lease(account, ttl=5.0)
        gateway, adapter = scripted_gateway(pg.writer(account, lease))
        await gateway.start()
        await gateway.submit_order(OrderRequest(symbol="AAPL", side="BUY", quantity=1, price=1))
        assert sum(adapter.placed.values()) == 1
        lease._valid_until = 0.0  # it paused: its lease may have lapsed
        with pytest.raises(JournalError, match="lease"):
            await gateway.submit_order(OrderRequest(symbol="AAPL", side="BUY", quantity=1, price=1))
        assert sum(adapter.placed.values()) == 1  # nothing sent after the lease could have lapsed
        assert gateway.journal.failed is not None
        await gateway.stop()
        lease.close()

    asyncio.run(run())


def test_a_profile_names_its_journal_without_a_password(tmp_path: Path) -> None:
    def profile(journal: str) -> Path:
        path = tmp_path / "profiles.toml"
        path.write_text(
            '[profiles.p]\nenvironment = "paper"\nbroker = "paper"\ndata_dir = "d"\n'
            f'journal = "{journal}"\njournal_password = "env:LG_PG"\n'
        )
        return path

    ok = load_profiles(profile("postgresql://livegate@db.example:5432/books"))["p"]
    assert ok.journal.startswith("postgresql://") and ok.lease_ttl == 5.0
    with pytest.raises(ProfileError, match="has a password in it"):
        load_profiles(profile("postgresql://livegate:hunter2@db.example/books"))
    with pytest.raises(ProfileError, match="must be postgresql://"):
        load_profiles(profile("mysql://db.example/books"))


def test_operator_commands_work_on_a_data_folder_whose_journal_is_in_postgresql(
    tmp_path: Path,
) -> None:
    import functools

    from tests.test_release_cli import livegate as run
    from tests.test_release_cli import serve, stop

    account = pg.new_account()
    (tmp_path / "profiles.toml").write_text(
        '[profiles.paper]\nenvironment = "paper"\nbroker = "paper"\ndata_dir = "svc"\n'
        f'account = "{account}"\njournal = "{pg.dsn()}"\nlease_ttl = 2.0\n'
    )
    livegate = functools.partial(run, cwd=tmp_path)
    service = serve(tmp_path, "--demo", "20")  # the banner read: it is ready
    try:
        time.sleep(1.0)
        assert not (tmp_path / "svc" / "journal.sqlite").exists()  # no second journal
        orders = livegate("orders", "--dir", "svc", "--limit", "100")
        assert orders.returncode == 0, orders.stderr
        assert orders.stdout.startswith("20 orders in svc")
        coid = next(line.split("│")[1].strip() for line in orders.stdout.splitlines()
                    if "│ LG" in line)  # fmt: skip
        trace = livegate("trace", coid, "--dir", "svc")
        assert trace.returncode == 0 and "intent" in trace.stdout, trace.stderr
        halted = livegate("trading-state", "HALTED", "--dir", "svc", "--who", "ops", "--why", "t")
        assert halted.returncode == 0, halted.stderr
        assert "applied by the gateway (journal seq" in halted.stdout
        time.sleep(1.5)  # the status file is rewritten every second
        status = livegate("status", "--dir", "svc")
        assert "│ role" in status.stdout and "active" in status.stdout, status.stdout
        assert "HALTED" in status.stdout, status.stdout
        offline = livegate("recon", "--dir", "svc")
        assert offline.returncode == 0, offline.stderr  # answered by the running gateway
    finally:
        stop(service)
    queued = livegate("trading-state", "ACTIVE", "--dir", "svc", "--who", "ops", "--why", "t")
    assert queued.returncode == 3 and "no gateway is running" in queued.stderr
    shown = livegate("trading-state", "--dir", "svc")
    assert "trading state: HALTED" in shown.stdout and "pending: ACTIVE" in shown.stdout
    stopped = livegate("recon", "--dir", "svc")
    assert stopped.returncode == 2 and "PostgreSQL journal is written only" in stopped.stderr


def test_checkpoints_and_retired_orders_are_kept_per_account_and_fenced_by_the_lease() -> None:
    from livegate.journal.store import Retired

    account = pg.new_account()
    old = pg.held_lease(account, ttl=0.5)
    store = pg.writer(account, old)
    store.open()
    store.write_batch(batch(1, "one"))
    for seq in (1, 1, 2, 3):  # the same seq again replaces; the newest two are kept
        rows = [Retired(f"c{seq}", f"b{seq}", b'{"seq": %d}' % seq)]
        store.write_checkpoint(seq, b"state %d" % seq, rows)
    assert store.last_checkpoint() == (3, b"state 3")
    assert store.retired_order("c2", None) == b'{"seq": 2}'
    assert store.retired_order(None, "b3") == b'{"seq": 3}'
    assert store.retired_order("nope", "b1") == b'{"seq": 1}'  # by broker id when not by client
    assert store.retired_order("nope", None) is None
    other = pg.reader(pg.new_account())
    other.open()
    assert other.last_checkpoint() is None and other.retired_order("c1", "b1") is None
    time.sleep(0.6)  # the lease lapses and passes on: the old writer leaves no checkpoint
    new = Lease(pg.dsn(), account, ttl=5.0)
    new.connect()
    assert new.try_acquire()
    old._valid_until = time.monotonic() + 60  # its clock lies: only the epoch check is left
    with pytest.raises(LeaseLostError):
        store.write_checkpoint(4, b"state 4", [Retired("c4", None, b"{}")])
    reader = pg.reader(account)
    reader.open()
    assert reader.last_checkpoint() == (3, b"state 3") and reader.retired_order("c4", None) is None
    for handle in (store, other, reader):
        handle.close()
    old.close()
    new.close()
