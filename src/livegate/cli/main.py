"""The `livegate` command."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import msgspec
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from livegate import __version__
from livegate.broker.paper import PaperAdapter
from livegate.cli.demo import STATUS_ORDER, DemoResult, run_demo
from livegate.cli.fix_demo import run_fix_demo
from livegate.cli.service import serve_command, status_command
from livegate.cli.sim import drill_command, sim_broker_command
from livegate.drills.capture import CaptureError, read_capture
from livegate.drills.ordermatch import OrderMatchMissing, find_binary
from livegate.drills.replay import ReplayResult, replay
from livegate.engine import Gateway, GatewayConfig
from livegate.engine.control import (
    read_trading_state_command,
    write_alert_ack_command,
    write_trading_state_command,
)
from livegate.journal import Journal, SQLiteStore
from livegate.journal.journal import decode_event
from livegate.model import InstrumentRegistry
from livegate.model.enums import TradingState
from livegate.model.events import AlertChanged, TradingStateChanged
from livegate.observe.trace import trace_order
from livegate.recon import Reconciler, ReconConfig, ReconRun
from livegate.recon.report import Report, ReportRow, build_report, write_report

app = typer.Typer(
    help="livegate: a hardened execution gateway between a strategy and a broker.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
app.command("serve")(serve_command)
app.command("status")(status_command)
app.command("sim-broker")(sim_broker_command)
app.command("drill")(drill_command)


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
    run_dir = directory / datetime.now().strftime("run-%Y%m%d-%H%M%S-%f")
    run_dir.mkdir(parents=True, exist_ok=False)
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
    try:
        find_binary(run_dir / "ordermatch")
    except OrderMatchMissing as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
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
        console.print("[red]the two sides of the executions disagree[/]")
        raise typer.Exit(1)
    console.print("[green]both sides of every execution agree[/]")


@app.command("replay")
def replay_command(
    capture: Annotated[Path, typer.Argument(help="A capture: JSON Lines of broker events.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Run a broker event capture through the gateway's ingest, without a broker.

    Prints the final orders, fills and positions, and every anomaly found
    (duplicates, stale reports, fill gaps, reports for unknown orders).
    """
    try:
        lines = read_capture(capture)
    except (OSError, CaptureError) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    result = asyncio.run(replay(lines))
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
        encoder = msgspec.json.Encoder(decimal_format="string")
        typer.echo(encoder.encode(payload).decode())
        return
    _print_replay(capture, result)


@app.command("trading-state")
def trading_state_command(
    directory: Annotated[Path, typer.Argument(help="The gateway's data folder (its journal).")],
    state: Annotated[
        str | None, typer.Argument(help="ACTIVE, REDUCING or HALTED; leave out to show.")
    ] = None,
    who: Annotated[str, typer.Option("--who", help="Who is switching.")] = "",
    why: Annotated[str, typer.Option("--why", help="Why, for the journal.")] = "",
) -> None:
    """Show or switch the gateway's trading state (journaled by the gateway, with who and why).

    The command is left in DIR/control; a running gateway applies it within
    its resolve interval, a stopped one when it starts.
    """
    control = directory / "control"
    if state is None:
        current, history = _trading_state_history(directory / "journal.sqlite")
        console.print(f"trading state: [bold]{current}[/]")
        for ts, st, by, reason, _ in history[-10:]:
            console.print(f"  {ts}  {st:<8} by {by}: {reason}")
        pending = read_trading_state_command(control)
        applied = {c for *_, c in history}
        if pending is not None and pending.command_id not in applied:
            console.print(f"pending: {pending.state} by {pending.who}: {pending.why}")
        return
    try:
        TradingState(state.upper())
    except ValueError:
        console.print(f"[red]error:[/] {state!r} is not ACTIVE, REDUCING or HALTED")
        raise typer.Exit(2) from None
    if not who or not why:
        console.print("[red]error:[/] say --who and --why: the change is journaled with both")
        raise typer.Exit(2)
    command = write_trading_state_command(control, state, who, why)
    console.print(f"requested {command.state} (command {command.command_id})")


def _data_dir_gateway(directory: Path) -> Gateway:
    """The gateway of a data folder with a paper broker beside it (the demo's layout)."""
    journal, book = directory / "journal.sqlite", directory / "paper.sqlite"
    for path in (journal, book):
        if not path.exists():
            console.print(f"[red]error:[/] {path} not found: point at a gateway's data folder")
            raise typer.Exit(2)
    config = GatewayConfig(resolve_interval=1e9, gil_switch_interval=None)
    return Gateway(PaperAdapter(book), Journal(SQLiteStore(journal)), InstrumentRegistry(), config)


