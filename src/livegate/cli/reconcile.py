"""`livegate recon` and `livegate diffs`, for every adapter.

With a gateway running on the data folder (`livegate serve`), the request
goes through its control folder and the gateway's own reconciler answers:
it holds the broker connection, and the journal has one writer. Listing
diffs reads the journal read-only, running gateway or not. With no gateway
running, a paper deployment (the demo's layout, the paper book beside the
journal) is reconciled by a gateway opened here; any other broker can only
be asked through its running gateway.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from livegate.cli.datadir import (
    DirOption,
    LegacyDirArgument,
    ask_service,
    choose_dir,
    journal_of,
)
from livegate.cli.output import console, fail, say

ServiceWait = Annotated[
    float,
    typer.Option("--wait", min=0.1, help="Seconds to wait for a running gateway's answer."),
]

if TYPE_CHECKING:
    from livegate.engine import Gateway
    from livegate.model.diffs import Diff
    from livegate.recon import ReconRun
    from livegate.recon.report import Report, ReportRow


def _running(directory: Path) -> bool:
    from livegate.journal.locate import writer_running

    return writer_running(journal_of(directory))


def _report_of(answer: dict[str, Any]) -> Report:
    import msgspec

    from livegate.recon.report import Report

    return msgspec.convert(answer["report"], Report)


def _data_dir_gateway(directory: Path) -> Gateway:
    """The gateway of a stopped data folder with a paper broker beside it (the demo's)."""
    from livegate.broker.paper import PaperAdapter
    from livegate.engine import Gateway, GatewayConfig
    from livegate.journal import Journal, SQLiteStore
    from livegate.journal.locate import postgres_of
    from livegate.model import InstrumentRegistry

    journal = journal_of(directory)
    book = directory / "paper.sqlite"
    if postgres_of(journal) is not None:
        fail(
            f"no gateway is running on {directory}, and its PostgreSQL journal is written only"
            " by the gateway holding the account's lease: start it (livegate serve)"
        )
    if not book.exists():
        fail(
            f"no gateway is running on {directory}, and only a running gateway can ask this"
            " broker: start it (livegate serve) and run this again"
        )
    config = GatewayConfig(resolve_interval=1e9, gil_switch_interval=None)
    return Gateway(PaperAdapter(book), Journal(SQLiteStore(journal)), InstrumentRegistry(), config)


def recon_command(
    legacy_dir: LegacyDirArgument = None,
    directory: DirOption = None,
    eod: Annotated[bool, typer.Option("--eod", help="End of day: write the report.")] = False,
    out: Annotated[Path | None, typer.Option("--out", help="Report folder (default: DIR).")] = None,
    wait: ServiceWait = 60.0,
) -> None:
    """Reconcile orders, trades, positions and cash against the broker.

    With --eod, writes recon-DAY.html / .json / .csv. Exit code 1 when
    differences remain unresolved.
    """
    from livegate.recon import Reconciler, ReconConfig
    from livegate.recon.report import build_report, write_report

    directory = choose_dir(legacy_dir, directory)
    if _running(directory):
        target = str((out or directory).resolve())
        answer = ask_service(directory, "run", wait, eod=eod, out=target)
        report = _report_of(answer)
        found, opened = answer["findings"], len(answer["opened"])
        settled, cleared = len(answer["auto_resolved"]), len(answer["cleared"])
        paths = {k: Path(v) for k, v in answer.get("paths", {}).items()} or None
    else:
        gateway = _data_dir_gateway(directory)

        async def run() -> tuple[ReconRun, Report, dict[str, Path] | None]:
            await gateway.start()
            try:
                reconciler = Reconciler(gateway, ReconConfig(settle_window=0))
                if eod:  # journaled for the go-live gate, like the service's close
                    return await reconciler.end_of_day(datetime.now().date(), out or directory)
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
        found, opened = len(result.findings), len(result.opened)
        settled, cleared = len(result.auto_resolved), len(result.cleared)
    print_diffs([d for d in report.diffs if d.status != "RESOLVED"])
    s = report.summary
    say(
        f"{found} difference(s) now; {s.total} diff(s) today,"
        f" {s.unresolved} unresolved; opened {opened},"
        f" settled by policy {settled}, cleared {cleared}"
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
    wait: ServiceWait = 60.0,
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
    journal = journal_of(directory)
    if not ack and not resolve:
        diffs = _journal_diffs(journal, open_only=not show_all)
        print_diffs(build_report(diffs, datetime.now().date(), "", []).diffs)
        return
    if _running(directory):
        op, diff_id = ("resolve", resolve) if resolve else ("ack", ack)
        answer = ask_service(
            directory, op, wait, diff_id=diff_id, action=action or "", who=who, why=why,
            show_all=show_all,
        )  # fmt: skip
        print_diffs(_report_of(answer).diffs)
        return
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


def _journal_diffs(journal: Path, open_only: bool) -> list[Diff]:
    """Every diff as the journal has it (read-only): for any adapter, running or not."""
    from livegate.engine.order_book import OrderBook
    from livegate.journal.sqlite import events_of_kinds

    book = OrderBook()
    for event in events_of_kinds(journal, "diff_opened", "diff_acknowledged", "diff_resolved"):
        book.apply(event)
    return book.open_diffs() if open_only else list(book.diffs.values())


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
