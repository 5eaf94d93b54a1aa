"""Active or standby: a gateway on a PostgreSQL journal trades only under its account's lease.

`serve` takes the lease before the gateway starts. When another gateway holds
it, this one waits as a standby: it follows the journal (how far it has got,
in its status file, so `livegate status` shows who is active) and takes over
once the active one's lease lapses: a crash, a pause, a partition, or a clean
stop (which hands it over at once). Takeover is then lease expiry plus the
ordinary start: replay, then the recovery sync with the broker.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from livegate.engine.control import atomic_write
from livegate.journal.postgres import PostgresStore

STATUS_FILE = "service.json"  # the service's own status file, which a standby writes too


def lease_status(store: object) -> dict[str, Any]:
    """The status file's lease fields ({} for a journal without a lease)."""
    if not isinstance(store, PostgresStore) or store.lease is None:
        return {}
    lease = store.lease
    return {"role": "active" if lease.valid() else "fenced", "lease_epoch": lease.epoch,
            "lease_holder": lease.holder, "lease_lost": lease.lost or None}  # fmt: skip


def take_lease(
    store: PostgresStore, data_dir: Path, say: Callable[[str], None], poll: float | None = None
) -> float:
    """Hold the store's lease, waiting as a standby while another gateway holds it;
    the seconds waited (0 when it was free)."""
    lease = store.lease
    assert lease is not None
    lease.connect()
    if lease.try_acquire():
        return 0.0
    started = time.monotonic()
    follower = store.reader()
    follower.open()
    try:
        who = lease.who()
        holder, epoch = (who[0], who[1]) if who else ("nobody", 0)
        say(f"standby: account {store.account} is held by {holder} (epoch {epoch});"
            " taking over when its lease lapses")  # fmt: skip
        while True:
            _write_standby_status(data_dir, store.account, holder, epoch, follower.last_seq())
            time.sleep(poll if poll is not None else lease.ttl / 4)
            if lease.try_acquire():
                return time.monotonic() - started
            who = lease.who()
            if who is not None:
                holder, epoch = who[0], who[1]
    finally:
        follower.close()


def _write_standby_status(data_dir: Path, account: str, holder: str, epoch: int, seq: int) -> None:
    now = time.time_ns()
    status = {"pid": os.getpid(), "account": account, "running": True, "ready": False,
              "role": "standby", "active_holder": holder, "lease_epoch": epoch,
              "journal_seq": seq, "started_ns": now, "updated_ns": now}  # fmt: skip
    data_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(data_dir / STATUS_FILE, json.dumps(status, indent=2).encode())
