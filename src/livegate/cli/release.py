"""Release controls from a shell: `livegate rollout`, `livegate safe-stop`, `livegate config`.

Like every operator command, these never write a gateway's journal: a
change goes to the running gateway as a control command and is confirmed
from its journal (exit 3 when no gateway confirms: the command stays
queued and a stopped gateway applies it when it starts).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from livegate.cli.datadir import (
    DirOption,
    WaitOption,
    ask_service,
    journal_of,
    send_and_confirm,
)
from livegate.cli.output import console, fail, say

DEFAULT_DIR = Path("livegate-service")
STILL_OPEN = 4  # exit code: the safe-stop was applied but orders (or positions) remain


def rollout_command(
    stage: Annotated[
        str | None, typer.Argument(help="The stage to move to; leave out to show.")
    ] = None,
    directory: DirOption = None,
    who: Annotated[str, typer.Option("--who", help="Who is changing the stage.")] = "",
    why: Annotated[str, typer.Option("--why", help="Why, for the journal.")] = "",
    wait: WaitOption = 10.0,
    as_json: Annotated[bool, typer.Option("--json", help="Show as JSON.")] = False,
) -> None:
    """Show the rollout stage, its limits and today's use of each cap; or change it.

    A change is journaled by the gateway with who and why and holds from its
    next order, across restarts. Stages come from the profile's rollout file
    (docs/release.md).
    """
    directory = directory or DEFAULT_DIR
    journal_of(directory)
    shown = _rollout_view(directory)
    if stage is None:
        if shown is None:
            fail(f"{directory}: no rollout file is loaded (name one in the profile: rollout = ...)")
        if as_json:
            say(json.dumps(shown, indent=2))
        else:
            _print_rollout(shown)
        return
    if shown is None:
        fail(f"{directory}: no rollout file is loaded: there are no stages to move to")
    if stage not in shown["stages"]:
        fail(f"no stage {stage!r}: the rollout file in force has {', '.join(shown['stages'])}")
    if not who or not why:
        fail("say --who and --why: the change is journaled with both")
    from livegate.engine.control import write_stage_command

    seq = send_and_confirm(
        directory,
        "rollout_stage",
        lambda: write_stage_command(directory / "control", stage, who, why).command_id,
        wait,
        f"rollout stage {stage}",
    )
    say(f"rollout stage {stage}: applied by the gateway (journal seq {seq})")


def _rollout_view(directory: Path) -> dict[str, Any] | None:
    """From the running gateway's status, else from the journal, replayed read-only."""
    from livegate.ops.service import read_status

    status = read_status(directory)
    if status is not None and status.get("running") and "rollout" in status:
        age = (time.time_ns() - status["updated_ns"]) / 1e9
        if age < 10:
            view: dict[str, Any] | None = status["rollout"]
            return view
    return _replayed_rollout(directory)


def _replayed_rollout(directory: Path) -> dict[str, Any] | None:
    import tomllib

    from livegate.engine.order_book import OrderBook
    from livegate.journal import replay_file
    from livegate.model.instrument import InstrumentRegistry
    from livegate.ops.release_status import rollout_status
    from livegate.ops.snapshots import find_release
    from livegate.risk.engine import RiskEngine
    from livegate.risk.limits import RiskLimits
    from livegate.risk.reference import load_instruments
    from livegate.risk.rollout import RolloutGuard, parse_plan

    try:
        record = find_release(directory, "latest").record
    except ValueError:
        return None
    files = {f.role: f for f in record.files}
    if "rollout" not in files:
        return None
    plan = parse_plan(tomllib.loads(files["rollout"].content))
    instruments = InstrumentRegistry()
    if "reference" in files and Path(files["reference"].path).exists():
        instruments = InstrumentRegistry(load_instruments(Path(files["reference"].path)))
    book = OrderBook(instruments)
    for _, event in replay_file(directory / "journal.sqlite"):
        book.apply(event)
    risk = RiskEngine(RiskLimits(), instruments, rollout=RolloutGuard(plan))
    risk.rebuild(book.open_orders(), book.orders.values(), book.fills)
    return rollout_status(risk, book)


