"""`livegate serve` and `livegate status`: the gateway as a service, and a look at it."""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from livegate.cli.output import console, fail, say

if TYPE_CHECKING:
    from livegate.engine import Gateway
    from livegate.ops.service import Strategy


def _load_strategy(spec: str) -> Strategy:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise typer.BadParameter(f"{spec!r}: expected MODULE:FUNCTION")
    try:
        strategy = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise typer.BadParameter(f"{spec!r}: {exc}") from exc
    if not callable(strategy):
        raise typer.BadParameter(f"{spec!r} is not callable")
    return strategy  # type: ignore[no-any-return]


def serve_command(
    directory: Annotated[
        Path, typer.Option("--dir", help="Data folder: journal, paper book, logs, status.")
    ] = Path("livegate-service"),
    metrics_port: Annotated[
        int, typer.Option("--metrics-port", help="Serve /metrics here (0: any free port).")
    ] = 9108,
    metrics_address: Annotated[str, typer.Option("--metrics-address")] = "127.0.0.1",
    environment: Annotated[str, typer.Option("--environment")] = "paper",
    account: Annotated[str, typer.Option("--account")] = "default",
    strategy: Annotated[
        str | None,
        typer.Option("--strategy", help="MODULE:FUNCTION, an async function given the gateway."),
    ] = None,
    demo: Annotated[
        int, typer.Option("--demo", min=0, help="The demo strategy, N orders (paper or sim).")
    ] = 0,
    webhook: Annotated[str | None, typer.Option("--webhook", help="POST alerts here.")] = None,
    safe_stop_on_p0: Annotated[bool, typer.Option("--safe-stop-on-p0")] = False,
    run_for: Annotated[
        float | None, typer.Option("--run-for", help="Stop after this many seconds.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Profiles file (TOML); see docs/profiles.md.")
    ] = None,
    profile_name: Annotated[
        str | None, typer.Option("--profile", help="paper, sim, live, ...: a profile of --config.")
    ] = None,
    override_gate: Annotated[
        bool,
        typer.Option(
            "--override-gate",
            help="Start a live profile whose go-live gate never passed (needs --who, --why;"
            " journaled, raises a P1 alert).",
        ),
    ] = False,
    who: Annotated[str | None, typer.Option("--who", help="Who overrides the gate.")] = None,
    why: Annotated[str | None, typer.Option("--why", help="Why the gate is overridden.")] = None,
) -> None:
    """Run the gateway as a service: /metrics, alerts, recon, JSON logs.

    Without --config it trades on the embedded paper broker in --dir. Stops
    cleanly on SIGTERM or Ctrl-C. `livegate status --dir DIR` shows where it
    stands. Profiles: docs/profiles.md.
    """
    from livegate.broker.paper import PaperAdapter, PaperConfig
    from livegate.cli.demo import DEMO_INSTRUMENTS, trade_demo
    from livegate.engine import Gateway, GatewayConfig
    from livegate.journal import Journal, SQLiteStore
    from livegate.observe.alerts import AlertConfig
    from livegate.observe.logs import configure_json_logging
    from livegate.ops.profiles import ProfileError, load_profiles, resolve_webhook
    from livegate.ops.service import GatewayService, ServiceConfig
    from livegate.ops.wiring import build_gateway

    if strategy and demo:
        raise typer.BadParameter("--strategy and --demo are exclusive")
    override: tuple[str, str] | None = None
    chosen = _load_strategy(strategy) if strategy else None
    profile = None
    if (config is None) != (profile_name is None):
        raise typer.BadParameter("--config and --profile go together")
    if config is not None and profile_name is not None:
        try:
            profiles = load_profiles(config)
            if profile_name not in profiles:
                raise ProfileError(
                    f"{config}: no profile {profile_name!r} (it has: {', '.join(profiles)})"
                )
            profile = profiles[profile_name]
            gateway = build_gateway(profile)
            webhook = webhook or resolve_webhook(profile)
        except ProfileError as exc:
            fail(f"refusing to start: {exc}")
        override = _check_gate(profile, gateway, override_gate, who, why)
        directory, environment = Path(profile.data_dir), profile.environment
        paper = gateway.adapter if isinstance(gateway.adapter, PaperAdapter) else None
        loaded = f"profile {profile_name!r} of {config} ({environment}, broker {profile.broker})"
    else:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            fail(f"cannot use {directory} as the data folder: {exc.strerror or exc}")
        paper = PaperAdapter(
            directory / "paper.sqlite", PaperConfig(initial_cash=Decimal(10_000_000))
        )
        gateway = Gateway(
            paper,
            Journal(SQLiteStore(directory / "journal.sqlite")),
            DEMO_INSTRUMENTS,
            GatewayConfig(account=account),
        )
        loaded = f"the embedded paper broker ({environment})"
    if demo and paper is None and (profile is None or profile.broker != "sim"):
        raise typer.BadParameter("--demo trades on the paper or the sim broker only")
    configure_json_logging()
    if demo:
        demo_broker = paper

        async def scripted(g: Gateway) -> None:
            await trade_demo(g, demo_broker, demo)
            logging.getLogger("livegate.service").info("demo strategy sent %d orders", demo)

        chosen = scripted
    service = GatewayService(
        gateway,
        ServiceConfig(
            directory,
            environment=environment,
            metrics_port=metrics_port,
            metrics_address=metrics_address,
            alerts=AlertConfig(safe_stop_on_p0=safe_stop_on_p0),
            webhook=webhook,
            profile=profile,
            calendar=profile.calendar if profile is not None else "",
            gate_override=override,
        ),
    )
    say(f"livegate serve: {loaded}; data in {directory.resolve()}")

    def ready() -> None:
        where = service.metrics_url or "no metrics endpoint"
        seq, replayed = gateway.pipeline.rebuilt_from
        state = (
            f"state from the checkpoint at event {seq:,} and {replayed:,} events after it"
            if seq
            else f"state from all {replayed:,} journal events (no checkpoint yet)"
        )
        say(
            f"ready: account {gateway.config.account}, {state}, metrics at {where};"
            " stop with Ctrl-C"
        )

    lease = _take_lease(gateway, directory)
    try:
        asyncio.run(service.run(chosen, run_for, on_ready=ready))
    except Exception as exc:
        # A failed start-up check: say which, with its reason (never a secret).
        notes = " ".join(getattr(exc, "__notes__", []))
        fail(f"could not start: {type(exc).__name__}: {exc} {notes}".rstrip(), 1)
    finally:
        if lease is not None:
            lease.release()  # a clean stop hands the account over at once
            lease.close()
    say("stopped")


