"""The PostgreSQL journal against SQLite, and gateways on separate accounts sharing one
PostgreSQL: how throughput scales until the database's commit rate bounds it.

    export LIVEGATE_TEST_POSTGRES=$(.ci/postgres start)
    python bench/postgres.py [--orders 20000] [--processes 1 2 4]

Each run is bench/throughput.py's full order lifecycle (market orders on the
paper broker, four journaled events per order, every batch durable). First
one gateway with SQLite, then one with PostgreSQL (under its account lease),
interleaved; then 1, 2 and 4 gateway processes at once, each on its own
account, all against one PostgreSQL. Last, pgbench's simple-update run on
the same cluster: the database's own commit rate on this machine. Prints
medians; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from livegate.journal.lease import Lease
from livegate.journal.postgres import PostgresStore
from throughput import run


def one(dsn: str | None, account: str, orders: int, workers: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = None
        lease = None
        if dsn is not None:
            lease = Lease(dsn, account, ttl=30)
            lease.connect()
            assert lease.try_acquire()
            lease.start_renewing()
            store = PostgresStore(dsn, account, lease)
        try:
            return asyncio.run(run(Path(tmp), orders, workers, 0, store=store))
        finally:
            if lease is not None:
                lease.release()
                lease.close()


def processes(dsn: str, count: int, orders: int, workers: int) -> tuple[float, float, float]:
    """(total orders/s, slowest process's orders/s, journal commits/s in all) of `count`
    gateways at once."""
    tag = f"{os.getpid()}-{time.time_ns()}"
    command = [sys.executable, __file__, "--dsn", dsn, "--orders", str(orders),
               "--workers", str(workers), "--child"]  # fmt: skip
    children = [
        subprocess.Popen([*command, f"bench-{tag}-{i}"], stdout=subprocess.PIPE, text=True)
        for i in range(count)
    ]
    results = [json.loads(child.communicate()[0]) for child in children]
    # From the first gateway's start of trading to the last one's end (wall clock: the
    # processes' own start-up is not trading).
    elapsed = max(r["t1"] for r in results) - min(r["t0"] for r in results)
    commits = sum(r["journal_batches"] for r in results)
    return count * orders / elapsed, min(r["orders_per_s"] for r in results), commits / elapsed


def pgbench(dsn: str, seconds: int) -> str:
    binary = shutil.which("pgbench") or next(
        iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"))), None
    )
    if binary is None:
        return "pgbench not found"
    url = urlsplit(dsn)
    common = ["-h", url.hostname or "127.0.0.1", "-p", str(url.port or 5432),
              "-U", url.username or "postgres"]  # fmt: skip
    database = "livegate_pgbench"
    createdb = Path(binary).with_name("createdb")
    subprocess.run([str(createdb), *common, database], capture_output=True)
    subprocess.run([str(binary), *common, "-i", "-s", "1", "-q", database], capture_output=True,
                   check=True)  # fmt: skip
    lines = []
    for clients in (1, 4):
        out = subprocess.run(
            [str(binary), *common, "-b", "simple-update", "-c", str(clients), "-j",
             str(clients), "-T", str(seconds), database],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        tps = next(line for line in out.splitlines() if line.startswith("tps"))
        lines.append(f"{clients} client(s): {tps.split('(')[0].strip()}")
    return "; ".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--processes", type=int, nargs="*", default=[1, 2, 4])
    parser.add_argument("--dsn", default=os.environ.get("LIVEGATE_TEST_POSTGRES", ""))
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.dsn:
        parser.error("say --dsn or set LIVEGATE_TEST_POSTGRES (.ci/postgres start)")
    logging.getLogger("livegate.lease").setLevel(logging.ERROR)
    if args.child:
        t0 = time.time()
        result = one(args.dsn, args.child, args.orders, args.workers)
        print(json.dumps({**result, "t0": t0, "t1": time.time()}))
        return
    sqlite, postgres = [], []
    for i in range(args.runs):  # interleaved: the machine's drift hits both alike
        sqlite.append(one(None, "", args.orders, args.workers)["orders_per_s"])
        postgres.append(
            one(args.dsn, f"bench-{os.getpid()}-{i}", args.orders, args.workers)["orders_per_s"]
        )
    s, p = statistics.median(sqlite), statistics.median(postgres)
    print(f"one gateway, {args.orders:,} orders, medians of {args.runs}:"
          f" SQLite {s:,.0f} orders/s, PostgreSQL {p:,.0f} orders/s ({p / s:.2f}x)")  # fmt: skip
    for count in args.processes:
        total, slowest, commits = processes(args.dsn, count, args.orders, args.workers)
        print(f"{count} gateway process(es) on separate accounts, one PostgreSQL:"
              f" {total:,.0f} orders/s in all (slowest process {slowest:,.0f}),"
              f" {commits:,.0f} journal commits/s")  # fmt: skip
    print(f"pgbench simple-update (the cluster's commit rate): {pgbench(args.dsn, 10)}")


if __name__ == "__main__":
    main()
