"""An unchanged akquant strategy, live through livegate, against livegate's sim broker.

    python examples/akquant/run.py [--dir DIR]

Starts a sim broker, then `akquant.run_live(..., broker="livegate")` with
replayed bars for market data: every order goes through livegate's gateway
(journal, risk, rollout, reconciliation, alerts) to the sim broker. Prints
what akquant, livegate and the broker each hold at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import math
import os
import secrets
import shutil
import sys
import time
from decimal import Decimal
from pathlib import Path

import akquant
from akquant import Bar, Instrument, run_live

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from strategy import MeanReversion  # noqa: E402

from livegate.broker.sim import SimAdapter  # noqa: E402
from livegate.drills.sim_process import SimProcess  # noqa: E402
from livegate.engine.order_book import OrderBook  # noqa: E402
from livegate.journal import replay_file  # noqa: E402
from livegate.model.samples import demo_instruments  # noqa: E402
from livegate.model.secret import Secret  # noqa: E402


def bars(n: int = 60) -> list[Bar]:
    start = 1_764_550_000_000_000_000
    closes = [190 + 2 * math.sin(i / 4) for i in range(n)]
    return [
        Bar(start + i * 60_000_000_000, c, c + 0.2, c - 0.2, round(c, 2), 10_000.0, "AAPL")
        for i, c in enumerate(closes)
    ]


async def broker_position(sim: SimProcess) -> Decimal:
    adapter = SimAdapter("127.0.0.1", sim.port, Secret(sim.key), "sim")
    await adapter.connect()
    await adapter.authenticate()
    account = await adapter.account()
    await adapter.close()
    return sum((p.quantity for p in account.positions), Decimal(0))


def livegate_position(data: Path) -> Decimal:
    """Our books as the journal rebuilds them (read-only: the gateway may still run)."""
    book = OrderBook(demo_instruments())
    for _, event in replay_file(data / "journal.sqlite"):
        book.apply(event)
    held = book.ledger.positions.get("AAPL")
    return held.quantity if held is not None else Decimal(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, default=Path("akquant-example"))
    args = parser.parse_args()
    work = args.dir.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for name in ("profiles.toml", "risk.toml", "rollout.toml"):
        shutil.copy(HERE / name, work / name)
    (work / "sim").mkdir()
    sim = SimProcess(work / "sim", f"lg_sim_{secrets.token_hex(12)}")
    sim.start()
    atexit.register(sim.stop)  # after livegate's own stop (atexit runs last-in first)
    asyncio.run(sim.control("quote", symbol="AAPL", bid="189.99", ask="190.01"))
    profiles = (work / "profiles.toml").read_text().replace("7301", str(sim.port))
    (work / "profiles.toml").write_text(profiles)
    os.environ["AKQUANT_SIM_KEY"] = sim.key
    strategy = MeanReversion()
    run_live(
        strategy,
        [Instrument("AAPL", akquant.AssetType.Stock, tick_size=0.01, lot_size=1)],
        trading_mode="broker_live",
        broker="livegate",
        market_broker="replay",
        trader_broker="livegate",
        gateway_options={
            "bars": bars(),
            "livegate_config": str(work / "profiles.toml"),
            "livegate_profile": "akquant-sim",
        },
    )
    time.sleep(1.0)  # the last fills reach the broker's books and ours
    print(f"akquant: {strategy.fills} fills, position {strategy.get_position('AAPL'):g}")
    print(f"livegate: position {livegate_position(work / 'data'):g}")
    print(f"broker: position {asyncio.run(broker_position(sim)):g}")
    print(f"livegate data: {work / 'data'} (livegate status / trace / recon --dir it)")


if __name__ == "__main__":
    main()
