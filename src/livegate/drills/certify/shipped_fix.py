"""The FIX adapter's certification target: `livegate.drills.certify.shipped_fix:fix`.

QuickFIX's `ordermatch` is the exchange (Debian's libquickfix-doc), one
per certification folder. Our adapter logs on as BUYER; the test market
is a second FIX session, SELLER, that quotes by resting orders on the
other side. What ordermatch cannot do is declared, so those scenarios say
"not applicable": it matches DAY limit orders only, checks no tick, symbol
or funds, cannot be throttled, drops an unknown session without a Logout
(no credential to refuse), and cannot be asked for orders, trades or the
account (a plain FIX order session: recovery rests on FIX resends).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from livegate.broker.fix import FixAdapter, FixSessionConfig
from livegate.drills.certify.target import CertifyEnv, Target
from livegate.drills.ordermatch import OrderMatch
from livegate.model.enums import OrderType, Side, TimeInForce
from livegate.model.instrument import Instrument, InstrumentRegistry
from livegate.model.orders import OrderIntent

SYMBOL = "IBM"
_RUNNING: dict[Path, tuple[OrderMatch, SellerMarket]] = {}


def _session(exchange: OrderMatch, directory: Path, name: str) -> FixSessionConfig:
    return FixSessionConfig(
        "127.0.0.1", exchange.port, name, "ORDERMATCH", directory / f"{name.lower()}.sqlite",
        heartbeat_interval=1, logon_timeout=5, inbound_persist_lag=0.2,
    )  # fmt: skip


@dataclass
class SellerMarket:
    """The other side of ordermatch's book: quotes are SELLER's resting orders."""

    exchange: OrderMatch
    directory: Path
    symbol: str = SYMBOL
    mid: Decimal = Decimal("100.00")
    tick: Decimal = Decimal("0.01")
    adapter: FixAdapter | None = None
    _drain: asyncio.Task[None] | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def quote(self, bid: Decimal, ask: Decimal, size: Decimal | None = None) -> None:
        if self.adapter is None:
            self.adapter = FixAdapter(_session(self.exchange, self.directory, "SELLER"))
            await self.adapter.connect()
            self._drain = asyncio.create_task(self._read(self.adapter))
        quantity = size if size is not None else Decimal(1000)
        for side, price in ((Side.SELL, ask), (Side.BUY, bid)):
            coid = f"Q{next(self._ids)}-{side.value}"
            await self.adapter.place(
                OrderIntent(coid, "", self.symbol, side, OrderType.LIMIT, quantity, price,
                            TimeInForce.DAY, 0)
            )  # fmt: skip
        await asyncio.sleep(0.2)  # ordermatch matches as the orders arrive

    async def _read(self, adapter: FixAdapter) -> None:
        async for _ in adapter.reports():
            pass

    async def throttle(self, on: bool) -> bool:
        return False

    async def close(self) -> None:
        adapter, self.adapter = self.adapter, None
        if adapter is not None:
            await adapter.close()
        if self._drain is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._drain, 5)


def fix(env: CertifyEnv) -> Target | None:
    if env.bad_credentials:
        return None  # ordermatch drops an unknown session: there is no key to refuse
    handoff = env.directory / "ordermatch.json"
    running = _RUNNING.get(env.directory)  # a restart finds the same exchange and market
    owned = running is not None
    if running is None and handoff.exists():  # started by another process: attach
        exchange = OrderMatch(env.directory / "ordermatch", json.loads(handoff.read_text()))
        running = (exchange, SellerMarket(exchange, env.directory))
    if running is None:
        (env.directory / "ordermatch").mkdir(parents=True, exist_ok=True)
        exchange = OrderMatch(env.directory / "ordermatch")
        exchange.start()
        running = _RUNNING[env.directory] = (exchange, SellerMarket(exchange, env.directory))
        owned = True
        handoff.write_text(json.dumps(exchange.port))
    exchange, market = running

    async def close() -> None:
        await market.close()
        if owned and _RUNNING.pop(env.directory, None) is not None:
            exchange.stop()
            handoff.unlink(missing_ok=True)

    return Target(
        FixAdapter(_session(exchange, env.directory, "BUYER")),
        market,
        InstrumentRegistry([Instrument(SYMBOL, Decimal("0.01"))]),
        order_types=("LIMIT",),
        time_in_force=("DAY",),
        close=close,
    )