def _take_lease(gateway: Gateway, directory: Path) -> Any:
    """A PostgreSQL journal: hold the account's lease (as a standby until it is free)."""
    from livegate.journal.postgres import PostgresStore

    store = gateway.journal.store
    if not isinstance(store, PostgresStore) or store.lease is None:
        return None
    from livegate.model.errors import JournalError
    from livegate.ops.standby import take_lease

    if (directory / "journal.sqlite").exists():
        fail(
            f"{directory} holds a SQLite journal: a profile with a PostgreSQL journal needs a"
            " data folder of its own"
        )
    from livegate.journal.locate import write_pointer

    # Operator commands and the console find the journal through it (a standby's too).
    write_pointer(directory / "journal.sqlite", store.conninfo, store.account)
    try:
        waited = take_lease(store, directory, say)
    except (JournalError, OSError) as exc:
        fail(f"could not take the account's lease: {exc}", 1)
    except Exception as exc:  # psycopg's errors: the database is unreachable or refuses us
        fail(f"could not take the account's lease: {' '.join(str(exc).split())}", 1)
    lease = store.lease
    if waited:
        say(f"active: took over account {store.account} at lease epoch {lease.epoch}"
            f" after {waited:.1f} s as a standby")  # fmt: skip
    lease.start_renewing()
    return lease