def _print_rollout(view: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"rollout stage {view['stage']} ({view['day']}, {view['timezone']})")
    for column in ("limit", "value", "used today"):
        table.add_column(column, overflow="fold")
    used = view.get("used", {})
    for name, value in view["limits"].items():
        shown = ", ".join(value) if isinstance(value, list) else str(value)
        table.add_row(name, shown, str(used.get(name, "")))
    if not view["limits"]:
        table.add_row("(none)", "only the risk file's limits apply", "")
    console.print(table)
    say(f"stages: {' -> '.join(view['stages'])}")


def safe_stop_command(
    directory: DirOption = None,
    who: Annotated[str, typer.Option("--who", help="Who is stopping.")] = "",
    why: Annotated[str, typer.Option("--why", help="Why, for the journal.")] = "",
    flatten: Annotated[
        bool, typer.Option("--flatten", help="Then close positions with reduce-only orders.")
    ] = False,
    wait: WaitOption = 30.0,
) -> None:
    """The kill switch: HALTED, then cancel every open order (then flatten).

    Prints what remains open and how long it took. Exit 0 when nothing
    remains open, 4 when something does (the gateway goes on cancelling it
    once the broker is back), 3 when no gateway confirmed. A second
    safe-stop sends nothing new.
    """
    directory = directory or DEFAULT_DIR
    journal = journal_of(directory)
    if not who or not why:
        fail("say --who and --why: the safe-stop is journaled with both")
    from livegate.engine.control import write_safe_stop_command

    sent: list[str] = []

    def send() -> str:
        command = write_safe_stop_command(directory / "control", who, why, flatten)
        sent.append(command.command_id)
        return command.command_id

    seq = send_and_confirm(directory, "safe_stop", send, wait, "safe-stop")
    say(f"safe-stop: HALTED and applied by the gateway (journal seq {seq})")
    report = _wait_for_report(journal, sent[0], wait)
    if report is None:
        say(f"safe-stop: no report within {wait:g}s; the gateway goes on (livegate status)")
        raise typer.Exit(STILL_OPEN)
    say(
        f"safe-stop: {report['cancelled']} cancels sent, {len(report['remaining'])} orders"
        f" still open, {len(report['flattened'])} closing orders; {report['millis']} ms"
        " from the command"
    )
    for line in report["refused"]:
        say(f"  refused by the broker: {line}")
    for coid in report["remaining"]:
        say(f"  still open: {coid}")
    if not report["complete"]:
        raise typer.Exit(STILL_OPEN)


def _wait_for_report(journal: Path, command_id: str, wait: float) -> dict[str, Any] | None:
    import msgspec

    from livegate.journal.sqlite import events_of_kinds

    deadline = time.monotonic() + wait
    while True:
        for event in reversed(events_of_kinds(journal, "safe_stop_report")):
            data: dict[str, Any] = msgspec.to_builtins(event)
            if data["command_id"] == command_id:
                return data
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.1)


config_app = typer.Typer(
    help="Config snapshots: what each release ran, and rollback.",
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
)