@app.command("alerts")
def alerts_command(
    directory: Annotated[Path, typer.Argument(help="The gateway's data folder (its journal).")],
    ack: Annotated[str | None, typer.Option("--ack", help="Acknowledge this alert key.")] = None,
    who: Annotated[str, typer.Option("--who")] = "",
    why: Annotated[str, typer.Option("--why")] = "",
) -> None:
    """Open and recent alerts from the journal; --ack leaves an acknowledgement for the gateway."""
    if ack:
        if not who or not why:
            console.print("[red]error:[/] say --who and --why: the acknowledgement is journaled")
            raise typer.Exit(2)
        command = write_alert_ack_command(directory / "control", ack, who, why)
        console.print(f"acknowledgement of {ack} left for the gateway ({command.command_id})")
        return
    journal = directory / "journal.sqlite"
    if not journal.exists():
        console.print(f"[red]error:[/] {journal} not found: point at a gateway's data folder")
        raise typer.Exit(2)
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT payload FROM events WHERE kind = 'alert' ORDER BY seq"
        ).fetchall()
    changes = [decode_event(payload) for (payload,) in rows]
    latest: dict[str, AlertChanged] = {}
    for change in changes:
        assert isinstance(change, AlertChanged)
        if change.state != "ACKNOWLEDGED" or change.key not in latest:
            latest[change.key] = change
    open_ = {k: c for k, c in latest.items() if c.state != "RESOLVED"}
    console.print(f"open alerts: {len(open_)}")
    for key, change in sorted(open_.items(), key=lambda kv: kv[1].level):
        console.print(f"  [bold]{change.level}[/] {key}: {change.text} ({change.state})")
    table = Table(title="Recent alert history")
    for column in ("time (UTC)", "level", "alert", "state", "text", "who"):
        table.add_column(column, overflow="fold")
    for change in changes[-20:]:
        assert isinstance(change, AlertChanged)
        when = datetime.fromtimestamp(change.ts_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(when, change.level, change.key, change.state, change.text, change.who)
    console.print(table)


@app.command("trace")
def trace_command(
    directory: Annotated[Path, typer.Argument(help="The gateway's data folder (its journal).")],
    client_order_id: Annotated[str, typer.Argument(help="The order to trace.")],
) -> None:
    """The full timeline of one order, from the journal."""
    journal = directory / "journal.sqlite"
    if not journal.exists():
        console.print(f"[red]error:[/] {journal} not found: point at a gateway's data folder")
        raise typer.Exit(2)
    store = SQLiteStore(journal)
    store.open()
    try:
        lines = trace_order(store, client_order_id)
    finally:
        store.close()
    if not lines:
        console.print(f"[red]error:[/] no order {client_order_id!r} in {journal}")
        raise typer.Exit(1)
    table = Table(title=f"Order {client_order_id}")
    for column in ("seq", "time (UTC)", "+us", "event", "detail", "broker->us"):
        table.add_column(column, overflow="fold")
    for line in lines:
        when = datetime.fromtimestamp(line.ts_ns / 1e9, UTC).strftime("%H:%M:%S.%f")
        since = f"{line.since_intent_us:,.0f}" if line.since_intent_us is not None else ""
        lag = f"{line.broker_to_us_us:,.0f} us" if line.broker_to_us_us is not None else ""
        table.add_row(str(line.seq), when, since, line.what, line.detail, lag)
    console.print(table)


@app.command("recon")
def recon_command(
    directory: Annotated[Path, typer.Argument(help="The gateway's data folder.")],
    eod: Annotated[bool, typer.Option("--eod", help="End of day: write the report.")] = False,
    out: Annotated[Path | None, typer.Option("--out", help="Report folder (default: DIR).")] = None,
) -> None:
    """Reconcile orders, trades, positions and cash against the broker.

    With --eod, writes recon-DAY.html / .json / .csv. Exit code 1 when
    differences remain unresolved.
    """

    async def run() -> tuple[ReconRun, Report, dict[str, Path] | None]:
        gateway = _data_dir_gateway(directory)
        await gateway.start()
        try:
            reconciler = Reconciler(gateway, ReconConfig(settle_window=0))
            result = await reconciler.run(eod=True)
            report = build_report(
                reconciler.diffs(open_only=False),
                datetime.now().date(),
                gateway.config.account,
                reconciler.config.policy.describe(),
            )
            paths = write_report(report, out or directory) if eod else None
            return result, report, paths
        finally:
            await gateway.stop()

    result, report, paths = asyncio.run(run())
    _print_diffs([d for d in report.diffs if d.status != "RESOLVED"])
    s = report.summary
    console.print(
        f"{len(result.findings)} difference(s) now; {s.total} diff(s) today,"
        f" {s.unresolved} unresolved; opened {len(result.opened)},"
        f" settled by policy {len(result.auto_resolved)}, cleared {len(result.cleared)}"
    )
    if paths:
        for kind, path in paths.items():
            console.print(f"{kind:>4}: {path}")
    if s.unresolved:
        raise typer.Exit(1)


@app.command("diffs")
def diffs_command(
    directory: Annotated[Path, typer.Argument(help="The gateway's data folder.")],
    show_all: Annotated[bool, typer.Option("--all", help="Resolved ones too.")] = False,
    ack: Annotated[str | None, typer.Option("--ack", help="Acknowledge this diff.")] = None,
    resolve: Annotated[str | None, typer.Option("--resolve", help="Resolve this diff.")] = None,
    action: Annotated[
        str | None,
        typer.Option(help="ADOPT_BROKER, CANCEL_AT_BROKER, MARK_KNOWN or WRITE_OFF."),
    ] = None,
    who: Annotated[str, typer.Option("--who")] = "",
    why: Annotated[str, typer.Option("--why")] = "",
) -> None:
    """List open diffs; acknowledge or resolve one (journaled with who, why, before, after)."""

    async def run() -> list[ReportRow]:
        gateway = _data_dir_gateway(directory)
        await gateway.start()
        try:
            reconciler = Reconciler(gateway)
            if ack:
                await reconciler.acknowledge(ack, who, why)
            if resolve:
                await reconciler.resolve(resolve, action or "", who, why)
            diffs = reconciler.diffs(open_only=not show_all)
            return build_report(diffs, datetime.now().date(), "", []).diffs
        finally:
            await gateway.stop()

    try:
        rows = asyncio.run(run())
    except (ValueError, KeyError) as exc:
        console.print(f"[red]error:[/] {exc.args[0] if exc.args else exc}")
        raise typer.Exit(2) from None
    _print_diffs(rows)


def _print_diffs(rows: list[ReportRow]) -> None:
    table = Table(title="Reconciliation diffs")
    for column in ("id", "kind", "marker", "severity", "subject", "ours", "broker", "status"):
        table.add_column(column, overflow="fold")  # wrap, never cut a marker or a figure
    colours = {"CRITICAL": "red", "WARNING": "yellow", "INFO": "blue"}
    for r in rows:
        colour = colours.get(r.severity, "")
        table.add_row(
            r.id,
            r.kind,
            r.marker,
            f"[{colour}]{r.severity}[/]",
            r.subject,
            r.ours,
            r.theirs,
            r.status,
        )
    console.print(table if rows else "no diffs")


def _trading_state_history(journal: Path) -> tuple[str, list[tuple[str, str, str, str, str]]]:
    if not journal.exists():
        return TradingState.ACTIVE.value, []
    history: list[tuple[str, str, str, str, str]] = []
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT payload FROM events WHERE kind = 'trading_state' ORDER BY seq"
        ).fetchall()
    for (payload,) in rows:
        event = decode_event(payload)
        assert isinstance(event, TradingStateChanged)
        when = datetime.fromtimestamp(event.ts_ns / 1e9).isoformat(timespec="seconds")
        history.append((when, event.state.value, event.who, event.why, event.command_id))
    current = history[-1][1] if history else TradingState.ACTIVE.value
    return current, history


def _print_replay(capture: Path, r: ReplayResult) -> None:
    console.print(f"[bold]replay[/] {capture} · {r.restarts} restart(s)")
    orders = Table(title="Orders")
    for column in ("client id", "broker id", "symbol", "side", "qty", "status", "filled", "avg"):
        orders.add_column(column)
    for o in r.orders:
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
    fills = Table(title="Fills (each counted once)")
    for column in ("trade id", "client id", "qty", "price", "note"):
        fills.add_column(column)
    for f in r.fills:
        note = "inferred" if f.inferred else (f"replaces {f.replaces}" if f.replaces else "")
        fills.add_row(f.trade_id, f.client_order_id, str(f.quantity), str(f.price), note)
    console.print(fills)
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
