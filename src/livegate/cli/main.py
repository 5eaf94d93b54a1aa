"""The `livegate` command.

Start-up stays fast (`livegate --help` imports no engine, no pandas): each
command imports what it uses when it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from livegate import __version__
from livegate.cli.archive import archive_command
from livegate.cli.certify import certify_command
from livegate.cli.console import console_command, console_password_command
from livegate.cli.gate import gate_command
from livegate.cli.operator import alerts_command, trace_command, trading_state_command
from livegate.cli.orders import orders_command
from livegate.cli.output import clean_errors, console, fail
from livegate.cli.reconcile import diffs_command, recon_command
from livegate.cli.release import (
    config_app,
    fallback_command,
    rollout_command,
    safe_stop_command,
)
from livegate.cli.service import serve_command, status_command
from livegate.cli.sim import drill_command, sim_broker_command

if TYPE_CHECKING:
    from livegate.cli.demo import DemoResult
    from livegate.drills.replay import ReplayResult

app = typer.Typer(
    help="livegate: a hardened execution gateway between a strategy and a broker.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # usage errors as plain lines on stderr, never boxed or wrapped
    pretty_exceptions_enable=False,
)
for _name, _command in (
    ("serve", serve_command),
    ("status", status_command),
    ("sim-broker", sim_broker_command),
    ("drill", drill_command),
    ("trading-state", trading_state_command),
    ("alerts", alerts_command),
    ("trace", trace_command),
    ("orders", orders_command),
    ("recon", recon_command),
    ("diffs", diffs_command),
    ("rollout", rollout_command),
    ("safe-stop", safe_stop_command),
    ("fallback", fallback_command),
    ("certify", certify_command),
    ("gate", gate_command),
    ("console", console_command),
    ("console-password", console_password_command),
    ("archive", archive_command),
):
    app.command(_name)(clean_errors(_command))
for _info in config_app.registered_commands:
    if _info.callback is not None:
        _info.callback = clean_errors(_info.callback)
app.add_typer(config_app, name="config")


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log warnings.")] = False,
) -> None:
    logging.basicConfig(level=logging.WARNING if verbose else logging.ERROR, force=True)


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
    broker: Annotated[
        str,
        typer.Option(
            "--broker",
            help="paper (embedded) or fix (a local QuickFIX ordermatch, from libquickfix-doc).",
        ),
    ] = "paper",
) -> None:
    """Trade a scripted strategy through the gateway and the paper broker (or FIX)."""
    if broker not in ("paper", "fix"):
        raise typer.BadParameter(f"{broker!r}: choose paper or fix", param_hint="--broker")
    from livegate.cli.demo import run_demo

    # Absolute: child processes (ordermatch) run in other working directories.
    run_dir = directory.resolve() / datetime.now().strftime("run-%Y%m%d-%H%M%S-%f")
    try:
        run_dir.mkdir(parents=True, exist_ok=False)
    except OSError as exc:
        fail(f"cannot create the run folder {run_dir}: {exc.strerror or exc}")
    if broker == "fix":
        _fix_demo(run_dir, orders, seed)
        return
    console.print(f"[bold]livegate demo[/] · paper broker · data in [cyan]{run_dir}[/]")
    with _order_progress(orders) as advance:
        result = asyncio.run(run_demo(run_dir, orders, seed, advance))
    _print_summary(result)


@contextlib.contextmanager
def _order_progress(orders: int) -> Iterator[Callable[[int], None]]:
    """A progress bar over orders sent; yields the function that advances it."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("orders", total=orders)
        yield lambda n: progress.advance(task, n)


