"""What an operator does to a gateway from outside it: trading state, alerts, traces.

None of these commands writes the journal: they read it read-only, and what
they change reaches the gateway as a command in its control folder, which
the gateway journals itself. A command that changes something waits for the
running gateway to confirm it (`--wait`), so "requested" never passes for
"done".
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from livegate.cli.datadir import (
    DirOption,
    LegacyDirArgument,
    WaitOption,
    choose_dir,
    journal_of,
    send_and_confirm,
)
from livegate.cli.output import console, fail, say

STATES = ("ACTIVE", "REDUCING", "HALTED")


def trading_state_command(
    args: Annotated[
        list[str] | None,
        typer.Argument(
            help="ACTIVE, REDUCING or HALTED; leave out to show. (Deprecated: DIR STATE.)",
            show_default=False,
        ),
    ] = None,
    directory: DirOption = None,
    who: Annotated[str, typer.Option("--who", help="Who is switching.")] = "",
    why: Annotated[str, typer.Option("--why", help="Why, for the journal.")] = "",
    wait: WaitOption = 10.0,
) -> None:
    """Show or switch the gateway's trading state (journaled by the gateway, with who and why).

    The command is left in DIR/control and applied by the running gateway
    within its resolve interval; this waits for the gateway to confirm.
    Exit 3 when no gateway confirms: the command stays queued and a stopped
    gateway applies it when it starts.
    """
    legacy, state = _split_state_args(args or [], directory)
    directory = choose_dir(legacy, directory)
    journal = journal_of(directory)
    if state is None:
        _show_trading_state(directory, journal)
        return
    if state.upper() not in STATES:
        fail(f"{state!r} is not a trading state: choose ACTIVE, REDUCING or HALTED")
    if not who or not why:
        fail("say --who and --why: the change is journaled with both")
    from livegate.engine.control import write_trading_state_command

    target = state.upper()
    seq = send_and_confirm(
        directory,
        "trading_state",
        lambda: write_trading_state_command(directory / "control", target, who, why).command_id,
        wait,
        f"trading state {target}",
    )
    say(f"trading state {target}: applied by the gateway (journal seq {seq})")


def _split_state_args(args: list[str], option: Path | None) -> tuple[Path | None, str | None]:
    """(deprecated folder argument, state) from the positional arguments."""
    if len(args) > 2:
        fail(f"too many arguments: {' '.join(args)}")
    if len(args) == 2:
        return Path(args[0]), args[1]
    if not args:
        return None, None
    only = args[0]
    if only.upper() in STATES or option is not None or not Path(only).is_dir():
        return None, only
    return Path(only), None  # the deprecated `trading-state DIR` (show)


def _show_trading_state(directory: Path, journal: Path) -> None:
    from livegate.engine.control import read_trading_state_command
    from livegate.journal.sqlite import events_of_kinds
    from livegate.model.events import TradingStateChanged

    history = [
        e for e in events_of_kinds(journal, "trading_state") if isinstance(e, TradingStateChanged)
    ]
    current = history[-1].state.value if history else "ACTIVE"
    say(f"trading state: {current}")
    for event in history[-10:]:
        when = datetime.fromtimestamp(event.ts_ns / 1e9).isoformat(timespec="seconds")
        say(f"  {when}  {event.state.value:<8} by {event.who}: {event.why}")
    pending = read_trading_state_command(directory / "control")
    if pending is not None and pending.command_id not in {e.command_id for e in history}:
        say(f"pending: {pending.state} by {pending.who}: {pending.why}")


def alerts_command(
    legacy_dir: LegacyDirArgument = None,
    directory: DirOption = None,
    ack: Annotated[str | None, typer.Option("--ack", help="Acknowledge this alert key.")] = None,
    who: Annotated[str, typer.Option("--who")] = "",
    why: Annotated[str, typer.Option("--why")] = "",
    wait: WaitOption = 10.0,
) -> None:
    """Open and recent alerts from the journal; --ack acknowledges one through the gateway."""
    from livegate.journal.sqlite import events_of_kinds
    from livegate.model.events import AlertChanged

    directory = choose_dir(legacy_dir, directory)
    journal = journal_of(directory)
    from livegate.observe.alerts import open_alerts

    changes = [c for c in events_of_kinds(journal, "alert") if isinstance(c, AlertChanged)]
    open_ = open_alerts(changes)
    if ack:
        if not who or not why:
            fail("say --who and --why: the acknowledgement is journaled")
        if ack not in open_:
            known = ", ".join(sorted(open_)) or "none"
            fail(f"no open alert {ack!r} in {directory} (open: {known})")
        from livegate.engine.control import write_alert_ack_command

        seq = send_and_confirm(
            directory,
            "alert",
            lambda: write_alert_ack_command(directory / "control", ack, who, why).command_id,
            wait,
            f"acknowledgement of {ack}",
        )
        say(f"alert {ack}: acknowledged by the gateway (journal seq {seq})")
        return
    from rich.table import Table

    say(f"open alerts: {len(open_)}")
    for key, change in sorted(open_.items(), key=lambda kv: kv[1].level):
        say(f"  {change.level} {key}: {change.text} ({change.state})")
    table = Table(title="Recent alert history")
    for column in ("time (UTC)", "level", "alert", "state", "text", "who"):
        table.add_column(column, overflow="fold")
    for change in changes[-20:]:
        when = datetime.fromtimestamp(change.ts_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(when, change.level, change.key, change.state, change.text, change.who)
    console.print(table)


def trace_command(
    args: Annotated[
        list[str],
        typer.Argument(help="CLIENT_ORDER_ID (deprecated: DIR CLIENT_ORDER_ID).", metavar="ID"),
    ],
    directory: DirOption = None,
) -> None:
    """The full timeline of one order, from the journal."""
    from rich.table import Table

    from livegate.journal.locate import open_reader
    from livegate.observe.trace import trace_order

    if len(args) > 2:
        fail(f"too many arguments: {' '.join(args)}")
    legacy = Path(args[0]) if len(args) == 2 else None
    client_order_id = args[-1]
    directory = choose_dir(legacy, directory)
    journal = journal_of(directory)
    store = open_reader(journal)
    try:
        lines = trace_order(store, client_order_id)
    finally:
        store.close()
    if not lines:
        fail(f"no order {client_order_id!r} in {journal}", 1)
    table = Table(title=f"Order {client_order_id}")
    for column in ("seq", "time (UTC)", "+us", "event", "detail", "broker->us"):
        table.add_column(column, overflow="fold")
    for line in lines:
        when = datetime.fromtimestamp(line.ts_ns / 1e9, UTC).strftime("%H:%M:%S.%f")
        since = f"{line.since_intent_us:,.0f}" if line.since_intent_us is not None else ""
        lag = f"{line.broker_to_us_us:,.0f} us" if line.broker_to_us_us is not None else ""
        table.add_row(str(line.seq), when, since, line.what, line.detail, lag)
    console.print(table)
