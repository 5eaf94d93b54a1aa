"""`livegate orders`: the orders of a data folder, as the console's orders page lists them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from livegate.cli.datadir import DirOption, LegacyDirArgument, choose_dir, journal_of
from livegate.cli.output import console, say


def orders_command(
    legacy_dir: LegacyDirArgument = None,
    directory: DirOption = None,
    open_only: Annotated[bool, typer.Option("--open", help="Only orders still open.")] = False,
    symbol: Annotated[str, typer.Option("--symbol", help="Only this symbol.")] = "",
    status: Annotated[
        str, typer.Option("--status", help="Only this status (FILLED, CANCELLED, ...).")
    ] = "",
    search: Annotated[
        str, typer.Option("--id", help="The order with this client or broker id.")
    ] = "",
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 50,
) -> None:
    """Orders from the journal, newest first (read-only: safe beside a running gateway).

    Exit 1 when no order matches.
    """
    from rich.table import Table

    from livegate.model.enums import OrderStatus
    from livegate.ops.views import JournalView

    directory = choose_dir(legacy_dir, directory)
    journal_of(directory)
    if status and status.upper() not in OrderStatus.__members__:
        valid = ", ".join(OrderStatus.__members__)
        raise typer.BadParameter(f"{status!r} is not an order status: choose {valid}")
    view = JournalView(directory)
    try:
        view.refresh()
        rows = view.orders(open_only, symbol, status.upper(), search, limit)
        total = view.stats()
    finally:
        view.close()
    say(f"{total.orders} orders in {directory}, {total.open} open; showing {len(rows)}")
    if not rows:
        raise typer.Exit(1)
    table = Table()
    for column in (
        "client id", "broker id", "symbol", "side", "qty", "price", "status", "filled",
        "avg price", "updated (UTC)",
    ):  # fmt: skip
        table.add_column(column, overflow="fold")
    for o in rows:
        when = datetime.fromtimestamp(o.updated_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(
            o.client_order_id, o.broker_order_id or "", o.symbol, o.side.value, str(o.quantity),
            "" if o.price is None else str(o.price), o.status.value, str(o.filled_qty),
            "" if o.avg_fill_price is None else f"{o.avg_fill_price:f}", when,
        )  # fmt: skip
    console.print(table)