def _fix_demo(run_dir: Path, orders: int, seed: int) -> None:
    from rich.table import Table

    from livegate.cli.fix_demo import run_fix_demo
    from livegate.drills.ordermatch import OrderMatchMissing, find_binary

    try:
        find_binary(run_dir / "ordermatch")
    except OrderMatchMissing as exc:
        fail(str(exc))
    console.print(
        f"[bold]livegate demo[/] · FIX 4.2 · QuickFIX ordermatch · data in [cyan]{run_dir}[/]"
    )
    with _order_progress(orders) as advance:
        r = asyncio.run(run_fix_demo(run_dir, orders, seed, advance))
    table = Table(title="FIX session")
    table.add_column("what")
    table.add_column("value", justify="right")
    for status, count in sorted(r.by_status.items()):
        table.add_row(f"orders {status}", str(count))
    rows = [
        ("fills counted", str(r.fills)),
        ("shares bought (ours)", str(r.bought)),
        ("shares sold (the exchange's other side)", str(r.seller_sold)),
        ("duplicate submits stopped", str(r.duplicate_submits)),
        ("cancels", str(r.cancels)),
        ("FIX messages sent", str(r.messages_out)),
        ("seconds", f"{r.seconds:.2f}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    if not r.books_match:
        fail("the two sides of the executions disagree", 1)
    console.print("[green]both sides of every execution agree[/]")


@app.command("replay")
def replay_command(
    capture: Annotated[Path, typer.Argument(help="A capture: JSON Lines of broker events.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    limit: Annotated[
        int,
        typer.Option(min=0, help="Orders and fills listed at most (the rest are counted); 0: all."),
    ] = 50,
) -> None:
    """Run a broker event capture through the gateway's ingest, without a broker.

    Prints the final orders (counted by status), fills and positions, and every
    anomaly found (duplicates, stale reports, fill gaps, reports for unknown
    orders). `--json` has everything, whatever the size.
    """
    from livegate.drills.capture import CaptureError, read_capture
    from livegate.drills.replay import ReplayError, replay

    try:
        lines = read_capture(capture)
        result = asyncio.run(replay(lines))
    except OSError as exc:
        fail(f"{capture}: {exc.strerror or exc}")
    except (CaptureError, ReplayError) as exc:
        fail(str(exc))
    if as_json:
        payload = {
            "orders": result.orders,
            "fills": result.fills,
            "positions": result.positions,
            "anomalies": result.anomalies,
            "anomaly_counts": dict(result.counts),
            "gaps": result.gaps,
            "external": result.external,
            "restarts": result.restarts,
        }
        import msgspec

        encoder = msgspec.json.Encoder(decimal_format="string")
        typer.echo(encoder.encode(payload).decode())
        return
    _print_replay(capture, result, limit)


def _print_replay(capture: Path, r: ReplayResult, limit: int) -> None:
    from collections import Counter

    from rich.table import Table

    console.print(f"[bold]replay[/] {capture} · {r.restarts} restart(s)")
    by_status = Counter(o.status.value for o in r.orders)
    console.print(
        f"{len(r.orders):,} orders ("
        + ", ".join(f"{status} {n:,}" for status, n in sorted(by_status.items()))
        + f"), {len(r.fills):,} fills"
    )
    # A table lays out every row before it prints one: 40,000 rows took 20 s. Past the
    # limit a person wants the count and the end of the day; --json has every row.
    shown_orders = r.orders[-limit:] if limit else r.orders
    shown_fills = r.fills[-limit:] if limit else r.fills
    orders = Table(title="Orders")
    for column in ("client id", "broker id", "symbol", "side", "qty", "status", "filled", "avg"):
        orders.add_column(column)
    for o in shown_orders:
        avg = f"{o.avg_fill_price:.4f}" if o.avg_fill_price is not None else ""
        orders.add_row(
            o.client_order_id,
            o.broker_order_id or "",
            o.symbol,
            o.side.value,
            str(o.quantity),
            o.status.value,
            str(o.filled_qty),
            avg,
        )
    console.print(orders)
    if len(shown_orders) < len(r.orders):
        console.print(f"(the last {limit:,}; {len(r.orders) - limit:,} earlier orders not listed)")
    fills = Table(title="Fills (each counted once)")
    for column in ("trade id", "client id", "qty", "price", "note"):
        fills.add_column(column)
    for f in shown_fills:
        note = "inferred" if f.inferred else (f"replaces {f.replaces}" if f.replaces else "")
        fills.add_row(f.trade_id, f.client_order_id, str(f.quantity), str(f.price), note)
    console.print(fills)
    if len(shown_fills) < len(r.fills):
        console.print(f"(the last {limit:,}; {len(r.fills) - limit:,} earlier fills not listed)")
    positions = Table(title="Positions")
    for column in ("symbol", "quantity", "avg price"):
        positions.add_column(column)
    for p in r.positions:
        positions.add_row(p.symbol, str(p.quantity), f"{p.avg_price:.4f}")
    console.print(positions)
    anomalies = Table(title="Anomalies")
    for column in ("kind", "client id", "detail"):
        anomalies.add_column(column)
    for a in r.anomalies:
        anomalies.add_row(a.kind, a.client_order_id or "", a.detail)
    for coid, gap in r.gaps.items():
        anomalies.add_row("FILL_GAP", coid, f"broker reports {gap} more filled than our fills")
    console.print(anomalies)
    counts = ", ".join(f"{k}={v}" for k, v in sorted(r.counts.items())) or "none"
    console.print(f"anomalies: {counts}")


def _print_summary(r: DemoResult) -> None:
    from rich.table import Table

    from livegate.cli.demo import STATUS_ORDER

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
