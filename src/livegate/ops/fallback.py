"""Fallback to paper and back: the checks around the engine's venue switch.

To paper: new orders pause (refused NOT_READY, never sent to the broker
being left), places on the wire finish, every live open order is
cancelled and confirmed, the live broker's positions and cash are taken
as the paper book's opening, the switch is journaled, and orders flow
again, to paper. A live order that cannot be cancelled (the broker is
unreachable) refuses the fallback: we never walk away from an order we
cannot see; `livegate safe-stop` is the tool for a broker that is down.

Back to live: only when the live connection opens and a reconciliation
of our live books (orders, fills, positions, cash as the switch left
them) against the live broker finds nothing, and no diff is unresolved.
Otherwise it refuses, saying why. Both directions are journaled with who
and why (`VenueChanged`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

from livegate.engine.gateway import Gateway
from livegate.model.account import AccountSnapshot
from livegate.model.events import VenueChanged
from livegate.model.ledger import Ledger
from livegate.recon.compare import Tolerances, compare
from livegate.recon.reconciler import broker_view, local_view


class FallbackRefused(Exception):
    """The switch did not happen; the message says why and what to do."""


@contextlib.contextmanager
def _paused(gateway: Gateway, why: str) -> Iterator[None]:
    gateway.entry.paused = why
    try:
        yield
    finally:
        gateway.entry.paused = ""


async def _quiet(gateway: Gateway, wait: float) -> None:
    """Places already on the wire answer (or time out) before anything moves."""
    deadline = time.monotonic() + wait
    while gateway.entry.placing and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


async def fall_back_to_paper(
    gateway: Gateway, who: str, why: str, command_id: str = "", wait: float = 10.0
) -> VenueChanged:
    if not who or not why:
        raise ValueError("a fallback needs who and why")
    if gateway.venue == "paper":
        raise FallbackRefused("already on paper")
    control = gateway.config.control_dir
    if control is None:
        raise FallbackRefused("a fallback needs the gateway's data folder (control_dir)")
    with _paused(gateway, "switching to the paper broker"):
        await _quiet(gateway, gateway.config.place_timeout)
        open_now = [o.client_order_id for o in gateway.book.open_orders()]
        if open_now and not gateway.ready:
            raise FallbackRefused(
                f"{len(open_now)} live orders are open and the broker connection is"
                f" {gateway.connection_state.value}: they cannot be cancelled now"
                " (livegate safe-stop cancels them once it is back)"
            )
        left = await gateway.release_controls.cancel_all(wait)
        if left:
            raise FallbackRefused(
                f"{len(left)} live orders are still open after {wait:g}s: {', '.join(left[:10])}"
            )
        account = await _opening_book(gateway)
        book = _new_paper_book(control.parent)
        return await gateway.venues.to_paper(who, why, account, book, command_id)


async def _opening_book(gateway: Gateway) -> AccountSnapshot:
    """The live broker's positions and cash now, or our books when it cannot say."""
    if gateway.ready and gateway.adapter.capabilities.reports_account:
        try:
            return await asyncio.wait_for(gateway.adapter.account(), gateway.config.place_timeout)
        except Exception:
            pass
    ledger = gateway.book.ledger
    positions = tuple(p for p in ledger.positions.values() if p.quantity != 0)
    return AccountSnapshot(
        gateway.config.account,
        ledger.currency,
        ledger.cash,
        ledger.cash,
        positions,
        gateway.clock.now_ns(),
    )


def _new_paper_book(folder: Path) -> Path:
    n = 1
    while (folder / f"paper-fallback-{n}.sqlite").exists():
        n += 1
    return folder / f"paper-fallback-{n}.sqlite"


async def return_to_live(
    gateway: Gateway, who: str, why: str, command_id: str = "", wait: float = 10.0
) -> VenueChanged:
    if not who or not why:
        raise ValueError("a return to live needs who and why")
    switched = gateway.book.release.venue
    live = gateway.venues.standby
    if gateway.venue != "paper" or switched is None or live is None:
        raise FallbackRefused("already live")
    unresolved = gateway.book.open_diffs()
    if unresolved:
        ids = ", ".join(d.id for d in unresolved)
        raise FallbackRefused(f"{len(unresolved)} unresolved diffs ({ids}): resolve them first")
    with _paused(gateway, "switching back to the live broker"):
        await _quiet(gateway, gateway.config.place_timeout)
        left = await gateway.release_controls.cancel_all(wait)
        if left:
            raise FallbackRefused(f"{len(left)} paper orders are still open: {', '.join(left)}")
        try:
            await asyncio.wait_for(_open_session(live), gateway.config.place_timeout)
        except Exception as exc:
            with contextlib.suppress(Exception):
                await live.close()
            raise FallbackRefused(f"the live connection is not READY: {exc!r}") from None
        try:
            ours = local_view(gateway.book, False, Ledger.from_snapshot(switched.account))
            theirs = await broker_view(live, [], gateway.clock.now_ns())
            findings = compare(ours, theirs, Tolerances())
        finally:
            await live.close()
        if findings:
            listed = "; ".join(f"{f.kind.value} {f.subject}: {f.detail}" for f in findings[:5])
            raise FallbackRefused(
                f"reconciliation against the live broker found {len(findings)}"
                f" difference(s): {listed}"
            )
        return await gateway.venues.to_live(who, why, command_id)


async def _open_session(adapter: object) -> None:
    await adapter.connect()  # type: ignore[attr-defined]
    authenticate = getattr(adapter, "authenticate", None)
    if authenticate is not None:
        await authenticate()
