"""livegate beside NautilusTrader's engine and akquant's live runner: the same order
flow through each, side by side on this machine.

    python bench/peers.py [--orders 20000] [--in-flight 1000] [--runs 3] [--instructions]

The flow (bench/peers/*_flow.py, one per peer): a strategy sends one-share limit
buys at the ask, `--in-flight` of them at the start and one more for each fill it
is told of, until it has seen `--orders` fills. Each peer runs in a process of its
own, from its own virtual environment (created on demand under `--venvs`, pinned
versions below; livegate runs from this checkout's environment), and the runs are
interleaved (the order of the peers rotates each round) so that a busy moment of
a shared machine does not land on one peer. Prints medians of orders/s, seconds
and peak RSS at `--orders` and at a tenth of it, and the ratios to livegate;
`--instructions` adds instructions per order under callgrind (valgrind), as the
difference between two runs' totals (a tenth and a fifth of `--orders`) over the
difference in orders, so start-up and imports cancel out. Asserts nothing.

Not alike, and said so in docs/performance.md: livegate fsyncs every journal
batch before an order counts; the other two keep their books in memory.
NautilusTrader's is a backtest engine with a simulated exchange (its live
engine needs a venue); akquant's runner has a trader gateway here that fills
each order as it is placed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


@dataclass(frozen=True)
class Peer:
    name: str
    requirement: str  # pip's; "" for livegate, which runs from this checkout's environment

    def python(self, venvs: Path) -> str:
        if not self.requirement:
            return sys.executable
        return str(venvs / self.name / "bin" / "python")

    def flow(self) -> str:
        return str(HERE / "peers" / f"{self.name}_flow.py")


PEERS = (
    Peer("livegate", ""),
    Peer("nautilus", "nautilus_trader==1.221.0"),
    Peer("akquant", "akquant==0.3.71"),
)


def ensure_venv(peer: Peer, venvs: Path) -> None:
    """The peer's own environment, made once; remade when its pinned version changes."""
    if not peer.requirement:
        return
    home = venvs / peer.name
    ready = home / "livegate-peer-ready"
    if ready.exists() and ready.read_text() == peer.requirement:
        return
    print(f"making {home} with {peer.requirement} (once)...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(home)], check=True)
    subprocess.run(
        [str(home / "bin" / "python"), "-m", "pip", "install", "--quiet", peer.requirement],
        check=True,
    )
    ready.write_text(peer.requirement)


def run_flow(peer: Peer, venvs: Path, orders: int, in_flight: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")} if not peer.requirement else None
    done = subprocess.run(
        [peer.python(venvs), peer.flow(), str(orders), str(in_flight)],
        capture_output=True, text=True, timeout=1800, env=env, cwd=tempfile.gettempdir(),
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"{peer.name} failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def instructions(peer: Peer, venvs: Path, orders: int, in_flight: int) -> int:
    """Instructions the whole process executed under callgrind, all threads."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")} if not peer.requirement else None
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/out",
             peer.python(venvs), peer.flow(), str(orders), str(in_flight)],
            capture_output=True, text=True, timeout=7200, env=env, cwd=tmp,
        )  # fmt: skip
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"{peer.name} under callgrind failed: {done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--in-flight", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=3, help="interleaved rounds; medians")
    parser.add_argument("--instructions", action="store_true", help="also count, with callgrind")
    parser.add_argument(
        "--venvs", type=Path, default=HERE / ".peers", help="where the peers' environments live"
    )
    parser.add_argument("--only", nargs="*", default=[p.name for p in PEERS], help="peer names")
    args = parser.parse_args()
    if args.orders < 10 or args.in_flight < 1 or args.runs < 1:
        parser.error("--orders must be at least 10, --in-flight and --runs at least 1")
    unknown = set(args.only) - {p.name for p in PEERS}
    if unknown:
        parser.error(f"no peer {', '.join(sorted(unknown))}: choose from livegate nautilus akquant")
    peers = [p for p in PEERS if p.name in args.only]
    for peer in peers:
        ensure_venv(peer, args.venvs)
    sizes = (args.orders // 10, args.orders)
    seen: dict[tuple[str, int], list[dict[str, float]]] = {}
    for round_ in range(args.runs):
        turn = peers[round_ % len(peers) :] + peers[: round_ % len(peers)]
        for size in sizes:
            for peer in turn:
                in_flight = min(args.in_flight, size)
                seen.setdefault((peer.name, size), []).append(
                    run_flow(peer, args.venvs, size, in_flight)
                )
    print(f"{args.in_flight:,} orders in flight, medians of {args.runs} interleaved runs")
    for size in sizes:
        base = _median_rate(seen[("livegate", size)]) if "livegate" in args.only else None
        for peer in peers:
            runs = seen[(peer.name, size)]
            rate = _median_rate(runs)
            rss = statistics.median(r["peak_rss_mb"] for r in runs)
            ratio = f", livegate {base / rate:.1f}x" if base and peer.name != "livegate" else ""
            refused = sum(int(r.get("refused", 0)) for r in runs)
            ratio += f", {refused} orders refused" if refused else ""
            print(
                f"{size:>8,} orders  {peer.name:<9} {runs[0]['version']:<8}"
                f" {rate:>9,.0f} orders/s  {statistics.median(r['seconds'] for r in runs):6.2f} s"
                f"  peak RSS {rss:6.0f} MB{ratio}"
            )
    if args.instructions:
        small, large = args.orders // 10, args.orders // 5
        for peer in peers:
            in_flight = min(args.in_flight, small)
            total = instructions(peer, args.venvs, large, in_flight)
            total -= instructions(peer, args.venvs, small, in_flight)
            print(
                f"{peer.name:<9} {total / (large - small):>12,.0f} instructions per order"
                f" (callgrind, {large:,} orders less {small:,})"
            )


def _median_rate(runs: list[dict[str, float]]) -> float:
    return statistics.median(r["orders"] / r["seconds"] for r in runs)


if __name__ == "__main__":
    main()
