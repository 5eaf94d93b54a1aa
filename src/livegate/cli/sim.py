"""`livegate sim-broker`: the simulated broker as its own process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from livegate.cli.output import console, fail

if TYPE_CHECKING:
    from livegate.ops.profiles import Profile

KEYS_VARIABLE = "LIVEGATE_SIM_BROKER_KEYS"


def sim_broker_command(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where the broker keeps its book.")
    ] = Path("livegate-sim"),
    port: Annotated[int, typer.Option("--port", help="Trading port (0: any free one).")] = 7001,
    control_port: Annotated[
        int, typer.Option("--control-port", help="Fault-control port (0: any free one).")
    ] = 7002,
    environment: Annotated[
        str, typer.Option("--environment", help="The environment this broker serves.")
    ] = "sim",
    keys_file: Annotated[
        Path | None,
        typer.Option("--keys-file", help=f"Accepted API keys, one a line (else ${KEYS_VARIABLE})."),
    ] = None,
    heartbeat: Annotated[
        float, typer.Option("--heartbeat", help="Seconds between heartbeats.")
    ] = 1.0,
    forget_open_orders: Annotated[
        bool,
        typer.Option("--forget-open-orders", help="Start without the open orders (lost state)."),
    ] = False,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict", help="Refuse unknown symbols, off-tick prices and buys beyond the cash."
        ),
    ] = False,
) -> None:
    """Run the simulated broker on 127.0.0.1 (protocol: docs/sim-broker.md).

    Prints one JSON line with its ports once it listens. Stops on SIGTERM or Ctrl-C.
    """
    from decimal import Decimal

    from livegate.broker.paper import PaperConfig
    from livegate.model.samples import DEMO_START_PRICES
    from livegate.sim import SimBroker

    if keys_file is not None:
        keys = {k.strip() for k in keys_file.read_text().splitlines() if k.strip()}
    else:
        keys = {k.strip() for k in os.environ.get(KEYS_VARIABLE, "").split(",") if k.strip()}
    if not keys:
        fail(f"no API keys: use --keys-file or set {KEYS_VARIABLE}")

    async def run() -> None:
        paper = None
        if strict:  # the demo market, checked as a real broker checks it
            paper = PaperConfig(
                initial_cash=Decimal(10_000_000),
                displayed_liquidity=Decimal(10) ** 6,
                listed=frozenset(DEMO_START_PRICES),
                tick_size=Decimal("0.01"),
                check_funds=True,
            )
        broker = SimBroker(directory, keys, environment, paper, heartbeat_interval=heartbeat)
        await broker.start(port, control_port, forget_open_orders)
        print(json.dumps({"port": broker.port, "control_port": broker.control_port}), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await broker.stop()

    asyncio.run(run())
    sys.exit(0)


def drill_command(
    scenario: Annotated[str, typer.Argument(help="A drill name, or all.")],
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Keep the drill's files here (default: temporary).")
    ] = None,
    orders: Annotated[
        int | None,
        typer.Option("--orders", min=9, help="Orders across the drill (300; --fast 90)."),
    ] = None,
    fast: Annotated[bool, typer.Option("--fast", help="Short timings (as the tests use).")] = False,
    evidence: Annotated[
        Path | None,
        typer.Option(
            "--evidence",
            help="A gateway's data folder: its gateway journals each verdict (for the gate).",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Profiles file: the rollback drill rolls back its files."),
    ] = None,
    profile_name: Annotated[
        str | None,
        typer.Option("--profile", help="A profile of --config (rollback, trading-day)."),
    ] = None,
    speed: Annotated[
        float, typer.Option("--speed", min=1, max=100_000, help="trading-day: clock speed.")
    ] = 400.0,
    day: Annotated[
        str | None, typer.Option("--day", help="trading-day: YYYY-MM-DD (default: the last).")
    ] = None,
) -> None:
    """Run a failure drill against a sim broker it starts itself; exit 1 if it fails.

    Drills: network-outage, stalled-connection, delayed-reports, partial-fills,
    broker-restart, broker-restart-lost-state, duplicate-reports,
    reordered-reports, throttling, auth-failure, rollback (config A, B, back
    to A: orders, positions, limits and stage as A left them), or all.
    trading-day (with --config/--profile of a sim or paper profile): a whole
    session of the profile's calendar served on a clock --speed times as fast.
    """
    import tempfile

    from rich.table import Table

    from livegate.drills.faults import SCENARIOS, DrillTimings, Verdict, run_drill
    from livegate.drills.rollback import run_rollback_drill

    if scenario == "trading-day":
        _trading_day(_drill_profile(config, profile_name), speed, day)
        return
    drills = (*SCENARIOS, "rollback")
    chosen = list(drills) if scenario == "all" else [scenario]
    unknown = [s for s in chosen if s not in drills]
    if unknown:
        fail(f"unknown drill {unknown[0]!r}; choose from: all, {', '.join(drills)}")
    profile = _drill_profile(config, profile_name)
    if profile is not None and evidence is None:
        evidence = Path(profile.data_dir)
    if evidence is not None:
        from livegate.cli.datadir import journal_of

        journal_of(evidence)  # a typo must not swallow the evidence
    timings = DrillTimings.fast() if fast else DrillTimings()
    if orders is not None:
        timings.orders = orders
    base = directory or Path(tempfile.mkdtemp(prefix="livegate-drill-"))
    verdicts: list[Verdict] = []
    for name in chosen:
        with console.status(f"drill {name}…"):
            if name == "rollback":
                verdict = asyncio.run(run_rollback_drill(base / name, evidence, profile))
            else:
                verdict = asyncio.run(run_drill(name, base / name, timings, evidence=evidence))
        verdicts.append(verdict)
        table = Table(title=f"drill {name}: {'PASS' if verdict.passed else 'FAIL'}")
        table.add_column("check")
        table.add_column("", justify="center")
        table.add_column("detail")
        for check in verdict.checks:
            table.add_row(check.name, "[green]ok[/]" if check.ok else "[red]FAIL[/]", check.detail)
        recovery = (
            f"{verdict.recovery_seconds:.2f}s" if verdict.recovery_seconds is not None else "-"
        )
        table.caption = (
            f"{verdict.orders} orders, {verdict.fills} fills, recovery {recovery},"
            f" drill took {verdict.seconds:.1f}s"
        )
        console.print(table)
    if len(verdicts) > 1:
        summary = Table(title="drills")
        for column in ("drill", "verdict", "recovery", "orders", "fills"):
            summary.add_column(column)
        for v in verdicts:
            summary.add_row(
                v.scenario,
                "[green]PASS[/]" if v.passed else "[red]FAIL[/]",
                f"{v.recovery_seconds:.2f}s" if v.recovery_seconds is not None else "-",
                str(v.orders),
                str(v.fills),
            )
        console.print(summary)
    console.print(f"drill files in {base}")
    if not all(v.passed for v in verdicts):
        raise typer.Exit(1)


def _drill_profile(config: Path | None, name: str | None) -> Profile | None:
    """The profile whose config files the rollback drill proves (both options or none)."""
    from livegate.ops.config_files import load_config
    from livegate.ops.profiles import ProfileError, load_profiles

    if (config is None) != (name is None):
        fail("--config and --profile go together")
    if config is None or name is None:
        return None
    try:
        profiles = load_profiles(config)
        if name not in profiles:
            raise ProfileError(f"{config}: no profile {name!r} (it has: {', '.join(profiles)})")
        load_config(profiles[name])  # a bad file refuses here, before any drill runs
    except ProfileError as exc:
        fail(str(exc))
    return profiles[name]


def _trading_day(profile: Profile | None, speed: float, day: str | None) -> None:
    """A compressed whole session through the profile's broker, into its data folder."""
    import datetime as dt

    from livegate.drills.trading_day import DayPlan, run_trading_day
    from livegate.ops.profiles import ProfileError

    if profile is None:
        fail("the trading-day drill needs --config and --profile (a sim or paper profile)")
    try:
        chosen = dt.date.fromisoformat(day) if day else None
    except ValueError:
        fail(f"--day {day!r}: write YYYY-MM-DD")
    try:
        with console.status("a trading day…"):
            run = asyncio.run(run_trading_day(profile, DayPlan(day=chosen, speed=speed)))
    except (ProfileError, ValueError) as exc:
        fail(str(exc))
    tz = profile.calendar
    from livegate.risk.sessions import calendar_timezone

    typer.echo(
        f"trading day {run.session.describe(calendar_timezone(tz))} ({tz}) at {speed:g}x:"
        f" {run.orders} orders, {len(run.refused)} refused, in {run.seconds:.1f}s;"
        f" journaled in {profile.data_dir}"
    )
