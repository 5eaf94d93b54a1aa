"""Failover: two `livegate serve` processes on one account against the sim broker, the
journal in PostgreSQL. The active one is SIGSTOPped mid-stream; the standby takes over
(lease expiry plus recovery, printed); the old one, SIGCONTed, has its next write
refused and sends nothing more. No order is sent twice, no fill is lost or counted
twice, and the books equal the broker's."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from livegate.broker.sim import SimAdapter
from livegate.drills.children import spawn
from livegate.drills.sim_process import SimProcess
from livegate.engine.order_book import OrderBook
from livegate.journal.journal import decode_event
from livegate.journal.store import split_batch
from livegate.model import OrderIntent
from livegate.model.secret import Secret
from tests import pg

ROOT = Path(__file__).resolve().parent.parent
PROFILE = """\
[profiles.{name}]
environment = "sim"
broker = "sim"
port = {port}
api_key = "env:LG_FAILOVER_KEY"
account = "{account}"
data_dir = "{name}"
journal = "{dsn}"
lease_ttl = 2.0
"""


def journal_by_epoch(account: str) -> list[tuple[int, Any]]:
    """(epoch of the writer, event) for every journaled event, in journal order."""
    import psycopg

    with psycopg.connect(pg.dsn()) as conn:
        rows = conn.execute(
            "SELECT first_seq, ts_ns, epoch, events FROM livegate_batches WHERE account = %s"
            " ORDER BY first_seq",
            (account,),
        ).fetchall()
    return [(epoch, decode_event(r.payload)) for first, ts, epoch, events in rows
            for r in split_batch(bytes(events), first, ts)]  # fmt: skip


def read_until(process: subprocess.Popen[str], prefix: str, timeout: float) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith(prefix):
            return line
        if not line and process.poll() is not None:
            break
    raise AssertionError(f"no line starting {prefix!r} within {timeout}s")


def test_a_paused_active_gateway_is_replaced_and_fenced_and_nothing_is_sent_twice(
    tmp_path: Path,
) -> None:
    dsn, account = pg.dsn(), pg.new_account()
    key = f"lg_sim_{secrets.token_hex(8)}"
    (tmp_path / "sim").mkdir()
    sim = SimProcess(tmp_path / "sim", key)
    sim.start()
    (tmp_path / "profiles.toml").write_text(
        PROFILE.format(name="a", port=sim.port, account=account, dsn=dsn)
        + PROFILE.format(name="b", port=sim.port, account=account, dsn=dsn)
    )
    env = {**os.environ, "COLUMNS": "40", "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}",
           "LG_FAILOVER_KEY": key, "LIVEGATE_TEST_SIM_CONTROL": str(sim.control_port)}  # fmt: skip

    def serve(name: str) -> subprocess.Popen[str]:
        process = spawn(
            [sys.executable, "-m", "livegate", "serve", "--config", "profiles.toml", "--profile",
             name, "--metrics-port", "0", "--strategy", "tests.release_strategy:throughout"],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
            stderr=(tmp_path / f"{name}.log").open("w"),
        )  # fmt: skip
        return process  # type: ignore[return-value]

    def stats(ids: bool = False) -> dict[str, Any]:
        found: dict[str, Any] = asyncio.run(sim.control("stats", ids=ids))
        return found

    def status(name: str) -> dict[str, Any]:
        found: dict[str, Any] = json.loads((tmp_path / name / "service.json").read_text())
        return found

    a = subprocess.Popen(["true"])
    b = subprocess.Popen(["true"])
    try:
        a = serve("a")
        a.stdout = _text(a)
        read_until(a, "ready:", 60)
        b = serve("b")
        b.stdout = _text(b)
        assert "held by" in read_until(b, "standby:", 60)
        time.sleep(1.5)
        assert stats()["places"] > 10  # orders flowing through a
        standby = subprocess.run(
            [sys.executable, "-m", "livegate", "status", "--dir", "b"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert "standby" in standby.stdout and status("a")["lease_holder"] in standby.stdout
        assert status("a")["role"] == "active"

        paused = time.monotonic()
        a.send_signal(signal.SIGSTOP)
        took_over = read_until(b, "active: took over", 30)
        read_until(b, "ready:", 60)
        takeover = time.monotonic() - paused
        print(f"\ntakeover: {takeover:.2f} s from SIGSTOP to the standby's ready"
              f" (lease_ttl 2.0 s; {took_over.strip()})")  # fmt: skip
        time.sleep(1.5)
        before_resume = set(stats(ids=True)["placed_ids"])

        a.send_signal(signal.SIGCONT)
        time.sleep(2.5)  # the old one wakes: its lease is gone
        if a.poll() is None:  # still running: fenced, and paging (P0)
            old = status("a")
            assert old["role"] == "fenced" and old["lease_lost"], old
            assert old["open_alerts"].get("journal-failed") == "P0", old["open_alerts"]
        after = stats(ids=True)
        assert after["sent_twice"] == []
        b_status = status("b")
        assert b_status["role"] == "active" and b_status["ready"]
    finally:
        for process in (a, b):
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.terminate()
                process.wait(30)

    events = journal_by_epoch(account)
    epochs = sorted({epoch for epoch, _ in events})
    assert len(epochs) == 2, epochs  # a's, then b's: nothing in between, nothing after
    intents = {e.client_order_id: epoch for epoch, e in events if isinstance(e, OrderIntent)}
    placed = set(after["placed_ids"])
    assert placed <= set(intents), placed - set(intents)  # nothing sent that was not journaled
    sent_after_resume = placed - before_resume
    assert sent_after_resume, "b kept trading"
    assert {intents[c] for c in sent_after_resume} == {epochs[1]}  # all b's: a sent nothing

    book = OrderBook()
    for _, event in events:
        book.apply(event)

    async def broker_books() -> tuple[set[str], dict[str, Decimal]]:
        adapter = SimAdapter("127.0.0.1", sim.port, Secret(key), "sim")
        await adapter.connect()
        await adapter.authenticate()
        try:
            trades = {t.dedup_key() for t in await adapter.today_trades()}
            account_now = await adapter.account()
        finally:
            await adapter.close()
        return trades, {p.symbol: p.quantity for p in account_now.positions if p.quantity}

    try:
        broker_trades, broker_positions = asyncio.run(broker_books())
    finally:
        sim.stop()
    fills = [f.trade_id for f in book.fills]
    assert len(fills) == len(set(fills))  # no fill counted twice
    assert set(fills) == broker_trades  # none lost, none invented
    ours = {s: p.quantity for s, p in book.ledger.positions.items() if p.quantity}
    assert ours == broker_positions


def _text(process: subprocess.Popen[bytes]) -> Any:
    import io

    assert process.stdout is not None
    return io.TextIOWrapper(process.stdout, encoding="utf-8")
