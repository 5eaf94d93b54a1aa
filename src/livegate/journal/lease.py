"""Account leases with fencing: at most one gateway drives an account's journal.

A lease row per account in PostgreSQL holds the holder, an epoch and an
expiry in the database's own time (so machines' clocks never disagree about
it). Taking an expired lease (or a free one) raises the epoch; every journal
batch is inserted by a statement that locks the lease row and checks the
writer's epoch, so a gateway whose lease passed to another can never journal
an intent again, and therefore never sends another order.

Locally the holder also stops before its lease could have expired: after each
renewal it knows a monotonic deadline (the renewal's start plus the TTL, less
a margin), and past it neither writes nor sends. A process paused by SIGSTOP,
a swap storm or a partition wakes up past that deadline and stops, even
before the database tells it that another gateway took over.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from typing import Any

from livegate.model.errors import JournalError

log = logging.getLogger("livegate.lease")

LEASE_SCHEMA = """
CREATE TABLE IF NOT EXISTS livegate_leases (
    account text PRIMARY KEY,
    holder text NOT NULL,
    epoch bigint NOT NULL,
    expires_at timestamptz NOT NULL,
    acquired_at timestamptz NOT NULL
);
"""
_ACQUIRE = """
INSERT INTO livegate_leases AS l (account, holder, epoch, expires_at, acquired_at)
VALUES (%(account)s, %(holder)s, 1, now() + %(ttl)s * interval '1 second', now())
ON CONFLICT (account) DO UPDATE
   SET holder = excluded.holder, epoch = l.epoch + 1,
       expires_at = excluded.expires_at, acquired_at = now()
 WHERE l.expires_at < now()
RETURNING epoch
"""
_RENEW = """
UPDATE livegate_leases SET expires_at = now() + %(ttl)s * interval '1 second'
 WHERE account = %(account)s AND holder = %(holder)s AND epoch = %(epoch)s
"""
_RELEASE = """
UPDATE livegate_leases SET expires_at = now() - interval '1 second'
 WHERE account = %(account)s AND holder = %(holder)s AND epoch = %(epoch)s
"""
_WHO = """
SELECT holder, epoch, extract(epoch FROM expires_at - now()) FROM livegate_leases
 WHERE account = %(account)s
"""


class LeaseLostError(JournalError):
    """This gateway no longer holds its account's lease: it must not write or send."""


def new_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Lease:
    """One account's lease as this process sees it; `connect` before use.

    `ttl`: how long a lease lasts unrenewed; renewed every `ttl / 4`, and this
    holder stops at `ttl * (1 - margin)` after the last renewal began.
    """

    def __init__(
        self,
        conninfo: str,
        account: str,
        ttl: float = 5.0,
        margin: float = 0.25,
        connect: dict[str, Any] | None = None,
    ) -> None:
        if not ttl > 0 or not 0 < margin < 1:
            raise ValueError(f"lease ttl must be > 0 and margin in (0, 1): {ttl}, {margin}")
        self.conninfo, self.account, self.ttl, self.margin = conninfo, account, ttl, margin
        self.holder = new_holder()
        self.epoch = 0
        self.lost = ""  # why, once lost
        self._connect = connect or {}
        self._conn: Any = None
        self._valid_until = 0.0
        self._lock = threading.Lock()
        self._renewer: threading.Thread | None = None
        self._stop = threading.Event()

    def connect(self) -> None:
        import psycopg

        self._conn = psycopg.connect(self.conninfo, autocommit=True, **self._connect)
        self._conn.execute(LEASE_SCHEMA)

    @property
    def _params(self) -> dict[str, Any]:
        return {"account": self.account, "holder": self.holder, "epoch": self.epoch,
                "ttl": self.ttl}  # fmt: skip

    def try_acquire(self) -> bool:
        """Take the lease if it is free or expired; True when this process holds it."""
        started = time.monotonic()
        with self._lock:
            row = self._conn.execute(_ACQUIRE, self._params).fetchone()
            if row is None:
                return False
            self.epoch, self.lost = int(row[0]), ""
            self._valid_until = started + self.ttl * (1 - self.margin)
        log.warning("lease for account %s taken: epoch %d", self.account, self.epoch)
        return True

    def renew(self) -> bool:
        started = time.monotonic()
        with self._lock:
            if self.lost:
                return False
            renewed = bool(self._conn.execute(_RENEW, self._params).rowcount == 1)
            if renewed:
                self._valid_until = started + self.ttl * (1 - self.margin)
            else:
                self.lost = f"the lease of account {self.account} passed to another gateway"
        return renewed

    def valid(self) -> bool:
        """Whether this holder may still write and send: held, and not possibly expired."""
        return not self.lost and self.epoch > 0 and time.monotonic() < self._valid_until

    def check(self) -> None:
        if self.valid():
            return
        if not self.lost and self.epoch > 0:
            self.lost = (
                f"the lease of account {self.account} (epoch {self.epoch}) was not renewed in"
                f" time and may have expired"
            )
        raise LeaseLostError(self.lost or f"no lease held for account {self.account}")

    def who(self) -> tuple[str, int, float] | None:
        """(holder, epoch, seconds left) of the account's lease, whoever holds it."""
        with self._lock:
            row = self._conn.execute(_WHO, self._params).fetchone()
        return (str(row[0]), int(row[1]), float(row[2])) if row else None

    def start_renewing(self) -> None:
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew_loop, name="livegate-lease",
                                         daemon=True)  # fmt: skip
        self._renewer.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl / 4):
            try:
                if not self.renew():
                    log.error("%s", self.lost)
                    return
            except Exception:  # the database is unreachable: the deadline decides
                log.exception("lease renewal for account %s failed", self.account)

    def release(self) -> None:
        """A clean stop hands the lease over at once (a standby need not wait out the TTL)."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=self.ttl)
        with self._lock:
            if self._conn is not None and self.epoch and not self.lost:
                self._conn.execute(_RELEASE, self._params)
            self.lost = self.lost or "released"

    def close(self) -> None:
        self._stop.set()
        if self._conn is not None:
            self._conn.close()
            self._conn = None
