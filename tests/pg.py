"""The PostgreSQL the tests use: LIVEGATE_TEST_POSTGRES, a throwaway cluster that
`.ci/run` starts with `.ci/postgres start`. Skipped without it, except under CI,
where a missing database fails the run (no PostgreSQL test may be skipped there)."""

from __future__ import annotations

import os
import secrets

import pytest

from livegate.journal.lease import Lease
from livegate.journal.postgres import PostgresStore


def dsn() -> str:
    found = os.environ.get("LIVEGATE_TEST_POSTGRES", "")
    if not found:
        if os.environ.get("CI"):
            pytest.fail("LIVEGATE_TEST_POSTGRES is not set: .ci/run starts the test cluster")
        pytest.skip("no test PostgreSQL (run `.ci/postgres start`, set LIVEGATE_TEST_POSTGRES)")
    return found


def new_account() -> str:
    """Each test its own account: journals and leases never meet across tests."""
    return f"test-{secrets.token_hex(6)}"


def held_lease(account: str, ttl: float = 5.0, renew: bool = False) -> Lease:
    """A lease taken now; `renew` keeps it (a test that runs longer than its TTL)."""
    lease = Lease(dsn(), account, ttl=ttl)
    lease.connect()
    assert lease.try_acquire()
    if renew:
        lease.start_renewing()
    return lease


def writer(account: str, lease: Lease) -> PostgresStore:
    return PostgresStore(dsn(), account, lease)


def reader(account: str) -> PostgresStore:
    return PostgresStore(dsn(), account, None)
