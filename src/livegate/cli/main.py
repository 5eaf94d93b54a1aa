"""The `livegate` command."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from livegate import __version__
from livegate.cli.demo import STATUS_ORDER, DemoResult, run_demo

app = typer.Typer(
    help="livegate: a hardened execution gateway between a strategy and a broker.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log warnings.")] = False,
) -> None:
    logging.basicConfig(level=logging.WARNING if verbose else logging.ERROR)


@app.command()
def version() -> None:
    """Print the version."""
    console.print(__version__)


@app.command()
def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where runs keep their journal and paper book.")
    ] = Path("livegate-demo"),
    orders: Annotated[
        int, typer.Option("--orders", "-n", min=1, help="How many orders to send.")
    ] = 5_000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the scripted strategy.")] = 7,
) -> None:
    """Trade a scripted strategy through the gateway and the paper broker."""
    run_dir = directory / datetime.now().strftime("run-%Y%m%d-%H%M%S-%f")
    run_dir.mkdir(parents=True, exist_ok=False)
    console.print(f"[bold]livegate demo[/] · paper broker · data in [cyan]{run_dir}[/]")
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("orders", total=orders)
        result = asyncio.run(run_demo(run_dir, orders, seed, lambda n: progress.advance(task, n)))
    _print_summary(result)


def _print_summary(r: DemoResult) -> None:
    statuses = Table(title="Orders by status")
    statuses.add_column("status")
    statuses.add_column("orders", justify="right")
    for status in STATUS_ORDER:
        if r.by_status[status]:
            statuses.add_row(status, str(r.by_status[status]))
    console.print(statuses)

    positions = Table(title="Positions")
    for column in ("symbol", "quantity", "avg price", "realized P&L"):
        positions.add_column(column, justify="right" if column != "symbol" else "left")
    for symbol, qty, avg, pnl in r.positions:
        positions.add_row(symbol, f"{qty:,}", f"{avg:,.4f}", f"{pnl:,.2f}")
    console.print(positions)

    summary = Table(title="Run")
    summary.add_column("")
    summary.add_column("", justify="right")
    rows = [
        ("orders", f"{len(r.orders):,}"),
        ("fills (each counted once)", f"{r.fills:,}"),
        ("duplicate submits (none sent)", f"{r.duplicate_submits:,}"),
        ("cancel requests", f"{r.cancels:,}"),
        ("report anomalies", ", ".join(f"{k}={v}" for k, v in r.anomalies.items()) or "none"),
        ("cash", f"{r.cash:,.2f}"),
        ("fees", f"{r.fees:,.2f}"),
        ("journal events / fsync'd batches", f"{r.journal_events:,} / {r.journal_batches:,}"),
        ("journal size", f"{r.journal_bytes / 1e6:,.1f} MB"),
        ("wall time", f"{r.seconds:,.2f} s"),
        ("orders/s", f"{len(r.orders) / r.seconds:,.0f}"),
    ]
    for name, value in rows:
        summary.add_row(name, value)
    console.print(summary)