def _check_gate(
    profile: Any, gateway: Gateway, override: bool, who: str | None, why: str | None
) -> tuple[str, str] | None:
    """A live profile starts only on a release whose go-live gate passed, or on an
    override that says who and why (journaled at start, a P1 until acknowledged)."""
    from livegate.gate.run import gate_passed

    if profile.environment != "live":
        if override:
            fail(f"--override-gate is for a live profile; this one trades in {profile.environment}")
        return None
    assert gateway.release is not None
    passed = gate_passed(Path(profile.data_dir), gateway.release)
    if passed is not None:
        from livegate.gate.rules import when

        say(f"go-live gate passed for config {gateway.release.config_id} at {when(passed.ts_ns)}")
        return None
    if not override:
        fail(
            f"refusing to start: the go-live gate never passed for profile {profile.name!r}"
            f" (adapter {gateway.release.adapter_module} {gateway.release.adapter_version},"
            f" config {gateway.release.config_id}); run `livegate gate {profile.data_dir}"
            " --config FILE --profile P`, or start with --override-gate --who --why"
        )
    if not who or not why:
        fail("--override-gate needs --who and --why: both are journaled")
    return who, why


def status_command(
    directory: Annotated[Path, typer.Option("--dir", help="The service's data folder.")] = Path(
        "livegate-service"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="The raw status as JSON.")] = False,
) -> None:
    """Where a running service stands: connection, trading state, alerts, orders.

    Exit 1 when the gateway is not ready or its status is stale (for health checks).
    """
    from livegate.ops.service import read_status

    status = read_status(directory)
    if status is None:
        fail(f"no service status in {directory} (is `livegate serve --dir {directory}` running?)")
    age = (time.time_ns() - status["updated_ns"]) / 1e9
    if as_json:
        say(json.dumps(status, indent=2))
    else:
        _print_status(status, age)
    if status["running"] and age > 10:
        fail(f"status is {age:.0f}s old: the service may have died", 1)
    if not status["ready"]:
        raise typer.Exit(1)


def _print_status(status: dict[str, Any], age: float) -> None:
    from rich.table import Table

    table = Table(show_header=False)
    for key, value in status.items():
        if key in ("started_ns", "updated_ns", "health", "open_alerts", "loaded", "rollout"):
            continue
        if key == "safe_stop":
            value = _safe_stop_line(value)
        table.add_row(key, "" if value is None else str(value))
    for role, path in (status.get("loaded") or {}).items():
        table.add_row(f"loaded {role}", path)
    rollout = status.get("rollout")
    if rollout:
        table.add_row("rollout stage", f"{rollout['stage']} (livegate rollout shows its caps)")
    alerts = status.get("open_alerts") or {}
    listed = ", ".join(f"{level} {key}" for key, level in sorted(alerts.items(), key=_by_level))
    table.add_row("open_alerts", listed or "none")
    table.add_row("updated", f"{age:.1f}s ago")
    console.print(table)
    health = status.get("health") or []
    if health:
        checks = Table(title="Start-up health checks")
        for column in ("check", "", "ms", "detail"):
            checks.add_column(column)
        for check in health:
            mark = "ok" if check.get("ok") else "FAILED"
            checks.add_row(
                str(check.get("name")), mark, f"{check.get('ms', 0):.1f}", str(check.get("detail"))
            )
        console.print(checks)


def _safe_stop_line(value: dict[str, Any] | None) -> str:
    if not value:
        return "none"
    last = value.get("last")
    if value.get("pending"):
        return "under way: cancels go out once the broker is ready"
    if last is None:
        return "none"
    left = len(last["remaining"])
    return f"last: {last['cancelled']} cancels, {left} left open, {last['millis']} ms"


def _by_level(item: tuple[str, str]) -> tuple[str, str]:
    return item[1], item[0]
