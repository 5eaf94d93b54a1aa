"""What metrics and order logs cost an order, in CPU instructions (callgrind).

Wall-clock throughput on this shared machine moves by 10-20% between runs,
more than the overhead being measured. Instructions counted by valgrind's
callgrind are nearly the same run to run, so this runs the throughput
benchmark's order flow under callgrind with observability off, metrics on,
order logs on, and both, several times each, and prints the medians:

    per-order instructions (off) = (I(off, N) - I(off, N0)) / (N - N0)
    overhead of X per order      = (I(X, N) - I(off, N)) / N

Needs valgrind (Debian's package). Takes a few minutes.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHILD = """
import asyncio, sys, tempfile
from pathlib import Path
sys.path.insert(0, {here!r})
import throughput
metrics, logs, orders = sys.argv[1] == "1", sys.argv[2] == "1", int(sys.argv[3])
with tempfile.TemporaryDirectory() as tmp:
    asyncio.run(throughput.run(Path(tmp), orders, 500, 0, metrics, logs))
"""
CONFIGS = {"off": ("0", "0"), "metrics": ("1", "0"), "logs": ("0", "1"), "both": ("1", "1")}


def _interpreter() -> str:
    """The interpreter itself, so callgrind counts Python: a pyenv shim is a script
    (followed to the binary); a virtualenv's python is a link that must stay one,
    or the child loses the venv's packages."""
    with open(sys.executable, "rb") as handle:
        script = handle.read(2) == b"#!"
    return os.path.realpath(sys.executable) if script else sys.executable


def instructions(metrics: str, logs: str, orders: int) -> int:
    python = _interpreter()
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")  # idle BLAS threads spin otherwise
    out = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            python,
            "-c",
            CHILD.format(here=str(HERE)),
            metrics,
            logs,
            str(orders),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stderr
    match = re.search(r"Collected : (\d+)", out)
    if match is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{out[-2000:]}")
    return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=4_000)
    parser.add_argument("--base-orders", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    jobs = [("off", args.base_orders)] * args.repeat
    jobs += [(name, args.orders) for name in CONFIGS for _ in range(args.repeat)]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        counts = list(pool.map(lambda j: instructions(*CONFIGS[j[0]], j[1]), jobs))
    seen: dict[tuple[str, int], list[int]] = {}
    for job, count in zip(jobs, counts, strict=True):
        seen.setdefault(job, []).append(count)
    med = {job: statistics.median(values) for job, values in seen.items()}
    per_order = (med[("off", args.orders)] - med[("off", args.base_orders)]) / (
        args.orders - args.base_orders
    )
    print(
        f"callgrind, {args.orders:,} orders, median of {args.repeat} runs each"
        f" (spread per config: "
        + ", ".join(
            f"{name} {(max(v) - min(v)) / args.orders:,.0f}"
            for (name, n), v in seen.items()
            if n == args.orders
        )
        + " instructions/order)"
    )
    print(f"{'off:':10}{per_order:>10,.0f} instructions per order")
    for name in ("metrics", "logs", "both"):
        extra = (med[(name, args.orders)] - med[("off", args.orders)]) / args.orders
        print(f"{name + ':':10}{extra:>+10,.0f} instructions per order  ({extra / per_order:.1%})")


if __name__ == "__main__":
    main()
