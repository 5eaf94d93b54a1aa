"""What `livegate certify` certifies: an adapter from a factory, and the market it trades in.

The factory is `MODULE:FACTORY`, a callable taking a `CertifyEnv` and
returning a `Target` (or a bare `BrokerAdapter`: then the scenarios that
need to move the market are not applicable). It is called once per
scenario, and again with the same `env.directory` when a scenario
restarts the gateway: an adapter that keeps state on disk (a FIX session
store, a paper book) finds it there. With `env.bad_credentials` it must
build the adapter with a key the broker refuses (return None if it cannot:
that scenario is then not applicable).

A `TestMarket` is how certify makes things happen in the adapter's test
environment: quotes that rest or cross an order, quotes with a size, so
an order fills in parts. A broker's paper environment that cannot be
driven gets none, and the scenarios that need one say "not applicable".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from livegate.broker.adapter import BrokerAdapter
from livegate.model.instrument import InstrumentRegistry
from livegate.model.samples import demo_instruments


@dataclass
class CertifyEnv:
    directory: Path  # the adapter's own files (a fresh folder per scenario)
    bad_credentials: bool = False  # build it with a key the broker must refuse
    settings: dict[str, Any] = field(default_factory=dict)  # the profile, when given


class TestMarket(Protocol):
    """The scenarios' hands on the test market. `quote` may be absent (None)."""

    symbol: str
    mid: Decimal
    tick: Decimal

    async def quote(self, bid: Decimal, ask: Decimal, size: Decimal | None = None) -> None:
        """Make the market: a limit order crossing it fills, up to `size` a quote."""

    async def throttle(self, on: bool) -> bool:
        """Make the broker refuse for rate (False: it cannot)."""


@dataclass
class Target:
    adapter: BrokerAdapter
    market: TestMarket | None = None
    instruments: InstrumentRegistry = field(default_factory=demo_instruments)
    # What the broker refuses, so the reject scenarios know what to expect.
    checks_tick: bool = False
    checks_symbol: bool = False
    checks_funds: bool = False
    order_types: tuple[str, ...] = ("LIMIT", "MARKET")
    time_in_force: tuple[str, ...] = ("DAY",)
    close: Callable[[], object] | None = None  # called after the run (a broker it started)
    # A target built in another process reaches the same broker account (False for a
    # broker that lives in this process's memory): needed to SIGKILL a gateway process.
    reachable_from_another_process: bool = True


Factory = Callable[[CertifyEnv], "Target | BrokerAdapter | None"]
