"""`livegate recon` and `livegate diffs`: reconciliation of a stopped paper deployment.

These open the data folder's own gateway (journal and paper book), so they
run only while no gateway holds the journal; a running `livegate serve`
reconciles on its own schedule and raises its differences as alerts.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from livegate.cli.datadir import DirOption, LegacyDirArgument, choose_dir, journal_of
from livegate.cli.output import console, fail, say

if TYPE_CHECKING:
    from livegate.engine import Gateway
    from livegate.recon import ReconRun
    from livegate.recon.report import Report, ReportRow


def _data_dir_gateway(directory: Path) -> Gateway:
    """The gateway of a data folder with a paper broker beside it (the demo's layout)."""
    from livegate.broker.paper import PaperAdapter
    from livegate.engine import Gateway, GatewayConfig
    from livegate.journal import Journal, SQLiteStore
    from livegate.journal.lock import is_locked
    from livegate.model import InstrumentRegistry

    journal = journal_of(directory)
    if is_locked(journal):
        fail(
            f"a gateway is running on {directory}: it reconciles on its own schedule and"
            " raises differences as alerts (livegate alerts --dir); stop it to run this"
        )
    book = directory / "paper.sqlite"
    if not book.exists():
        fail(f"{book} not found: recon and diffs need the paper broker's book beside the journal")
    config = GatewayConfig(resolve_interval=1e9, gil_switch_interval=None)
    return Gateway(PaperAdapter(book), Journal(SQLiteStore(journal)), InstrumentRegistry(), config)


def recon_command(
    legacy_dir: LegacyDirArgument = None,
    directory: DirOption = None,
    eod: Annotated[bool, typer.Option("--eod", help="End of day: write the report.")] = False,
    out: Annotated[Path | None, typer.Option("--out", help="Report folder (default: DIR).")] = None,
) -> None:
    """Reconcile orders, trades, positions and cash against the broker.

    With --eod, writes recon-DAY.html / .json / .csv. Exit code 1 when
    differences remain unresolved.
    """
    from livegate.recon import Reconciler, ReconConfig
    from livegate.recon.report import build_report, write_report

    directory = choose_dir(legacy_dir, directory)
    gateway = _data_dir_gateway(directory)

    async def run() -> tuple[ReconRun, Report, dict[str, Path] | None]:
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
    print_diffs([d for d in report.diffs if d.status != "RESOLVED"])
    s = report.summary
    say(
        f"{len(result.findings)} difference(s) now; {s.total} diff(s) today,"
        f" {s.unresolved} unresolved; opened {len(result.opened)},"
        f" settled by policy {len(result.auto_resolved)}, cleared {len(result.cleared)}"
    )
    if paths:
        for kind, path in paths.items():
            say(f"{kind:>4}: {path}")
    if s.unresolved:
        raise typer.Exit(1)


def diffs_command(
    legacy_dir: LegacyDirArgument = None,
    directory: DirOption = None,
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
    from livegate.model.diffs import Resolution
    from livegate.recon import Reconciler
    from livegate.recon.report import build_report

    actions = [r.value for r in Resolution if r is not Resolution.CLEARED]
    if resolve and (action is None or action.upper() not in actions):
        given = f"{action!r} is not an action" if action else "--resolve needs --action"
        fail(f"{given}: choose one of {', '.join(actions)}")
    directory = choose_dir(legacy_dir, directory)
    gateway = _data_dir_gateway(directory)

    async def run() -> list[ReportRow]:
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
        fail(str(exc.args[0] if exc.args else exc))
    print_diffs(rows)


def print_diffs(rows: list[ReportRow]) -> None:
    from rich.table import Table

    if not rows:
        say("no diffs")
        return
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
    console.print(table)
