"""Certification targets for the adapters livegate ships: `livegate.drills.certify.shipped:paper`
and `...:sim` (a sim broker it starts itself, strict as a real broker is).

They are also the worked examples of a factory: build the adapter in
`env.directory`, say what the broker checks, and give a `TestMarket` that
moves prices in the test environment.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from livegate.broker.paper import PaperAdapter, PaperConfig
from livegate.broker.sim import SimAdapter
from livegate.drills.certify.target import CertifyEnv, Target
from livegate.drills.sim_process import SimProcess
from livegate.model.samples import DEMO_START_PRICES
from livegate.model.secret import Secret

SYMBOL = "AAPL"
MID = DEMO_START_PRICES[SYMBOL]
TICK = Decimal("0.01")


@dataclass
class PaperMarket:
    adapter: PaperAdapter
    symbol: str = SYMBOL
    mid: Decimal = MID
    tick: Decimal = TICK

    async def quote(self, bid: Decimal, ask: Decimal, size: Decimal | None = None) -> None:
        self.adapter.set_quote(self.symbol, bid, ask, size, size)
        await self.adapter.quiesce()

    async def throttle(self, on: bool) -> bool:
        return False  # the paper broker has no rate limit


def paper(env: CertifyEnv) -> Target | None:
    if env.bad_credentials:
        return None  # the embedded paper broker takes no credentials
    config = PaperConfig(listed=frozenset(DEMO_START_PRICES), tick_size=TICK, check_funds=True)
    adapter = PaperAdapter(env.directory / "paper.sqlite", config)
    return Target(
        adapter,
        PaperMarket(adapter),
        checks_tick=True,
        checks_symbol=True,
        checks_funds=True,
        time_in_force=("DAY", "GTC", "IOC"),
    )


@dataclass
class SimMarket:
    process: SimProcess
    symbol: str = SYMBOL
    mid: Decimal = MID
    tick: Decimal = TICK

    async def quote(self, bid: Decimal, ask: Decimal, size: Decimal | None = None) -> None:
        sizes = {"bid_size": str(size), "ask_size": str(size)} if size is not None else {}
        await self.process.control("quote", symbol=self.symbol, bid=str(bid), ask=str(ask),
                                   **sizes)  # fmt: skip

    async def throttle(self, on: bool) -> bool:
        await self.process.control("throttle", rate=2 if on else 0, burst=1, retry_after=0.05)
        return True


_RUNNING: dict[Path, SimProcess] = {}


def sim(env: CertifyEnv) -> Target:
    """A sim broker per certification folder: started once, found again by a restart,
    in this process or another (its ports and key are kept in the folder)."""
    handoff = env.directory / "sim.json"
    process = _RUNNING.get(env.directory)
    owned = process is not None
    if process is None and handoff.exists():  # another process started it: attach
        saved = json.loads(handoff.read_text())
        process = SimProcess(env.directory / "sim", saved["key"])
        process.port, process.control_port = saved["port"], saved["control_port"]
    if process is None:
        (env.directory / "sim").mkdir(parents=True, exist_ok=True)
        process = SimProcess(env.directory / "sim", f"lg_sim_{secrets.token_hex(12)}")
        process.start(strict=True)
        _RUNNING[env.directory] = process
        owned = True
        handoff.write_text(json.dumps(
            {"port": process.port, "control_port": process.control_port, "key": process.key}
        ))  # fmt: skip
    key = f"lg_sim_{secrets.token_hex(12)}" if env.bad_credentials else process.key
    adapter = SimAdapter("127.0.0.1", process.port, Secret(key), "sim")

    def close() -> None:
        running = _RUNNING.pop(env.directory, None) if owned else None
        if running is not None:
            running.stop()
            handoff.unlink(missing_ok=True)

    return Target(
        adapter,
        SimMarket(process),
        checks_tick=True,
        checks_symbol=True,
        checks_funds=True,
        time_in_force=("DAY", "GTC", "IOC"),
        close=close,
    )