@config_app.command("list")
def config_list(directory: DirOption = None) -> None:
    """Every config this data folder ran (from the journal's release records)."""
    from datetime import UTC, datetime

    from rich.table import Table

    from livegate.ops.snapshots import SnapshotError, releases

    directory = directory or DEFAULT_DIR
    journal_of(directory)
    try:
        known = releases(directory)
    except SnapshotError as exc:
        fail(str(exc))
    if not known:
        say("no release recorded yet")
        return
    table = Table(title=f"releases in {directory}")
    for column in ("id", "livegate", "adapter", "profile", "first start", "last start", "starts"):
        table.add_column(column, overflow="fold")
    for r in sorted(known, key=lambda r: r.last_ns):
        first = datetime.fromtimestamp(r.first_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S")
        last = datetime.fromtimestamp(r.last_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S")
        adapter = f"{r.record.adapter_module} {r.record.adapter_version}"
        table.add_row(
            r.record.config_id,
            r.record.livegate_version,
            adapter,
            r.record.profile_name or "-",
            first,
            last,
            str(r.starts),
        )
    console.print(table)


@config_app.command("show")
def config_show(
    snapshot: Annotated[str, typer.Argument(help="A config id (or prefix), latest, previous.")],
    directory: DirOption = None,
) -> None:
    """One release's versions and files, whole."""
    from livegate.ops.snapshots import SnapshotError, find_release

    directory = directory or DEFAULT_DIR
    journal_of(directory)
    try:
        record = find_release(directory, snapshot).record
    except SnapshotError as exc:
        fail(str(exc))
    say(f"config {record.config_id}: livegate {record.livegate_version}, {record.python}")
    say(f"adapter {record.adapter_module} {record.adapter_version}")
    for f in record.files:
        say(f"--- {f.role}: {f.path} (sha256 {f.sha256[:16]})")
        typer.echo(f.content, nl=not f.content.endswith("\n"))


@config_app.command("diff")
def config_diff(
    a: Annotated[str, typer.Argument(help="A config id (or prefix), latest, previous.")],
    b: Annotated[str, typer.Argument(help="Another.")],
    directory: DirOption = None,
) -> None:
    """What changed between two releases: versions and a unified diff per file."""
    from livegate.ops.snapshots import SnapshotError, diff, find_release

    directory = directory or DEFAULT_DIR
    journal_of(directory)
    try:
        left, right = find_release(directory, a).record, find_release(directory, b).record
    except SnapshotError as exc:
        fail(str(exc))
    text = diff(left, right)
    typer.echo(text or f"{left.config_id} and {right.config_id} are the same", nl=not text)


@config_app.command("rollback")
def config_rollback(
    snapshot: Annotated[str, typer.Argument(help="A config id (or prefix), or previous.")],
    directory: DirOption = None,
) -> None:
    """Write a release's files back (the current ones are kept as a snapshot first),
    then print the command that restarts on them."""
    from livegate.ops.snapshots import SnapshotError, rollback

    directory = directory or DEFAULT_DIR
    journal_of(directory)
    try:
        result = rollback(directory, snapshot)
    except (SnapshotError, OSError) as exc:
        fail(str(exc))
    say(f"rolled back to config {result.restored.config_id}")
    say(f"the files as they were are kept as snapshot {result.saved_as}")
    for path in result.written:
        say(f"  wrote {path}")
    if result.install:
        say(result.install)
    say("restart on it (stop the running service first):")
    say(f"  {result.restart}")


def fallback_command(
    venue: Annotated[str, typer.Argument(help="paper (the embedded paper broker) or live.")],
    directory: DirOption = None,
    who: Annotated[str, typer.Option("--who", help="Who is switching.")] = "",
    why: Annotated[str, typer.Option("--why", help="Why, for the journal.")] = "",
    wait: WaitOption = 30.0,
) -> None:
    """Switch a running service to the paper broker, or back to live, without stopping
    its strategy.

    To paper: live open orders are cancelled first, the paper book starts from
    the live broker's positions and cash. Back to live: only when the live
    connection opens and reconciliation against it finds no difference. Exit 1
    when refused (the reason is printed), 3 when no service answered.
    """
    from livegate.journal.locate import writer_running

    directory = directory or DEFAULT_DIR
    journal = journal_of(directory)
    if venue not in ("paper", "live"):
        fail(f"fallback to {venue!r}: choose paper or live")
    if not who or not why:
        fail("say --who and --why: the switch is journaled with both")
    if not writer_running(journal):
        fail(f"no gateway is running on {directory}: a fallback switches a running service", 3)
    answer = ask_service(
        directory, "fallback", wait, f"fallback to {venue} refused: ", 1,
        action=venue, who=who, why=why,
    )  # fmt: skip
    where = f" (paper book {answer['paper_book']})" if answer.get("paper_book") else ""
    say(f"fallback: orders now go to {answer['venue']}{where}; journaled with who and why")
